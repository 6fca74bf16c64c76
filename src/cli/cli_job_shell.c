/* Interactive jobs: `job sub -I` / `oarsub -I` and `job connect` / `oarsub -C`.
 * An interactive job's command holds its allocation until a file of its
 * container names the exit code; the CLI execs a shell into the job's task
 * (cli_exec_run), then writes the shell's code there, so the job ends
 * Terminated with it. A CLI killed meanwhile leaves the job to its walltime. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/cli.h"

#define DONE_FILE "/tmp/.shoal-interactive-exit"

/* The job's command: waits for DONE_FILE, exits with the code it holds. */
static const char holder_command[] = "while [ ! -e " DONE_FILE " ]; do sleep 1; done; "
                                     "exit \"$(cat " DONE_FILE ")\"";

/* The user's $SHELL when the image has it, else sh. */
static const char shell_script[] = "[ -n \"$1\" ] && [ -x \"$1\" ] && exec \"$1\"; exec /bin/sh";

#define POLL_US 200000

bool cli_job_wants_shell(json_t *body)
{
    return json_object_get(body, "interactive") || json_object_get(body, "connect");
}

static bool job_ended(const char *state)
{
    return strcmp(state, "Terminated") == 0 || strcmp(state, "Error") == 0;
}

/* GETs the job (new reference in *job); <0 with err when it is unknown. */
static int get_job(struct cli *cli, const char *id, json_t **job, struct serr *err)
{
    char *path = cli_path("/v1/jobs/%s", id);
    int rc = cli_call(cli, "GET", path, NULL, job, err);
    free(path);
    return rc;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Until the job is Running (*job: it then); <0 with err when it ended first
 * or Ctrl-C was pressed (the job is then deleted, as oarsub -I does). */
static int wait_running(struct cli *cli, const char *id, json_t **job, struct serr *err)
{
    bool said = false;
    while (!interrupted) {
        if (get_job(cli, id, job, err) < 0)
            return -1;
        const char *state = cli_str(*job, "state");
        if (strcmp(state, "Running") == 0 && cli_str(*job, "task_id")[0])
            return 0;
        if (job_ended(state)) {
            serr_set(err, SERR_INVALID, "job %s ended before its shell started: %s %s", id, state,
                     cli_str(*job, "message"));
            json_decref(*job);
            return -1;
        }
        json_decref(*job);
        if (!said)
            fprintf(stderr, "Waiting for job %s to start...\n", id);
        said = true;
        usleep(POLL_US);
    }
    char *path = cli_path("/v1/jobs/%s", id);
    cli_call(cli, "DELETE", path, NULL, NULL, err);
    free(path);
    return serr_set(err, SERR_INVALID, "interrupted: job %s deleted", id);
}

/* A shell in the job's task: a terminal when stdin is one. */
static int open_shell(struct cli *cli, json_t *job)
{
    const char *login = getenv("SHELL");
    json_t *req = json_pack("{s:[s,s,s,s,s]}", "cmd", "/bin/sh", "-c", shell_script, "sh",
                            login ? login : "");
    bool tty = isatty(0);
    fprintf(stderr, "Connect to job %s (%s)\n", cli_str(job, "id"), cli_str(job, "task_id"));
    int code = cli_exec_run(cli, cli_str(job, "task_id"), req, true, tty);
    json_decref(req);
    return code;
}

/* Writes the shell's code to DONE_FILE, waits for the job to end. */
static int end_job(struct cli *cli, json_t *job, int code)
{
    char *script = xasprintf("echo %d > " DONE_FILE, code);
    json_t *req = json_pack("{s:[s,s,s]}", "cmd", "/bin/sh", "-c", script);
    free(script);
    int rc = cli_exec_run(cli, cli_str(job, "task_id"), req, false, false);
    json_decref(req);
    if (rc != 0) {
        cli_error("could not end job %s: it ends at its walltime", cli_str(job, "id"));
        return CLI_EXIT_ERROR;
    }
    for (;;) {
        json_t *now;
        struct serr err;
        if (get_job(cli, cli_str(job, "id"), &now, &err) < 0)
            return cli_fail(&err);
        bool ended = job_ended(cli_str(now, "state"));
        json_decref(now);
        if (ended)
            return code;
        usleep(POLL_US);
    }
}

/* -I: submits `body` with the holder as its command; returns the shell's code. */
static int interactive(struct cli *cli, json_t *body, bool oar)
{
    json_object_del(body, "interactive");
    json_object_set_new(body, "command", json_string(holder_command));
    if (json_object_get(body, "name") == NULL)
        json_object_set_new(body, "name", json_string("interactive"));
    json_t *out, *job;
    struct serr err;
    int rc = cli_call(cli, "POST", "/v1/jobs", body, &out, &err);
    if (rc < 0)
        return cli_fail(&err);
    char id[64];
    snprintf(id, sizeof(id), "%s", cli_str(out, "id"));
    json_decref(out);
    fprintf(stderr, oar ? "OAR_JOB_ID=%s\n" : "Job %s submitted\n", id);
    void (*old_int)(int) = signal(SIGINT, on_interrupt);
    void (*old_term)(int) = signal(SIGTERM, on_interrupt);
    rc = wait_running(cli, id, &job, &err);
    signal(SIGINT, old_int);
    signal(SIGTERM, old_term);
    if (rc < 0)
        return cli_fail(&err);
    int code = open_shell(cli, job);
    code = end_job(cli, job, code);
    json_decref(job);
    return code;
}

/* -C ID: a shell in the running job; returns the shell's code. */
static int connect_job(struct cli *cli, const char *id)
{
    json_t *job;
    struct serr err;
    if (get_job(cli, id, &job, &err) < 0)
        return cli_fail(&err);
    int code;
    if (strcmp(cli_str(job, "state"), "Running") != 0 || cli_str(job, "task_id")[0] == '\0') {
        cli_error("job %s is not running (%s): no shell to connect to", id,
                  cli_str(job, "state"));
        code = CLI_EXIT_ERROR;
    } else {
        code = open_shell(cli, job);
    }
    json_decref(job);
    return code;
}

int cli_job_shell(struct cli *cli, json_t *body, bool oar)
{
    int code;
    if (json_object_get(body, "connect")) {
        char *id = xstrdup(cli_str(body, "connect"));
        code = connect_job(cli, id);
        free(id);
    } else {
        code = interactive(cli, body, oar);
    }
    json_decref(body);
    return code;
}
