/* Command lines of `service create` and `service update` turned into the spec
 * and patch JSON of docs/api.md. No I/O but reading --env-file: unit-tested
 * without a daemon. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "model/container_opts.h"

/* Large enough for anyone; small enough that the daemon never overflows. */
#define MAX_REPLICAS 100000
#define MAX_HEALTH_RETRIES 1000000

#define HEALTH_USAGE                                                                               \
    "      --health-cmd string            Command to run to check health (/bin/sh -c CMD\n"     \
    "                                     inside the container; exit 0 = healthy)\n"             \
    "      --health-interval duration     Time between running the check (ms|s|m|h)\n"          \
    "                                     (default 30s)\n"                                       \
    "      --health-retries int           Consecutive failures needed to report unhealthy\n"    \
    "                                     (default 3)\n"                                         \
    "      --health-start-period duration Start period for the container to initialize\n"     \
    "                                     before failures count (default 0s)\n"                  \
    "      --health-timeout duration      Maximum time to allow one check to run (default\n"    \
    "                                     30s)\n"                                                \
    "      --no-healthcheck               No health check (update: remove it)\n"

/* --rollback-* of create and update */
#define ROLLBACK_USAGE                                                                             \
    "      --rollback-delay duration      Delay between task rollbacks\n"                          \
    "      --rollback-failure-action string  Action on rollback failure (\"pause\",\n"             \
    "                                     \"continue\")\n"                                         \
    "      --rollback-max-failure-ratio float  Failure rate to tolerate during a rollback\n"       \
    "      --rollback-monitor duration    Duration after each task rollback to monitor for\n"      \
    "                                     failure\n"                                               \
    "      --rollback-order string        Rollback order (\"start-first\"|\"stop-first\")\n"       \
    "      --rollback-parallelism uint    Maximum number of tasks rolled back simultaneously\n"    \
    "                                     (without any --rollback-*: as the --update-* ones)\n"

const char cli_service_create_usage[] =
    "Usage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "\n"
    "Create a new service\n"
    "\n"
    "Options:\n"
    "      --cap-add list                 Add Linux capabilities (NET_ADMIN, ..., ALL)\n"
    "      --cap-drop list                Drop Linux capabilities\n"
    "      --constraint list              Placement constraints (node.role==manager)\n"
    "  -d, --detach                       Exit immediately instead of waiting for the service "
    "to converge\n"
    "      --with-registry-auth           Accepted for Docker's habits: the credentials of\n"
    "                                     'shoal login' for the image's registry are always sent\n"
    "      --dns list                     Set custom DNS servers (replace the node's)\n"
    "      --container-label list         Container labels (KEY=VALUE; OCI annotations)\n"
    "  -e, --env list                     Set environment variables\n"
    "      --env-file list                Read in a file of environment variables\n"
    "      --entrypoint command           Overwrite the default ENTRYPOINT of the image\n"
    "                                     (the image's CMD is dropped too)\n"
    HEALTH_USAGE
    "      --hostname string              Container hostname (default: the task's short\n"
    "                                     container id; {{.Task.Slot}}, {{.Service.Name}}...)\n"
    "      --init                         Use an init inside each service container\n"
    "  -l, --label list                   Service labels (KEY=VALUE)\n"
    "      --limit-cpu decimal            Limit CPUs\n"
    "      --limit-memory bytes           Limit Memory\n"
    "      --limit-pids int               Limit the number of processes (cgroup pids.max)\n"
    "      --max-concurrent uint          Number of job tasks to run concurrently (default:\n"
    "                                     all of a run's)\n"
    "      --mode string                  Service mode (replicated, global, replicated-job\n"
    "                                     or global-job)\n"
    "                                     (default \"replicated\")\n"
    "      --mount mount                  Attach a filesystem mount to the service\n"
    "                                     (type=bind|volume,src=SRC,dst=DST[,readonly])\n"
    "                                     (type=tmpfs,dst=DST[,tmpfs-size=64m][,tmpfs-mode=1777])\n"
    "      --name string                  Service name\n"
    "      --network string               Network of the tasks: bridge (own address in the\n"
    "                                     node's subnet), a user network, or host\n"
    "                                     (default \"bridge\")\n"
    "  -p, --publish port                 Publish a port: [PUBLISHED:]TARGET[/udp] or\n"
    "                                     published=P,target=T[,protocol=tcp|udp]\n"
    "                                     [,mode=ingress|host] (no PUBLISHED: one of\n"
    "                                     30000-32767 is chosen)\n"
    "      --read-only                    Mount the container's root filesystem as read only\n"
    "      --placement-pref pref          Add a placement preference (spread=node.labels.KEY)\n"
    "      --replicas uint                Number of tasks (default 1)\n"
    "      --replicas-max-per-node uint   Maximum number of tasks per node (default 0 =\n"
    "                                     unlimited)\n"
    "      --config config                Mount a config: NAME (at /NAME) or\n"
    "                                     source=NAME,target=PATH[,uid=,gid=,mode=0444]\n"
    "      --reserve-cpu decimal          Reserve CPUs (cores batch jobs and other\n"
    "                                     reservations then leave to the task)\n"
    "      --reserve-memory bytes         Reserve memory (placed only where the node's memory\n"
    "                                     less other tasks' reservations is enough)\n"
    "      --restart-condition string     Restart when condition is met (\"none\", "
    "\"on-failure\", \"any\")\n"
    "      --restart-delay duration       Delay between restart attempts (ns|us|ms|s|m|h)\n"
    "      --schedule cron                Run a replicated job on this schedule (\"0 3 * * *\",\n"
    "                                     @daily)\n"
    "      --schedule-tz zone             Time zone of --schedule: UTC, local or a tz database\n"
    "                                     name such as Europe/Paris (default UTC; or\n"
    "                                     --schedule \"CRON_TZ=ZONE EXPR\")\n"
    "      --schedule-overlap string      A fire while a run goes on: skip or queue (default\n"
    "                                     \"skip\")\n"
    "      --restart-max-attempts uint    Maximum number of restarts before giving up\n"
    "                                     (default 0: no maximum)\n"
    "      --restart-window duration      Window used to evaluate the restart policy\n"
    "                                     (default: unbounded)\n"
    ROLLBACK_USAGE
    "      --secret secret                Mount a secret: NAME (at /run/secrets/NAME) or\n"
    "                                     source=NAME,target=NAME|PATH[,uid=,gid=,mode=0444]\n"
    "      --stop-grace-period duration   Time to wait before force killing a container\n"
    "      --stop-signal string           Signal to stop the container (default SIGTERM)\n"
    "      --sysctl list                  Sysctl options (namespaced ones: net.*, kernel.shm*,\n"
    "                                     kernel.msg*, kernel.sem, fs.mqueue.*)\n"
    "      --ulimit ulimit                Ulimit options (nofile=SOFT[:HARD], nproc, ...)\n"
    "      --update-delay duration        Delay between updates\n"
    "      --update-failure-action string Action on update failure (\"pause\", \"continue\",\n"
    "                                     \"rollback\") (default \"pause\")\n"
    "      --update-max-failure-ratio float  Failure rate to tolerate during an update\n"
    "                                     (default 0)\n"
    "      --update-monitor duration      Duration after each task update to monitor for\n"
    "                                     failure (default 5s)\n"
    "      --update-order string          Update order (\"start-first\"|\"stop-first\")\n"
    "                                     (default \"stop-first\")\n"
    "      --update-parallelism uint      Maximum number of tasks updated simultaneously "
    "(0 to update all at once)\n"
    "  -u, --user string                  USER[:GROUP] (names or numbers) the command runs as\n"
    "  -w, --workdir string               Working directory inside the container\n";

const char cli_service_update_usage[] =
    "Usage:  shoal service update [OPTIONS] SERVICE\n"
    "\n"
    "Update a service\n"
    "\n"
    "Options:\n"
    "      --args command                 Service command args (replaces them)\n"
    "  -d, --detach                       Exit immediately instead of waiting for the service "
    "to converge\n"
    "      --with-registry-auth           Accepted for Docker's habits: the credentials of\n"
    "                                     'shoal login' for the image's registry are always sent\n"
    "      --env-add list                 Add or update an environment variable\n"
    "      --env-rm list                  Remove an environment variable\n"
    HEALTH_USAGE
    "      --image string                 Service image tag\n"
    "      --publish-add port             Add or update a published port (as -p of create)\n"
    "      --publish-rm port              Remove a published port (PUBLISHED[/udp])\n"
    "      --max-concurrent uint          Number of job tasks to run concurrently\n"
    "      --replicas uint                Number of tasks\n"
    "      --replicas-max-per-node uint   Maximum number of tasks per node (0 = unlimited)\n"
    "      --reserve-cpu decimal          Reserve CPUs (cores batch jobs and other\n"
    "                                     reservations then leave to the task)\n"
    "      --reserve-memory bytes         Reserve memory (placed only where the node's memory\n"
    "                                     less other tasks' reservations is enough)\n"
    "      --restart-max-attempts uint    Maximum number of restarts before giving up\n"
    "      --restart-window duration      Window used to evaluate the restart policy\n"
    "      --schedule cron                A replicated job's schedule (as create)\n"
    "      --schedule-tz zone             Time zone of --schedule: UTC, local or a tz database\n"
    "                                     name such as Europe/Paris\n"
    "      --schedule-overlap string      A fire while a run goes on: skip or queue\n"
    "      --stop-signal string           Signal to stop the container\n"
    "      --secret-add secret            Add a secret (as --secret of create)\n"
    "      --secret-rm string             Remove a secret (its name)\n"
    "      --config-add config            Add a config (as --config of create)\n"
    "      --config-rm string             Remove a config (its name)\n"
    "      --update-delay duration        Delay between updates\n"
    "      --constraint-add list          Add or update a placement constraint\n"
    "      --constraint-rm list           Remove a constraint\n"
    "      --force                        Force update even if no changes require it\n"
    "      --limit-cpu decimal            Limit CPUs\n"
    "      --limit-memory bytes           Limit Memory\n"
    "      --limit-pids int               Limit the number of processes\n"
    "      --rollback                     Rollback to previous specification\n"
    ROLLBACK_USAGE
    "      --update-failure-action string Action on update failure (pause, continue, rollback)\n"
    "      --update-max-failure-ratio float  Failure rate to tolerate during an update\n"
    "      --update-monitor duration      Duration after each task update to monitor for\n"
    "                                     failure\n"
    "      --update-order string          Update order (start-first|stop-first)\n"
    "      --update-parallelism uint      Maximum number of tasks updated simultaneously\n"
    "      --hostname, -u/--user, -w/--workdir, --entrypoint  As create (replace)\n"
    "      --label-add list               Add or update a service label (KEY=VALUE)\n"
    "      --label-rm list                Remove a service label (KEY)\n"
    "      --container-label-add list     Add or update a container label\n"
    "      --container-label-rm list      Remove a container label (KEY)\n"
    "      --mount-add mount              Add or update a mount (as --mount; same target\n"
    "                                     replaced)\n"
    "      --mount-rm string              Remove a mount (its target path)\n"
    "      --read-only[=false]            Root filesystem read only (or not)\n"
    "      --sysctl-add list              Add or update a sysctl option (KEY=VALUE)\n"
    "      --sysctl-rm list               Remove a sysctl option (KEY)\n"
    "      --ulimit-add ulimit            Add or update a ulimit (NAME=SOFT[:HARD])\n"
    "      --ulimit-rm list               Remove a ulimit (NAME)\n"
    "      --dns-add list                 Add a custom DNS server\n"
    "      --dns-rm list                  Remove a custom DNS server\n"
    "      --placement-pref-add pref      Add a placement preference\n"
    "      --placement-pref-rm pref       Remove a placement preference\n"
    "      --network-add network          Put the service on this network (a service is on\n"
    "                                     one: --network-rm its own with it)\n"
    "      --network-rm network           Take it off this network (back to bridge)\n"
    "      --cap-add list                 Add Linux capabilities (no longer dropped)\n"
    "      --cap-drop list                Drop Linux capabilities (no longer added)\n"
    "      --restart-condition, --restart-delay, --stop-grace-period, --init  As create\n";

/* ---- mounts ---- */

static const char *mount_key(const char *key)
{
    if (strcmp(key, "type") == 0)
        return "type";
    if (strcmp(key, "source") == 0 || strcmp(key, "src") == 0)
        return "source";
    if (strcmp(key, "target") == 0 || strcmp(key, "dst") == 0 ||
        strcmp(key, "destination") == 0)
        return "target";
    if (strcmp(key, "readonly") == 0 || strcmp(key, "ro") == 0)
        return "readonly";
    if (strcmp(key, "tmpfs-size") == 0)
        return "tmpfs_size";
    if (strcmp(key, "tmpfs-mode") == 0)
        return "tmpfs_mode";
    return NULL;
}

static int parse_bool_word(const char *what, const char *v, bool *out, struct serr *err)
{
    if (v == NULL || strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
        *out = false;
        return 0;
    }
    return serr_set(err, SERR_INVALID, "invalid value for %s: \"%s\" (use true or false)", what,
                    v);
}

static int tmpfs_size_field(json_t *mount, const char *value, struct serr *err)
{
    int64_t bytes;
    if (parse_size(value, &bytes, err) < 0)
        return serr_wrap(err, "invalid mount: tmpfs-size");
    if (bytes <= 0)
        return serr_set(err, SERR_INVALID, "invalid mount: tmpfs-size \"%s\" must be positive",
                        value);
    json_object_set_new(mount, "tmpfs_size", json_integer(bytes));
    return 0;
}

/* Octal permission bits, as Docker's tmpfs-mode=1770. */
static int tmpfs_mode_field(json_t *mount, const char *value, struct serr *err)
{
    char *end;
    long mode = strtol(value, &end, 8);
    if (*end != '\0' || mode < 0 || mode > 07777)
        return serr_set(err, SERR_INVALID,
                        "invalid mount: tmpfs-mode \"%s\" (octal permissions, e.g. 1777)", value);
    json_object_set_new(mount, "tmpfs_mode", json_integer(mode));
    return 0;
}

/* One "key[=value]" field of --mount into `mount`. */
static int mount_field(json_t *mount, char *field, struct serr *err)
{
    char *eq = strchr(field, '=');
    if (eq != NULL)
        *eq = '\0';
    const char *value = eq ? eq + 1 : NULL;
    const char *key = mount_key(field);
    if (key == NULL)
        return serr_set(err, SERR_INVALID, "invalid mount: unknown key \"%s\"", field);
    if (strcmp(key, "readonly") == 0) {
        bool ro;
        if (parse_bool_word("readonly", value, &ro, err) < 0)
            return -1;
        json_object_set_new(mount, key, json_boolean(ro));
        return 0;
    }
    if (value == NULL || value[0] == '\0')
        return serr_set(err, SERR_INVALID, "invalid mount: %s needs a value", field);
    if (strcmp(key, "tmpfs_size") == 0)
        return tmpfs_size_field(mount, value, err);
    if (strcmp(key, "tmpfs_mode") == 0)
        return tmpfs_mode_field(mount, value, err);
    json_object_set_new(mount, key, json_string(value));
    return 0;
}

static int check_tmpfs_mount(json_t *mount, struct serr *err)
{
    if (json_object_get(mount, "source") != NULL)
        return serr_set(err, SERR_INVALID, "invalid mount: a tmpfs mount takes no source");
    return 0;
}

static int check_mount(json_t *mount, struct serr *err)
{
    if (json_object_get(mount, "type") == NULL)
        json_object_set_new(mount, "type", json_string("volume")); /* docker's default */
    const char *type = json_string_value(json_object_get(mount, "type"));
    bool tmpfs = strcmp(type, "tmpfs") == 0;
    if (strcmp(type, "bind") != 0 && strcmp(type, "volume") != 0 && !tmpfs)
        return serr_set(err, SERR_INVALID,
                        "invalid mount: type must be bind, volume or tmpfs, not \"%s\"", type);
    if (!tmpfs && (json_object_get(mount, "tmpfs_size") || json_object_get(mount, "tmpfs_mode")))
        return serr_set(err, SERR_INVALID, "invalid mount: tmpfs-* options need type=tmpfs");
    const char *target = json_string_value(json_object_get(mount, "target"));
    if (target == NULL)
        return serr_set(err, SERR_INVALID, "invalid mount: target (dst) is required");
    if (target[0] != '/')
        return serr_set(err, SERR_INVALID, "invalid mount: target \"%s\" must be an absolute path",
                        target);
    if (tmpfs)
        return check_tmpfs_mount(mount, err);
    const char *source = json_string_value(json_object_get(mount, "source"));
    if (source == NULL)
        return serr_set(err, SERR_INVALID, "invalid mount: source (src) is required");
    if (strcmp(type, "bind") == 0 && source[0] != '/')
        return serr_set(err, SERR_INVALID,
                        "invalid mount: bind source \"%s\" must be an absolute path", source);
    if (strcmp(type, "volume") == 0 && strchr(source, '/') != NULL)
        return serr_set(err, SERR_INVALID, "invalid mount: volume name \"%s\" contains '/'",
                        source);
    return 0;
}

int cli_parse_mount(const char *text, json_t **mount, struct serr *err)
{
    json_t *m = json_object();
    char *copy = xstrdup(text);
    int rc = 0;
    char *save = NULL;
    for (char *field = strtok_r(copy, ",", &save); field && rc == 0;
         field = strtok_r(NULL, ",", &save))
        rc = mount_field(m, field, err);
    free(copy);
    if (rc == 0)
        rc = check_mount(m, err);
    if (rc < 0) {
        json_decref(m);
        return -1;
    }
    *mount = m;
    return 0;
}

int cli_set_network(json_t *obj, const char *arg, struct serr *err)
{
    if (arg[0] == '\0' || strpbrk(arg, "/ \t\n") != NULL)
        return serr_set(err, SERR_INVALID,
                        "invalid --network \"%s\": give bridge, host or a network's name", arg);
    json_object_set_new(obj, "network", json_string(arg));
    return 0;
}

/* ---- published ports ---- */

static int parse_port_number(const char *what, const char *s, json_t *port, const char *key,
                             struct serr *err)
{
    int64_t v;
    if (cli_parse_uint(what, s, 65535, &v, err) < 0)
        return -1;
    if (v == 0)
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": ports are 1 to 65535", what, s);
    json_object_set_new(port, key, json_integer(v));
    return 0;
}

/* "8080:80", "8080:80/udp" */
static int publish_short(const char *text, json_t *port, struct serr *err)
{
    char *copy = xstrdup(text);
    char *slash = strchr(copy, '/'), *colon = strchr(copy, ':');
    int rc = 0;
    if (slash) {
        *slash = '\0';
        if (strcmp(slash + 1, "tcp") != 0 && strcmp(slash + 1, "udp") != 0)
            rc = serr_set(err, SERR_INVALID, "invalid port \"%s\": protocol must be tcp or udp",
                          text);
        else
            json_object_set_new(port, "protocol", json_string(slash + 1));
    }
    if (rc == 0 && colon == NULL) /* "3000": the target; the manager chooses the port */
        rc = parse_port_number("target port", copy, port, "target", err);
    else if (rc == 0) {
        *colon = '\0';
        rc = parse_port_number("published port", copy, port, "published", err);
    }
    if (rc == 0 && colon != NULL)
        rc = parse_port_number("target port", colon + 1, port, "target", err);
    free(copy);
    return rc;
}

/* One "key=value" of the long form. */
static int publish_field(json_t *port, char *field, struct serr *err)
{
    char *eq = strchr(field, '=');
    if (eq == NULL)
        return serr_set(err, SERR_INVALID, "invalid port field \"%s\": use key=value", field);
    *eq = '\0';
    const char *v = eq + 1;
    if (strcmp(field, "published") == 0 || strcmp(field, "target") == 0)
        return parse_port_number(field, v, port, field, err);
    if (strcmp(field, "protocol") == 0 && (strcmp(v, "tcp") == 0 || strcmp(v, "udp") == 0))
        json_object_set_new(port, "protocol", json_string(v));
    else if (strcmp(field, "mode") == 0 && (strcmp(v, "ingress") == 0 || strcmp(v, "host") == 0))
        json_object_set_new(port, "mode", json_string(v));
    else
        return serr_set(err, SERR_INVALID,
                        "invalid port field %s=%s (published, target, protocol=tcp|udp, "
                        "mode=ingress|host)", field, v);
    return 0;
}

static int publish_long(const char *text, json_t *port, struct serr *err)
{
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;
    for (char *f = strtok_r(copy, ",", &save); f && rc == 0; f = strtok_r(NULL, ",", &save))
        rc = publish_field(port, f, err);
    free(copy);
    if (rc == 0 && !json_object_get(port, "target"))
        rc = serr_set(err, SERR_INVALID, "invalid port \"%s\": target is required", text);
    return rc;
}

int cli_parse_publish(const char *text, json_t **port, struct serr *err)
{
    json_t *p = json_object();
    int rc = strchr(text, '=') ? publish_long(text, p, err) : publish_short(text, p, err);
    if (rc < 0) {
        json_decref(p);
        return -1;
    }
    *port = p;
    return 0;
}

/* "8080" or "8080/udp" */
static int check_publish_rm(const char *text, struct serr *err)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || v < 1 || v > 65535 ||
        (*end != '\0' && strcmp(end, "/tcp") != 0 && strcmp(end, "/udp") != 0))
        return serr_set(err, SERR_INVALID, "invalid --publish-rm \"%s\": use PUBLISHED[/udp]",
                        text);
    return 0;
}

static int add_publish(json_t *list, const char *text, struct serr *err)
{
    json_t *port;
    if (cli_parse_publish(text, &port, err) < 0)
        return -1;
    json_array_append_new(list, port);
    return 0;
}

int cli_parse_env(const char *text, char **out, struct serr *err)
{
    *out = NULL;
    const char *eq = strchr(text, '=');
    if (text[0] == '\0' || eq == text)
        return serr_set(err, SERR_INVALID, "invalid environment variable \"%s\"", text);
    if (eq != NULL) {
        *out = xstrdup(text);
        return 0;
    }
    const char *value = getenv(text);
    if (value != NULL)
        *out = xasprintf("%s=%s", text, value);
    return 0;
}

static int add_env(json_t *list, const char *text, struct serr *err)
{
    char *env = NULL;
    if (cli_parse_env(text, &env, err) < 0)
        return -1;
    if (env != NULL)
        json_array_append_new(list, json_string(env));
    free(env);
    return 0;
}

/* --env-file PATH: read here, in the CLI, as Docker does (the daemon may
 * be on another host). */
static int add_env_file(json_t *list, const char *path, struct serr *err)
{
    size_t len;
    char *text = NULL;
    if (read_file(path, &text, &len, err) < 0)
        return serr_wrap(err, "--env-file");
    int rc = cli_parse_env_lines(text, list, err);
    free(text);
    if (rc < 0)
        return serr_wrap(err, "--env-file %s", path);
    return 0;
}

/* ---- shared option values ---- */

static int set_duration(json_t *obj, const char *key, const char *flag, const char *s,
                        struct serr *err)
{
    int64_t ms;
    if (parse_duration(s, &ms, err) < 0)
        return serr_wrap(err, "invalid argument for %s", flag);
    json_object_set_new(obj, key, json_integer(ms));
    return 0;
}

static int set_uint(json_t *obj, const char *key, const char *flag, const char *s, int64_t max,
                    struct serr *err)
{
    int64_t v;
    if (cli_parse_uint(flag, s, max, &v, err) < 0)
        return -1;
    json_object_set_new(obj, key, json_integer(v));
    return 0;
}

/* --max-concurrent N: at least 1 (absent: no bound, every slot of a run at once) */
static int set_max_concurrent(json_t *obj, const char *arg, struct serr *err)
{
    int64_t n;
    if (cli_parse_uint("--max-concurrent", arg, MAX_REPLICAS, &n, err) < 0)
        return -1;
    if (n < 1)
        return serr_set(err, SERR_INVALID, "invalid --max-concurrent \"%s\": at least 1", arg);
    json_object_set_new(obj, "max_concurrent", json_integer(n));
    return 0;
}

static int check_constraint(const char *expr, struct serr *err)
{
    const char *op = strstr(expr, "==");
    if (op == NULL)
        op = strstr(expr, "!=");
    bool known_prefix = strncmp(expr, "node.", 5) == 0 || strncmp(expr, "engine.labels.", 14) == 0;
    if (op == NULL || op == expr || op[2] == '\0' || !known_prefix)
        return serr_set(err, SERR_INVALID,
                        "invalid constraint \"%s\" (use e.g. node.role==manager, "
                        "node.labels.KEY!=VALUE, engine.labels.KEY==VALUE)",
                        expr);
    return 0;
}

/* ---- service create ---- */

enum {
    OPT_NAME = 1000,
    OPT_REPLICAS,
    OPT_MODE,
    OPT_MOUNT,
    OPT_RESTART_CONDITION,
    OPT_RESTART_DELAY,
    OPT_LIMIT_CPU,
    OPT_RESERVE_CPU,
    OPT_RESERVE_MEMORY,
    OPT_LIMIT_MEMORY,
    OPT_INIT,
    OPT_REGISTRY_AUTH,
    OPT_CONSTRAINT,
    OPT_STOP_GRACE,
    OPT_MAX_CONCURRENT,
    OPT_CONSTRAINT_ADD,
    OPT_CONSTRAINT_RM,
    OPT_FORCE,
    OPT_IMAGE,
    OPT_ENV_ADD,
    OPT_ENV_RM,
    OPT_ARGS,
    OPT_NETWORK,
    OPT_HEALTH_CMD,
    OPT_HEALTH_INTERVAL,
    OPT_HEALTH_RETRIES,
    OPT_HEALTH_START_PERIOD,
    OPT_HEALTH_TIMEOUT,
    OPT_NO_HEALTHCHECK,
    OPT_PUBLISH_ADD,
    OPT_PUBLISH_RM,
    OPT_HOSTNAME,
    OPT_USER,
    OPT_WORKDIR,
    OPT_ENTRYPOINT,
    OPT_LABEL,
    OPT_CONTAINER_LABEL,
    OPT_LABEL_ADD,
    OPT_LABEL_RM,
    OPT_MOUNT_ADD,
    OPT_MOUNT_RM,
    OPT_CONTAINER_LABEL_ADD,
    OPT_CONTAINER_LABEL_RM,
    OPT_RESTART_MAX_ATTEMPTS,
    OPT_RESTART_WINDOW,
    OPT_ENV_FILE,
    OPT_READ_ONLY,
    OPT_CAP_ADD,
    OPT_CAP_DROP,
    OPT_SYSCTL,
    OPT_ULIMIT,
    OPT_DNS,
    OPT_LIMIT_PIDS,
    OPT_STOP_SIGNAL,
    OPT_MAX_PER_NODE,
    OPT_PLACEMENT_PREF,
    OPT_UPDATE_READ_ONLY,
    OPT_SYSCTL_ADD,
    OPT_SYSCTL_RM,
    OPT_ULIMIT_ADD,
    OPT_ULIMIT_RM,
    OPT_DNS_ADD,
    OPT_DNS_RM,
    OPT_PLACEMENT_PREF_ADD,
    OPT_PLACEMENT_PREF_RM,
    OPT_SCHEDULE,
    OPT_SCHEDULE_TZ,
    OPT_SCHEDULE_OVERLAP,
    OPT_NETWORK_ADD,
    OPT_NETWORK_RM,
};

/* --secret and --config (cli_add_secret_ref): flag, key, in create and update
 * (the option tables use OPT_SECRET_REFS + the index here). */
enum { OPT_SECRET_REFS = 1900 };
static const struct secret_flag {
    const char *flag, *key;
} secret_flags[] = {
    {"secret", "secrets"},         {"config", "configs"},           {"secret-add", "secrets_add"},
    {"secret-rm", "secrets_rm"},   {"config-add", "configs_add"},   {"config-rm", "configs_rm"},
};

static bool is_secret_option(int opt)
{
    return opt >= OPT_SECRET_REFS &&
           opt < OPT_SECRET_REFS + (int)(sizeof(secret_flags) / sizeof(secret_flags[0]));
}

static int secret_option(json_t *obj, int opt, const char *arg, struct serr *err)
{
    const struct secret_flag *f = &secret_flags[opt - OPT_SECRET_REFS];
    char flag[24];
    snprintf(flag, sizeof(flag), "--%s", f->flag);
    return cli_add_secret_ref(obj, f->key, flag, arg, err);
}

/* The same flags for create and update. */
#define HEALTH_OPTIONS                                                                             \
    {"health-cmd", required_argument, NULL, OPT_HEALTH_CMD},                                       \
    {"health-interval", required_argument, NULL, OPT_HEALTH_INTERVAL},                             \
    {"health-retries", required_argument, NULL, OPT_HEALTH_RETRIES},                               \
    {"health-start-period", required_argument, NULL, OPT_HEALTH_START_PERIOD},                     \
    {"health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT},                               \
    {"no-healthcheck", no_argument, NULL, OPT_NO_HEALTHCHECK}

/* ---- health checks: --health-* and --no-healthcheck into "healthcheck" ---- */

static bool is_health_option(int opt)
{
    return opt >= OPT_HEALTH_CMD && opt <= OPT_NO_HEALTHCHECK;
}

/* A duration of at least 1ms (0 would mean "the image's", which shoal has not). */
static int set_health_duration(json_t *hc, const char *key, const char *flag, const char *arg,
                               bool zero_ok, struct serr *err)
{
    int64_t ms;
    if (parse_duration(arg, &ms, err) < 0)
        return serr_wrap(err, "invalid argument for %s", flag);
    if (ms == 0 && !zero_ok)
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": must be at least 1ms", flag, arg);
    json_object_set_new(hc, key, json_integer(ms));
    return 0;
}

/* `obj` is the spec or the patch: "healthcheck" becomes an object of the
 * fields given, or null for --no-healthcheck; mixing both is an error. */
static int health_option(json_t *obj, int opt, const char *arg, struct serr *err)
{
    json_t *hc = json_object_get(obj, "healthcheck");
    if (opt == OPT_NO_HEALTHCHECK) {
        if (json_is_object(hc))
            goto conflict;
        json_object_set_new(obj, "healthcheck", json_null());
        return 0;
    }
    if (json_is_null(hc))
        goto conflict;
    if (hc == NULL) {
        hc = json_object();
        json_object_set_new(obj, "healthcheck", hc);
    }
    switch (opt) {
    case OPT_HEALTH_CMD:
        if (arg[strspn(arg, " \t\n")] == '\0')
            return serr_set(err, SERR_INVALID, "invalid --health-cmd: empty");
        json_object_set_new(hc, "cmd", json_string(arg));
        return 0;
    case OPT_HEALTH_INTERVAL:
        return set_health_duration(hc, "interval_ms", "--health-interval", arg, false, err);
    case OPT_HEALTH_TIMEOUT:
        return set_health_duration(hc, "timeout_ms", "--health-timeout", arg, false, err);
    case OPT_HEALTH_START_PERIOD:
        return set_health_duration(hc, "start_period_ms", "--health-start-period", arg, true,
                                   err);
    case OPT_HEALTH_RETRIES: {
        int64_t n;
        if (cli_parse_uint("--health-retries", arg, MAX_HEALTH_RETRIES, &n, err) < 0)
            return -1;
        if (n < 1)
            return serr_set(err, SERR_INVALID, "invalid --health-retries \"%s\": must be at least 1",
                            arg);
        json_object_set_new(hc, "retries", json_integer(n));
        return 0;
    }
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
conflict:
    return serr_set(err, SERR_INVALID, "--no-healthcheck conflicts with --health-* options");
}

/* service create: --no-healthcheck alone leaves no check (images bring
 * none); the other --health-* options need a command. */
static int health_finish_create(json_t *spec, struct serr *err)
{
    json_t *hc = json_object_get(spec, "healthcheck");
    if (json_is_null(hc))
        json_object_del(spec, "healthcheck");
    else if (hc != NULL && json_object_get(hc, "cmd") == NULL)
        return serr_set(err, SERR_INVALID, "--health-* options need --health-cmd");
    return 0;
}

/* --args "httpd -f -p 80": split on blanks (docker splits shell words). */
static json_t *split_args(const char *text)
{
    json_t *arr = json_array();
    char *copy = xstrdup(text), *save = NULL;
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
        json_array_append_new(arr, json_string(w));
    free(copy);
    return arr;
}

/* ---- the container: --hostname, --user, --workdir, --entrypoint, labels ---- */

static bool is_container_option(int opt)
{
    return opt == OPT_HOSTNAME || opt == 'u' || opt == 'w' || opt == OPT_ENTRYPOINT ||
           opt == 'l' || opt == OPT_CONTAINER_LABEL;
}

static int container_option(json_t *spec, int opt, const char *arg, struct serr *err)
{
    switch (opt) {
    case OPT_HOSTNAME:
        if (arg[0] == '\0' || strpbrk(arg, " \t\n/") != NULL)
            return serr_set(err, SERR_INVALID, "invalid --hostname \"%s\"", arg);
        json_object_set_new(spec, "hostname", json_string(arg));
        return 0;
    case 'u':
        if (cli_check_user(arg, err) < 0)
            return -1;
        json_object_set_new(spec, "user", json_string(arg));
        return 0;
    case 'w':
        if (arg[0] != '/')
            return serr_set(err, SERR_INVALID,
                            "invalid --workdir \"%s\": must be an absolute path", arg);
        json_object_set_new(spec, "workdir", json_string(arg));
        return 0;
    case OPT_ENTRYPOINT:
        json_object_set_new(spec, "entrypoint", split_args(arg));
        return 0;
    case 'l':
        return cli_add_label(spec, "labels", "--label", arg, err);
    case OPT_CONTAINER_LABEL:
        return cli_add_label(spec, "container_labels", "--container-label", arg, err);
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
}

int cli_container_flag(json_t *spec, const char *flag, const char *arg, struct serr *err)
{
    static const struct {
        const char *flag;
        int opt;
    } flags[] = {{"hostname", OPT_HOSTNAME}, {"user", 'u'}, {"workdir", 'w'},
                 {"entrypoint", OPT_ENTRYPOINT}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(flags[i].flag, flag) == 0)
            return container_option(spec, flags[i].opt, arg, err);
    return serr_set(err, SERR_INVALID, "unexpected option --%s", flag);
}

/* ---- --read-only, --cap-add/-drop, --sysctl, --ulimit, --dns, --limit-pids,
 * --stop-signal ---- */

/* "spread=node.labels.KEY" appended to obj[key] as {"spread": "node.labels.KEY"}. */
static int add_placement_pref(json_t *obj, const char *key, const char *flag, const char *arg,
                              struct serr *err)
{
    if (strncmp(arg, "spread=node.labels.", 19) != 0 || arg[19] == '\0')
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": use spread=node.labels.KEY", flag,
                        arg);
    json_array_append_new(cli_json_array(obj, key), json_pack("{s:s}", "spread", arg + 7));
    return 0;
}

static int runtime_option(json_t *spec, int opt, const char *arg, struct serr *err)
{
    switch (opt) {
    case OPT_READ_ONLY:
        json_object_set_new(spec, "read_only", json_true());
        return 0;
    case OPT_CAP_ADD:
        return cli_add_caps(spec, "cap_add", "--cap-add", arg, err);
    case OPT_CAP_DROP:
        return cli_add_caps(spec, "cap_drop", "--cap-drop", arg, err);
    case OPT_SYSCTL:
        return cli_add_sysctl(spec, "sysctls", "--sysctl", arg, err);
    case OPT_ULIMIT:
        return cli_parse_ulimit(arg, cli_json_member(spec, "ulimits"), err);
    case OPT_DNS:
        return cli_add_dns(spec, "dns", "--dns", arg, err);
    case OPT_LIMIT_PIDS: {
        int64_t n;
        if (cli_parse_uint("--limit-pids", arg, INT32_MAX, &n, err) < 0)
            return -1;
        if (n < 1)
            return serr_set(err, SERR_INVALID, "invalid --limit-pids \"%s\": at least 1", arg);
        json_object_set_new(cli_json_member(spec, "limits"), "pids", json_integer(n));
        return 0;
    }
    case OPT_MAX_PER_NODE:
        return set_uint(spec, "max_replicas_per_node", "--replicas-max-per-node", arg,
                        MAX_REPLICAS, err);
    case OPT_PLACEMENT_PREF:
        return add_placement_pref(spec, "placement_preferences", "--placement-pref", arg, err);
    case OPT_STOP_SIGNAL:
        if (container_signal_number(arg) < 0)
            return serr_set(err, SERR_INVALID,
                            "invalid --stop-signal \"%s\": a signal name or number (SIGINT, "
                            "TERM, 15)",
                            arg);
        json_object_set_new(spec, "stop_signal", json_string(arg));
        return 0;
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
}

/* ---- --update-* and --rollback-* (update_config and rollback_config) ---- */

enum rollout_field {
    ROLLOUT_PARALLELISM,
    ROLLOUT_DELAY,
    ROLLOUT_FAILURE_ACTION,
    ROLLOUT_MONITOR,
    ROLLOUT_MAX_FAILURE_RATIO,
    ROLLOUT_ORDER,
    ROLLOUT_FIELDS
};

/* An option of a rollout: OPT_ROLLOUT + section * ROLLOUT_FIELDS + field,
 * section 0 for --update-*, 1 for --rollback-*. */
#define OPT_ROLLOUT 1500
#define OPT_UPDATE(field) (OPT_ROLLOUT + (field))
#define OPT_ROLLBACK(field) (OPT_ROLLOUT + ROLLOUT_FIELDS + (field))

static bool is_rollout_option(int opt)
{
    return opt >= OPT_ROLLOUT && opt < OPT_ROLLOUT + 2 * ROLLOUT_FIELDS;
}

#define UPDATE_OPTIONS                                                                             \
    {"update-parallelism", required_argument, NULL, OPT_UPDATE(ROLLOUT_PARALLELISM)},             \
        {"update-delay", required_argument, NULL, OPT_UPDATE(ROLLOUT_DELAY)},                     \
        {"update-failure-action", required_argument, NULL, OPT_UPDATE(ROLLOUT_FAILURE_ACTION)},   \
        {"update-monitor", required_argument, NULL, OPT_UPDATE(ROLLOUT_MONITOR)},                 \
        {"update-max-failure-ratio", required_argument, NULL,                                     \
         OPT_UPDATE(ROLLOUT_MAX_FAILURE_RATIO)},                                                  \
        {"update-order", required_argument, NULL, OPT_UPDATE(ROLLOUT_ORDER)}

#define ROLLBACK_OPTIONS                                                                           \
    {"rollback-parallelism", required_argument, NULL, OPT_ROLLBACK(ROLLOUT_PARALLELISM)},         \
        {"rollback-delay", required_argument, NULL, OPT_ROLLBACK(ROLLOUT_DELAY)},                 \
        {"rollback-failure-action", required_argument, NULL,                                      \
         OPT_ROLLBACK(ROLLOUT_FAILURE_ACTION)},                                                   \
        {"rollback-monitor", required_argument, NULL, OPT_ROLLBACK(ROLLOUT_MONITOR)},             \
        {"rollback-max-failure-ratio", required_argument, NULL,                                   \
         OPT_ROLLBACK(ROLLOUT_MAX_FAILURE_RATIO)},                                                \
        {"rollback-order", required_argument, NULL, OPT_ROLLBACK(ROLLOUT_ORDER)}

static int set_failure_ratio(json_t *config, const char *flag, const char *arg, struct serr *err)
{
    double ratio;
    if (cli_parse_ratio(flag, arg, &ratio, err) < 0)
        return -1;
    json_object_set_new(config, "max_failure_ratio", json_real(ratio));
    return 0;
}

/* One --update-X or --rollback-X flag into spec.update_config or
 * spec.rollback_config (a service update's patch has the same members). */
static int rollout_option(json_t *spec, int opt, const char *arg, struct serr *err)
{
    bool rollback = opt >= OPT_ROLLBACK(0);
    int field = (opt - OPT_ROLLOUT) % ROLLOUT_FIELDS;
    static const char *const names[] = {"parallelism", "delay", "failure-action", "monitor",
                                        "max-failure-ratio", "order"};
    char flag[64];
    snprintf(flag, sizeof(flag), "--%s-%s", rollback ? "rollback" : "update", names[field]);
    json_t *config = cli_json_member(spec, rollback ? "rollback_config" : "update_config");
    const char *value = NULL;
    switch (field) {
    case ROLLOUT_PARALLELISM:
        return set_uint(config, "parallelism", flag, arg, MAX_REPLICAS, err);
    case ROLLOUT_DELAY:
        return set_duration(config, "delay_ms", flag, arg, err);
    case ROLLOUT_MONITOR:
        return set_duration(config, "monitor_ms", flag, arg, err);
    case ROLLOUT_MAX_FAILURE_RATIO:
        return set_failure_ratio(config, flag, arg, err);
    case ROLLOUT_FAILURE_ACTION:
        if (strcmp(arg, "pause") == 0 || strcmp(arg, "continue") == 0 ||
            (!rollback && strcmp(arg, "rollback") == 0))
            value = "failure_action";
        else
            return serr_set(err, SERR_INVALID, "invalid %s \"%s\": pause, continue%s", flag, arg,
                            rollback ? "" : " or rollback");
        break;
    case ROLLOUT_ORDER:
        if (strcmp(arg, "start-first") != 0 && strcmp(arg, "stop-first") != 0)
            return serr_set(err, SERR_INVALID, "invalid %s \"%s\": start-first or stop-first",
                            flag, arg);
        value = "order";
        break;
    }
    json_object_set_new(config, value, json_string(arg));
    return 0;
}

static const struct option create_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"replicas", required_argument, NULL, OPT_REPLICAS},
    {"max-concurrent", required_argument, NULL, OPT_MAX_CONCURRENT},
    {"mode", required_argument, NULL, OPT_MODE},
    {"env", required_argument, NULL, 'e'},
    {"mount", required_argument, NULL, OPT_MOUNT},
    {"restart-condition", required_argument, NULL, OPT_RESTART_CONDITION},
    {"restart-delay", required_argument, NULL, OPT_RESTART_DELAY},
    {"restart-max-attempts", required_argument, NULL, OPT_RESTART_MAX_ATTEMPTS},
    {"restart-window", required_argument, NULL, OPT_RESTART_WINDOW},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"schedule-tz", required_argument, NULL, OPT_SCHEDULE_TZ},
    {"schedule-overlap", required_argument, NULL, OPT_SCHEDULE_OVERLAP},
    {"env-file", required_argument, NULL, OPT_ENV_FILE},
    {"limit-cpu", required_argument, NULL, OPT_LIMIT_CPU},
    {"reserve-cpu", required_argument, NULL, OPT_RESERVE_CPU},
    {"reserve-memory", required_argument, NULL, OPT_RESERVE_MEMORY},
    {"limit-memory", required_argument, NULL, OPT_LIMIT_MEMORY},
    {"init", no_argument, NULL, OPT_INIT},
    {"constraint", required_argument, NULL, OPT_CONSTRAINT},
    {"stop-grace-period", required_argument, NULL, OPT_STOP_GRACE},
    UPDATE_OPTIONS,
    ROLLBACK_OPTIONS,
    {"network", required_argument, NULL, OPT_NETWORK},
    HEALTH_OPTIONS,
    {"publish", required_argument, NULL, 'p'},
    {"secret", required_argument, NULL, OPT_SECRET_REFS + 0},
    {"config", required_argument, NULL, OPT_SECRET_REFS + 1},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"user", required_argument, NULL, 'u'},
    {"workdir", required_argument, NULL, 'w'},
    {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
    {"label", required_argument, NULL, 'l'},
    {"container-label", required_argument, NULL, OPT_CONTAINER_LABEL},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"cap-add", required_argument, NULL, OPT_CAP_ADD},
    {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
    {"sysctl", required_argument, NULL, OPT_SYSCTL},
    {"ulimit", required_argument, NULL, OPT_ULIMIT},
    {"dns", required_argument, NULL, OPT_DNS},
    {"limit-pids", required_argument, NULL, OPT_LIMIT_PIDS},
    {"stop-signal", required_argument, NULL, OPT_STOP_SIGNAL},
    {"replicas-max-per-node", required_argument, NULL, OPT_MAX_PER_NODE},
    {"placement-pref", required_argument, NULL, OPT_PLACEMENT_PREF},
    {"detach", no_argument, NULL, 'd'},
    {"with-registry-auth", no_argument, NULL, OPT_REGISTRY_AUTH},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* --schedule, --schedule-tz, --schedule-overlap of create and update; the
 * managers check the expression and the zone (model/cron.h). */
static int schedule_option(json_t *spec, int opt, const char *arg, struct serr *err)
{
    if (opt == OPT_SCHEDULE_OVERLAP && strcmp(arg, "skip") != 0 && strcmp(arg, "queue") != 0)
        return serr_set(err, SERR_INVALID,
                        "invalid --schedule-overlap \"%s\": must be skip or queue", arg);
    const char *field = opt == OPT_SCHEDULE      ? "schedule"
                        : opt == OPT_SCHEDULE_TZ ? "schedule_tz"
                                                 : "schedule_overlap";
    json_object_set_new(spec, field, json_string(arg));
    return 0;
}

/* obj.memory = the positive size `arg` (--limit-memory, --reserve-memory). */
static int set_memory(json_t *obj, const char *flag, const char *arg, struct serr *err)
{
    int64_t bytes;
    if (parse_size(arg, &bytes, err) < 0)
        return serr_wrap(err, "invalid argument for %s", flag);
    if (bytes <= 0)
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": must be positive", flag, arg);
    json_object_set_new(obj, "memory", json_integer(bytes));
    return 0;
}

static int create_option(json_t *spec, int opt, const char *arg, bool *detach, struct serr *err)
{
    if (is_health_option(opt))
        return health_option(spec, opt, arg, err);
    if (is_secret_option(opt))
        return secret_option(spec, opt, arg, err);
    if (is_container_option(opt))
        return container_option(spec, opt, arg, err);
    if (is_rollout_option(opt))
        return rollout_option(spec, opt, arg, err);
    if (opt >= OPT_READ_ONLY && opt <= OPT_PLACEMENT_PREF)
        return runtime_option(spec, opt, arg, err);
    switch (opt) {
    case OPT_NAME:
        if (arg[0] == '\0')
            return serr_set(err, SERR_INVALID, "invalid --name: empty");
        json_object_set_new(spec, "name", json_string(arg));
        return 0;
    case OPT_REPLICAS:
        return set_uint(spec, "replicas", "--replicas", arg, MAX_REPLICAS, err);
    case OPT_MAX_CONCURRENT:
        return set_max_concurrent(spec, arg, err);
    case OPT_MODE:
        if (strcmp(arg, "replicated") != 0 && strcmp(arg, "global") != 0 &&
            strcmp(arg, "replicated-job") != 0 && strcmp(arg, "global-job") != 0)
            return serr_set(err, SERR_INVALID,
                            "invalid --mode \"%s\": must be replicated, global, replicated-job "
                            "or global-job",
                            arg);
        json_object_set_new(spec, "mode", json_string(arg));
        return 0;
    case 'e':
        return add_env(json_object_get(spec, "env"), arg, err);
    case OPT_MOUNT: {
        json_t *mount;
        if (cli_parse_mount(arg, &mount, err) < 0)
            return serr_wrap(err, "--mount");
        json_array_append_new(json_object_get(spec, "mounts"), mount);
        return 0;
    }
    case OPT_RESTART_CONDITION:
        if (strcmp(arg, "any") != 0 && strcmp(arg, "on-failure") != 0 && strcmp(arg, "none") != 0)
            return serr_set(err, SERR_INVALID,
                            "invalid --restart-condition \"%s\": must be any, on-failure or none",
                            arg);
        json_object_set_new(spec, "restart_condition", json_string(arg));
        return 0;
    case OPT_RESTART_DELAY:
        return set_duration(spec, "restart_delay_ms", "--restart-delay", arg, err);
    case OPT_SCHEDULE:
    case OPT_SCHEDULE_TZ:
    case OPT_SCHEDULE_OVERLAP:
        return schedule_option(spec, opt, arg, err);
    case OPT_RESTART_MAX_ATTEMPTS:
        return set_uint(spec, "restart_max_attempts", "--restart-max-attempts", arg, 1000000,
                        err);
    case OPT_RESTART_WINDOW:
        return set_duration(spec, "restart_window_ms", "--restart-window", arg, err);
    case OPT_ENV_FILE:
        return add_env_file(json_object_get(spec, "env"), arg, err);
    case OPT_LIMIT_CPU: {
        double cpus;
        if (cli_parse_positive_double("--limit-cpu", arg, &cpus, err) < 0)
            return -1;
        json_object_set_new(cli_json_member(spec, "limits"), "cpus", json_real(cpus));
        return 0;
    }
    case OPT_RESERVE_CPU: {
        double cpus;
        if (cli_parse_positive_double("--reserve-cpu", arg, &cpus, err) < 0)
            return -1;
        json_object_set_new(cli_json_member(spec, "reservations"), "cpus", json_real(cpus));
        return 0;
    }
    case OPT_RESERVE_MEMORY:
        return set_memory(cli_json_member(spec, "reservations"), "--reserve-memory", arg, err);
    case OPT_LIMIT_MEMORY:
        return set_memory(cli_json_member(spec, "limits"), "--limit-memory", arg, err);
    case OPT_INIT:
        json_object_set_new(spec, "init", json_true());
        return 0;
    case OPT_REGISTRY_AUTH: /* Docker's habit: 'shoal login' credentials always go */
        return 0;
    case OPT_NETWORK:
        return cli_set_network(spec, arg, err);
    case 'p':
        return add_publish(json_object_get(spec, "ports"), arg, err);
    case OPT_CONSTRAINT:
        if (check_constraint(arg, err) < 0)
            return -1;
        json_array_append_new(json_object_get(spec, "constraints"), json_string(arg));
        return 0;
    case OPT_STOP_GRACE:
        return set_duration(spec, "stop_grace_period_ms", "--stop-grace-period", arg, err);
    case 'd':
        *detach = true;
        return 0;
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
}

/* Drops the empty lists created up front so the spec says only what was given. */
static void drop_empty_arrays(json_t *spec)
{
    static const char *const keys[] = {"env", "mounts", "constraints", "ports"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_array_size(json_object_get(spec, keys[i])) == 0)
            json_object_del(spec, keys[i]);
}

static json_t *string_array(int argc, char **argv)
{
    json_t *arr = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(arr, json_string(argv[i]));
    return arr;
}

static int finish_spec(json_t *spec, int argc, char **argv, struct serr *err)
{
    if (optind >= argc)
        return serr_set(err, SERR_INVALID, "requires at least 1 argument (IMAGE)");
    if (argv[optind][0] == '\0')
        return serr_set(err, SERR_INVALID, "invalid image: empty");
    const char *mode = json_string_value(json_object_get(spec, "mode"));
    bool global = mode != NULL && (strcmp(mode, "global") == 0 || strcmp(mode, "global-job") == 0);
    if (global && json_object_get(spec, "replicas"))
        return serr_set(err, SERR_INVALID, "--replicas can only be used with replicated mode");
    json_object_set_new(spec, "image", json_string(argv[optind]));
    if (optind + 1 < argc)
        json_object_set_new(spec, "args", string_array(argc - optind - 1, argv + optind + 1));
    drop_empty_arrays(spec);
    return 0;
}

int cli_build_service_spec(int argc, char **argv, json_t **spec, bool *detach, struct serr *err)
{
    json_t *s = json_object();
    json_object_set_new(s, "env", json_array());
    json_object_set_new(s, "mounts", json_array());
    json_object_set_new(s, "constraints", json_array());
    json_object_set_new(s, "ports", json_array());
    *detach = false;
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "e:p:u:w:l:dh", create_options, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else
            rc = create_option(s, opt, optarg, detach, err);
    }
    if (rc == 0)
        rc = finish_spec(s, argc, argv, err);
    if (rc == 0)
        rc = health_finish_create(s, err);
    if (rc != 0) {
        json_decref(s);
        return rc;
    }
    *spec = s;
    return 0;
}

/* ---- service update ---- */

static const struct option update_options[] = {
    {"image", required_argument, NULL, OPT_IMAGE},
    {"env-add", required_argument, NULL, OPT_ENV_ADD},
    {"env-rm", required_argument, NULL, OPT_ENV_RM},
    {"args", required_argument, NULL, OPT_ARGS},
    {"replicas", required_argument, NULL, OPT_REPLICAS},
    {"max-concurrent", required_argument, NULL, OPT_MAX_CONCURRENT},
    {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"schedule-tz", required_argument, NULL, OPT_SCHEDULE_TZ},
    {"schedule-overlap", required_argument, NULL, OPT_SCHEDULE_OVERLAP},
    UPDATE_OPTIONS,
    ROLLBACK_OPTIONS,
    HEALTH_OPTIONS,
    {"publish-add", required_argument, NULL, OPT_PUBLISH_ADD},
    {"publish-rm", required_argument, NULL, OPT_PUBLISH_RM},
    {"secret-add", required_argument, NULL, OPT_SECRET_REFS + 2},
    {"secret-rm", required_argument, NULL, OPT_SECRET_REFS + 3},
    {"config-add", required_argument, NULL, OPT_SECRET_REFS + 4},
    {"config-rm", required_argument, NULL, OPT_SECRET_REFS + 5},
    {"constraint-add", required_argument, NULL, OPT_CONSTRAINT_ADD},
    {"constraint-rm", required_argument, NULL, OPT_CONSTRAINT_RM},
    {"limit-cpu", required_argument, NULL, OPT_LIMIT_CPU},
    {"reserve-cpu", required_argument, NULL, OPT_RESERVE_CPU},
    {"reserve-memory", required_argument, NULL, OPT_RESERVE_MEMORY},
    {"limit-memory", required_argument, NULL, OPT_LIMIT_MEMORY},
    {"limit-pids", required_argument, NULL, OPT_LIMIT_PIDS},
    {"replicas-max-per-node", required_argument, NULL, OPT_MAX_PER_NODE},
    {"restart-max-attempts", required_argument, NULL, OPT_RESTART_MAX_ATTEMPTS},
    {"restart-window", required_argument, NULL, OPT_RESTART_WINDOW},
    {"stop-signal", required_argument, NULL, OPT_STOP_SIGNAL},
    {"read-only", optional_argument, NULL, OPT_UPDATE_READ_ONLY},
    {"sysctl-add", required_argument, NULL, OPT_SYSCTL_ADD},
    {"sysctl-rm", required_argument, NULL, OPT_SYSCTL_RM},
    {"ulimit-add", required_argument, NULL, OPT_ULIMIT_ADD},
    {"ulimit-rm", required_argument, NULL, OPT_ULIMIT_RM},
    {"dns-add", required_argument, NULL, OPT_DNS_ADD},
    {"dns-rm", required_argument, NULL, OPT_DNS_RM},
    {"placement-pref-add", required_argument, NULL, OPT_PLACEMENT_PREF_ADD},
    {"placement-pref-rm", required_argument, NULL, OPT_PLACEMENT_PREF_RM},
    {"force", no_argument, NULL, OPT_FORCE},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"user", required_argument, NULL, 'u'},
    {"workdir", required_argument, NULL, 'w'},
    {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
    {"label-add", required_argument, NULL, OPT_LABEL_ADD},
    {"label-rm", required_argument, NULL, OPT_LABEL_RM},
    {"container-label-add", required_argument, NULL, OPT_CONTAINER_LABEL_ADD},
    {"container-label-rm", required_argument, NULL, OPT_CONTAINER_LABEL_RM},
    {"mount-add", required_argument, NULL, OPT_MOUNT_ADD},
    {"mount-rm", required_argument, NULL, OPT_MOUNT_RM},
    {"network-add", required_argument, NULL, OPT_NETWORK_ADD},
    {"network-rm", required_argument, NULL, OPT_NETWORK_RM},
    {"restart-condition", required_argument, NULL, OPT_RESTART_CONDITION},
    {"restart-delay", required_argument, NULL, OPT_RESTART_DELAY},
    {"stop-grace-period", required_argument, NULL, OPT_STOP_GRACE},
    {"init", no_argument, NULL, OPT_INIT},
    {"cap-add", required_argument, NULL, OPT_CAP_ADD},
    {"cap-drop", required_argument, NULL, OPT_CAP_DROP},
    {"detach", no_argument, NULL, 'd'},
    {"with-registry-auth", no_argument, NULL, OPT_REGISTRY_AUTH},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool is_update_list_option(int opt)
{
    return opt == OPT_LABEL_ADD || opt == OPT_LABEL_RM || opt == OPT_CONTAINER_LABEL_ADD ||
           opt == OPT_CONTAINER_LABEL_RM || opt == OPT_MOUNT_ADD || opt == OPT_MOUNT_RM ||
           (opt >= OPT_UPDATE_READ_ONLY && opt <= OPT_PLACEMENT_PREF_RM);
}

/* A key to remove (a label's, a sysctl's, a ulimit's name). */
static int add_removal(json_t *patch, const char *key, const char *flag, const char *arg,
                       struct serr *err)
{
    if (arg[0] == '\0' || strpbrk(arg, "= \t\n") != NULL)
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": give the KEY alone", flag, arg);
    json_array_append_new(cli_json_array(patch, key), json_string(arg));
    return 0;
}

/* --label-add/-rm, --container-label-add/-rm, --mount-add/-rm, --read-only,
 * --sysctl-add/-rm, --ulimit-add/-rm, --dns-add/-rm, --placement-pref-add/-rm */
static int update_list_option(json_t *patch, int opt, const char *arg, struct serr *err)
{
    switch (opt) {
    case OPT_LABEL_ADD:
        return cli_add_label(patch, "labels_add", "--label-add", arg, err);
    case OPT_LABEL_RM:
        return add_removal(patch, "labels_rm", "--label-rm", arg, err);
    case OPT_CONTAINER_LABEL_ADD:
        return cli_add_label(patch, "container_labels_add", "--container-label-add", arg, err);
    case OPT_CONTAINER_LABEL_RM:
        return add_removal(patch, "container_labels_rm", "--container-label-rm", arg, err);
    case OPT_MOUNT_ADD: {
        json_t *mount;
        if (cli_parse_mount(arg, &mount, err) < 0)
            return serr_wrap(err, "--mount-add");
        json_array_append_new(cli_json_array(patch, "mounts_add"), mount);
        return 0;
    }
    case OPT_UPDATE_READ_ONLY: { /* --read-only[=true|false] */
        bool ro;
        if (parse_bool_word("--read-only", arg, &ro, err) < 0)
            return -1;
        json_object_set_new(patch, "read_only", json_boolean(ro));
        return 0;
    }
    case OPT_SYSCTL_ADD:
        return cli_add_sysctl(patch, "sysctls_add", "--sysctl-add", arg, err);
    case OPT_SYSCTL_RM:
        return add_removal(patch, "sysctls_rm", "--sysctl-rm", arg, err);
    case OPT_ULIMIT_ADD:
        return cli_parse_ulimit(arg, cli_json_member(patch, "ulimits_add"), err);
    case OPT_ULIMIT_RM:
        return add_removal(patch, "ulimits_rm", "--ulimit-rm", arg, err);
    case OPT_DNS_ADD:
        return cli_add_dns(patch, "dns_add", "--dns-add", arg, err);
    case OPT_DNS_RM:
        return cli_add_dns(patch, "dns_rm", "--dns-rm", arg, err);
    case OPT_PLACEMENT_PREF_ADD:
        return add_placement_pref(patch, "placement_preferences_add", "--placement-pref-add",
                                  arg, err);
    case OPT_PLACEMENT_PREF_RM:
        return add_placement_pref(patch, "placement_preferences_rm", "--placement-pref-rm", arg,
                                  err);
    case OPT_MOUNT_RM:
        if (arg[0] != '/')
            return serr_set(err, SERR_INVALID,
                            "invalid --mount-rm \"%s\": give the mount's target (absolute path)",
                            arg);
        json_array_append_new(cli_json_array(patch, "mounts_rm"), json_string(arg));
        return 0;
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
}

static int update_option(json_t *patch, int opt, const char *arg, bool *detach, struct serr *err)
{
    if (is_health_option(opt))
        return health_option(patch, opt, arg, err);
    if (is_secret_option(opt))
        return secret_option(patch, opt, arg, err);
    if (is_container_option(opt))
        return container_option(patch, opt, arg, err);
    if (is_rollout_option(opt))
        return rollout_option(patch, opt, arg, err);
    if (is_update_list_option(opt))
        return update_list_option(patch, opt, arg, err);
    switch (opt) {
    case OPT_LIMIT_PIDS:
    case OPT_MAX_PER_NODE:
    case OPT_STOP_SIGNAL:
        return runtime_option(patch, opt, arg, err);
    case OPT_RESTART_MAX_ATTEMPTS:
    case OPT_RESTART_WINDOW:
    case OPT_RESTART_CONDITION:
    case OPT_RESTART_DELAY:
    case OPT_STOP_GRACE:
    case OPT_INIT:
    case OPT_REGISTRY_AUTH:
        return create_option(patch, opt, arg, detach, err);
    case OPT_NETWORK_ADD:
    case OPT_NETWORK_RM: {
        const char *key = opt == OPT_NETWORK_ADD ? "network_add" : "network_rm";
        if (json_object_get(patch, key))
            return serr_set(err, SERR_INVALID, "--%s once: a service is on one network",
                            opt == OPT_NETWORK_ADD ? "network-add" : "network-rm");
        json_t *holder = json_object();
        int rc = cli_set_network(holder, arg, err);
        if (rc == 0)
            json_object_set(patch, key, json_object_get(holder, "network"));
        json_decref(holder);
        return rc;
    }
    case OPT_CAP_ADD: /* as Docker: added, and no longer dropped */
        return cli_add_caps(patch, "caps_add", "--cap-add", arg, err);
    case OPT_CAP_DROP:
        return cli_add_caps(patch, "caps_drop", "--cap-drop", arg, err);
    case OPT_LIMIT_CPU:
    case OPT_RESERVE_CPU: /* "reservations" in the patch, merged as "limits" */
    case OPT_RESERVE_MEMORY:
    case OPT_LIMIT_MEMORY: /* "limits" in the patch, merged into the spec's */
        return create_option(patch, opt, arg, detach, err);
    case OPT_CONSTRAINT_ADD:
        if (check_constraint(arg, err) < 0)
            return -1;
        json_array_append_new(cli_json_array(patch, "constraints_add"), json_string(arg));
        return 0;
    case OPT_CONSTRAINT_RM:
        json_array_append_new(cli_json_array(patch, "constraints_rm"), json_string(arg));
        return 0;
    case OPT_FORCE:
        json_object_set_new(patch, "force", json_true());
        return 0;
    case OPT_IMAGE:
        if (arg[0] == '\0')
            return serr_set(err, SERR_INVALID, "invalid --image: empty");
        json_object_set_new(patch, "image", json_string(arg));
        return 0;
    case OPT_ENV_ADD:
        if (strchr(arg, '=') == NULL || arg[0] == '=')
            return serr_set(err, SERR_INVALID, "invalid --env-add \"%s\": use KEY=VALUE", arg);
        json_array_append_new(json_object_get(patch, "env_add"), json_string(arg));
        return 0;
    case OPT_ENV_RM:
        if (arg[0] == '\0' || strchr(arg, '=') != NULL)
            return serr_set(err, SERR_INVALID, "invalid --env-rm \"%s\": use KEY", arg);
        json_array_append_new(json_object_get(patch, "env_rm"), json_string(arg));
        return 0;
    case OPT_ARGS:
        json_object_set_new(patch, "args", split_args(arg));
        return 0;
    case OPT_PUBLISH_ADD:
        return add_publish(json_object_get(patch, "publish_add"), arg, err);
    case OPT_PUBLISH_RM:
        if (check_publish_rm(arg, err) < 0)
            return -1;
        json_array_append_new(json_object_get(patch, "publish_rm"), json_string(arg));
        return 0;
    case OPT_REPLICAS:
        return set_uint(patch, "replicas", "--replicas", arg, MAX_REPLICAS, err);
    case OPT_MAX_CONCURRENT:
        return set_max_concurrent(patch, arg, err);
    case OPT_SCHEDULE:
    case OPT_SCHEDULE_TZ:
    case OPT_SCHEDULE_OVERLAP:
        return schedule_option(patch, opt, arg, err);
    case 'd':
        *detach = true;
        return 0;
    }
    return serr_set(err, SERR_INVALID, "unexpected option");
}

int cli_build_service_patch(int argc, char **argv, json_t **patch, const char **service,
                            bool *detach, struct serr *err)
{
    json_t *p = json_object();
    json_object_set_new(p, "env_add", json_array());
    json_object_set_new(p, "env_rm", json_array());
    json_object_set_new(p, "publish_add", json_array());
    json_object_set_new(p, "publish_rm", json_array());
    *detach = false;
    optind = 0;
    int opt, rc = 0;
    while (rc == 0 && (opt = cli_getopt(argc, argv, "u:w:dh", update_options, err)) != -1) {
        if (opt == '?')
            rc = -1;
        else if (opt == 'h')
            rc = 1;
        else
            rc = update_option(p, opt, optarg, detach, err);
    }
    if (rc == 0 && argc - optind != 1)
        rc = serr_set(err, SERR_INVALID, "requires exactly 1 argument (SERVICE)");
    if (rc != 0) {
        json_decref(p);
        return rc;
    }
    static const char *const lists[] = {"env_add", "env_rm", "publish_add", "publish_rm"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (json_array_size(json_object_get(p, lists[i])) == 0)
            json_object_del(p, lists[i]);
    *service = argv[optind];
    *patch = p;
    return 0;
}
