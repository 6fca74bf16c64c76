/* Docker's verbs on one container of this node: stop, kill, start, restart
 * (local containers of `shoal run`; stop and kill of a task's container
 * too, whose service then replaces it), inspect and stats. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/metrics.h"
#include "agent/reply.h"
#include "agent/runtime.h"
#include "base/util.h"
#include "model/cidr.h"
#include "model/container_opts.h"

/* The one container whose id starts with `prefix` (`ps` shows 12
 * characters of it, and docker takes any unique prefix); NULL when none or
 * more than one (*ambiguous) do. */
static struct ctr *ctr_find_prefix(struct agent *a, const char *prefix, bool *ambiguous)
{
    size_t n = strlen(prefix);
    struct ctr *found = NULL;
    *ambiguous = false;
    for (struct ctr *c = a->ctrs; n > 0 && c; c = c->next) {
        if (ctr_removing(c) || strncmp(c->id, prefix, n) != 0)
            continue;
        if (found) {
            *ambiguous = true;
            return NULL;
        }
        found = c;
    }
    return found;
}

/* By id, local name, task id, a task container's name as `ps` shows it
 * (NAME.TASKID), or a unique prefix of the id. */
static struct ctr *ctr_resolve(struct agent *a, const char *ref, bool *ambiguous)
{
    struct ctr *c = ctr_find_shown(a, ref);
    *ambiguous = false;
    for (struct ctr *t = a->ctrs; c == NULL && t; t = t->next) {
        size_t n = t->name ? strlen(t->name) : 0;
        if (ctr_removing(t))
            continue;
        if (t->task_id && n > 0 && strncmp(ref, t->name, n) == 0 && ref[n] == '.' &&
            strcmp(ref + n + 1, t->task_id) == 0)
            c = t;
    }
    return c ? c : ctr_find_prefix(a, ref, ambiguous);
}

struct ctr *ctr_lookup(struct agent *a, const char *ref)
{
    bool ambiguous;
    return ctr_resolve(a, ref, &ambiguous);
}

struct ctr *ctr_find_or_fail(struct agent *a, const char *ref, struct serr *err)
{
    bool ambiguous;
    struct ctr *c = ctr_resolve(a, ref, &ambiguous);
    if (ambiguous)
        serr_set(err, SERR_INVALID, "multiple containers match the prefix %s: give more of the id",
                 ref);
    else if (c == NULL)
        serr_set(err, SERR_NOT_FOUND, "No such container: %s", ref);
    return c;
}

/* The name `ps` shows: a task's container is NAME.SLOT.TASKID (new string). */
static char *ctr_display_name(const struct ctr *c)
{
    const char *name = c->name ? c->name : c->id;
    return c->task_id ? xasprintf("%s.%s", name, c->task_id) : xstrdup(name);
}

/* ---- stop ---- */

static int ctr_relaunch(struct ctr *c, struct serr *err);

void ctr_answer_stopper(struct ctr *c)
{
    struct agent_reply *r = reply_take(&c->stop_reply);
    if (r == NULL)
        return;
    bool restart = c->restart_after_stop;
    c->restart_after_stop = false;
    struct serr err = {0};
    if (!restart) {
        r->respond(r, 200, "{}");
    } else if (ctr_relaunch(c, &err) < 0) {
        r->fail(r, &err);
    } else {
        reply_wait(&c->start_reply, r);
    }
}

/* 0: answered (or to be answered by ctr_answer_stopper); -1: err. */
static int stop_ctr(struct agent *a, const char *ref, int timeout_s, bool restart,
                    struct agent_reply *r, struct serr *err)
{
    struct ctr *c = ctr_find_or_fail(a, ref, err);
    if (c == NULL)
        return -1;
    if (restart && !c->local)
        return serr_set(err, SERR_CONFLICT,
                        "container %s belongs to a task: its service "
                        "starts a new one (service update --force)",
                        ref);
    if (c->stop_reply || c->rm_reply)
        return serr_set(err, SERR_CONFLICT, "container %s is already being stopped", ref);
    if (timeout_s >= 0)
        c->grace_ms = (int64_t)timeout_s * 1000;
    reply_wait(&c->stop_reply, r);
    c->restart_after_stop = restart;
    if (c->phase == PH_DONE)
        ctr_answer_stopper(c); /* stopped already: a no-op, as Docker's (restart: a start) */
    else
        ctr_stop(c); /* answered once it ended */
    return 0;
}

void agent_ctr_stop(struct agent *a, const char *ref, int timeout_s, bool restart,
                    struct agent_reply *r)
{
    struct serr err = {0};
    if (stop_ctr(a, ref, timeout_s, restart, r, &err) < 0)
        r->fail(r, &err);
}

/* ---- kill ---- */

int agent_ctr_kill(struct agent *a, const char *ref, const char *signal, struct serr *err)
{
    int signo = container_signal_number(signal ? signal : "KILL");
    if (signo < 0)
        return serr_set(err, SERR_INVALID, "invalid signal: %s", signal);
    struct ctr *c = ctr_find_or_fail(a, ref, err);
    if (c == NULL)
        return -1;
    if (!ctr_running(c))
        return serr_set(err, SERR_CONFLICT, "Container %s is not running", ref);
    /* not a stop: a later `stop` still kills it past its grace period, and a
     * task whose container this ends fails (its service replaces it) */
    ctr_signal(c, signo);
    return 0;
}

/* ---- start ---- */

/* The container's state of its last run is dropped and it is created again
 * from the spec it was run with, as `docker start` (the runtime's container
 * was deleted when it ended). */
static void ctr_reset(struct ctr *c)
{
    ctr_free_run_state(c);
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->log_fd >= 0)
        close(c->log_fd);
    c->pidfd = c->log_fd = -1;
    c->pid = 0;
    c->start_time = 0;
    c->addr = 0;
    c->bridge[0] = '\0';
    c->exit_code = -1;
    c->created = c->exited = c->out_eof = c->stop_requested = false;
    c->interactive = false; /* nobody attached: no stdin */
    c->session[0] = '\0';
    c->at_line_start = true;
    c->started_at = c->finished_at = 0;
}

static int ctr_relaunch(struct ctr *c, struct serr *err)
{
    if (!c->local)
        return serr_set(err, SERR_CONFLICT,
                        "container %s belongs to a task: its service starts "
                        "its containers",
                        c->name);
    if (c->run_spec == NULL) /* run by a daemon older than `shoal start` */
        return serr_set(err, SERR_CONFLICT,
                        "container %s cannot be started again: its spec "
                        "was not kept",
                        c->name);
    if (c->phase != PH_DONE || c->closing > 0 || c->working)
        return serr_set(err, SERR_CONFLICT, "container %s is still stopping: try again", c->name);
    size_t i;
    json_t *p;
    json_array_foreach(c->ports, i, p)
    {
        struct ctr *other = ctr_port_taken(c->a, p);
        if (other)
            return serr_set(err, SERR_CONFLICT, "port %lld is already published by container %s",
                            (long long)json_integer_value(json_object_get(p, "published")),
                            other->name);
    }
    ctr_reset(c);
    if (ctr_launch(c, c->run_spec, err) < 0) {
        c->phase = PH_DONE;
        c->exited = c->out_eof = true;
        c->error = xstrdup(err->msg);
        return -1;
    }
    if (c->ports)
        agent_kick(c->a); /* its ports are published again (agent_net.c) */
    return 0;
}

void agent_ctr_start(struct agent *a, const char *ref, struct agent_reply *r)
{
    struct serr err = {0};
    struct ctr *c = ctr_find_or_fail(a, ref, &err);
    if (c && (c->phase == PH_RUNNING || c->phase == PH_CREATING) && !c->stop_requested &&
        !c->exited) {
        r->respond(r, 200, "{}"); /* running already: a no-op, as Docker's */
        return;
    }
    if (c && c->start_reply)
        serr_set(&err, SERR_CONFLICT, "container %s is already being started", ref);
    else if (c && ctr_relaunch(c, &err) == 0) {
        reply_wait(&c->start_reply, r);
        return;
    }
    r->fail(r, &err);
}

/* ---- inspect ---- */

static const char *ctr_state_name(const struct ctr *c)
{
    static const char *const phases[] = {"created", "running", "exited", "exited"};
    return phases[c->phase];
}

static json_t *ctr_network(const struct ctr *c)
{
    if (c->addr == 0)
        return json_pack("{s:s}", "mode",
                         c->rspec && json_object_get(c->rspec, "netns") ? "bridge" : "host");
    char addr[16];
    net_format_ip(c->addr, addr);
    return json_pack("{s:s, s:s, s:s}", "mode", "bridge", "address", addr, "bridge", c->bridge);
}

static json_t *or_null(json_t *v)
{
    return v ? json_incref(v) : json_null();
}

json_t *agent_ctr_inspect(struct agent *a, const char *ref, struct serr *err)
{
    struct ctr *c = ctr_find_or_fail(a, ref, err);
    if (c == NULL)
        return NULL;
    char *name = ctr_display_name(c);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "id", c->id, "name", name,
                          "image", c->image ? c->image : "", "state", ctr_state_name(c), "running",
                          ctr_running(c), "created_at", (json_int_t)c->created_at, "started_at",
                          (json_int_t)c->started_at, "finished_at", (json_int_t)c->finished_at);
    free(name);
    json_object_set_new(o, "pid", json_integer(ctr_running(c) ? c->pid : 0));
    json_object_set_new(o, "tty", json_boolean(c->tty));
    json_object_set_new(o, "interactive", json_boolean(c->interactive));
    json_object_set_new(o, "exit_code", c->exited ? json_integer(c->exit_code) : json_null());
    json_object_set_new(o, "error", c->error ? json_string(c->error) : json_null());
    json_object_set_new(o, "command", or_null(json_object_get(c->rspec, "args")));
    json_object_set_new(o, "env", or_null(json_object_get(c->rspec, "env")));
    json_object_set_new(o, "mounts", or_null(json_object_get(c->rspec, "mounts")));
    json_object_set_new(o, "network", ctr_network(c));
    json_object_set_new(o, "ports", c->ports ? json_incref(c->ports) : json_array());
    json_object_set_new(o, "stop_grace_period_ms", json_integer(c->grace_ms));
    json_object_set_new(o, "stop_signal", json_integer(c->stop_signal ? c->stop_signal : SIGTERM));
    json_object_set_new(o, "auto_remove", json_boolean(c->rm));
    json_object_set_new(o, "task_id", c->task_id ? json_string(c->task_id) : json_null());
    json_object_set_new(o, "service_id", c->service_id ? json_string(c->service_id) : json_null());
    return o;
}

/* ---- stats ---- */

/* The machine's memory: the limit of a container without one, as Docker's. */
static uint64_t host_memory(void)
{
    char *text = NULL;
    uint64_t total = 0, used = 0;
    if (read_file("/proc/meminfo", &text, NULL, NULL) == 0)
        metrics_parse_meminfo(text, &total, &used);
    free(text);
    return total;
}

/* host_mem: the machine's memory, the limit shown for a container without one. */
static json_t *ctr_stats(struct ctr *c, uint64_t host_mem)
{
    uint64_t cpu_ns = 0, mem = 0, limit = 0, pids = 0;
    if (ctr_running(c) && !c->host) {
        runtime_stats(c->env->rt, c->id, &cpu_ns, &mem);
        runtime_limits(c->env->rt, c->id, &limit, &pids);
    }
    if (limit == 0)
        limit = host_mem;
    char *name = ctr_display_name(c);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id", c->id, "name", name,
                          "state", ctr_state_name(c), "cpu_ns", (json_int_t)cpu_ns, "read_ns",
                          (json_int_t)mono_ms() * 1000000, "mem_bytes", (json_int_t)mem,
                          "mem_limit", (json_int_t)limit, "pids", (json_int_t)pids);
    free(name);
    return o;
}

json_t *agent_ctr_stats(struct agent *a, const char *ref, bool all, struct serr *err)
{
    uint64_t host_mem = host_memory(); /* once, not once per container */
    if (ref) {
        struct ctr *c = ctr_find_or_fail(a, ref, err);
        return c ? json_pack("[o]", ctr_stats(c, host_mem)) : NULL;
    }
    json_t *out = json_array();
    for (struct ctr *c = a->ctrs; c; c = c->next)
        if ((all || ctr_running(c)) && (c->local || c->task_id) && !ctr_removing(c))
            json_array_append_new(out, ctr_stats(c, host_mem));
    return out;
}
