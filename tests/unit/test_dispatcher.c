/* The dispatcher alone: JSON heartbeats in, assignments out, over a real
 * store and a fake host (no cluster: the heartbeats here propose nothing). */
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"
#include "manager/dispatcher.h"
#include "store/store.h"
#include "table.h"
#include "unit.h"

struct fake_host {
    struct store *store;
    char signed_for[64]; /* "NODE ROLE" of the last CSR signed */
    int secrets_asked;
};

static struct store *fake_store(void *data)
{
    return ((struct fake_host *)data)->store;
}

static struct cluster *fake_cluster(void *data)
{
    return NULL;
}

static json_t *fake_managers(void *data)
{
    return json_pack("[s]", "10.0.0.1:2377");
}

static json_t *fake_nodes(void *data)
{
    return json_pack("[{s:s, s:s, s:s}]", "id", "n2", "addr", "10.0.0.2", "subnet",
                     "10.10.2.0/24");
}

static const char *fake_leader(void *data)
{
    return "10.0.0.1:2377";
}

static const char *fake_overlay(void *data)
{
    return "direct";
}

static int fake_sign(void *data, const char *csr, const char *node_id, const char *role,
                     char **cert, struct serr *err)
{
    struct fake_host *f = data;
    snprintf(f->signed_for, sizeof(f->signed_for), "%s %s", node_id, role);
    *cert = strdup("CERT");
    return 0;
}

static void fake_key_offer(void *data, json_t *reply)
{
    json_object_set_new(reply, "secrets_key", json_string("KEY"));
}

static void fake_secrets(void *data, json_t *tasks, json_t *have, json_t *reply)
{
    ((struct fake_host *)data)->secrets_asked++;
}

static void apply(struct store *st, json_t *ops /* stolen */)
{
    json_t *entry = json_pack("{s:[o]}", "groups", ops);
    char *text = json_dumps(entry, JSON_COMPACT);
    CHECK(store_apply(st, text, strlen(text), NULL, NULL) == 0);
    free(text);
    json_decref(entry);
}

static struct dispatcher *start(uv_loop_t *loop, struct fake_host *f)
{
    CHECK(store_open(&f->store, NULL) == 0);
    apply(f->store,
          json_pack("[o,o,o,o]", op_put("nodes", table_node(table_json("{'id':'n1'}"))),
                    op_put("nodes", table_node(table_json("{'id':'n2', 'role':'manager'}"))),
                    op_put("images", table_json("{'id':'sha256:abc', 'config':{}}")),
                    op_put("tasks", table_json("{'id':'t1', 'node_id':'n2', 'desired_state':"
                                               "'running', 'container':{'image_id':'sha256:abc'}}"))));
    struct dispatcher_host host = {
        .data = f,
        .loop = loop,
        .node_id = "n1",
        .store = fake_store,
        .cluster = fake_cluster,
        .manager_addrs = fake_managers,
        .node_addrs = fake_nodes,
        .leader_addr = fake_leader,
        .overlay = fake_overlay,
        .sign_csr = fake_sign,
        .secrets_key_offer = fake_key_offer,
        .secrets_for_node = fake_secrets,
    };
    return dispatcher_start(&host);
}

static void stop(uv_loop_t *loop, struct dispatcher *d, struct fake_host *f)
{
    dispatcher_stop(d);
    CHECK(uv_run(loop, UV_RUN_DEFAULT) == 0); /* the timer closed: nothing left on the loop */
    CHECK(uv_loop_close(loop) == 0);
    store_close(f->store);
}

/* The answer to a heartbeat, parsed from the text the API sends (NULL with err). */
static json_t *heartbeat(struct dispatcher *d, const char *node_id, json_t *hb, struct serr *err)
{
    char *text = dispatcher_heartbeat_text(d, node_id, hb, err);
    json_t *reply = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(text == NULL || reply != NULL);
    free(text);
    return reply;
}

TEST(dispatcher_heartbeat_assignments)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_host f = {0};
    struct dispatcher *d = start(&loop, &f);
    json_t *hb = json_object();
    struct serr err = {0};
    json_t *reply = heartbeat(d, "n2", hb, &err);
    CHECK(reply != NULL);
    CHECK(json_array_size(json_object_get(reply, "tasks")) == 1);
    CHECK(json_object_get(json_object_get(reply, "images"), "sha256:abc") != NULL);
    CHECK_STR(json_string_value(json_array_get(json_object_get(reply, "managers"), 0)),
              "10.0.0.1:2377");
    CHECK_STR(json_string_value(json_object_get(reply, "leader")), "10.0.0.1:2377");
    CHECK_STR(json_string_value(json_object_get(reply, "role")), "manager");
    CHECK_STR(json_string_value(json_object_get(reply, "overlay")), "direct");
    CHECK(json_array_size(json_object_get(reply, "nodes")) == 1);
    CHECK(json_is_object(json_object_get(reply, "mesh")));
    CHECK(json_is_string(json_object_get(reply, "mesh_tag")));
    CHECK(json_integer_value(json_object_get(reply, "heartbeat_ms")) == HEARTBEAT_MS);
    CHECK(json_object_get(reply, "cert") == NULL);
    CHECK(f.secrets_asked == 1);
    /* a node that has the mesh and the node list is not sent them again */
    json_object_set(hb, "mesh_tag", json_object_get(reply, "mesh_tag"));
    json_decref(reply);
    reply = heartbeat(d, "n2", hb, &err);
    CHECK(reply != NULL && json_object_get(reply, "mesh") == NULL);
    CHECK(json_object_get(reply, "nodes") == NULL);
    json_decref(reply);
    json_decref(hb);
    stop(&loop, d, &f);
}

/* A heartbeat that names the task list it has (tasks_tag) */
static json_t *beat_with_tag(struct dispatcher *d, json_t *hb, json_t *reply /* taken */)
{
    json_object_set(hb, "tasks_tag", json_object_get(reply, "tasks_tag"));
    json_decref(reply);
    struct serr err = {0};
    reply = heartbeat(d, "n2", hb, &err);
    CHECK(reply != NULL && json_is_string(json_object_get(reply, "tasks_tag")));
    return reply;
}

TEST(dispatcher_heartbeat_sends_only_task_changes)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_host f = {0};
    struct dispatcher *d = start(&loop, &f);
    json_t *hb = json_object();
    struct serr err = {0};
    json_t *reply = heartbeat(d, "n2", hb, &err);
    CHECK(json_array_size(json_object_get(reply, "tasks")) == 1); /* no tag: the whole list */
    /* unchanged: neither list nor changes, the same tag */
    char *tag = strdup(json_string_value(json_object_get(reply, "tasks_tag")));
    reply = beat_with_tag(d, hb, reply);
    CHECK(json_object_get(reply, "tasks") == NULL && json_object_get(reply, "task_changes") == NULL);
    CHECK_STR(json_string_value(json_object_get(reply, "tasks_tag")), tag);
    free(tag);
    /* a task added, one changed: only they come, with their images */
    apply(f.store,
          json_pack("[o,o]", op_put("tasks", table_json("{'id':'t2', 'node_id':'n2'}")),
                    op_merge("tasks", "t1", json_pack("{s:s}", "state", "running"))));
    reply = beat_with_tag(d, hb, reply);
    json_t *changes = json_object_get(reply, "task_changes");
    CHECK(json_object_get(reply, "tasks") == NULL);
    CHECK(json_array_size(json_object_get(changes, "changed")) == 2);
    CHECK(json_array_size(json_object_get(changes, "removed")) == 0);
    CHECK(json_object_get(json_object_get(reply, "images"), "sha256:abc") != NULL);
    /* one gone: its id */
    apply(f.store, json_pack("[o]", op_del("tasks", "t1")));
    reply = beat_with_tag(d, hb, reply);
    changes = json_object_get(reply, "task_changes");
    CHECK(json_array_size(json_object_get(changes, "changed")) == 0);
    CHECK_STR(json_string_value(json_array_get(json_object_get(changes, "removed"), 0)), "t1");
    /* a tag that is not the last one sent (an answer lost): the whole list */
    json_object_set_new(reply, "tasks_tag", json_string("old"));
    reply = beat_with_tag(d, hb, reply);
    CHECK(json_array_size(json_object_get(reply, "tasks")) == 1);
    json_decref(reply);
    json_decref(hb);
    stop(&loop, d, &f);
}

/* The text answer: the store's mesh and node list (sent
 * to a node without the current tag) dumped once for every node. */
TEST(dispatcher_heartbeat_text_is_the_answer_with_the_mesh_dumped_once)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_host f = {0};
    struct dispatcher *d = start(&loop, &f);
    json_t *hb = json_object();
    struct serr err = {0};
    json_t *want = heartbeat(d, "n1", hb, &err);
    CHECK(json_object_get(want, "mesh") != NULL && json_object_get(want, "nodes") != NULL);
    CHECK(json_equal(json_object_get(want, "mesh"), dispatcher_mesh(d)));
    char *text = dispatcher_heartbeat_text(d, "n2", hb, &err);
    json_t *got = json_loads(text, 0, NULL);
    CHECK(got != NULL);
    CHECK(json_equal(json_object_get(got, "mesh"), json_object_get(want, "mesh")));
    CHECK(json_equal(json_object_get(got, "nodes"), json_object_get(want, "nodes")));
    CHECK_STR(jstr(got, "mesh_tag"), jstr(want, "mesh_tag"));
    CHECK(json_array_size(json_object_get(got, "tasks")) == 1); /* n2's own members too */
    CHECK(json_integer_value(json_object_get(got, "heartbeat_ms")) > 0);
    /* with the current tag: neither the mesh nor the nodes */
    json_object_set(hb, "mesh_tag", json_object_get(want, "mesh_tag"));
    free(text);
    text = dispatcher_heartbeat_text(d, "n2", hb, &err);
    json_t *again = json_loads(text, 0, NULL);
    CHECK(again != NULL && json_object_get(again, "mesh") == NULL &&
          json_object_get(again, "nodes") == NULL && json_object_get(again, "mesh_tag") == NULL);
    CHECK(dispatcher_heartbeat_text(d, "gone", hb, &err) == NULL && err.kind == SERR_NOT_FOUND);
    free(text);
    json_decref(again);
    json_decref(got);
    json_decref(want);
    json_decref(hb);
    stop(&loop, d, &f);
}

TEST(dispatcher_heartbeat_csr_and_unknown_node)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fake_host f = {0};
    struct dispatcher *d = start(&loop, &f);
    /* a promoted node's CSR: its certificate, and the secrets key */
    json_t *hb = json_pack("{s:s}", "csr", "CSR");
    struct serr err = {0};
    json_t *reply = heartbeat(d, "n2", hb, &err);
    CHECK(reply != NULL);
    CHECK_STR(f.signed_for, "n2 manager");
    CHECK_STR(json_string_value(json_object_get(reply, "cert")), "CERT");
    CHECK_STR(json_string_value(json_object_get(reply, "secrets_key")), "KEY");
    json_decref(reply);
    /* a removed node gets an error, not assignments */
    CHECK(heartbeat(d, "gone", hb, &err) == NULL);
    CHECK(err.kind == SERR_NOT_FOUND);
    CHECK(strstr(err.msg, "not part of the swarm") != NULL);
    json_decref(hb);
    stop(&loop, d, &f);
}

/* Small clusters keep the base interval; beyond HEARTBEATS_PER_S * 0.5 nodes
 * the interval grows with the size (the leader's load stays flat), capped. */
TEST(dispatcher_heartbeat_interval_grows_with_the_cluster)
{
    CHECK(dispatcher_heartbeat_ms(0) == HEARTBEAT_MS);
    CHECK(dispatcher_heartbeat_ms(3) == HEARTBEAT_MS);
    CHECK(dispatcher_heartbeat_ms(HEARTBEATS_PER_S / 2) == HEARTBEAT_MS);
    CHECK(dispatcher_heartbeat_ms(HEARTBEATS_PER_S) == 1000);
    CHECK(dispatcher_heartbeat_ms(5000) == 5000 * 1000 / HEARTBEATS_PER_S);
    CHECK(dispatcher_heartbeat_ms(10000000) == HEARTBEAT_MAX_MS);
}

/* A node waits for an answer one interval less than the leader waits before
 * it declares the node down: 2.5 s at the base interval, longer at the
 * longer intervals of large clusters (a busy leader is not left, with a new
 * TLS handshake to the next manager, while it still has time). */
TEST(dispatcher_answer_wait_grows_with_the_interval)
{
    CHECK(dispatcher_answer_wait_ms(HEARTBEAT_MS) == NODE_DOWN_MS - HEARTBEAT_MS);
    CHECK(dispatcher_answer_wait_ms(0) == NODE_DOWN_MS - HEARTBEAT_MS);
    CHECK(dispatcher_answer_wait_ms(5000) == 5000 * NODE_DOWN_MS / HEARTBEAT_MS - 5000);
    CHECK(dispatcher_answer_wait_ms(HEARTBEAT_MAX_MS) > HEARTBEAT_MAX_MS);
}

/* A worker's report keeps its observed fields, `started_at` included (a
 * short batch job's end report carries its start: issue 14), and loses any
 * desired state. */
TEST(dispatcher_applies_a_reports_observed_fields_only)
{
    json_t *fields = json_pack("{s:s, s:i, s:i, s:i, s:s}", "state", "complete", "state_at", 9,
                               "started_at", 5, "exit_code", 0, "desired_state", "shutdown");
    json_t *allowed = dispatcher_report_fields(fields);
    CHECK(json_integer_value(json_object_get(allowed, "started_at")) == 5);
    CHECK_STR(json_string_value(json_object_get(allowed, "state")), "complete");
    CHECK(json_object_get(allowed, "desired_state") == NULL);
    CHECK(json_object_size(allowed) == 4);
    json_decref(allowed);
    json_decref(fields);
}
