/* The agent against a fake upstream (agent/upstream.h), as raft_fixture
 * fakes raft_io: the fake hands it tasks and images and records its reports.
 * No container is ever created: the paths covered are those that need no
 * runtime (tasks lost or no longer wanted, tasks rejected before creation,
 * a layer fetch that fails, adoption of a container that ended while the
 * daemon was stopped, a container adopted alive whose output is logged and
 * whose exit is reported, logs swept with their task). The runtime's state
 * directory is empty and its cgroups are v2 ones (crun's to remove), so
 * deleting a container touches nothing outside the test's directory. The
 * agent's answers to clients go to a fake reply (agent/reply.h). */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/agent_int.h"
#include "agent/image.h"
#include "agent/net.h"
#include "agent/reply.h"
#include "agent/runtime.h"
#include "agent/upstream.h"
#include "base/util.h"
#include "model/task.h"
#include "unit.h"

/* The fake cluster: what the upstream answers, what it was told. */
struct fake {
    json_t *tasks;   /* assigned_tasks' answer (NULL: not known yet) */
    json_t *deleted; /* deleted_tasks' answer, taken (NULL: not known) */
    int held_asks;   /* assigned_tasks calls with `held` */
    int syncs;       /* assigned_tasks calls */
    unsigned long long sync_key; /* sync_key's answer */
    json_t *images;  /* image id -> description */
    json_t *reports; /* [{"task", fields...}] in order */
    int fetches;     /* fetch_layers calls */
    int node_reads;  /* nodes calls */
    agent_layers_cb fetch_cb;
    void *fetch_arg;
};

/* With `held`, the ended tasks among those only (a manager's answer). */
static json_t *fake_assigned_tasks(void *data, json_t *held)
{
    struct fake *f = data;
    f->syncs++;
    if (f->tasks == NULL)
        return NULL;
    if (held == NULL)
        return json_deep_copy(f->tasks);
    f->held_asks++;
    json_t *out = json_array();
    size_t i, j;
    json_t *t, *h;
    json_array_foreach(f->tasks, i, t)
    {
        bool keep = !task_state_terminal(json_string_value(json_object_get(t, "state")));
        json_array_foreach(held, j, h)
        {
            if (json_equal(h, json_object_get(t, "id")))
                keep = true;
        }
        if (keep)
            json_array_append_new(out, json_deep_copy(t));
    }
    return out;
}

static json_t *fake_deleted_tasks(void *data)
{
    struct fake *f = data;
    json_t *taken = f->deleted;
    f->deleted = json_array();
    return taken;
}

static json_t *fake_image_get(void *data, const char *image_id)
{
    struct fake *f = data;
    return json_incref(json_object_get(f->images, image_id));
}

static void fake_report_task(void *data, const char *task_id, json_t *fields)
{
    struct fake *f = data;
    json_object_set_new(fields, "task", json_string(task_id));
    json_array_append_new(f->reports, fields);
}

static json_t *fake_nodes(void *data)
{
    struct fake *f = data;
    f->node_reads++;
    return NULL; /* outside a swarm: the agent sets no network up */
}

static unsigned long long fake_net_changes(void *data)
{
    return 7; /* never moves */
}

static unsigned long long fake_sync_key(void *data)
{
    struct fake *f = data;
    return f->sync_key;
}

static json_t *fake_mesh(void *data)
{
    return NULL;
}

static const char *fake_overlay(void *data)
{
    return NET_OVERLAY_DIRECT;
}

static void fake_fetch_layers(void *data, json_t *image, agent_layers_cb cb, void *arg)
{
    struct fake *f = data;
    f->fetches++;
    f->fetch_cb = cb;
    f->fetch_arg = arg;
}

static char *fake_secret_data(void *data, const char *table, const char *id, struct serr *err)
{
    serr_set(err, SERR_NOT_FOUND, "no %s here", table);
    return NULL;
}

static json_t *fake_run_container_spec(void *data, json_t *spec, struct serr *err)
{
    serr_set(err, SERR_NOT_FOUND, "no images here");
    return NULL;
}

/* One agent on its own loop, state and run directories under a temp dir. */
struct fixture {
    char dir[64];
    char *state_dir, *run_dir;
    uv_loop_t loop;
    struct runtime rt;
    struct image_store *images;
    struct agent_env env;
    struct fake fake;
    struct agent_upstream up;
    struct agent *agent;
};

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/shoal-agent-XXXXXX");
    CHECK(mkdtemp(fx->dir) != NULL);
    fx->state_dir = xasprintf("%s/state", fx->dir);
    fx->run_dir = xasprintf("%s/run", fx->dir);
    char *images = xasprintf("%s/images", fx->state_dir);
    CHECK(image_store_open(images, &fx->images, NULL) == 0);
    free(images);
    CHECK(uv_loop_init(&fx->loop) == 0);
    fx->rt.runtime_path = xstrdup("/bin/false");
    fx->rt.runtime_root = xasprintf("%s/runtime", fx->run_dir);
    fx->rt.containers_dir = xasprintf("%s/containers", fx->state_dir);
    fx->rt.cgroup_mode = CGROUP_V2;
    fx->env = (struct agent_env){.loop = &fx->loop,
                                 .rt = &fx->rt,
                                 .images = fx->images,
                                 .state_dir = fx->state_dir,
                                 .run_dir = fx->run_dir,
                                 .node_id = "node1",
                                 .bridge = "shoaltest0"};
    fx->fake.tasks = json_array();
    fx->fake.images = json_object();
    fx->fake.reports = json_array();
    fx->up = (struct agent_upstream){
        .data = &fx->fake,
        .assigned_tasks = fake_assigned_tasks,
        .image_get = fake_image_get,
        .report_task = fake_report_task,
        .nodes = fake_nodes,
        .mesh = fake_mesh,
        .overlay = fake_overlay,
        .net_changes = fake_net_changes,
        .sync_key = fake_sync_key,
        .fetch_layers = fake_fetch_layers,
        .secret_data = fake_secret_data,
        .run_container_spec = fake_run_container_spec,
    };
}

static void fixture_start(struct fixture *fx)
{
    CHECK(mkdir_p(fx->state_dir, 0700, NULL) == 0);
    CHECK(agent_start(&fx->env, &fx->up, &fx->agent, NULL) == 0);
}

/* Runs the loop until the thread pool's work and its callbacks are done. */
static void settle(struct fixture *fx)
{
    for (int i = 0; i < 200; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

/* Runs the loop until the fake holds `n` reports (5 s at most). */
static void run_until_reports(struct fixture *fx, size_t n)
{
    for (int i = 0; i < 2500 && json_array_size(fx->fake.reports) < n; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

static bool closed;

static void on_closed(void *arg)
{
    closed = true;
}

/* Closes the agent; the loop must close cleanly (no handle left). */
static void fixture_free(struct fixture *fx)
{
    closed = false;
    agent_close(fx->agent, on_closed, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    CHECK(closed);
    CHECK(uv_loop_close(&fx->loop) == 0);
    image_store_close(fx->images);
    free(fx->rt.runtime_path);
    free(fx->rt.runtime_root);
    free(fx->rt.containers_dir);
    json_decref(fx->fake.tasks);
    json_decref(fx->fake.deleted);
    json_decref(fx->fake.images);
    json_decref(fx->fake.reports);
    CHECK(rm_rf(fx->dir, NULL) == 0);
    free(fx->state_dir);
    free(fx->run_dir);
}

static void add_task(struct fixture *fx, const char *id, const char *desired, const char *state,
                     json_t *container)
{
    json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "service_id", "svc1", "name", id,
                          "desired_state", desired, "state", state);
    if (container)
        json_object_set_new(t, "container", container);
    json_array_append_new(fx->fake.tasks, t);
}

static json_t *report(struct fixture *fx, size_t i)
{
    return json_array_get(fx->fake.reports, i);
}

static const char *field(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

TEST(agent_reports_a_running_task_it_lacks_as_failed)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "t1", "running", "running", NULL);
    agent_sync(fx.agent);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "task"), "t1");
    CHECK_STR(field(report(&fx, 0), "state"), "failed");
    CHECK_STR(field(report(&fx, 0), "error"), "task: container not found on the node");
    CHECK(json_integer_value(json_object_get(report(&fx, 0), "state_at")) > 0);
    fixture_free(&fx);
}

TEST(agent_shuts_down_tasks_no_longer_wanted)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "t1", "shutdown", "assigned", NULL);
    add_task(&fx, "t2", "shutdown", "complete", NULL); /* terminal: nothing to say */
    add_task(&fx, "t3", "running", "pending", NULL);   /* not assigned yet: wait */
    agent_sync(fx.agent);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "task"), "t1");
    CHECK_STR(field(report(&fx, 0), "state"), "shutdown");
    fixture_free(&fx);
}

TEST(agent_changes_nothing_before_it_knows_its_tasks)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    json_decref(fx.fake.tasks);
    fx.fake.tasks = NULL; /* a worker that has not heard from the leader */
    char *log = xasprintf("%s/logs/gone.log", fx.run_dir);
    CHECK(write_file_atomic(log, "x\n", 2, false, NULL) == 0);
    agent_sync(fx.agent);
    CHECK(json_array_size(fx.fake.reports) == 0);
    CHECK(access(log, F_OK) == 0); /* not swept either */
    free(log);
    fixture_free(&fx);
}

/* The count alone skips nothing: the network's plan is skipped only once
 * one was found applied (agent_net_sync). */
TEST(agent_reads_the_nodes_each_sync_while_its_network_is_not_set_up)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    int before = fx.fake.node_reads;
    for (int i = 0; i < 3; i++)
        agent_sync(fx.agent);
    CHECK(fx.fake.node_reads == before + 3);
    fixture_free(&fx);
}

TEST(agent_rejects_a_task_whose_image_is_unknown)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "t1", "running", "assigned",
             json_pack("{s:s, s:s, s:[s]}", "image", "busybox:latest", "image_id", "sha256:i1",
                       "args", "true"));
    agent_sync(fx.agent);
    settle(&fx);
    CHECK(fx.fake.fetches == 0);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "state"), "rejected");
    CHECK_STR(field(report(&fx, 0), "error"), "No such image: busybox:latest");
    /* the store has the final report: the container is forgotten, nothing more is said */
    json_object_set_new(json_array_get(fx.fake.tasks, 0), "state", json_string("rejected"));
    agent_sync(fx.agent);
    json_t *users = json_object(), *keep = json_object();
    agent_layer_users(fx.agent, users, keep);
    CHECK(json_object_size(users) == 0);
    json_decref(users);
    json_decref(keep);
    CHECK(json_array_size(fx.fake.reports) == 1);
    fixture_free(&fx);
}

TEST(agent_rejects_a_task_without_a_command)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "t1", "running", "assigned",
             json_pack("{s:s, s:[]}", "image", "busybox:latest", "args"));
    agent_sync(fx.agent);
    settle(&fx);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "state"), "rejected");
    CHECK_STR(field(report(&fx, 0), "error"), "no command specified (the image has no Cmd)");
    fixture_free(&fx);
}

/* A host job has no image: its container is no user of the layer GC, whose
 * run each such container's end would otherwise ask for. */
TEST(agent_host_job_is_no_layer_user)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "t1", "running", "assigned",
             json_pack("{s:b, s:[s, s], s:[]}", "host", 1, "args", "/bin/sleep", "1", "env"));
    agent_sync(fx.agent);
    run_until_reports(&fx, 1);
    CHECK(json_array_size(fx.fake.reports) >= 1);
    CHECK_STR(field(report(&fx, 0), "state"), "running");
    json_t *users = json_object(), *keep = json_object();
    agent_layer_users(fx.agent, users, keep);
    CHECK(json_object_size(users) == 0 && json_object_size(keep) == 0);
    json_decref(users);
    json_decref(keep);
    fixture_free(&fx);
}

/* The first task's state in the fake store. */
static void set_state(struct fixture *fx, const char *state)
{
    json_object_set_new(json_array_get(fx->fake.tasks, 0), "state", json_string(state));
}

/* A task's container is released once deleted and its final report in the
 * store, whichever comes first, with no sync of its own after the delete:
 * that sync, after every batch job, read the node's tasks again (issue 14). */
static bool have_pidfd(void);

TEST(agent_releases_an_ended_task_without_a_sync_after_its_delete)
{
    if (!have_pidfd()) /* (valgrind) */
        return;
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    /* the store has the final report before the delete ends */
    add_task(&fx, "t1", "running", "assigned",
             json_pack("{s:b, s:[s], s:[]}", "host", 1, "args", "/bin/true", "env"));
    agent_sync(fx.agent);
    run_until_reports(&fx, 2); /* running, complete: the delete is queued, not done */
    CHECK_STR(field(report(&fx, 1), "state"), "complete");
    CHECK(fx.agent->ctrs != NULL && fx.agent->ctrs->phase != PH_DONE);
    set_state(&fx, "complete");
    agent_sync(fx.agent);
    int syncs = fx.fake.syncs;
    settle(&fx);
    CHECK(fx.agent->ctrs == NULL);
    CHECK(fx.fake.syncs == syncs);
    /* the delete ends first: the sync after the report's entry releases it */
    json_array_clear(fx.fake.tasks);
    json_array_clear(fx.fake.reports);
    add_task(&fx, "t2", "running", "assigned",
             json_pack("{s:b, s:[s], s:[]}", "host", 1, "args", "/bin/true", "env"));
    agent_sync(fx.agent);
    run_until_reports(&fx, 2);
    settle(&fx);
    CHECK(fx.agent->ctrs != NULL && fx.agent->ctrs->phase == PH_DONE);
    set_state(&fx, "complete");
    agent_sync(fx.agent);
    CHECK(fx.agent->ctrs == NULL);
    CHECK(json_array_size(fx.fake.reports) == 2);
    fixture_free(&fx);
}

/* The first task made a batch job's (`job_id`). */
static void set_job(struct fixture *fx)
{
    json_object_set_new(json_array_get(fx->fake.tasks, 0), "job_id", json_string("1"));
}

/* A batch job's `running` report is held AGENT_JOB_RUNNING_HOLD_MS: a job
 * that ends within it reports only its end, with its start time (one Raft
 * entry per short job fewer: issue 14); a longer one reports running, with
 * the start time and not the report's. */
TEST(agent_reports_a_short_jobs_end_only_with_its_start)
{
    if (!have_pidfd()) /* (valgrind) */
        return;
    struct fixture fx;
    fixture_init(&fx);
    fx.env.job_running_hold_ms = 10000; /* /bin/true ends within it, whatever the load */
    fixture_start(&fx);
    int64_t before = now_ms();
    add_task(&fx, "t1", "running", "assigned",
             json_pack("{s:b, s:[s], s:[]}", "host", 1, "args", "/bin/true", "env"));
    set_job(&fx);
    agent_sync(fx.agent);
    run_until_reports(&fx, 1);
    settle(&fx);
    CHECK(json_array_size(fx.fake.reports) == 1);
    json_t *end = report(&fx, 0);
    CHECK_STR(field(end, "state"), "complete");
    int64_t started = json_integer_value(json_object_get(end, "started_at"));
    CHECK(started >= before && started <= json_integer_value(json_object_get(end, "state_at")));
    json_array_clear(fx.fake.tasks);
    json_array_clear(fx.fake.reports);
    fx.env.job_running_hold_ms = 200; /* a `sleep 2` outlasts it */
    add_task(&fx, "t2", "running", "assigned",
             json_pack("{s:b, s:[s, s], s:[]}", "host", 1, "args", "/bin/sleep", "2", "env"));
    set_job(&fx);
    agent_sync(fx.agent);
    run_until_reports(&fx, 1);
    json_t *running = report(&fx, 0);
    CHECK_STR(field(running, "state"), "running");
    started = json_integer_value(json_object_get(running, "started_at"));
    /* sent at the hold's end: the report's time is not the start (less a
     * margin: a libuv timer counts from the loop's time, cached before) */
    CHECK(json_integer_value(json_object_get(running, "state_at")) - started >= 150);
    set_state(&fx, "running");
    agent_sync(fx.agent);
    run_until_reports(&fx, 2);
    CHECK_STR(field(report(&fx, 1), "state"), "complete");
    CHECK(json_object_get(report(&fx, 1), "started_at") == NULL); /* the running report's stays */
    fixture_free(&fx);
}

/* After an applied entry the agent syncs only when the key of what a sync
 * reads moved (or is not known): a batch job's state changes none of it. */
TEST(agent_syncs_after_an_entry_only_when_its_tasks_may_have_changed)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    fx.fake.sync_key = 5;
    int64_t first = mono_ms();
    agent_sync_if_changed(fx.agent);
    int syncs = fx.fake.syncs;
    CHECK(syncs >= 1);
    add_task(&fx, "t1", "running", "running", NULL); /* known to the fake, key unchanged */
    agent_sync_if_changed(fx.agent);
    if (mono_ms() - first < 1000) { /* (past 1 s it syncs all the same) */
        CHECK(fx.fake.syncs == syncs);
        CHECK(json_array_size(fx.fake.reports) == 0);
    }
    syncs = fx.fake.syncs;
    json_array_clear(fx.fake.reports);
    fx.fake.sync_key = 6;
    agent_sync_if_changed(fx.agent);
    CHECK(fx.fake.syncs == syncs + 1);
    CHECK(json_array_size(fx.fake.reports) == 1); /* t1 has no container here: lost */
    CHECK_STR(field(report(&fx, 0), "state"), "failed");
    agent_sync(fx.agent); /* the agent's own events sync whatever the key */
    CHECK(fx.fake.syncs == syncs + 2);
    fx.fake.sync_key = 0; /* not known (a worker): every time */
    agent_sync_if_changed(fx.agent);
    agent_sync_if_changed(fx.agent);
    CHECK(fx.fake.syncs == syncs + 4);
    fixture_free(&fx);
}

TEST(agent_fetches_missing_layers_and_reports_a_failed_fetch)
{
    struct fixture fx;
    fixture_init(&fx);
    json_object_set_new(fx.fake.images, "sha256:i1",
                        json_pack("{s:s, s:[s]}", "id", "sha256:i1", "layers", "sha256:l1"));
    fixture_start(&fx);
    add_task(&fx, "t1", "running", "assigned",
             json_pack("{s:s, s:s, s:[s]}", "image", "busybox:latest", "image_id", "sha256:i1",
                       "args", "true"));
    agent_sync(fx.agent);
    CHECK(fx.fake.fetches == 1);
    agent_sync(fx.agent); /* the fetch is in flight: not asked again */
    CHECK(fx.fake.fetches == 1);
    CHECK(json_array_size(fx.fake.reports) == 0);
    json_t *users = json_object(), *keep = json_object();
    agent_layer_users(fx.agent, users, keep);
    CHECK(json_object_get(users, "t1") != NULL); /* its container holds the layer GC off */
    json_decref(users);
    json_decref(keep);
    fx.fake.fetch_cb(fx.fake.fetch_arg, -1, "no manager has layer sha256:l1");
    settle(&fx);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "state"), "rejected");
    CHECK_STR(field(report(&fx, 0), "error"), "no manager has layer sha256:l1");
    fixture_free(&fx);
}

/* The pid of a process that ran and is gone. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    CHECK(waitpid(pid, NULL, 0) == pid);
    return pid;
}

TEST(agent_adopts_a_container_that_ended_while_stopped_as_failed)
{
    pid_t pid = dead_pid(); /* first: the child would carry copies of what is allocated */
    struct fixture fx;
    fixture_init(&fx);
    char *dir = xasprintf("%s/agent", fx.state_dir);
    CHECK(mkdir_p(dir, 0700, NULL) == 0);
    char *rec = xasprintf("%s/c1.json", dir);
    char *text = xasprintf("{\"id\":\"c1\",\"task_id\":\"t1\",\"service_id\":\"svc1\",\"name\":"
                           "\"web.1\",\"image\":\"busybox\",\"pid\":%d,\"start_time\":1,"
                           "\"local\":false,\"rm\":false,\"created_at\":1,\"grace_ms\":1000}",
                           (int)pid);
    CHECK(write_file_atomic(rec, text, strlen(text), false, NULL) == 0);
    add_task(&fx, "t1", "running", "running", NULL);
    fixture_start(&fx);
    CHECK(json_array_size(fx.fake.reports) == 1); /* at start, before any sync */
    CHECK_STR(field(report(&fx, 0), "task"), "t1");
    CHECK_STR(field(report(&fx, 0), "state"), "failed");
    CHECK_STR(field(report(&fx, 0), "error"),
              "task: exited while the daemon was stopped (exit code unknown)");
    settle(&fx);
    CHECK(access(rec, F_OK) != 0); /* its record went with the container */
    agent_sync(fx.agent);          /* the store has not taken the report yet: no second one */
    CHECK(json_array_size(fx.fake.reports) == 1);
    free(text);
    free(rec);
    free(dir);
    fixture_free(&fx);
}

/* A stand-in for a container that survived a daemon restart: it holds its
 * output FIFO read-write (as containers do), says it is ready, waits for the
 * word, writes a line and exits with code 3. */
static pid_t fake_container(const char *fifo, int *go_fd)
{
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(go[1]); /* the test gone, read() ends: no process left behind */
        int out = open(fifo, O_RDWR);
        char ch;
        if (out < 0 || write(ready[1], "r", 1) != 1 || read(go[0], &ch, 1) != 1)
            _exit(99);
        if (write(out, "hello\n", 6) != 6)
            _exit(98);
        _exit(3);
    }
    char ch;
    CHECK(read(ready[0], &ch, 1) == 1);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    *go_fd = go[1];
    return pid;
}

/* A live fake container c1 of task t1 with its record, as a daemon
 * stopped before the agent's start left them; `go` lets it write and exit. */
struct adoptee {
    char *dir, *fifo, *rec;
    int go;
};

static void adoptee_make(struct fixture *fx, struct adoptee *ad, int created_at)
{
    ad->dir = xasprintf("%s/agent", fx->state_dir);
    CHECK(mkdir_p(ad->dir, 0700, NULL) == 0);
    ad->fifo = xasprintf("%s/c1.fifo", ad->dir);
    CHECK(mkfifo(ad->fifo, 0600) == 0);
    pid_t pid = fake_container(ad->fifo, &ad->go);
    ad->rec = xasprintf("%s/c1.json", ad->dir);
    char *text = xasprintf("{\"id\":\"c1\",\"task_id\":\"t1\",\"name\":\"web.1\",\"pid\":%d,"
                           "\"start_time\":%lld,\"created_at\":%d,\"grace_ms\":1000}",
                           (int)pid, proc_start_time(pid), created_at);
    CHECK(write_file_atomic(ad->rec, text, strlen(text), false, NULL) == 0);
    free(text);
}

static void adoptee_free(struct adoptee *ad)
{
    close(ad->go);
    free(ad->rec);
    free(ad->fifo);
    free(ad->dir);
}

/* The agent watches containers through pidfds: not under valgrind, which
 * lacks pidfd_open (the test then passes without running). */
static bool have_pidfd(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

TEST(agent_adopts_a_live_container_logs_its_output_and_reports_its_exit)
{
    if (!have_pidfd())
        return;
    struct fixture fx;
    fixture_init(&fx);
    struct adoptee ad;
    adoptee_make(&fx, &ad, 1);
    add_task(&fx, "t1", "running", "running", NULL);
    fixture_start(&fx);
    agent_sync(fx.agent);
    CHECK(json_array_size(fx.fake.reports) == 0); /* found running: nothing to say */
    json_t *running = agent_running_tasks(fx.agent);
    CHECK(json_array_size(running) == 1);
    CHECK_STR(field(json_array_get(running, 0), "id"), "t1");
    json_decref(running);

    CHECK(write(ad.go, "g", 1) == 1);
    run_until_reports(&fx, 1);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "state"), "failed");
    CHECK_STR(field(report(&fx, 0), "error"), "task: non-zero exit (3)");
    CHECK(json_integer_value(json_object_get(report(&fx, 0), "exit_code")) == 3);
    char *log = xasprintf("%s/logs/c1.log", fx.run_dir), *logged = NULL;
    CHECK(read_file(log, &logged, NULL, NULL) == 0);
    CHECK(strlen(logged) == LOG_TS_LEN + 7 && strcmp(logged + LOG_TS_LEN, " hello\n") == 0);
    settle(&fx);
    CHECK(access(ad.rec, F_OK) != 0 && access(ad.fifo, F_OK) != 0); /* deleted with it */
    free(logged);
    free(log);
    adoptee_free(&ad);
    fixture_free(&fx);
}

/* A container adopted after a restart whose task the store still has
 * assigned (the daemon died while its `running` report was held) is
 * reported running by the first sync that sees it so. */
TEST(agent_reports_an_adopted_container_running_when_its_task_is_still_assigned)
{
    if (!have_pidfd())
        return;
    struct fixture fx;
    fixture_init(&fx);
    struct adoptee ad;
    adoptee_make(&fx, &ad, 7);
    add_task(&fx, "t1", "running", "assigned", NULL);
    set_job(&fx);
    fixture_start(&fx);
    agent_sync(fx.agent);
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK_STR(field(report(&fx, 0), "state"), "running");
    CHECK(json_integer_value(json_object_get(report(&fx, 0), "started_at")) == 7);
    agent_sync(fx.agent); /* the report's entry not applied yet: not sent twice */
    CHECK(json_array_size(fx.fake.reports) == 1);
    CHECK(write(ad.go, "g", 1) == 1);
    run_until_reports(&fx, 2);
    CHECK_STR(field(report(&fx, 1), "state"), "failed");
    CHECK(json_object_get(report(&fx, 1), "started_at") == NULL); /* the running report's */
    settle(&fx);
    adoptee_free(&ad);
    fixture_free(&fx);
}

TEST(agent_sweeps_the_logs_of_tasks_gone)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "t1", "shutdown", "complete", NULL);
    char *kept = xasprintf("%s/logs/t1.log", fx.run_dir);
    char *gone = xasprintf("%s/logs/t9.log", fx.run_dir);
    char *gone_old = xasprintf("%s/logs/t9.log.1", fx.run_dir);
    CHECK(write_file_atomic(kept, "x\n", 2, false, NULL) == 0);
    CHECK(write_file_atomic(gone, "x\n", 2, false, NULL) == 0);
    CHECK(write_file_atomic(gone_old, "x\n", 2, false, NULL) == 0);
    agent_sync(fx.agent);
    CHECK(access(kept, F_OK) == 0);
    CHECK(access(gone, F_OK) != 0 && access(gone_old, F_OK) != 0);
    free(kept);
    free(gone);
    free(gone_old);
    fixture_free(&fx);
}

/* Given the deletions (a manager's store), a sync asks for the tasks held
 * and going on only, reads no logs directory, and removes the logs of the
 * tasks deleted at once; not known (the first sync): a full sweep. */
TEST(agent_removes_the_logs_of_deleted_tasks_at_once)
{
    struct fixture fx;
    fixture_init(&fx);
    fx.up.deleted_tasks = fake_deleted_tasks;
    fixture_start(&fx);
    add_task(&fx, "t1", "shutdown", "complete", NULL);
    add_task(&fx, "t2", "shutdown", "complete", NULL);
    char *t1 = xasprintf("%s/logs/t1.log", fx.run_dir);
    char *t1_old = xasprintf("%s/logs/t1.log.1", fx.run_dir);
    char *t2 = xasprintf("%s/logs/t2.log", fx.run_dir);
    char *t9 = xasprintf("%s/logs/t9.log", fx.run_dir);
    CHECK(write_file_atomic(t1, "x\n", 2, false, NULL) == 0);
    CHECK(write_file_atomic(t1_old, "x\n", 2, false, NULL) == 0);
    CHECK(write_file_atomic(t2, "x\n", 2, false, NULL) == 0);
    CHECK(write_file_atomic(t9, "x\n", 2, false, NULL) == 0);
    agent_sync(fx.agent); /* not known yet: the whole list, a full sweep */
    CHECK(fx.fake.held_asks == 0);
    CHECK(access(t1, F_OK) == 0 && access(t2, F_OK) == 0 && access(t9, F_OK) != 0);
    /* t1 leaves the store: its logs go, t2's stay though the sync no longer sees it */
    json_array_remove(fx.fake.tasks, 0);
    json_array_append_new(fx.fake.deleted, json_string("t1"));
    agent_sync(fx.agent);
    CHECK(fx.fake.held_asks == 1);
    CHECK(access(t1, F_OK) != 0 && access(t1_old, F_OK) != 0);
    CHECK(access(t2, F_OK) == 0);
    free(t1);
    free(t1_old);
    free(t2);
    free(t9);
    fixture_free(&fx);
}

/* A client of the agent: what it was answered. */
struct fake_reply {
    struct agent_reply r;
    int status; /* 0 until answered; streams: 200 */
    char error[256];
    char *text; /* the JSON answer or the stream's content */
    bool ended;
};

static void fr_respond(struct agent_reply *r, int status, const char *json)
{
    struct fake_reply *f = r->data;
    f->status = status;
    f->text = xstrdup(json);
    f->ended = true;
}

static void fr_fail(struct agent_reply *r, const struct serr *err)
{
    struct fake_reply *f = r->data;
    f->status = 400;
    snprintf(f->error, sizeof(f->error), "%s", err->msg);
    f->ended = true;
}

static void fr_stream_start(struct agent_reply *r, const char *content_type)
{
    struct fake_reply *f = r->data;
    f->status = 200;
    f->text = xstrdup("");
}

static void fr_stream_write(struct agent_reply *r, const char *buf, size_t len)
{
    struct fake_reply *f = r->data;
    char *more = xasprintf("%s%.*s", f->text, (int)len, buf);
    free(f->text);
    f->text = more;
}

static void fr_stream_end(struct agent_reply *r)
{
    struct fake_reply *f = r->data;
    f->ended = true;
}

static void fake_reply_init(struct fake_reply *f)
{
    memset(f, 0, sizeof(*f));
    f->r = (struct agent_reply){.data = f,
                                .respond = fr_respond,
                                .fail = fr_fail,
                                .stream_start = fr_stream_start,
                                .stream_write = fr_stream_write,
                                .stream_end = fr_stream_end};
}

TEST(agent_answers_clients_through_a_reply)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    struct fake_reply rm;
    fake_reply_init(&rm);
    agent_remove_local(fx.agent, "nope", 1, &rm.r);
    CHECK(rm.ended && rm.status == 400);
    CHECK_STR(rm.error, "No such container: nope");

    struct fake_reply run;
    fake_reply_init(&run);
    json_t *body = json_pack("{s:s, s:[s]}", "image", "busybox", "args", "true");
    agent_run(fx.agent, &run.r, body); /* the upstream resolves no image */
    json_decref(body);
    CHECK(run.ended && run.status == 400);
    CHECK_STR(run.error, "no images here");
    fixture_free(&fx);
}

TEST(agent_streams_a_tasks_log_lines_with_their_time)
{
    struct fixture fx;
    fixture_init(&fx);
    fixture_start(&fx);
    add_task(&fx, "ab12", "shutdown", "complete", NULL); /* its logs stay */
    char *log = xasprintf("%s/logs/ab12.log", fx.run_dir);
    const char *text = "2026-01-02T03:04:05.000000001Z one\n"
                       "2026-01-02T03:04:06.000000001Z two\n"
                       "2026-01-02T03:04:07.000000001Z three\n";
    CHECK(write_file_atomic(log, text, strlen(text), false, NULL) == 0);
    struct fake_reply out;
    fake_reply_init(&out);
    json_t *body = json_pack("{s:s, s:[s], s:i}", "service", "c0ffee", "tasks", "ab12", "tail", 2);
    agent_node_logs(fx.agent, &out.r, body);
    json_decref(body);
    CHECK(out.ended && out.status == 200);
    CHECK_STR(out.text, "2026-01-02T03:04:06.000000001Z ab12 two\n"
                        "2026-01-02T03:04:07.000000001Z ab12 three\n");
    free(out.text);
    free(log);
    fixture_free(&fx);
}
