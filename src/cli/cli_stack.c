/* shoal stack deploy | ls | ps | services | rm: Compose files (compose.c)
 * deployed as networks, secrets, configs and services named STACK_*; the
 * services carry the label com.docker.stack.namespace=STACK. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "cli/cli.h"
#include "cli/compose.h"
#include "base/base64.h"
#include "model/secret.h"

/* ---- the stack's objects as the daemon has them ---- */

static const char *namespace_of(json_t *svc)
{
    json_t *labels = json_object_get(json_object_get(svc, "spec"), "labels");
    return cli_str(labels, COMPOSE_NAMESPACE_LABEL);
}

/* The services of `stack` (new reference), from GET /v1/services. */
static json_t *stack_services(json_t *all, const char *stack)
{
    json_t *out = json_array();
    size_t i;
    json_t *svc;
    json_array_foreach(all, i, svc)
    {
        if (strcmp(namespace_of(svc), stack) == 0)
            json_array_append(out, svc);
    }
    return out;
}

static json_t *find_named(json_t *list, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (strcmp(cli_str(o, "name"), name) == 0)
            return o;
    }
    return NULL;
}

/* Networks, secrets and configs of a stack have no labels in shoal: they
 * are the ones named STACK_... */
static bool in_stack_by_name(json_t *obj, const char *stack)
{
    size_t n = strlen(stack);
    const char *name = cli_str(obj, "name");
    return strncmp(name, stack, n) == 0 && name[n] == '_' &&
           !json_is_true(json_object_get(obj, "builtin"));
}

/* ---- deploy ---- */

static const char deploy_usage[] =
    "Usage:  shoal stack deploy [OPTIONS] STACK\n\n"
    "Deploy a new stack or update an existing stack\n\n"
    "Options:\n"
    "  -c, --compose-file strings   Path to a Compose file (repeatable: later files\n"
    "                               override earlier ones)\n"
    "  -d, --detach                 Do not wait (accepted for Docker's habits: stack\n"
    "                               deploy never waits for the services to converge)\n"
    "      --prune                  Prune services that are no longer referenced\n"
    "      --with-registry-auth     Accepted for Docker's habits: the credentials of\n"
    "                               'shoal login' are always sent\n";

struct deploy {
    struct cli *cli;
    const char *stack;
    json_t *plan;
    json_t *services, *networks, *secrets, *configs, *volumes; /* the daemon's */
    json_t *created; /* [[path, name]] to undo on failure */
};

/* Secrets' and configs' "file" become "data" (base64) before anything is made. */
static int read_data_files(json_t *plan, struct serr *err)
{
    static const char *const sections[] = {"secrets", "configs"};
    for (int s = 0; s < 2; s++) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(plan, sections[s]), i, o)
        {
            const char *file = cli_str(o, "file");
            char *data = NULL;
            size_t len = 0;
            if (file[0] == '\0') {
                data = xstrdup(cli_str(o, "data"));
                len = strlen(data);
            } else if (read_file(file, &data, &len, err) < 0) {
                return serr_wrap(err, "%s %s", sections[s], cli_str(o, "name"));
            }
            if (len == 0 || len > SECRET_MAX_SIZE) {
                free(data);
                return serr_set(err, SERR_INVALID, "%s %s: %s is empty or over 500 KB", sections[s],
                                cli_str(o, "name"), file);
            }
            char *b64 = base64_encode((const unsigned char *)data, len);
            explicit_bzero(data, len);
            free(data);
            json_object_del(o, "file");
            json_object_set_new(o, "data", json_string(b64));
            free(b64);
        }
    }
    return 0;
}

static int fetch_state(struct deploy *d, struct serr *err)
{
    if (cli_call(d->cli, "GET", "/v1/services", NULL, &d->services, err) < 0 ||
        cli_call(d->cli, "GET", "/v1/networks", NULL, &d->networks, err) < 0 ||
        cli_call(d->cli, "GET", "/v1/secrets", NULL, &d->secrets, err) < 0 ||
        cli_call(d->cli, "GET", "/v1/configs", NULL, &d->configs, err) < 0 ||
        cli_call(d->cli, "GET", "/v1/volumes", NULL, &d->volumes, err) < 0)
        return -1;
    return 0;
}

/* Every service of the file that exists must be this stack's. */
static int check_owned(struct deploy *d, struct serr *err)
{
    size_t i;
    json_t *spec;
    json_array_foreach(json_object_get(d->plan, "services"), i, spec)
    {
        json_t *svc = find_named(d->services, cli_str(spec, "name"));
        if (svc && strcmp(namespace_of(svc), d->stack) != 0)
            return serr_set(err, SERR_CONFLICT, "service %s exists and is not part of stack %s",
                            cli_str(spec, "name"), d->stack);
    }
    return 0;
}

static int create(struct deploy *d, const char *path, const char *noun, json_t *body,
                  struct serr *err)
{
    printf("Creating %s %s\n", noun, cli_str(body, "name"));
    fflush(stdout);
    if (cli_call(d->cli, "POST", path, body, NULL, err) < 0)
        return serr_wrap(err, "%s %s", noun, cli_str(body, "name"));
    json_array_append_new(d->created, json_pack("[s, s]", path, cli_str(body, "name")));
    return 0;
}

/* Networks, secrets, configs and volumes (those with labels: a backup
 * policy) the daemon does not have yet. A volume that exists is left as it
 * is (its data and policy are not a deploy's to change). */
static int create_objects(struct deploy *d, struct serr *err)
{
    static const struct {
        const char *section, *path, *noun;
    } kinds[] = {{"networks", "/v1/networks", "network"},
                 {"secrets", "/v1/secrets", "secret"},
                 {"configs", "/v1/configs", "config"},
                 {"volumes", "/v1/volumes", "volume"}};
    json_t *have[] = {d->networks, d->secrets, d->configs, d->volumes};
    for (int k = 0; k < 4; k++) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(d->plan, kinds[k].section), i, o)
        {
            if (find_named(have[k], cli_str(o, "name")) == NULL &&
                create(d, kinds[k].path, kinds[k].noun, o, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int update_service(struct deploy *d, json_t *svc, json_t *spec, struct serr *err)
{
    json_t *patch;
    const char *why;
    const char *name = cli_str(spec, "name");
    int rc = 0;
    if (stack_service_patch(json_object_get(svc, "spec"), spec, &patch, &why) == 1) {
        printf("Replacing service %s (%s changed: a service update cannot change it)\n", name, why);
        char *path = cli_path("/v1/services/%s", name);
        rc = cli_call(d->cli, "DELETE", path, NULL, NULL, err);
        free(path);
        cli_registry_auth(spec);
        if (rc == 0)
            rc = cli_call(d->cli, "POST", "/v1/services", spec, NULL, err);
    } else if (json_object_size(patch) > 0) {
        char fields[256] = "";
        const char *k;
        json_t *v;
        json_object_foreach(patch, k, v)
        {
            size_t n = strlen(fields);
            snprintf(fields + n, sizeof(fields) - n, "%s%s", n ? ", " : "", k);
        }
        printf("Updating service %s (%s)\n", name, fields);
        char *path = cli_path("/v1/services/%s/update", name);
        cli_registry_auth(patch);
        rc = cli_call(d->cli, "POST", path, patch, NULL, err);
        free(path);
    }
    json_decref(patch);
    return rc < 0 ? serr_wrap(err, "service %s", name) : 0;
}

static int deploy_services(struct deploy *d, struct serr *err)
{
    size_t i;
    json_t *spec;
    json_array_foreach(json_object_get(d->plan, "services"), i, spec)
    {
        json_t *svc = find_named(d->services, cli_str(spec, "name"));
        if (svc == NULL) {
            cli_registry_auth(spec); /* for a pull of an image the cluster lacks */
            if (create(d, "/v1/services", "service", spec, err) < 0)
                return -1;
        } else if (update_service(d, svc, spec, err) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A network or secret still used by a service being removed answers 409
 * for a moment: tried again for up to 10 s. */
static int remove_object(struct cli *cli, const char *path_fmt, const char *name, struct serr *err)
{
    char *path = cli_path(path_fmt, name);
    int rc = -1;
    for (int attempt = 0; attempt < 100 && rc < 0; attempt++) {
        rc = cli_call(cli, "DELETE", path, NULL, NULL, err);
        if (rc < 0 && err->kind != SERR_CONFLICT)
            break;
        if (rc < 0)
            nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    free(path);
    return rc;
}

/* After a failure: what this deploy created goes, newest first. */
static void undo_created(struct deploy *d)
{
    for (size_t i = json_array_size(d->created); i-- > 0;) {
        json_t *c = json_array_get(d->created, i);
        const char *path = json_string_value(json_array_get(c, 0));
        const char *name = json_string_value(json_array_get(c, 1));
        char *fmt = xasprintf("%s/%%s", path);
        struct serr err = {0};
        if (remove_object(d->cli, fmt, name, &err) < 0)
            fprintf(stderr, "Error: cannot remove %s again: %s\n", name, err.msg);
        free(fmt);
    }
}

static int prune(struct deploy *d, struct serr *err)
{
    json_t *mine = stack_services(d->services, d->stack);
    size_t i;
    json_t *svc;
    int rc = 0;
    json_array_foreach(mine, i, svc)
    {
        const char *name = cli_str(svc, "name");
        if (find_named(json_object_get(d->plan, "services"), name))
            continue;
        printf("Removing service %s\n", name);
        if ((rc = remove_object(d->cli, "/v1/services/%s", name, err)) < 0)
            break;
    }
    json_decref(mine);
    return rc;
}

static int parse_deploy(int argc, char **argv, const char ***files, int *nfiles, bool *prune,
                        const char **stack, struct serr *err)
{
    static const struct option opts[] = {{"compose-file", required_argument, NULL, 'c'},
                                         {"prune", no_argument, NULL, 'P'},
                                         /* Docker's; shoal always sends the credentials
                                          * of `shoal login` and never waits here */
                                         {"with-registry-auth", no_argument, NULL, 'R'},
                                         {"detach", no_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *files = xmalloc(sizeof(char *) * (size_t)argc);
    *nfiles = 0;
    *prune = false;
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "c:dh", opts, err)) != -1) {
        if (opt == '?')
            return -1;
        if (opt == 'h')
            return 1;
        if (opt == 'c')
            (*files)[(*nfiles)++] = optarg;
        else if (opt == 'P')
            *prune = true;
    }
    if (*nfiles == 0)
        return serr_set(err, SERR_INVALID, "give a Compose file with -c");
    if (argc - optind != 1)
        return serr_set(err, SERR_INVALID, "requires exactly 1 argument (STACK)");
    *stack = argv[optind];
    return compose_check_stack_name(*stack, err);
}

static int run_deploy(struct deploy *d, bool prune_services, struct serr *err)
{
    if (read_data_files(d->plan, err) < 0 || fetch_state(d, err) < 0 || check_owned(d, err) < 0)
        return -1;
    if (create_objects(d, err) < 0 || deploy_services(d, err) < 0) {
        undo_created(d);
        return -1;
    }
    return prune_services ? prune(d, err) : 0;
}

static int stack_deploy(struct cli *cli, int argc, char **argv)
{
    const char **files;
    int nfiles;
    bool prune_services;
    struct deploy d = {.cli = cli};
    struct serr err = {0};
    int rc = parse_deploy(argc, argv, &files, &nfiles, &prune_services, &d.stack, &err);
    if (rc == 1) {
        free(files);
        return cli_help(deploy_usage);
    }
    if (rc < 0) {
        free(files);
        return cli_usage_error("stack deploy", "%s", err.msg);
    }
    rc = compose_load_files(files, nfiles, d.stack, &d.plan, &err);
    free(files);
    if (rc < 0)
        return cli_fail(&err);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(d.plan, "warnings"), i, w)
        fprintf(stderr, "Warning: %s\n", json_string_value(w));
    d.created = json_array();
    rc = run_deploy(&d, prune_services, &err);
    json_t *owned[] = {d.plan, d.services, d.networks, d.secrets, d.configs, d.volumes, d.created};
    for (size_t k = 0; k < sizeof(owned) / sizeof(owned[0]); k++)
        json_decref(owned[k]);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

/* ---- ls / services / ps ---- */

static int stack_ls(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal stack ls [OPTIONS]\n\nList stacks\n\n"
                                "Options:\n"
                                "      --format string   Format output (json or table)\n";
    struct cli_flags fl;
    int rc = cli_flags("stack ls", usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("stack ls", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *all;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/services", NULL, &all, &err) < 0)
        return cli_fail(&err);
    json_t *counts = json_object(); /* stack -> services */
    size_t i;
    json_t *svc;
    json_array_foreach(all, i, svc)
    {
        const char *ns = namespace_of(svc);
        if (ns[0])
            json_object_set_new(counts, ns, json_integer(cli_int(counts, ns) + 1));
    }
    json_t *rows = json_array();
    const char *name;
    json_t *n;
    json_object_foreach(counts, name, n)
        json_array_append_new(rows, json_pack("{s:s, s:O}", "name", name, "services", n));
    if (fl.json) {
        cli_print_json(rows, false);
    } else {
        static const char *const head[] = {"NAME", "SERVICES"};
        struct table *t = table_new(2, head);
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            char count[24];
            snprintf(count, sizeof(count), "%lld", (long long)cli_int(row, "services"));
            const char *cells[] = {cli_str(row, "name"), count};
            table_add(t, cells);
        }
        table_print_free(t);
    }
    json_decref(rows);
    json_decref(counts);
    json_decref(all);
    return CLI_EXIT_OK;
}

/* The stack's services (new reference), or NULL after printing why. */
static json_t *services_of(struct cli *cli, const char *stack, int *rc)
{
    json_t *all;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/services", NULL, &all, &err) < 0) {
        *rc = cli_fail(&err);
        return NULL;
    }
    json_t *mine = stack_services(all, stack);
    json_decref(all);
    return mine;
}

static int stack_services_cmd(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal stack services [OPTIONS] STACK\n\n"
                                "List the services in the stack\n\n"
                                "Options:\n"
                                "      --format string   Format output (json or table)\n";
    struct cli_flags fl;
    int rc = cli_flags("stack services", usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("stack services", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    json_t *mine = services_of(cli, argv[fl.first_arg], &rc);
    if (mine == NULL)
        return rc;
    if (json_array_size(mine) == 0 && !fl.json)
        fprintf(stderr, "Nothing found in stack: %s\n", argv[fl.first_arg]);
    else
        cli_print_services(mine, fl.json);
    json_decref(mine);
    return CLI_EXIT_OK;
}

static int stack_ps(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal stack ps [OPTIONS] STACK\n\n"
                                "List the tasks in the stack\n\n"
                                "Options:\n"
                                "      --no-trunc        Do not truncate output\n"
                                "      --format string   Format output (json or table)\n";
    struct cli_flags fl;
    int rc = cli_flags("stack ps", usage, "FT", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("stack ps", argc - fl.first_arg, 1, 1)) >= 0)
        return rc;
    json_t *mine = services_of(cli, argv[fl.first_arg], &rc);
    if (mine == NULL)
        return rc;
    json_t *tasks = json_array();
    size_t i;
    json_t *svc;
    struct serr err;
    rc = CLI_EXIT_OK;
    json_array_foreach(mine, i, svc)
    {
        char *path = cli_path("/v1/services/%s/tasks", cli_str(svc, "name"));
        json_t *list;
        if (cli_call(cli, "GET", path, NULL, &list, &err) < 0) {
            rc = cli_fail(&err);
        } else {
            json_array_extend(tasks, list);
            json_decref(list);
        }
        free(path);
    }
    if (json_array_size(mine) == 0 && !fl.json)
        fprintf(stderr, "Nothing found in stack: %s\n", argv[fl.first_arg]);
    else
        cli_print_tasks(tasks, &fl);
    json_decref(tasks);
    json_decref(mine);
    return rc;
}

/* ---- rm ---- */

static int remove_named(struct cli *cli, const char *stack, const char *path, const char *noun)
{
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", path, NULL, &list, &err) < 0)
        return cli_fail(&err);
    char *fmt = xasprintf("%s/%%s", path);
    int rc = CLI_EXIT_OK;
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (!in_stack_by_name(o, stack))
            continue;
        printf("Removing %s %s\n", noun, cli_str(o, "name"));
        if (remove_object(cli, fmt, cli_str(o, "name"), &err) < 0)
            rc = cli_fail(&err);
    }
    free(fmt);
    json_decref(list);
    return rc;
}

static int stack_rm(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "Usage:  shoal stack rm STACK [STACK...]\n\n"
                                "Remove one or more stacks\n";
    struct cli_flags fl;
    int rc = cli_flags("stack rm", usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("stack rm", argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    rc = CLI_EXIT_OK;
    for (int a = fl.first_arg; a < argc; a++) {
        const char *stack = argv[a];
        int r = CLI_EXIT_OK;
        json_t *mine = services_of(cli, stack, &r);
        if (mine == NULL)
            return r;
        if (json_array_size(mine) == 0)
            fprintf(stderr, "Nothing found in stack: %s\n", stack);
        size_t i;
        json_t *svc;
        struct serr err;
        json_array_foreach(mine, i, svc)
        {
            printf("Removing service %s\n", cli_str(svc, "name"));
            if (remove_object(cli, "/v1/services/%s", cli_str(svc, "name"), &err) < 0)
                r = cli_fail(&err);
        }
        json_decref(mine);
        int r2 = remove_named(cli, stack, "/v1/secrets", "secret");
        int r3 = remove_named(cli, stack, "/v1/configs", "config");
        int r4 = remove_named(cli, stack, "/v1/networks", "network");
        if (r || r2 || r3 || r4)
            rc = CLI_EXIT_ERROR;
    }
    return rc;
}

static const struct cli_cmd stack_cmds[] = {
    {"deploy", "up", stack_deploy, "Deploy a new stack or update an existing stack"},
    {"ls", "list", stack_ls, "List stacks"},
    {"ps", NULL, stack_ps, "List the tasks in the stack"},
    {"rm", "remove", stack_rm, "Remove one or more stacks"},
    {"services", NULL, stack_services_cmd, "List the services in the stack"},
    {NULL, NULL, NULL, NULL},
};

int cli_stack(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "stack", stack_cmds, argc, argv);
}
