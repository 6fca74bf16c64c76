/* A task's volumes on this node (agent/volumes.h for the archives): made on
 * first use, or restored from the newest backup when this node lacks the
 * data and the backup dir has one (restore on first start: the volume moves
 * with its service). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/runtime.h"
#include "agent/volumes.h"
#include "base/json_get.h"
#include "base/log.h"
#include "base/util.h"

/* "<state>/volumes/NAME" (new). */
static char *vol_dir_of(const struct agent_env *env, const char *name)
{
    char *rel = xasprintf("volumes/%s", name);
    char *dir = agent_state_path(env, rel);
    free(rel);
    return dir;
}

char *ctr_volume_prepare(struct ctr *c, const char *name, struct serr *err)
{
    char *vol_dir = vol_dir_of(c->env, name);
    char *data = xasprintf("%s/_data", vol_dir);
    struct stat st;
    json_t *backups = NULL;
    int rc = 0;
    if (stat(data, &st) == 0 || c->env->backup_dir == NULL ||
        json_array_size(backups = volumes_list(c->env->backup_dir, name)) == 0) {
        rc = mkdir_p(data, 0755, err);
    } else {
        rc = mkdir_p(vol_dir, 0755, err);
        if (c->restores == NULL)
            c->restores = json_array();
        json_array_append_new(c->restores,
                              json_pack("{s:s, s:s, s:O}", "name", name, "vol_dir", vol_dir,
                                        "archive",
                                        json_object_get(json_array_get(backups, 0), "path")));
    }
    json_decref(backups);
    free(vol_dir);
    if (rc < 0) {
        free(data);
        return NULL;
    }
    return data;
}

char *ctr_volume_restoring(struct ctr *c)
{
    if (json_array_size(c->restores) == 0)
        return NULL;
    json_t *r = json_array_get(c->restores, 0);
    const char *archive = jstr(r, "archive"), *base = strrchr(archive, '/');
    return xasprintf("restoring volume %s from backup %s%s", jstr(r, "name"),
                     base ? base + 1 : archive,
                     json_array_size(c->restores) > 1 ? " (and others)" : "");
}

int ctr_volume_restore(struct ctr *c, struct serr *err)
{
    size_t i;
    json_t *r;
    json_array_foreach(c->restores, i, r)
    {
        if (volumes_restore(jstr(r, "archive"), jstr(r, "vol_dir"), false, err) < 0)
            return serr_wrap(err, "volume %s not restored, the task is not started",
                             jstr(r, "name"));
    }
    return 0;
}

/* ---- backups and restores by request or schedule ---- */

/* True when c's runtime spec binds the volume's data dir. */
static bool ctr_mounts(struct ctr *c, const char *data)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(c->rspec, "mounts"), i, m)
    {
        if (jstr_is(m, "source", data))
            return true;
    }
    return false;
}

/* A container of this node that uses the volume: running (for the hook), or
 * also one being created (a restore must wait for both); NULL when none. */
static struct ctr *user_of(struct agent *a, const char *name, bool running_only)
{
    char *dir = vol_dir_of(a->env, name), *data = xasprintf("%s/_data", dir);
    struct ctr *found = NULL;
    for (struct ctr *c = a->ctrs; c && !found; c = c->next)
        if (ctr_running(c) && ctr_mounts(c, data))
            found = c;
    for (struct ctr *c = a->ctrs; c && !found && !running_only; c = c->next)
        if (!c->released && (c->phase == PH_CREATING || (c->phase == PH_RUNNING && !c->exited)) &&
            ctr_mounts(c, data))
            found = c;
    free(data);
    free(dir);
    return found;
}

#define HOOK_TIMEOUT_MS (10 * 60 * 1000)
#define HOOK_OUTPUT_SHOWN 300

struct vjob {
    uv_work_t work;
    const struct agent_env *env; /* outlives the job (upstream.h) */
    struct volumes_sched *sched; /* a reference (backups), or NULL (restores) */
    bool restore;
    bool scheduled; /* a backup of the schedule, not one asked for */
    char *name, *vol_dir;
    char *archive;  /* restore: the backup's path */
    char ctr_id[32]; /* backup: the container the hook runs in, "" for none */
    json_t *result; /* set in the thread pool */
    struct serr err;
    agent_volume_cb cb;
    void *arg;
};

/* Backup state of the volumes this node holds, shared by the agent and the
 * jobs in flight (reference counted: a job may end after the agent). The
 * loop reads no file for it: what it needs of the backup dir (each volume's
 * policy and newest backup) is loaded in the thread pool, when a volume is
 * first seen and every POLICY_REFRESH_MS after, and policy.json re-read only
 * when its mtime changed. */
struct volumes_sched {
    int refs;
    /* NAME -> {"loading": bool, "loaded_at": mono ms (absent: never loaded),
     *          "mtime": ns of policy.json (0: none), "policy": object|null,
     *          "last": ms of the newest backup, "busy": bool,
     *          "unused_since": mono ms (0: used), "failure"?: {"error", "at"}} */
    json_t *state;
};

/* A policy changed by the API (volume rm + create) is seen this late. */
#define POLICY_REFRESH_MS 5000
/* A volume no task of this node used for this long is forgotten (with its
 * failure: a backup-failing alert resolves; the node now holding it reports). */
#define FORGET_UNUSED_MS 60000

static void sched_unref(struct volumes_sched *s)
{
    if (s && --s->refs == 0) {
        json_decref(s->state);
        free(s);
    }
}

/* Tail of the hook's output file, for the error message (new). */
static char *output_tail(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    if (read_file(path, &text, &len, NULL) < 0)
        return xstrdup("");
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    char *tail = xstrdup(len > HOOK_OUTPUT_SHOWN ? text + len - HOOK_OUTPUT_SHOWN : text);
    free(text);
    return tail;
}

/* Waits for the hook's crun exec; kills it past the timeout. */
static int wait_hook(pid_t child, int *status)
{
    int64_t give_up = mono_ms() + HOOK_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(child, status, WNOHANG);
        if (r == child)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (mono_ms() > give_up) {
            kill(child, SIGKILL);
            waitpid(child, status, 0);
            return -1;
        }
        usleep(20 * 1000);
    }
}

/* Runs the policy's hook as `/bin/sh -c HOOK` in the container (crun exec):
 * a database dumps itself into the volume before it is archived. */
static int run_hook(struct vjob *j, const char *hook, struct serr *err)
{
    char suffix[9];
    random_hex(suffix, 8);
    char *rel = xasprintf("volumes-hook-%s", suffix);
    char *files = agent_run_path(j->env, rel), *out = xasprintf("%s.out", files);
    free(rel);
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *argv[] = {"/bin/sh", "-c", hook, NULL};
    pid_t child = 0;
    int rc = fd < 0 ? serr_errno(err, "%s", out)
                    : runtime_exec_start(j->env->rt, j->ctr_id, argv, files, fd, &child, err);
    if (fd >= 0)
        close(fd);
    int status = 0;
    if (rc == 0 && wait_hook(child, &status) < 0)
        rc = serr_set(err, SERR_INTERNAL, "the backup hook did not end within %d minutes",
                      HOOK_TIMEOUT_MS / 60000);
    else if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *tail = output_tail(out);
        rc = serr_set(err, SERR_INTERNAL, "the backup hook failed (exit %d): %s",
                      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), tail);
        free(tail);
    }
    static const char *const suffixes[] = {"process.json", "pid", "out", NULL};
    for (int i = 0; suffixes[i]; i++) {
        char *p = xasprintf("%s.%s", files, suffixes[i]);
        unlink(p);
        free(p);
    }
    free(out);
    free(files);
    return rc;
}

static void job_work(uv_work_t *w)
{
    struct vjob *j = w->data;
    if (j->restore) {
        if (volumes_restore(j->archive, j->vol_dir, true, &j->err) == 0)
            j->result = json_pack("{s:s, s:s}", "name", j->name, "restored", j->archive);
        return;
    }
    json_t *policy = volumes_policy(j->env->backup_dir, j->name);
    const char *hook = jstr(policy, "hook");
    int keep = (int)jint(policy, "keep", 0);
    char *data = xasprintf("%s/_data", j->vol_dir);
    json_t *b = NULL;
    if ((hook == NULL || j->ctr_id[0] == '\0' || run_hook(j, hook, &j->err) == 0) &&
        volumes_archive(data, j->env->backup_dir, j->name, keep, &b, &j->err) == 0)
        j->result = b;
    free(data);
    json_decref(policy);
}

static void job_free(struct vjob *j)
{
    json_decref(j->result);
    free(j->name);
    free(j->vol_dir);
    free(j->archive);
    free(j);
}

/* A backup's end into the volume's state `st` (NULL when none): the
 * schedule's next try after the interval again (not at once, after a
 * failure); a scheduled backup's failure is kept, any success clears it. */
static void backup_ended(json_t *st, bool scheduled, json_t *result, const struct serr *err)
{
    if (st == NULL)
        return;
    if (result) {
        json_object_set(st, "last", json_object_get(result, "created_at"));
        json_object_del(st, "failure");
    }
    if (!scheduled)
        return;
    json_object_set_new(st, "busy", json_false());
    if (result == NULL) {
        json_object_set_new(st, "last", json_integer(now_ms()));
        json_object_set_new(st, "failure", json_pack("{s:s, s:I}", "error", err ? err->msg : "?",
                                                     "at", (json_int_t)now_ms()));
    }
}

static void job_done(uv_work_t *w, int status)
{
    struct vjob *j = w->data;
    if (status < 0 && j->result == NULL && j->err.msg[0] == '\0')
        serr_set(&j->err, SERR_INTERNAL, "cancelled");
    if (j->sched) {
        backup_ended(json_object_get(j->sched->state, j->name), j->scheduled, j->result,
                     j->result ? NULL : &j->err);
        sched_unref(j->sched);
    }
    if (j->cb)
        j->cb(j->arg, j->result, j->result ? NULL : &j->err);
    job_free(j);
}

static struct vjob *job_new(struct agent *a, const char *name, agent_volume_cb cb, void *arg)
{
    struct vjob *j = xcalloc(1, sizeof(*j));
    j->env = a->env;
    j->name = xstrdup(name);
    j->vol_dir = vol_dir_of(a->env, name);
    j->cb = cb;
    j->arg = arg;
    j->work.data = j;
    return j;
}

/* Checks that backups can be made or read here, and the data is here. */
static int check_here(struct agent *a, const char *name, bool data_needed, struct serr *err)
{
    if (a->env->backup_dir == NULL)
        return serr_set(err, SERR_INVALID, "volume backups need a backup directory: set "
                        "\"backup-dir\" in this node's daemon.json");
    char *dir = vol_dir_of(a->env, name), *data = xasprintf("%s/_data", dir);
    struct stat st;
    int rc = data_needed && stat(data, &st) < 0
                 ? serr_set(err, SERR_NOT_FOUND, "volume %s has no data on this node", name)
                 : 0;
    free(data);
    free(dir);
    return rc;
}

/* The policy (hook, retention) is read in the thread pool. */
static int start_backup(struct agent *a, const char *name, bool scheduled, agent_volume_cb cb,
                        void *arg, struct serr *err)
{
    if (check_here(a, name, true, err) < 0)
        return -1;
    struct vjob *j = job_new(a, name, cb, arg);
    struct ctr *user = user_of(a, name, true);
    if (user)
        snprintf(j->ctr_id, sizeof(j->ctr_id), "%s", user->id);
    j->scheduled = scheduled;
    if (a->volumes) {
        a->volumes->refs++;
        j->sched = a->volumes;
    }
    uv_queue_work(a->env->loop, &j->work, job_work, job_done);
    return 0;
}

int agent_volume_backup(struct agent *a, const char *name, agent_volume_cb cb, void *arg,
                        struct serr *err)
{
    return start_backup(a, name, false, cb, arg, err);
}

int agent_volume_restore(struct agent *a, const char *name, const char *from, agent_volume_cb cb,
                         void *arg, struct serr *err)
{
    if (check_here(a, name, false, err) < 0)
        return -1;
    struct ctr *user = user_of(a, name, false);
    if (user)
        return serr_set(err, SERR_CONFLICT, "volume %s is in use by %s %s on this node: scale "
                        "its service to 0 first", name, user->task_id ? "task" : "container",
                        user->task_id ? user->task_id : user->id);
    json_t *all = volumes_list(a->env->backup_dir, name), *pick = NULL;
    size_t i;
    json_t *b;
    json_array_foreach(all, i, b)
    {
        if (pick == NULL && (from == NULL || jstr_is(b, "name", from)))
            pick = b;
    }
    int rc = 0;
    if (pick == NULL)
        rc = serr_set(err, SERR_NOT_FOUND, from ? "volume %s has no backup %s" :
                      "volume %s has no backup%s", name, from ? from : "");
    else {
        struct vjob *j = job_new(a, name, cb, arg);
        j->restore = true;
        j->archive = xstrdup(jstr(pick, "path"));
        uv_queue_work(a->env->loop, &j->work, job_work, job_done);
    }
    json_decref(all);
    return rc;
}

/* ---- schedule ---- */

/* What the thread pool reads of the backup dir for one volume. */
struct vload {
    uv_work_t work;
    const struct agent_env *env;
    struct volumes_sched *sched; /* a reference */
    char *name;
    int64_t mtime;  /* in: the policy's known mtime; out: its mtime now (0: none) */
    bool changed;   /* out: policy (re)read */
    json_t *policy; /* out when changed: the policy, or NULL */
    bool want_last; /* in: the newest backup's time is not known yet */
    int64_t last;   /* out */
};

static int64_t mtime_ns(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static void load_work(uv_work_t *w)
{
    struct vload *l = w->data;
    char *path = xasprintf("%s/%s/policy.json", l->env->backup_dir, l->name);
    int64_t now = mtime_ns(path);
    free(path);
    if (now != l->mtime) {
        l->changed = true;
        l->mtime = now;
        l->policy = now ? volumes_policy(l->env->backup_dir, l->name) : NULL;
    }
    if (l->want_last) {
        json_t *all = volumes_list(l->env->backup_dir, l->name);
        l->last = jint(json_array_get(all, 0), "created_at", 0);
        json_decref(all);
    }
}

static void load_done(uv_work_t *w, int status)
{
    struct vload *l = w->data;
    json_t *st = json_object_get(l->sched->state, l->name);
    if (st && status == 0) {
        if (l->changed) {
            json_object_set_new(st, "mtime", json_integer(l->mtime));
            json_object_set(st, "policy", l->policy ? l->policy : json_null());
        }
        if (l->want_last)
            json_object_set_new(st, "last", json_integer(l->last));
        json_object_set_new(st, "loaded_at", json_integer(mono_ms()));
    }
    if (st)
        json_object_set_new(st, "loading", json_false());
    sched_unref(l->sched);
    json_decref(l->policy);
    free(l->name);
    free(l);
}

/* The volume's policy and newest backup were read once (load_done). */
static bool loaded(json_t *st)
{
    return json_object_get(st, "loaded_at") != NULL;
}

static void start_load(struct agent *a, const char *name, json_t *st)
{
    struct vload *l = xcalloc(1, sizeof(*l));
    l->env = a->env;
    l->sched = a->volumes;
    a->volumes->refs++;
    l->name = xstrdup(name);
    l->mtime = jint(st, "mtime", 0);
    l->want_last = !loaded(st);
    l->work.data = l;
    json_object_set_new(st, "loading", json_true());
    uv_queue_work(a->env->loop, &l->work, load_work, load_done);
}

static void scheduled_done(void *arg, json_t *result, const struct serr *err)
{
    char *name = arg;
    if (result)
        log_info("volume %s: scheduled backup %s", name, jstr(result, "name"));
    else
        log_warn("volume %s: scheduled backup failed: %s", name, err ? err->msg : "?");
    free(name);
}

/* One volume a running task mounts: its state loaded (or refreshed) in the
 * thread pool; backed up when its policy's interval passed since its newest
 * backup. */
static void maybe_backup(struct agent *a, const char *name)
{
    json_t *st = json_object_get(a->volumes->state, name);
    if (st == NULL)
        json_object_set_new(a->volumes->state, name, st = json_object());
    json_object_set_new(st, "unused_since", json_integer(0));
    if (jbool(st, "loading", false))
        return;
    if (!loaded(st) || mono_ms() - jint(st, "loaded_at", 0) >= POLICY_REFRESH_MS) {
        start_load(a, name, st);
        if (!loaded(st))
            return;
    }
    json_int_t interval_ms = jint(json_object_get(st, "policy"), "interval_s", 0) * 1000;
    if (interval_ms <= 0 || jbool(st, "busy", false) || now_ms() - jint(st, "last", 0) < interval_ms)
        return;
    json_object_set_new(st, "busy", json_true());
    struct serr err = {0};
    char *arg = xstrdup(name);
    if (start_backup(a, name, true, scheduled_done, arg, &err) < 0) {
        backup_ended(st, true, NULL, &err);
        scheduled_done(arg, NULL, &err);
    }
}

/* Volumes no running task mounted for FORGET_UNUSED_MS leave the state. */
static void forget_unused(struct volumes_sched *s, json_t *seen)
{
    int64_t now = mono_ms();
    void *tmp;
    const char *name;
    json_t *st;
    json_object_foreach_safe(s->state, tmp, name, st)
    {
        if (json_object_get(seen, name))
            continue;
        if (jint(st, "unused_since", 0) == 0)
            json_object_set_new(st, "unused_since", json_integer(now));
        else if (now - jint(st, "unused_since", 0) >= FORGET_UNUSED_MS &&
                 !jbool(st, "busy", false) && !jbool(st, "loading", false))
            json_object_del(s->state, name);
    }
}

static void sched_tick(uv_timer_t *t)
{
    struct agent *a = t->data;
    if (a->env->backup_dir == NULL)
        return;
    char *prefix = agent_state_path(a->env, "volumes/");
    size_t n = strlen(prefix);
    json_t *seen = json_object();
    for (struct ctr *c = a->ctrs; c; c = c->next) {
        if (!ctr_running(c) || c->task_id == NULL)
            continue;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(c->rspec, "mounts"), i, m)
        {
            const char *src = jstr(m, "source");
            const char *tail = src && strncmp(src, prefix, n) == 0 ? strchr(src + n, '/') : NULL;
            if (tail == NULL || strcmp(tail, "/_data") != 0)
                continue;
            char *name = xasprintf("%.*s", (int)(tail - src - n), src + n);
            if (json_object_get(seen, name) == NULL) {
                json_object_set_new(seen, name, json_true());
                maybe_backup(a, name);
            }
            free(name);
        }
    }
    forget_unused(a->volumes, seen);
    json_decref(seen);
    free(prefix);
}

json_t *agent_volumes_failures(struct agent *a)
{
    json_t *out = json_array();
    if (a->volumes == NULL)
        return out;
    const char *name;
    json_t *st;
    json_object_foreach(a->volumes->state, name, st)
    {
        json_t *f = json_object_get(st, "failure");
        if (f)
            json_array_append_new(out, json_pack("{s:s, s:O, s:O}", "volume", name, "error",
                                                 json_object_get(f, "error"), "at",
                                                 json_object_get(f, "at")));
    }
    return out;
}

void agent_volumes_start(struct agent *a)
{
    a->volumes = xcalloc(1, sizeof(*a->volumes));
    a->volumes->refs = 1;
    a->volumes->state = json_object();
    uv_timer_init(a->env->loop, &a->volumes_timer);
    a->volumes_timer.data = a;
    uv_timer_start(&a->volumes_timer, sched_tick, 1000, 1000);
}

void agent_volumes_stop(struct agent *a)
{
    sched_unref(a->volumes);
    a->volumes = NULL;
}
