/* shoal image pull, shoal image push, shoal login, shoal logout.
 *
 * Credentials live with the client, as Docker keeps them: `shoal login`
 * checks them through the daemon and writes them to $SHOAL_CONFIG/config.json
 * (default ~/.shoal/config.json, mode 0600) in Docker's format
 * ({"auths": {"REGISTRY": {"auth": base64("user:password")}}});
 * ~/.docker/config.json ($DOCKER_CONFIG) is read too. A pull or push sends the
 * credentials for the image's registry with the request; the daemon keeps
 * none. */
#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"
#include "model/imageref.h"

/* ---- credentials -------------------------------------------------------- */

static char *shoal_config_path(void)
{
    const char *dir = getenv("SHOAL_CONFIG");
    if (dir && dir[0])
        return xasprintf("%s/config.json", dir);
    const char *home = getenv("HOME");
    return xasprintf("%s/.shoal/config.json", home && home[0] ? home : "/root");
}

static char *docker_config_path(void)
{
    const char *dir = getenv("DOCKER_CONFIG");
    if (dir && dir[0])
        return xasprintf("%s/config.json", dir);
    const char *home = getenv("HOME");
    return xasprintf("%s/.docker/config.json", home && home[0] ? home : "/root");
}

/* The names a registry goes by in config files. */
static bool same_registry(const char *key, const char *domain)
{
    const char *k = key;
    if (strncmp(k, "https://", 8) == 0)
        k += 8;
    else if (strncmp(k, "http://", 7) == 0)
        k += 7;
    size_t n = strcspn(k, "/");
    bool hub = strcmp(domain, IMAGE_DEFAULT_DOMAIN) == 0;
    if (hub && ((n == 15 && strncmp(k, "index.docker.io", 15) == 0) ||
                (n == 9 && strncmp(k, "docker.io", 9) == 0)))
        return true;
    return strlen(domain) == n && strncmp(k, domain, n) == 0;
}

/* user:password from one config file's auths, or false. */
static bool creds_from(const char *path, const char *domain, char **user, char **pass)
{
    json_t *cfg = json_load_file(path, 0, NULL);
    const char *key;
    json_t *entry;
    bool found = false;
    json_object_foreach(json_object_get(cfg, "auths"), key, entry)
    {
        const char *b64 = json_string_value(json_object_get(entry, "auth"));
        if (found || b64 == NULL || !same_registry(key, domain))
            continue;
        size_t n = strlen(b64);
        unsigned char *plain = xcalloc(n + 4, 1);
        int len = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n);
        char *colon = len > 0 ? strchr((char *)plain, ':') : NULL;
        if (colon) {
            *user = xasprintf("%.*s", (int)(colon - (char *)plain), (char *)plain);
            *pass = xstrdup(colon + 1);
            found = true;
        }
        free(plain);
    }
    json_decref(cfg);
    return found;
}

/* Sets "username"/"password" in `body` when a config file has them for `domain`. */
static void add_creds(json_t *body, const char *domain)
{
    char *user = NULL, *pass = NULL;
    char *ours = shoal_config_path(), *docker = docker_config_path();
    if (creds_from(ours, domain, &user, &pass) || creds_from(docker, domain, &user, &pass)) {
        json_object_set_new(body, "username", json_string(user));
        json_object_set_new(body, "password", json_string(pass));
    }
    free(user);
    free(pass);
    free(ours);
    free(docker);
}

void cli_registry_auth(json_t *obj)
{
    struct image_ref r;
    const char *image = json_string_value(json_object_get(obj, "image"));
    if (image == NULL || image_parse_ref(image, &r, NULL) < 0)
        return;
    json_t *auth = json_object();
    add_creds(auth, r.domain);
    if (json_object_size(auth) > 0)
        json_object_set(obj, "registry_auth", auth);
    json_decref(auth);
}

/* Writes `auths[registry]` (NULL entry: removes it) into our config file. */
static int store_creds(const char *registry, const char *user, const char *pass, bool *had,
                       struct serr *err)
{
    char *path = shoal_config_path();
    json_t *cfg = json_load_file(path, 0, NULL);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        cfg = json_object();
    }
    json_t *auths = json_object_get(cfg, "auths");
    if (!json_is_object(auths)) {
        auths = json_object();
        json_object_set_new(cfg, "auths", auths);
    }
    if (had)
        *had = json_object_get(auths, registry) != NULL;
    if (user) {
        char *plain = xasprintf("%s:%s", user, pass);
        size_t n = strlen(plain);
        char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)n);
        json_object_set_new(auths, registry, json_pack("{s:s}", "auth", b64));
        free(b64);
        free(plain);
    } else {
        json_object_del(auths, registry);
    }
    char *dir = xasprintf("%.*s", (int)(strrchr(path, '/') - path), path);
    char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    int rc = mkdir_p(dir, 0700, err);
    if (rc == 0) /* secrets: 0600 (write_file_atomic creates files 0600) */
        rc = write_file_atomic(path, text, strlen(text), true, err);
    if (rc == 0 && chmod(path, 0600) < 0)
        rc = serr_errno(err, "chmod %s", path);
    free(text);
    free(dir);
    json_decref(cfg);
    free(path);
    return rc;
}

/* ---- pull --------------------------------------------------------------- */

struct pull_view {
    bool tty, quiet;
    json_t *ids;  /* layer ids in the order their lines were printed (tty) */
    json_t *last; /* id -> last status printed (plain output) */
    json_t *image;
    char error[512];
};

static void layer_text(json_t *line, char *out, size_t outlen)
{
    const char *status = cli_str(line, "status");
    int64_t cur = cli_int(line, "current"), total = cli_int(line, "total");
    if ((strcmp(status, "Downloading") == 0 || strcmp(status, "Pushing") == 0) && total > 0) {
        char a[32], b[32];
        cli_human_size(cur, a, sizeof(a));
        cli_human_size(total, b, sizeof(b));
        snprintf(out, outlen, "%s: %s  %s/%s", cli_str(line, "id"), status, a, b);
    } else {
        snprintf(out, outlen, "%s: %s", cli_str(line, "id"), status);
    }
}

/* A terminal: one line per layer, rewritten in place as docker pull does. */
static void show_tty(struct pull_view *v, json_t *line, const char *text)
{
    const char *id = cli_str(line, "id");
    size_t n = json_array_size(v->ids), at = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_string_value(json_array_get(v->ids, i)), id) == 0)
            at = i;
    if (at == n) {
        json_array_append_new(v->ids, json_string(id));
        printf("%s\n", text);
    } else {
        size_t up = n - at;
        printf("\033[%zuA\r\033[2K%s\033[%zuB\r", up, text, up);
    }
    fflush(stdout);
}

static void show_plain(struct pull_view *v, json_t *line, const char *text)
{
    const char *id = cli_str(line, "id"), *status = cli_str(line, "status");
    const char *before = json_string_value(json_object_get(v->last, id));
    if (before && strcmp(before, status) == 0)
        return; /* "Downloading" again: one line is enough without a terminal */
    json_object_set_new(v->last, id, json_string(status));
    printf("%s\n", text);
    fflush(stdout);
}

static void show_status(struct pull_view *v, json_t *line)
{
    if (cli_str(line, "id")[0] == '\0') { /* about the whole image */
        printf("%s\n", cli_str(line, "status"));
        fflush(stdout);
        return;
    }
    char out[300];
    layer_text(line, out, sizeof(out));
    if (v->tty)
        show_tty(v, line, out);
    else
        show_plain(v, line, out);
}

static void pull_line(void *arg, const char *text, size_t len)
{
    struct pull_view *v = arg;
    json_t *line = json_loadb(text, len, 0, NULL);
    if (!json_is_object(line)) {
        json_decref(line);
        return;
    }
    if (json_object_get(line, "error")) {
        snprintf(v->error, sizeof(v->error), "%s", cli_str(line, "error"));
    } else {
        if (json_object_get(line, "image")) {
            json_decref(v->image);
            v->image = json_incref(json_object_get(line, "image"));
        }
        if (!v->quiet && cli_str(line, "status")[0])
            show_status(v, line);
    }
    json_decref(line);
}

static const char pull_usage[] =
    "Usage:  shoal image pull [OPTIONS] NAME[:TAG|@DIGEST]\n\n"
    "Download an image from a registry\n\n"
    "Options:\n"
    "      --platform string   Set platform (OS/ARCH[/VARIANT]; default: the node's)\n"
    "  -q, --quiet             Suppress verbose output\n";

static int image_pull(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {{"platform", required_argument, NULL, 'P'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *platform = NULL;
    bool quiet = false;
    struct serr err;
    optind = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "qh", longopts, &err)) != -1) {
        switch (c) {
        case 'P':
            platform = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            return cli_help(pull_usage);
        default:
            return cli_usage_error("image pull", "%s", err.msg);
        }
    }
    int rc = cli_nargs("image pull", argc - optind, 1, 1);
    if (rc >= 0)
        return rc;
    const char *ref = argv[optind];
    struct image_ref r;
    if (image_parse_ref(ref, &r, &err) < 0)
        return cli_fail(&err);
    json_t *body = json_pack("{s:s}", "ref", ref);
    if (platform)
        json_object_set_new(body, "platform", json_string(platform));
    add_creds(body, r.domain);
    struct pull_view v = {
        .tty = isatty(STDOUT_FILENO), .quiet = quiet, .ids = json_array(), .last = json_object()};
    struct line_split lines = {.on_line = pull_line, .arg = &v};
    rc = cli_stream(cli, "POST", "/v1/images/pull", body, cli_lines_data, &lines, &err);
    line_split_end(&lines, rc == 0);
    json_decref(body);
    if (rc == 0 && v.error[0])
        rc = serr_set(&err, SERR_INVALID, "%s", v.error);
    else if (rc == 0 && v.image == NULL)
        rc = serr_set(&err, SERR_INTERNAL, "the daemon ended the pull without an answer");
    if (rc == 0) {
        json_t *tags = json_object_get(v.image, "tags");
        json_t *digests = json_object_get(v.image, "digests");
        const char *name = json_string_value(json_array_get(tags, 0));
        printf("%s\n", name ? name : json_string_value(json_array_get(digests, 0)));
    }
    json_decref(v.ids);
    json_decref(v.last);
    json_decref(v.image);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

int cli_image_pull(struct cli *cli, int argc, char **argv)
{
    return image_pull(cli, argc, argv);
}

/* ---- push --------------------------------------------------------------- */

static const char push_usage[] = "Usage:  shoal image push [OPTIONS] NAME[:TAG]\n\n"
                                 "Upload an image to a registry\n\n"
                                 "Options:\n"
                                 "  -q, --quiet   Suppress verbose output\n";

int cli_image_push(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool quiet = false;
    struct serr err;
    optind = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "qh", longopts, &err)) != -1) {
        if (c == 'q')
            quiet = true;
        else if (c == 'h')
            return cli_help(push_usage);
        else
            return cli_usage_error("image push", "%s", err.msg);
    }
    int rc = cli_nargs("image push", argc - optind, 1, 1);
    if (rc >= 0)
        return rc;
    const char *ref = argv[optind];
    struct image_ref r;
    if (image_parse_ref(ref, &r, &err) < 0)
        return cli_fail(&err);
    if (r.digest[0])
        return cli_usage_error("image push", "push needs NAME[:TAG], not a digest: %s", ref);
    json_t *body = json_object();
    add_creds(body, r.domain);
    char *path = cli_path("/v1/images/%s/push", ref);
    struct pull_view v = {
        .tty = isatty(STDOUT_FILENO), .quiet = quiet, .ids = json_array(), .last = json_object()};
    struct line_split lines = {.on_line = pull_line, .arg = &v};
    rc = cli_stream(cli, "POST", path, body, cli_lines_data, &lines, &err);
    line_split_end(&lines, rc == 0);
    free(path);
    json_decref(body);
    if (rc == 0 && v.error[0])
        rc = serr_set(&err, SERR_INVALID, "%s", v.error);
    else if (rc == 0 && v.image == NULL)
        rc = serr_set(&err, SERR_INTERNAL, "the daemon ended the push without an answer");
    if (rc == 0 && quiet)
        printf("%s:%s\n", r.name, r.tag);
    json_decref(v.ids);
    json_decref(v.last);
    json_decref(v.image);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

/* ---- login / logout ----------------------------------------------------- */

static char *read_line_from(FILE *f, bool echo)
{
    struct termios old, quiet;
    bool tty = !echo && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(f), TCSANOW, &quiet);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (tty) {
        tcsetattr(fileno(f), TCSANOW, &old);
        fputc('\n', stderr);
    }
    if (n < 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static const char login_usage[] = "Usage:  shoal login [OPTIONS] [SERVER]\n\n"
                                  "Log in to a registry (default: Docker Hub)\n\n"
                                  "Options:\n"
                                  "  -p, --password string   Password\n"
                                  "      --password-stdin    Take the password from stdin\n"
                                  "  -u, --username string   Username\n";

int cli_login(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {{"username", required_argument, NULL, 'u'},
                                             {"password", required_argument, NULL, 'p'},
                                             {"password-stdin", no_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *user_arg = NULL, *pass_arg = NULL;
    bool from_stdin = false;
    struct serr err;
    optind = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "u:p:h", longopts, &err)) != -1) {
        switch (c) {
        case 'u':
            user_arg = optarg;
            break;
        case 'p':
            pass_arg = optarg;
            break;
        case 'S':
            from_stdin = true;
            break;
        case 'h':
            return cli_help(login_usage);
        default:
            return cli_usage_error("login", "%s", err.msg);
        }
    }
    int rc = cli_nargs("login", argc - optind, 0, 1);
    if (rc >= 0)
        return rc;
    if (from_stdin && pass_arg)
        return cli_usage_error("login", "--password and --password-stdin are mutually exclusive");
    if (from_stdin && user_arg == NULL)
        return cli_usage_error("login", "must provide --username with --password-stdin");
    const char *registry = optind < argc ? argv[optind] : IMAGE_DEFAULT_DOMAIN;
    char *user = user_arg ? xstrdup(user_arg) : NULL;
    if (user == NULL && isatty(STDIN_FILENO)) {
        fprintf(stderr, "Username: ");
        user = read_line_from(stdin, true);
    }
    char *pass = pass_arg ? xstrdup(pass_arg) : NULL;
    if (pass == NULL && (from_stdin || isatty(STDIN_FILENO))) {
        if (!from_stdin)
            fprintf(stderr, "Password: ");
        pass = read_line_from(stdin, from_stdin);
    }
    if (user == NULL || user[0] == '\0' || pass == NULL) {
        free(user);
        free(pass);
        return cli_usage_error("login", "a username and a password are needed (-u, "
                                        "--password-stdin)");
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s}", "registry", registry, "username", user, "password", pass);
    rc = cli_call(cli, "POST", "/v1/registry/login", body, NULL, &err);
    json_decref(body);
    if (rc == 0)
        rc = store_creds(registry, user, pass, NULL, &err);
    free(user);
    free(pass);
    if (rc < 0)
        return cli_fail(&err);
    printf("Login Succeeded\n");
    return CLI_EXIT_OK;
}

static const char logout_usage[] = "Usage:  shoal logout [SERVER]\n\n"
                                   "Log out from a registry (default: Docker Hub)\n";

int cli_logout(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("logout", logout_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("logout", argc - fl.first_arg, 0, 1)) >= 0)
        return rc;
    const char *registry = fl.first_arg < argc ? argv[fl.first_arg] : IMAGE_DEFAULT_DOMAIN;
    struct serr err;
    bool had = false;
    if (store_creds(registry, NULL, NULL, &had, &err) < 0)
        return cli_fail(&err);
    if (had)
        printf("Removing login credentials for %s\n", registry);
    else
        printf("Not logged in to %s\n", registry);
    return CLI_EXIT_OK;
}
