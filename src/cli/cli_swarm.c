/* shoal swarm init | join | join-token | leave | admin-cert */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "base/util.h"
#include "base/version.h"
#include "cli/cli.h"
#include "http/http.h"

char *cli_addr_with_port(const char *addr)
{
    /* Docker's default port when only an IP (or "[V6]") is given. */
    const char *after_host = addr[0] == '[' ? strchr(addr, ']') : addr;
    if (after_host != NULL && strchr(after_host, ':') != NULL)
        return xstrdup(addr);
    return xasprintf("%s:%d", addr, SHOAL_DEFAULT_PORT);
}

/* Sets body[key] to the address, refusing an empty one. `with_port`: a
 * missing port becomes 2377 (the manager's HOST); else the daemon picks
 * the port (--listen-addr and --advertise-addr default to each other's). */
static int set_addr(json_t *body, const char *key, const char *flag, const char *addr,
                    bool with_port, struct serr *err)
{
    if (addr[0] == '\0')
        return serr_set(err, SERR_INVALID, "empty %s", flag);
    char *full = with_port ? cli_addr_with_port(addr) : xstrdup(addr);
    json_object_set_new(body, key, json_string(full));
    free(full);
    return 0;
}

/* ---- init ---- */

static const char init_usage[] =
    "Usage:  shoal swarm init [OPTIONS]\n\n"
    "Initialize a swarm\n\n"
    "Options:\n"
    "      --advertise-addr string   Advertised address (format: <ip|interface>[:port]);\n"
    "                                default: the listen address if it is specific, else\n"
    "                                the address of the default route's interface\n"
    "      --listen-addr string      Listen address (format: <ip|interface>[:port])\n"
    "                                (default 0.0.0.0:2377)\n"
    "      --default-addr-pool CIDR  Address pool of the task networks, one /24 per node\n"
    "                                (default 10.42.0.0/16)\n"
    "      --autolock                Keep the managers' secrets key locked with an unlock\n"
    "                                key after a restart (shoal swarm unlock)\n"
    "      --force-new-cluster       Force create a new cluster from current state\n"
    "      --overlay string          How nodes reach each other's task subnets: direct\n"
    "                                (routes, nodes on one L2 segment) or vxlan (VXLAN\n"
    "                                tunnels, UDP 4789, for routed nodes) (default direct)\n";

int cli_build_swarm_init(int argc, char **argv, json_t **body, struct serr *err)
{
    static const struct option opts[] = {
        {"advertise-addr", required_argument, NULL, 'A'},
        {"listen-addr", required_argument, NULL, 'L'},
        {"force-new-cluster", no_argument, NULL, 'N'},
        {"default-addr-pool", required_argument, NULL, 'P'},
        {"overlay", required_argument, NULL, 'O'},
        {"autolock", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *b = json_object();
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "h", opts, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 'A')
            rc = set_addr(b, "advertise_addr", "--advertise-addr", optarg, false, err);
        else if (opt == 'L')
            rc = set_addr(b, "listen_addr", "--listen-addr", optarg, false, err);
        else if (opt == 'P') /* checked by the daemon */
            json_object_set_new(b, "default_addr_pool", json_string(optarg));
        else if (opt == 'O') /* checked by the daemon */
            json_object_set_new(b, "overlay", json_string(optarg));
        else if (opt == 'K')
            json_object_set_new(b, "autolock", json_true());
        else if (strcmp(argv[optind - 1], "--force-new-cluster") != 0)
            /* getopt_long takes prefixes; this one is too dangerous to guess. */
            rc = serr_set(err, SERR_INVALID, "unknown flag: %s", argv[optind - 1]);
        else
            json_object_set_new(b, "force_new_cluster", json_true());
    }
    if (rc == 0 && optind < argc)
        rc = serr_set(err, SERR_INVALID, "accepts no arguments");
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    *body = b;
    return 0;
}

/* Docker's join instructions; quietly nothing when the token is unavailable. */
static void print_join_command(struct cli *cli, const char *role)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/swarm/join-token/%s", role);
    json_t *out = NULL;
    struct serr err;
    if (cli_call(cli, "GET", path, NULL, &out, &err) == 0)
        printf("To add a %s to this swarm, run the following command:\n\n    %s\n", role,
               cli_str(out, "command"));
    json_decref(out);
}

static void print_unlock_key(const char *key)
{
    printf("To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n"
           "command and provide the following key:\n\n    %s\n\n"
           "Please remember to store this key in a password manager, since without it you\n"
           "will not be able to use the swarm's secrets after a manager restarts.\n",
           key);
}

static int swarm_init(struct cli *cli, int argc, char **argv)
{
    json_t *body;
    struct serr err;
    int rc = cli_build_swarm_init(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(init_usage);
    if (rc < 0)
        return cli_usage_error("swarm init", "%s", err.msg);
    json_t *out;
    rc = cli_call(cli, "POST", "/v1/swarm/init", body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    printf("Swarm initialized: current node (%s) is now a manager.\n\n", cli_str(out, "node_id"));
    char unlock_key[128];
    snprintf(unlock_key, sizeof(unlock_key), "%s", cli_str(out, "unlock_key"));
    json_decref(out);
    print_join_command(cli, "worker");
    printf("\nTo add a manager to this swarm, run 'shoal swarm join-token manager' and follow "
           "the instructions.\n");
    if (unlock_key[0]) {
        printf("\n");
        print_unlock_key(unlock_key);
    }
    explicit_bzero(unlock_key, sizeof(unlock_key));
    return CLI_EXIT_OK;
}

static const char unlock_usage[] =
    "Usage:  shoal swarm unlock\n\n"
    "Unlock the secrets of a manager of an autolocked swarm after a restart (the unlock key\n"
    "is read from standard input)\n";

static int swarm_unlock(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("swarm unlock", unlock_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("swarm unlock", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    char key[256] = "";
    if (isatty(0))
        fputs("Please enter unlock key: ", stderr);
    if (fgets(key, sizeof(key), stdin) == NULL)
        key[0] = '\0';
    key[strcspn(key, "\r\n")] = '\0';
    json_t *body = json_pack("{s:s}", "key", key);
    explicit_bzero(key, sizeof(key));
    struct serr err;
    rc = cli_call(cli, "POST", "/v1/swarm/unlock", body, NULL, &err);
    json_decref(body);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

/* ---- unlock-key ---- */

static const char unlock_key_usage[] =
    "Usage:  shoal swarm unlock-key [OPTIONS]\n\n"
    "Manage the unlock key of an autolocked swarm\n\n"
    "Options:\n"
    "  -q, --quiet    Only display the key\n"
    "      --rotate   Rotate the unlock key (a manager down meanwhile still needs the old\n"
    "                 one, once)\n";

static int swarm_unlock_key(struct cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"rotate", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool quiet = false, rotate = false;
    struct serr err;
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "qh", longopts, &err)) != -1) {
        if (opt == '?')
            return cli_usage_error("swarm unlock-key", "%s", err.msg);
        if (opt == 'h')
            return cli_help(unlock_key_usage);
        if (opt == 'q')
            quiet = true;
        else
            rotate = true;
    }
    if (optind != argc)
        return cli_usage_error("swarm unlock-key", "accepts no arguments");
    json_t *out;
    if (cli_call(cli, rotate ? "POST" : "GET",
                 rotate ? "/v1/swarm/unlock-key/rotate" : "/v1/swarm/unlock-key", NULL, &out,
                 &err) < 0)
        return cli_fail(&err);
    if (rotate && !quiet)
        printf("Successfully rotated manager unlock key.\n\n");
    if (quiet)
        printf("%s\n", cli_str(out, "unlock_key"));
    else
        print_unlock_key(cli_str(out, "unlock_key"));
    json_decref(out);
    return CLI_EXIT_OK;
}

/* ---- join ---- */

const char cli_swarm_join_usage[] =
    "Usage:  shoal swarm join [OPTIONS] HOST:PORT\n\n"
    "Join a swarm as a node and/or manager\n\n"
    "HOST is the IP address or host name of a manager; PORT defaults to 2377.\n\n"
    "Options:\n"
    "      --advertise-addr string   Advertised address (format: <ip|interface>[:port]);\n"
    "                                default: the listen address if it is specific, else\n"
    "                                this host's address toward the manager\n"
    "      --label list              The node's labels (key=value, repeatable): as\n"
    "                                shoal node update --label-add, for constraints\n"
    "                                node.labels.KEY==VALUE\n"
    "      --listen-addr string      Listen address (format: <ip|interface>[:port])\n"
    "                                (default 0.0.0.0:2377)\n"
    "      --token string            Token for entry into the swarm\n";

int cli_build_swarm_join(int argc, char **argv, json_t **body, struct serr *err)
{
    static const struct option opts[] = {
        {"advertise-addr", required_argument, NULL, 'A'},
        {"listen-addr", required_argument, NULL, 'L'},
        {"token", required_argument, NULL, 'T'},
        {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *b = json_object();
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "h", opts, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else if (opt == 'A')
            rc = set_addr(b, "advertise_addr", "--advertise-addr", optarg, false, err);
        else if (opt == 'L')
            rc = set_addr(b, "listen_addr", "--listen-addr", optarg, false, err);
        else if (opt == 'l')
            rc = cli_add_label(b, "labels", "--label", optarg, err);
        else if (optarg[0] == '\0')
            rc = serr_set(err, SERR_INVALID, "empty --token");
        else
            json_object_set_new(b, "token", json_string(optarg));
    }
    if (rc == 0 && argc - optind != 1)
        rc = serr_set(err, SERR_INVALID, "requires exactly 1 argument (HOST:PORT)");
    if (rc == 0 && json_object_get(b, "token") == NULL)
        rc = serr_set(err, SERR_INVALID, "--token is required (see 'shoal swarm join-token')");
    if (rc == 0)
        rc = set_addr(b, "remote_addr", "HOST:PORT", argv[optind], true, err);
    if (rc != 0) {
        json_decref(b);
        return rc;
    }
    *body = b;
    return 0;
}

static int swarm_join(struct cli *cli, int argc, char **argv)
{
    json_t *body;
    struct serr err;
    int rc = cli_build_swarm_join(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(cli_swarm_join_usage);
    if (rc < 0)
        return cli_usage_error("swarm join", "%s", err.msg);
    json_t *out;
    rc = cli_call(cli, "POST", "/v1/swarm/join", body, &out, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    printf("This node joined a swarm as a %s.\n",
           strcmp(cli_str(out, "role"), "manager") == 0 ? "manager" : "worker");
    json_decref(out);
    return CLI_EXIT_OK;
}

/* ---- join-token ---- */

static const char join_token_usage[] =
    "Usage:  shoal swarm join-token [OPTIONS] (worker|manager)\n\n"
    "Manage join tokens\n\n"
    "Options:\n"
    "  -q, --quiet    Only display token\n"
    "      --rotate   Rotate join token\n";

int cli_parse_join_token(int argc, char **argv, struct cli_join_token_opts *opts,
                         struct serr *err)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"rotate", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(opts, 0, sizeof(*opts));
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "qh", longopts, err)) != -1) {
        if (opt == '?')
            return -1;
        if (opt == 'h')
            return 1;
        if (opt == 'q')
            opts->quiet = true;
        else
            opts->rotate = true;
    }
    if (argc - optind != 1)
        return serr_set(err, SERR_INVALID, "requires exactly 1 argument (worker or manager)");
    const char *role = argv[optind];
    if (strcmp(role, "worker") != 0 && strcmp(role, "manager") != 0)
        return serr_set(err, SERR_INVALID, "unknown role %s (use worker or manager)", role);
    opts->role = role;
    return 0;
}

static int swarm_join_token(struct cli *cli, int argc, char **argv)
{
    struct cli_join_token_opts opts;
    struct serr err;
    int rc = cli_parse_join_token(argc, argv, &opts, &err);
    if (rc == 1)
        return cli_help(join_token_usage);
    if (rc < 0)
        return cli_usage_error("swarm join-token", "%s", err.msg);
    char path[64];
    snprintf(path, sizeof(path), "/v1/swarm/join-token/%s%s", opts.role,
             opts.rotate ? "/rotate" : "");
    json_t *out;
    if (cli_call(cli, opts.rotate ? "POST" : "GET", path, NULL, &out, &err) < 0)
        return cli_fail(&err);
    if (opts.rotate && !opts.quiet)
        printf("Successfully rotated %s join token.\n\n", opts.role);
    if (opts.quiet)
        printf("%s\n", cli_str(out, "token"));
    else
        printf("To add a %s to this swarm, run the following command:\n\n    %s\n", opts.role,
               cli_str(out, "command"));
    json_decref(out);
    return CLI_EXIT_OK;
}

/* ---- leave ---- */

static const char leave_usage[] = "Usage:  shoal swarm leave [OPTIONS]\n\n"
                                  "Leave the swarm\n\n"
                                  "Options:\n"
                                  "  -f, --force   Force this node to leave the swarm, ignoring "
                                  "warnings\n";

static int swarm_leave(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("swarm leave", leave_usage, "f", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("swarm leave", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    struct serr err;
    if (cli_call(cli, "POST", fl.force ? "/v1/swarm/leave?force=1" : "/v1/swarm/leave", NULL, NULL,
                 &err) < 0)
        return cli_fail(&err);
    printf("Node left the swarm.\n");
    return CLI_EXIT_OK;
}

/* ---- admin-cert ---- */

static const char admin_cert_usage[] =
    "Usage:  shoal swarm admin-cert [OPTIONS]\n\n"
    "Write a client certificate for remote access (shoal -H tcp://MANAGER:2377)\n\n"
    "Options:\n"
    "  -o, --output string   Directory for ca.pem, cert.pem and key.pem (default\n"
    "                        $SHOAL_TLS_DIR, or ~/.shoal)\n";

int cli_parse_admin_cert(int argc, char **argv, const char **dir, struct serr *err)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *dir = NULL;
    optind = 0;
    int opt;
    while ((opt = cli_getopt(argc, argv, "o:h", opts, err)) != -1) {
        if (opt == '?')
            return -1;
        if (opt == 'h')
            return 1;
        if (optarg[0] == '\0')
            return serr_set(err, SERR_INVALID, "empty --output");
        *dir = optarg;
    }
    if (optind < argc)
        return serr_set(err, SERR_INVALID, "accepts no arguments");
    return 0;
}

/* Writes one PEM; the key stays 0600 (write_file_atomic's mode), the
 * certificates are public. */
static int write_pem(const char *dir, const char *name, const char *pem, bool secret,
                     struct serr *err)
{
    if (pem[0] == '\0')
        return serr_set(err, SERR_INTERNAL, "the daemon sent no %s", name);
    char *path = xasprintf("%s/%s", dir, name);
    int rc = write_file_atomic(path, pem, strlen(pem), true, err);
    if (rc == 0 && !secret && chmod(path, 0644) < 0)
        rc = serr_errno(err, "chmod %s", path);
    free(path);
    return rc;
}

static int write_admin_cert(const char *dir, json_t *bundle, struct serr *err)
{
    if (mkdir_p(dir, 0700, err) < 0)
        return -1;
    if (write_pem(dir, HTTP_TLS_CA_FILE, cli_str(bundle, "ca"), false, err) < 0 ||
        write_pem(dir, HTTP_TLS_CERT_FILE, cli_str(bundle, "cert"), false, err) < 0 ||
        write_pem(dir, HTTP_TLS_KEY_FILE, cli_str(bundle, "key"), true, err) < 0)
        return -1;
    return 0;
}

static void print_remote_usage(struct cli *cli, const char *dir)
{
    json_t *info = NULL;
    struct serr err;
    cli_call(cli, "GET", "/v1/info", NULL, &info, &err);
    const char *addr = cli_str(json_object_get(info, "swarm"), "addr");
    if (addr[0] == '\0')
        addr = "MANAGER:2377";
    printf("Client certificate written to %s (" HTTP_TLS_CA_FILE ", " HTTP_TLS_CERT_FILE
           ", " HTTP_TLS_KEY_FILE ").\n\n"
           "To manage this swarm from another machine, copy %s to ~/.shoal there\n"
           "(or point --tls-dir or SHOAL_TLS_DIR at it) and run:\n\n"
           "    shoal -H tcp://%s node ls\n\n"
           "or export SHOAL_HOST=tcp://%s. Keep " HTTP_TLS_KEY_FILE
           " secret: it grants full control of the swarm.\n",
           dir, dir, addr, addr);
    json_decref(info);
}

static int swarm_admin_cert(struct cli *cli, int argc, char **argv)
{
    const char *given;
    struct serr err;
    int rc = cli_parse_admin_cert(argc, argv, &given, &err);
    if (rc == 1)
        return cli_help(admin_cert_usage);
    if (rc < 0)
        return cli_usage_error("swarm admin-cert", "%s", err.msg);
    json_t *bundle;
    if (cli_call(cli, "GET", "/v1/swarm/admin-cert", NULL, &bundle, &err) < 0)
        return cli_fail(&err);
    char *dir = http_client_tls_dir(given != NULL ? given : cli->tls_dir);
    rc = write_admin_cert(dir, bundle, &err);
    json_decref(bundle);
    if (rc == 0)
        print_remote_usage(cli, dir);
    free(dir);
    return rc < 0 ? cli_fail(&err) : CLI_EXIT_OK;
}

/* ---- inspect ---- */

static const char inspect_usage[] = "Usage:  shoal swarm inspect\n\n"
                                    "Display detailed information on the swarm (as a JSON array)\n";

static int swarm_inspect(struct cli *cli, int argc, char **argv)
{
    struct cli_flags fl;
    int rc = cli_flags("swarm inspect", inspect_usage, "", argc, argv, &fl);
    if (rc >= 0)
        return rc;
    if ((rc = cli_nargs("swarm inspect", argc - fl.first_arg, 0, 0)) >= 0)
        return rc;
    json_t *swarm;
    struct serr err;
    if (cli_call(cli, "GET", "/v1/swarm", NULL, &swarm, &err) < 0)
        return cli_fail(&err);
    json_t *out = json_pack("[o]", swarm);
    cli_print_json(out, true);
    json_decref(out);
    return CLI_EXIT_OK;
}

/* ---- update ---- */

static const char update_usage[] =
    "Usage:  shoal swarm update [OPTIONS]\n\n"
    "Update the swarm\n\n"
    "Options:\n"
    "      --task-history-limit int   Task history retention limit (default 5; -1 keeps all)\n";

int cli_build_swarm_update(int argc, char **argv, json_t **body, struct serr *err)
{
    static const struct option opts[] = {
        {"task-history-limit", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *body = NULL;
    optind = 0;
    int opt;
    json_t *out = json_object();
    while ((opt = cli_getopt(argc, argv, "h", opts, err)) != -1) {
        if (opt == 'h' || opt == '?') {
            json_decref(out);
            return opt == 'h' ? 1 : -1;
        }
        int64_t n = 0;
        bool keep_all = strcmp(optarg, "-1") == 0;
        if (!keep_all && cli_parse_uint("--task-history-limit", optarg, INT32_MAX, &n, err) < 0) {
            json_decref(out);
            return -1;
        }
        json_object_set_new(out, "task_history_limit", json_integer(keep_all ? -1 : n));
    }
    if (optind != argc || json_object_size(out) == 0) {
        json_decref(out);
        return serr_set(err, SERR_INVALID, optind != argc ? "accepts no arguments"
                                                          : "nothing to update (see --help)");
    }
    *body = out;
    return 0;
}

static int swarm_update(struct cli *cli, int argc, char **argv)
{
    json_t *body;
    struct serr err;
    int rc = cli_build_swarm_update(argc, argv, &body, &err);
    if (rc == 1)
        return cli_help(update_usage);
    if (rc < 0)
        return cli_usage_error("swarm update", "%s", err.msg);
    rc = cli_call(cli, "POST", "/v1/swarm/update", body, NULL, &err);
    json_decref(body);
    if (rc < 0)
        return cli_fail(&err);
    printf("Swarm updated.\n");
    return CLI_EXIT_OK;
}

static const struct cli_cmd swarm_cmds[] = {
    {"admin-cert", NULL, swarm_admin_cert, "Write a client certificate for remote access"},
    {"init", NULL, swarm_init, "Initialize a swarm"},
    {"join", NULL, swarm_join, "Join a swarm as a node and/or manager"},
    {"inspect", NULL, swarm_inspect, "Display detailed information on the swarm"},
    {"join-token", NULL, swarm_join_token, "Manage join tokens"},
    {"leave", NULL, swarm_leave, "Leave the swarm"},
    {"unlock", NULL, swarm_unlock, "Unlock the secrets of an autolocked manager"},
    {"unlock-key", NULL, swarm_unlock_key, "Manage the unlock key"},
    {"update", NULL, swarm_update, "Update the swarm"},
    {NULL, NULL, NULL, NULL},
};

int cli_swarm(struct cli *cli, int argc, char **argv)
{
    return cli_dispatch_group(cli, "swarm", swarm_cmds, argc, argv);
}
