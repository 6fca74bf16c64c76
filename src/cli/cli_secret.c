/* shoal secret|config create | ls | inspect | rm (manager/secret.h) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "base/base64.h"
#include "model/secret.h"

/* One of the two kinds: its noun and API path. */
struct kind {
    const char *noun;  /* "secret" */
    const char *path;  /* "/v1/secrets" */
    const char *title; /* "Secret" */
};
static const struct kind secret_kind = {"secret", "/v1/secrets", "Secret"};
static const struct kind config_kind = {"config", "/v1/configs", "Config"};

/* Reads FILE, or stdin for "-": at most SECRET_MAX_SIZE bytes. */
static int read_data(const char *file, char **out, size_t *len, struct serr *err)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (f == NULL)
        return serr_errno(err, "cannot read %s", file);
    size_t cap = SECRET_MAX_SIZE + 1, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while (n < cap && (got = fread(buf + n, 1, cap - n, f)) > 0)
        n += got;
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        return serr_set(err, SERR_INVALID, "cannot read %s", file);
    }
    if (n > SECRET_MAX_SIZE) {
        free(buf);
        return serr_set(err, SERR_INVALID, "%s is larger than 500 KB (the limit)", file);
    }
    *out = buf;
    *len = n;
    return 0;
}

static int kind_create(const struct kind *k, struct cli *cli, int argc, char **argv)
{
    char cmd[32], usage[400];
    snprintf(cmd, sizeof(cmd), "%s create", k->noun);
    snprintf(usage, sizeof(usage),
             "Usage:  shoal %s create %s file|-\n\n"
             "Create a %s from a file or STDIN as content (at most 500 KB)\n",
             k->noun, strcmp(k->noun, "secret") == 0 ? "SECRET" : "CONFIG", k->noun);
    struct cli_flags fl;
    int rc = cli_flags(cmd, usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs(cmd, argc - fl.first_arg, 2, 2)) >= 0)
        return rc;
    struct serr err = {0};
    char *data = NULL;
    size_t len = 0;
    if (read_data(argv[fl.first_arg + 1], &data, &len, &err) < 0)
        return cli_fail(&err);
    char *b64 = base64_encode((const unsigned char *)data, len);
    explicit_bzero(data, len);
    free(data);
    json_t *body = json_pack("{s:s, s:s}", "name", argv[fl.first_arg], "data", b64);
    explicit_bzero(b64, strlen(b64));
    free(b64);
    return cli_create(cli, k->path, body);
}

static int kind_ls(const struct kind *k, struct cli *cli, int argc, char **argv)
{
    char cmd[32], usage[300];
    snprintf(cmd, sizeof(cmd), "%s ls", k->noun);
    snprintf(usage, sizeof(usage),
             "Usage:  shoal %s ls [OPTIONS]\n\nList %ss\n\nOptions:\n"
             "      --format string   Format output (json or table)\n", k->noun, k->noun);
    struct cli_flags fl;
    int rc = cli_flags(cmd, usage, "F", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs(cmd, argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *list;
    struct serr err;
    if (cli_call(cli, "GET", k->path, NULL, &list, &err) < 0)
        return cli_fail(&err);
    if (fl.json) {
        cli_print_json(list, false);
    } else {
        static const char *const head[] = {"ID", "NAME", "CREATED", "UPDATED"};
        struct table *t = table_new(4, head);
        size_t i;
        json_t *s;
        int64_t now = now_ms();
        json_array_foreach(list, i, s)
        {
            char id[32], created[32], updated[32];
            snprintf(id, sizeof(id), "%.25s", cli_str(s, "id"));
            format_age(now - json_integer_value(json_object_get(s, "created_at")), created,
                       sizeof(created));
            format_age(now - json_integer_value(json_object_get(s, "updated_at")), updated,
                       sizeof(updated));
            const char *cells[] = {id, cli_str(s, "name"), created, updated};
            table_add(t, cells);
        }
        table_print_free(t);
    }
    json_decref(list);
    return CLI_EXIT_OK;
}

static int kind_inspect(const struct kind *k, struct cli *cli, int argc, char **argv)
{
    char cmd[32], usage[300], path[48];
    snprintf(cmd, sizeof(cmd), "%s inspect", k->noun);
    snprintf(usage, sizeof(usage),
             "Usage:  shoal %s inspect %s [%s...]\n\nDisplay detailed information on one or "
             "more %ss%s\n", k->noun, k->noun, k->noun, k->noun,
             strcmp(k->noun, "secret") == 0 ? " (never their data)" : " (data in base64)");
    snprintf(path, sizeof(path), "%s/%%s", k->path);
    return cli_inspect(cli, cmd, usage, path, argc, argv);
}

static int kind_rm(const struct kind *k, struct cli *cli, int argc, char **argv)
{
    char cmd[32], usage[300], path[48];
    snprintf(cmd, sizeof(cmd), "%s rm", k->noun);
    snprintf(usage, sizeof(usage),
             "Usage:  shoal %s rm %s [%s...]\n\nRemove one or more %ss (not while a service "
             "uses them)\n", k->noun, k->noun, k->noun, k->noun);
    struct cli_flags fl;
    int rc = cli_flags(cmd, usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs(cmd, argc - fl.first_arg, 1, -1)) >= 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%%s", k->path);
    return cli_remove_each(cli, path, "", argc - fl.first_arg, argv + fl.first_arg);
}

static int secret_create(struct cli *cli, int argc, char **argv)
{
    return kind_create(&secret_kind, cli, argc, argv);
}
static int secret_ls(struct cli *cli, int argc, char **argv)
{
    return kind_ls(&secret_kind, cli, argc, argv);
}
static int secret_inspect(struct cli *cli, int argc, char **argv)
{
    return kind_inspect(&secret_kind, cli, argc, argv);
}
static int secret_rm(struct cli *cli, int argc, char **argv)
{
    return kind_rm(&secret_kind, cli, argc, argv);
}
static int config_create(struct cli *cli, int argc, char **argv)
{
    return kind_create(&config_kind, cli, argc, argv);
}
static int config_ls(struct cli *cli, int argc, char **argv)
{
    return kind_ls(&config_kind, cli, argc, argv);
}
static int config_inspect(struct cli *cli, int argc, char **argv)
{
    return kind_inspect(&config_kind, cli, argc, argv);
}
static int config_rm(struct cli *cli, int argc, char **argv)
{
    return kind_rm(&config_kind, cli, argc, argv);
}

static const struct cli_cmd secret_cmds[] = {
    {"create", NULL, secret_create, "Create a secret from a file or STDIN as content"},
    {"inspect", NULL, secret_inspect, "Display detailed information on one or more secrets"},
    {"ls", "list", secret_ls, "List secrets"},
    {"rm", "remove", secret_rm, "Remove one or more secrets"},
    {NULL, NULL, NULL, NULL},
};

static const struct cli_cmd config_cmds[] = {
    {"create", NULL, config_create, "Create a config from a file or STDIN"},
    {"inspect", NULL, config_inspect, "Display detailed information on one or more configs"},
    {"ls", "list", config_ls, "List configs"},
    {"rm", "remove", config_rm, "Remove one or more configs"},
    {NULL, NULL, NULL, NULL},
};

int cli_secret(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "secret", secret_cmds, argc, argv);
}

int cli_config(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "config", config_cmds, argc, argv);
}

/* ---- --secret / --config of service create and update ---- */

static int ref_field(json_t *ref, const char *flag, char *field, struct serr *err)
{
    char *eq = strchr(field, '=');
    if (eq == NULL)
        return serr_set(err, SERR_INVALID, "invalid field '%s' in %s: use key=value", field,
                        flag);
    *eq = '\0';
    const char *key = field, *val = eq + 1;
    if (strcmp(key, "src") == 0)
        key = "source";
    if (strcmp(key, "source") == 0 || strcmp(key, "target") == 0 || strcmp(key, "uid") == 0 ||
        strcmp(key, "gid") == 0) {
        if (*val == '\0')
            return serr_set(err, SERR_INVALID, "invalid %s: %s is empty", flag, key);
        json_object_set_new(ref, key, json_string(val));
        return 0;
    }
    if (strcmp(key, "mode") == 0) {
        char *end = NULL;
        long mode = strtol(val, &end, 8);
        if (*val == '\0' || *end != '\0' || mode < 0 || mode > 0777)
            return serr_set(err, SERR_INVALID, "invalid mode '%s' in %s: an octal file mode "
                            "such as 0400", val, flag);
        json_object_set_new(ref, "mode", json_integer(mode));
        return 0;
    }
    return serr_set(err, SERR_INVALID, "invalid field '%s' in %s (source, target, uid, gid, "
                    "mode)", key, flag);
}

/* "NAME" or "source=NAME,target=T,uid=U,gid=G,mode=0400" -> {"source", ...}. */
static json_t *parse_ref(const char *flag, const char *arg, struct serr *err)
{
    json_t *ref = json_object();
    if (strchr(arg, '=') == NULL) {
        json_object_set_new(ref, "source", json_string(arg));
        return ref;
    }
    char *copy = xstrdup(arg), *save = NULL;
    int rc = 0;
    for (char *f = strtok_r(copy, ",", &save); rc == 0 && f; f = strtok_r(NULL, ",", &save))
        rc = ref_field(ref, flag, f, err);
    free(copy);
    if (rc == 0 && json_object_get(ref, "source") == NULL)
        rc = serr_set(err, SERR_INVALID, "invalid %s \"%s\": source is required", flag, arg);
    if (rc < 0) {
        json_decref(ref);
        return NULL;
    }
    return ref;
}

int cli_add_secret_ref(json_t *obj, const char *key, const char *flag, const char *arg,
                       struct serr *err)
{
    if (arg[0] == '\0')
        return serr_set(err, SERR_INVALID, "invalid %s: empty", flag);
    json_t *list = json_object_get(obj, key);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(obj, key, list);
    }
    size_t n = strlen(key);
    if (n > 3 && strcmp(key + n - 3, "_rm") == 0)
        return json_array_append_new(list, json_string(arg));
    json_t *ref = parse_ref(flag, arg, err);
    return ref ? json_array_append_new(list, ref) : -1;
}
