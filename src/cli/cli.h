/* The shoal CLI: docker-like commands over the HTTP API (docs/api.md).
 *
 * Conventions: commands return the process exit code. API and connection
 * errors print "Error: <message>" on stderr and give 1; bad command lines
 * print a usage message and give 2. Commands never exit() themselves. */
#ifndef SHOAL_CLI_CLI_H
#define SHOAL_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2

#define CLI_DEFAULT_HOST "unix:///run/shoal/shoal.sock"

struct http_client;

struct cli {
    const char *host;
    const char *tls_dir; /* --tls-dir, or NULL: $SHOAL_TLS_DIR, then ~/.shoal */
    struct http_client *client; /* opened on first use */
};

/* A command: `argv[0]` is the command's own name ("ls", "run"). */
typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

struct cli_cmd {
    const char *name;
    const char *alias; /* or NULL */
    cli_cmd_fn fn;
    const char *summary;
};

/* Entry point for everything but `shoal daemon`. */
int cli_main(int argc, char **argv);

/* Command groups (one file each). */
int cli_swarm(struct cli *cli, int argc, char **argv);
int cli_node(struct cli *cli, int argc, char **argv);
int cli_image(struct cli *cli, int argc, char **argv);
int cli_service(struct cli *cli, int argc, char **argv);
/* `shoal service runs SERVICE` (cli_service_runs.c). */
int cli_service_runs(struct cli *cli, int argc, char **argv);
int cli_network(struct cli *cli, int argc, char **argv);
int cli_secret(struct cli *cli, int argc, char **argv);
int cli_config(struct cli *cli, int argc, char **argv);
/* `shoal dev`: defined in src/dev/, a layer above the CLI that uses its
 * framework (the command table names it; nothing here includes dev/). */
int cli_dev(struct cli *cli, int argc, char **argv);
/* --secret/--config (create; key "secrets"/"configs": "NAME" or
 * "source=,target=,uid=,gid=,mode=") and --secret-add/-rm, --config-add/-rm
 * (update; keys "secrets_add", "secrets_rm"...: rm takes names) appended to
 * obj[key]. */
int cli_add_secret_ref(json_t *obj, const char *key, const char *flag, const char *arg,
                       struct serr *err);
int cli_job(struct cli *cli, int argc, char **argv);
int cli_alert(struct cli *cli, int argc, char **argv);
/* `alert add` argv (argv[0] "add") -> the POST /v1/alerts body: 0, 1 when
 * --help was asked, or -1 with a usage message in err. */
int cli_build_alert_add(int argc, char **argv, json_t **body, struct serr *err);
extern const char cli_alert_add_usage[];
/* `job sub`'s and oarsub's options (argv[0] the command's name) -> the
 * /v1/jobs body (new reference, with "user" from $USER); 1 when help was
 * asked, <0 with err on bad input. -S reads the script's #OAR lines. */
int cli_build_job_sub(int argc, char **argv, json_t **body, struct serr *err);
/* Whether a built submission asks for a shell: -I ("interactive": true) or
 * -C ID ("connect": ID), which cli_job_shell takes out of it. */
bool cli_job_wants_shell(json_t *body);
/* The job's shell: submits `body` as an interactive job, waits for it to run,
 * opens a shell in it, ends it with the shell's exit code; or, with "connect",
 * a shell in that running job. `oar` prints OAR_JOB_ID=ID as oarsub does. */
int cli_job_shell(struct cli *cli, json_t *body, bool oar);
/* The user jobs are submitted as: $USER, else the account's name (what the
 * client claims, as OAR's owner). */
const char *cli_job_user(void);
/* The OAR commands (oarsub, oarstat, oardel, oarnodes, oarhold, oarresume),
 * chosen by the basename of argv[0]; cli_oar_name: that name when it is one
 * of them, else NULL. */
const char *cli_oar_name(const char *argv0);
int cli_oar_main(const char *name, int argc, char **argv);
int cli_version(struct cli *cli, int argc, char **argv);
int cli_info(struct cli *cli, int argc, char **argv);
int cli_run(struct cli *cli, int argc, char **argv);
int cli_ps(struct cli *cli, int argc, char **argv);
int cli_rm(struct cli *cli, int argc, char **argv);
/* `shoal logs SERVICE|TASK` (cli_service.c). */
int cli_logs(struct cli *cli, int argc, char **argv);
int cli_exec(struct cli *cli, int argc, char **argv);
/* `shoal attach CONTAINER` (cli_exec.c): its output, and input with -i. */
int cli_attach(struct cli *cli, int argc, char **argv);
/* Runs req's {cmd, env...} in the container or task `target` as `shoal exec`
 * does (stdin sent with `interactive`, a raw local terminal with `tty`);
 * returns the command's exit code, or the CLI's failure code (said). Adds
 * interactive/tty/rows/cols to req; the caller still owns it. */
int cli_exec_run(struct cli *cli, const char *target, json_t *req, bool interactive, bool tty);
/* POSTs req to `path`, whose answer is a framed stream (exec, `run -i/-t`,
 * docs/api.md), with a session when interactive or tty as cli_exec_run.
 * 0 with *code the exit code; 1 when the stream ended without one; -1 with
 * err set when the request failed. */
int cli_session_stream(struct cli *cli, const char *path, json_t *req, bool interactive,
                       bool tty, int *code, struct serr *err);
int cli_logs_of(struct cli *cli, const char *cmd, int argc, char **argv);
struct cli_flags;
/* Services as `service ls` prints them (cli_service.c). */
void cli_print_services(json_t *services, bool json);
/* `shoal stack deploy|ls|ps|services|rm` (cli_stack.c). */
int cli_stack(struct cli *cli, int argc, char **argv);
/* Tasks as `service ps` prints them (cli_service.c). */
void cli_print_tasks(json_t *tasks, const struct cli_flags *fl);
int cli_dashboard(struct cli *cli, int argc, char **argv);
/* cli_prune.c: system df|prune|info, container ls|prune|rm, image prune. */
int cli_system(struct cli *cli, int argc, char **argv);
int cli_container(struct cli *cli, int argc, char **argv);
int cli_image_prune(struct cli *cli, int argc, char **argv);
int cli_volume_prune(struct cli *cli, int argc, char **argv);
/* `shoal volume create|ls|inspect|rm|prune` (cli_volume.c). */
int cli_volume(struct cli *cli, int argc, char **argv);
/* `system prune [-a] [-f] [--volumes]`: 0, 1 when --help was asked, or -1
 * with a usage message in err. */
int cli_build_system_prune(int argc, char **argv, bool *all, bool *force, bool *volumes,
                           struct serr *err);
/* cli_registry.c */
int cli_image_pull(struct cli *cli, int argc, char **argv);
int cli_image_push(struct cli *cli, int argc, char **argv);
/* cli_build.c: `shoal image build`. */
int cli_image_build(struct cli *cli, int argc, char **argv);
int cli_login(struct cli *cli, int argc, char **argv);
int cli_logout(struct cli *cli, int argc, char **argv);
/* Adds "registry_auth": {"username","password"} to a service spec or patch
 * when the CLI has credentials for its image's registry (shoal login). */
void cli_registry_auth(json_t *obj);

/* Runs the subcommand named by argv[1] of a group; prints the group's help
 * for --help or no subcommand. */
int cli_dispatch_group(struct cli *cli, const char *group, const struct cli_cmd *cmds, int argc,
                       char **argv);

/* ---- messages ---- */

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "shoal CMD: message" and a hint to --help; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a usage text on stdout; returns CLI_EXIT_OK. */
int cli_help(const char *text);

/* ---- option parsing: getopt_long wrapper with clear messages ---- */

struct option;
/* getopt_long() stopping at the first non-option ("+"), with its messages
 * in err instead of on stderr. Returns the option (optarg/optind as usual),
 * -1 at the end, or '?' with err filled. Restarts when optind is 0. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               struct serr *err);

/* The few flags simple commands share. `allowed` lists their letters:
 * F --format, f -f/--force, a -a/--all, l -f/--follow, t --tail,
 * d -d/--detach, i -i/--input, A --advertise-addr. */
struct cli_flags {
    bool json, force, all, follow, detach;
    bool no_trunc; /* 'T' */
    bool digests;  /* 'G': --digests */
    const char *tail, *input, *advertise_addr;
    int first_arg; /* index of the first positional argument */
};
/* Returns -1 to go on, or the exit code to return (help printed: 0, bad
 * flag: 2). `usage` is printed for --help. */
int cli_flags(const char *cmd, const char *usage, const char *allowed, int argc, char **argv,
              struct cli_flags *fl);
/* Checks the positional count: returns -1 when fine, else 2 after a message. */
int cli_nargs(const char *cmd, int have, int min, int max);

/* Strict parsers; they fill err (SERR_INVALID) with a message naming `what`. */
int cli_parse_uint(const char *what, const char *s, int64_t max, int64_t *out, struct serr *err);
int cli_parse_positive_double(const char *what, const char *s, double *out, struct serr *err);
/* A failure ratio: a number from 0 to 1. */
int cli_parse_ratio(const char *what, const char *s, double *out, struct serr *err);
/* "--format json" or "table". */
int cli_parse_format(const char *s, bool *json, struct serr *err);

/* ---- service specs (cli_service_spec.c; pure, unit-tested) ---- */

/* "type=bind,src=/a,dst=/b,readonly" -> {"type","source","target","readonly"}. */
int cli_parse_mount(const char *text, json_t **mount, struct serr *err);
/* --hostname, --user, --workdir or --entrypoint (`flag` without dashes) into
 * the spec, checked as service create checks them. */
int cli_container_flag(json_t *spec, const char *flag, const char *arg, struct serr *err);

/* Container flag values (cli_service_values.c). Each adds to the spec or
 * patch `obj` and on a bad value returns SERR_INVALID naming `flag`. */
/* obj[key] (borrowed): an empty object made when absent; an empty array made
 * when it is not an array. */
json_t *cli_json_member(json_t *obj, const char *key);
json_t *cli_json_array(json_t *obj, const char *key);
/* "KEY=VALUE" or "KEY" (empty value) into the object obj[key]. */
int cli_add_label(json_t *obj, const char *key, const char *flag, const char *arg,
                  struct serr *err);
/* "net_admin,SYS_TIME" / "CAP_X" / "ALL" appended to obj[key] as "CAP_X" names. */
int cli_add_caps(json_t *obj, const char *key, const char *flag, const char *arg,
                 struct serr *err);
/* --sysctl KEY=VALUE (namespaced keys only) into the object obj[key]. */
int cli_add_sysctl(json_t *obj, const char *key, const char *flag, const char *arg,
                   struct serr *err);
/* --dns IP appended to obj[key]. */
int cli_add_dns(json_t *obj, const char *key, const char *flag, const char *arg,
                struct serr *err);
/* --user: "UID" or "UID:GID" in decimal; else SERR_INVALID naming the flag. */
int cli_check_user(const char *user, struct serr *err);

/* The lines of an --env-file (KEY=VALUE or KEY from the environment; blank
 * lines and # comments skipped) appended to `list`; errors give the line. */
int cli_parse_env_lines(const char *text, json_t *list, struct serr *err);

/* --ulimit NAME=SOFT[:HARD] into ulimits[NAME] = {soft, hard}. */
int cli_parse_ulimit(const char *text, json_t *ulimits, struct serr *err);
/* "K=V" stays; "K" takes the value from the environment (like docker) or is
 * skipped when unset: *out is NULL then. */
int cli_parse_env(const char *text, char **out, struct serr *err);
/* --network bridge|host: sets "network" in `obj`. */
int cli_set_network(json_t *obj, const char *arg, struct serr *err);
/* -p "8080:80[/udp]" or "published=8080,target=80[,protocol=udp][,mode=host]" -> port object. */
int cli_parse_publish(const char *text, json_t **port, struct serr *err);
/* `service create` argv (argv[0] "create") -> spec JSON. Returns 0, 1 when
 * --help was asked, or -1 with a usage message in err. */
int cli_build_service_spec(int argc, char **argv, json_t **spec, bool *detach, struct serr *err);
/* `service update` argv -> patch JSON and the service named. */
int cli_build_service_patch(int argc, char **argv, json_t **patch, const char **service,
                            bool *detach, struct serr *err);
/* `run` argv (argv[0] "run") -> the /v1/containers/run body. */
int cli_build_run_request(int argc, char **argv, json_t **request, struct serr *err);
extern const char cli_run_usage[];

/* ---- swarm and node command lines (pure, unit-tested) ----
 * Like the service builders: 0, 1 when --help was asked, or -1 with a usage
 * message in err. argv[0] is the command's own name. */

/* "IP" -> "IP:2377"; "IP:PORT" and "[V6]:PORT" stay (caller frees). */
char *cli_addr_with_port(const char *addr);
/* `swarm init` -> {"advertise_addr","force_new_cluster"} (each optional). */
int cli_build_swarm_init(int argc, char **argv, json_t **body, struct serr *err);
/* `swarm join --token T [--advertise-addr A] HOST[:PORT]` ->
 * {"token","remote_addr","advertise_addr"}. */
int cli_build_swarm_join(int argc, char **argv, json_t **body, struct serr *err);
struct cli_join_token_opts {
    const char *role; /* "worker" or "manager" */
    bool rotate, quiet;
};
int cli_parse_join_token(int argc, char **argv, struct cli_join_token_opts *opts,
                         struct serr *err);
/* `swarm update --task-history-limit N` -> {"task_history_limit": N} (-1:
 * keep all). At least one change is required. */
int cli_build_swarm_update(int argc, char **argv, json_t **body, struct serr *err);
/* `swarm admin-cert [-o DIR]`: *dir is NULL without -o. */
int cli_parse_admin_cert(int argc, char **argv, const char **dir, struct serr *err);
/* `node update` -> {"availability","role","labels_add":{},"labels_rm":[]} and
 * the node named. At least one change is required. */
int cli_build_node_update(int argc, char **argv, json_t **patch, const char **node,
                          struct serr *err);
/* `node exec [TARGET] [--timeout S] [--group] -- CMD...` -> {"target": {"glob",
 * "regex", "list", "label", "role"}, "argv", "timeout"?}; *group for --group. */
int cli_build_node_exec(int argc, char **argv, json_t **body, bool *group, struct serr *err);
/* `node cp FILE [TARGET] DEST` -> {"target", "file": {"path": DEST, "name"}}
 * (the caller adds the data and mode of *file). */
int cli_build_node_cp(int argc, char **argv, json_t **body, const char **file,
                      struct serr *err);
/* cli_node_exec.c */
int cli_node_exec(struct cli *cli, int argc, char **argv);
int cli_node_cp(struct cli *cli, int argc, char **argv);
extern const char cli_swarm_join_usage[];
extern const char cli_node_update_usage[];
extern const char cli_service_create_usage[];
extern const char cli_service_update_usage[];

/* ---- API calls ---- */

/* Percent-encodes a path segment or query value (caller frees). */
char *cli_escape(const char *s);
/* Path built from a format whose %s arguments are escaped first. */
char *cli_path(const char *fmt, const char *arg);

/* Sends `body` (may be NULL) and parses the JSON answer into *out (may be
 * NULL when not wanted; JSON null for an empty body). Status >= 400 and
 * connection failures fill err with the API's message. */
int cli_call(struct cli *cli, const char *method, const char *path, json_t *body, json_t **out,
             struct serr *err);
/* POSTs `body` (taken) to path and prints the id of what it made; the exit
 * code (the API's error printed). */
int cli_create(struct cli *cli, const char *path, json_t *body);
/* Same with a file as the body (uploads). */
int cli_call_file(struct cli *cli, const char *path, const char *file, json_t **out,
                  struct serr *err);
/* Streams a response body to on_data; HTTP errors are reported through err. */
int cli_stream(struct cli *cli, const char *method, const char *path, json_t *body,
               int (*on_data)(const char *data, size_t len, void *arg), void *arg,
               struct serr *err);
/* Same with a body of any type (`body` may be NULL: none). */
int cli_stream_raw(struct cli *cli, const char *method, const char *path,
                   const char *content_type, const char *body, size_t len,
                   int (*on_data)(const char *data, size_t len, void *arg), void *arg,
                   struct serr *err);
/* An answer of JSON lines (pull, push, build) read in pieces: give
 * cli_lines_data as cli_stream's on_data with a struct line_split
 * (base/util.h) as its arg; line_split_end after the stream. */
int cli_lines_data(const char *data, size_t len, void *split);
/* An `inspect` verb, `cmd` ("service inspect") with `usage`: its flags
 * (--help alone) and at least one name, then GETs path_fmt for each name
 * and prints a JSON array (exit 1 if any is missing). */
int cli_inspect(struct cli *cli, const char *cmd, const char *usage, const char *path_fmt,
                int argc, char **argv);
/* Calls `method` path_fmt (the name escaped in) + query for each name
 * (docker style): prints the names done and the error of each other;
 * CLI_EXIT_ERROR when any failed. */
int cli_call_each(struct cli *cli, const char *method, const char *path_fmt, const char *query,
                  int argc, char **argv);
/* cli_call_each with DELETE. */
int cli_remove_each(struct cli *cli, const char *path_fmt, const char *query, int argc,
                    char **argv);
/* cli_container_ctl.c: stop, start, restart, kill, inspect and stats of containers */
int cli_stop(struct cli *cli, int argc, char **argv);
int cli_start(struct cli *cli, int argc, char **argv);
int cli_restart(struct cli *cli, int argc, char **argv);
int cli_kill(struct cli *cli, int argc, char **argv);
int cli_inspect_container(struct cli *cli, int argc, char **argv);
int cli_stats(struct cli *cli, int argc, char **argv);
/* Prints "Error: msg" and returns CLI_EXIT_ERROR. */
int cli_fail(const struct serr *err);

/* Polls the service every 100 ms, up to 60 s, until its replicas converge
 * (each wanted task running, or finished for good: a one-shot task) and no
 * rolling update is running. Fails early when such a finished task failed,
 * or when a task could not be placed for a few seconds (with the reason). */
int cli_wait_converged(struct cli *cli, const char *service, struct serr *err);

/* ---- output ---- */

struct table;
struct table *table_new(int ncols, const char *const *headers);
/* Copies the cells; NULL prints as "". */
void table_add(struct table *t, const char *const *cells);
/* Prints with docker's alignment (3 spaces between columns) and frees. */
void table_print_free(struct table *t);

/* cli_template.c: --format '{{.Name}} {{json .}}' over one JSON object (fields
 * by name, any case, "-"/"_"/" " ignored; functions json, upper, lower;
 * \t and \n). NULL with err on an unknown field or bad syntax. */
char *cli_template_expand(const char *tmpl, json_t *obj, struct serr *err);
/* --filter KEY=VALUE into {"KEY":[values]}. */
int cli_filter_add(json_t *filters, const char *arg, struct serr *err);
/* Whether a row (fields as strings) passes: id by prefix, name by substring,
 * others equal in any case; keys AND, values of a key OR (docker's). */
int cli_filter_match(json_t *row, json_t *filters, bool *match, struct serr *err);

/* JSON for people (inspect) and for scripts (--format json). */
void cli_print_json(json_t *j, bool pretty);

/* Helpers for fields of API objects. */
const char *cli_str(json_t *obj, const char *key); /* "" when missing */
int64_t cli_int(json_t *obj, const char *key);     /* 0 when missing */
/* "ready" -> "Ready" into out. */
void cli_capitalize(const char *s, char *out, size_t outlen);
/* "sha256:abcdef..." -> "abcdef012345"; other ids are cut to 12 chars. */
void cli_short_id(const char *id, char *out, size_t outlen);
/* 1234567 -> "1.235MB" (docker's decimal units). */
void cli_human_size(int64_t bytes, char *out, size_t outlen);
/* A past Unix-ms time -> "5 seconds ago". */
void cli_ago(int64_t at_ms, char *out, size_t outlen);

#endif
