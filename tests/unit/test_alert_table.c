/* Table tests of alert_evaluate and heat_changes: each case is rules and
 * nodes, then steps; a step gives the samples (and tasks) at a time and the
 * changes expected, summarised "fire KEY" / "resolve KEY" ("; " between);
 * fired alerts become open for the next steps, resolved ones leave. JSON in
 * the tables is written with ' for ". */
#include <stdio.h>
#include <string.h>

#include "base/json_get.h"
#include "cli/cli.h"
#include "manager/alert.h"
#include "table.h"
#include "unit.h"

struct alert_step {
    int64_t now;
    const char *samples; /* {node_id: sample} */
    const char *tasks;   /* NULL: none */
    const char *changes;
};

struct alert_case {
    const char *name;
    const char *rules;
    const char *nodes; /* missing fields: table_node */
    struct alert_step steps[5]; /* up to the first with now == 0 */
};

static const struct alert_case cases[] = {
    {"cpu_above_for_fires_after_the_duration_and_resolves_below",
     "[{'id':'r1','name':'hot-cpu','node':'all','metric':'cpu','above':80,'for_ms':2000}]",
     "[{'id':'n1'}, {'id':'n2'}]",
     {{1000, "{'n1':{'cpu_percent':90}, 'n2':{'cpu_percent':10}}", NULL, ""},
      {2000, "{'n1':{'cpu_percent':95}, 'n2':{'cpu_percent':10}}", NULL, ""},
      {3000, "{'n1':{'cpu_percent':95}, 'n2':{'cpu_percent':10}}", NULL, "fire r1/n1/cpu"},
      {4000, "{'n1':{'cpu_percent':95}, 'n2':{'cpu_percent':10}}", NULL, ""},
      {5000, "{'n1':{'cpu_percent':50}, 'n2':{'cpu_percent':10}}", NULL, "resolve r1/n1/cpu"}}},
    {"a_dip_below_restarts_the_duration",
     "[{'id':'r1','name':'x','node':'all','metric':'load','above':2,'for_ms':2000}]",
     "[{'id':'n1'}]",
     {{1000, "{'n1':{'load1':3}}", NULL, ""},
      {2000, "{'n1':{'load1':1}}", NULL, ""},
      {3000, "{'n1':{'load1':3}}", NULL, ""},
      {5000, "{'n1':{'load1':3}}", NULL, "fire r1/n1/load"}}},
    {"memory_and_disk_are_percent_used_and_node_filter_applies",
     "[{'id':'m','name':'m','node':'n2','metric':'memory','above':50,'for_ms':0},"
     " {'id':'d','name':'d','node':'all','metric':'disk','above':90,'for_ms':0}]",
     "[{'id':'n1'}, {'id':'n2'}]",
     {{1000,
       "{'n1':{'mem_used':90,'mem_total':100,'disk_used':95,'disk_total':100},"
       " 'n2':{'mem_used':60,'mem_total':100,'disk_used':10,'disk_total':100}}",
       NULL, "fire m/n2/memory; fire d/n1/disk"}}},
    {"temperature_unknown_never_fires",
     "[{'id':'t','name':'t','node':'all','metric':'temperature','above':50,'for_ms':0}]",
     "[{'id':'n1'}, {'id':'n2'}]",
     {{1000, "{'n1':{'temp_c':null}, 'n2':{'temp_c':60}}", NULL, "fire t/n2/temperature"}}},
    {"down_node_fires_node_down_and_its_metric_alert_resolves",
     "[{'id':'c','name':'c','node':'all','metric':'cpu','above':10,'for_ms':0},"
     " {'id':'nd','name':'nd','node':'all','event':'node-down'}]",
     "[{'id':'n1'}, {'id':'n2','status':'down'}]",
     {{1000, "{'n1':{'cpu_percent':50}, 'n2':{'cpu_percent':50}}", NULL,
       "fire c/n1/cpu; fire nd/n2/node-down"}}},
    {"task_flapping_counts_restarts_of_one_slot_in_the_window",
     "[{'id':'f','name':'f','node':'all','event':'task-flapping','restarts':2,'window_ms':10000}]",
     "[{'id':'n1'}]",
     {{20000, "{}",
       "[{'id':'a','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':15000},"
       " {'id':'b','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':16000},"
       " {'id':'c','name':'web.2','service_id':'s','slot':2,'node_id':'n1','created_at':16000}]",
       ""},
      {21000, "{}",
       "[{'id':'a','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':15000},"
       " {'id':'b','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':16000},"
       " {'id':'d','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':21000}]",
       "fire f/n1/task web.1"},
      {26000, "{}",
       "[{'id':'a','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':15000},"
       " {'id':'b','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':16000},"
       " {'id':'d','name':'web.1','service_id':'s','slot':1,'node_id':'n1','created_at':21000}]",
       "resolve f/n1/task web.1"}}},
    {"backup_failing_fires_per_volume_and_resolves_when_reported_no_more",
     "[{'id':'b','name':'b','node':'all','event':'backup-failing'}]",
     "[{'id':'n1'}, {'id':'n2'}]",
     {{1000, "{'n1':{'cpu_percent':1}, 'n2':{'cpu_percent':1}}", NULL, ""},
      {2000,
       "{'n1':{'backup_failures':[{'volume':'db','error':'the backup hook failed','at':1}]},"
       " 'n2':{'cpu_percent':1}}",
       NULL, "fire b/n1/backup db"},
      {3000,
       "{'n1':{'backup_failures':[{'volume':'db','error':'x','at':1},"
       "                          {'volume':'web','error':'y','at':2}]}, 'n2':{}}",
       NULL, "fire b/n1/backup web"},
      {4000, "{'n1':{'backup_failures':[{'volume':'web','error':'y','at':2}]}, 'n2':{}}", NULL,
       "resolve b/n1/backup db"},
      {5000, "{'n1':{}, 'n2':{}}", NULL, "resolve b/n1/backup web"}}},
};

/* "fire KEY; resolve KEY" */
static void summarise(json_t *changes, char *buf, size_t size)
{
    buf[0] = '\0';
    size_t i, len = 0;
    json_t *c;
    json_array_foreach(changes, i, c)
    {
        len += (size_t)snprintf(buf + len, size - len, "%s%s %s", i ? "; " : "",
                                jstr_or(c, "action", "?"),
                                jstr_or(json_object_get(c, "alert"), "key", "?"));
        if (len >= size)
            break;
    }
}

/* Fired alerts join `open`; resolved ones leave it. */
static void apply_changes(json_t *open, json_t *changes)
{
    size_t i, j;
    json_t *c, *a;
    json_array_foreach(changes, i, c)
    {
        json_t *alert = json_object_get(c, "alert");
        if (jstr_is(c, "action", "fire")) {
            json_array_append(open, alert);
            continue;
        }
        json_array_foreach(open, j, a)
        {
            if (jstr_is(a, "key", jstr(alert, "key"))) {
                json_array_remove(open, j);
                break;
            }
        }
    }
}

static json_t *table_nodes(const char *text)
{
    json_t *nodes = table_json(text), *out = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) json_array_append_new(out, table_node(json_incref(n)));
    json_decref(nodes);
    return out;
}

static bool run_case(const struct alert_case *c)
{
    json_t *rules = table_json(c->rules), *nodes = table_nodes(c->nodes);
    json_t *open = json_array(), *pending = json_object();
    bool ok = true;
    for (int s = 0; s < 5 && c->steps[s].now != 0; s++) {
        const struct alert_step *st = &c->steps[s];
        struct alert_inputs in = {.rules = rules, .nodes = nodes,
                                  .samples = table_json(st->samples),
                                  .tasks = st->tasks ? table_json(st->tasks) : json_array(),
                                  .open = open, .now = st->now};
        json_t *changes = alert_evaluate(&in, pending);
        char got[1024];
        summarise(changes, got, sizeof(got));
        if (strcmp(got, st->changes) != 0) {
            fprintf(stderr, "  %s step %d: got \"%s\", want \"%s\"\n", c->name, s, got,
                    st->changes);
            ok = false;
        }
        apply_changes(open, changes);
        json_decref(changes);
        json_decref(in.samples);
        json_decref(in.tasks);
    }
    json_decref(rules);
    json_decref(nodes);
    json_decref(open);
    json_decref(pending);
    return ok;
}

TEST(alert_table)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failed += !run_case(&cases[i]);
    CHECK(failed == 0);
}

TEST(alert_rule_removed_resolves_its_open_alert)
{
    json_t *open = table_json("[{'id':'x','key':'gone/n1/cpu','rule_id':'gone','state':'open'}]");
    json_t *pending = json_object(), *empty = json_array(), *samples = json_object();
    struct alert_inputs in = {.rules = empty, .nodes = empty, .samples = samples,
                              .tasks = empty, .open = open, .now = 5};
    json_t *changes = alert_evaluate(&in, pending);
    CHECK(json_array_size(changes) == 1);
    json_t *done = json_object_get(json_array_get(changes, 0), "alert");
    CHECK_STR(jstr(done, "state"), "resolved");
    CHECK(jint(done, "resolved_at", 0) == 5);
    json_decref(changes);
    json_decref(open);
    json_decref(pending);
    json_decref(empty);
    json_decref(samples);
}

/* threshold 70, hysteresis 5: hot at 70, cool again below 65. */
TEST(heat_has_hysteresis)
{
    struct {
        bool hot;
        const char *temp; /* JSON */
        const char *want; /* "" no change, "hot", "cool" */
    } rows[] = {
        {false, "69.9", ""}, {false, "70", "hot"}, {true, "66", ""},
        {true, "64.9", "cool"}, {true, "null", "cool"}, {false, "null", ""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *nodes = json_pack("[o]", table_node(json_pack("{s:s, s:b}", "id", "n1", "hot",
                                                              rows[i].hot)));
        char text[64];
        snprintf(text, sizeof(text), "{'n1':{'temp_c':%s}}", rows[i].temp);
        json_t *samples = table_json(text);
        json_t *changes = heat_changes(nodes, samples, 70, 5);
        json_t *c = json_array_get(changes, 0);
        const char *got = c == NULL ? "" : jbool(c, "hot", false) ? "hot" : "cool";
        if (strcmp(got, rows[i].want) != 0)
            fprintf(stderr, "  heat row %zu: got %s, want %s\n", i, got, rows[i].want);
        CHECK_STR(got, rows[i].want);
        json_decref(changes);
        json_decref(samples);
        json_decref(nodes);
    }
    json_t *nodes = json_pack("[o]", table_node(json_pack("{s:s, s:b}", "id", "n1", "hot", 1)));
    json_t *samples = table_json("{'n1':{'temp_c':90}}");
    json_t *changes = heat_changes(nodes, samples, 0, 5); /* off: every node cools */
    CHECK(json_array_size(changes) == 1 && !jbool(json_array_get(changes, 0), "hot", true));
    json_decref(changes);
    json_decref(samples);
    json_decref(nodes);
}

static json_t *rule_of(const char *body_text, struct serr *err)
{
    json_t *body = table_json(body_text);
    json_t *rule = alert_rule_new(body, "id1", 7, err);
    json_decref(body);
    return rule;
}

TEST(alert_rule_new_checks_its_input)
{
    struct serr err = {0};
    json_t *r = rule_of("{'name':'c','metric':'cpu','above':80,'for':'2m',"
                        "'notify':['webhook=http://127.0.0.1:9/x','email=ops@example.org']}",
                        &err);
    CHECK(r != NULL);
    CHECK(jint(r, "for_ms", 0) == 120000);
    CHECK_STR(jstr(r, "node"), "all");
    CHECK(json_array_size(json_object_get(r, "notify")) == 2);
    json_decref(r);
    static const char *const bad[][2] = {
        {"{'name':'c','metric':'fan','above':1}", "unknown metric 'fan'"},
        {"{'name':'c','metric':'cpu','above':1,'for':'soon'}", "soon"},
        {"{'name':'c','metric':'cpu'}", "--above"},
        {"{'name':'c','metric':'cpu','above':1,'notify':['webhook=ftp://x']}", "webhook URL"},
        {"{'name':'c','metric':'cpu','above':1,'notify':['email=nobody']}", "e-mail"},
        {"{'name':'c','metric':'cpu','above':1,'notify':['sms=1']}", "webhook=URL"},
        {"{'name':'c','event':'node-up'}", "unknown event"},
        {"{'name':'c'}", "one of metric or event"},
        {"{'name':'a b','event':'node-down'}", "name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = (struct serr){0};
        r = rule_of(bad[i][0], &err);
        CHECK(r == NULL);
        CHECK(err.kind == SERR_INVALID);
        if (strstr(err.msg, bad[i][1]) == NULL)
            fprintf(stderr, "  %s: message '%s' lacks '%s'\n", bad[i][0], err.msg, bad[i][1]);
        CHECK(strstr(err.msg, bad[i][1]) != NULL);
        json_decref(r);
    }
}

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

TEST(cli_alert_add_command_line)
{
    json_t *b = NULL;
    struct serr err = {0};
    CHECK(cli_build_alert_add(ARGC("add", "--name", "c", "--metric", "cpu", "--above", "80.5",
                                   "--for", "2m", "--node", "n1", "--notify", "webhook=http://h/",
                                   "--notify", "email=a@b"),
                              ARGV("add", "--name", "c", "--metric", "cpu", "--above", "80.5",
                                   "--for", "2m", "--node", "n1", "--notify", "webhook=http://h/",
                                   "--notify", "email=a@b"),
                              &b, &err) == 0);
    CHECK_STR(jstr(b, "name"), "c");
    CHECK_STR(jstr(b, "metric"), "cpu");
    CHECK(json_number_value(json_object_get(b, "above")) == 80.5);
    CHECK_STR(jstr(b, "for"), "2m");
    CHECK_STR(jstr(b, "node"), "n1");
    CHECK(json_array_size(json_object_get(b, "notify")) == 2);
    json_decref(b);
    CHECK(cli_build_alert_add(ARGC("add", "--name", "f", "--event", "task-flapping", "--restarts",
                                   "4", "--window", "10m"),
                              ARGV("add", "--name", "f", "--event", "task-flapping", "--restarts",
                                   "4", "--window", "10m"),
                              &b, &err) == 0);
    CHECK(jint(b, "restarts", 0) == 4);
    CHECK_STR(jstr(b, "window"), "10m");
    json_decref(b);
    CHECK(cli_build_alert_add(ARGC("add", "--help"), ARGV("add", "--help"), &b, &err) == 1);
    CHECK(cli_build_alert_add(ARGC("add", "--metric", "cpu"), ARGV("add", "--metric", "cpu"), &b,
                              &err) < 0);
    CHECK(strstr(err.msg, "--name is required") != NULL);
    CHECK(cli_build_alert_add(ARGC("add", "--name", "x"), ARGV("add", "--name", "x"), &b, &err) <
          0);
    CHECK(strstr(err.msg, "one of --metric or --event") != NULL);
    CHECK(cli_build_alert_add(ARGC("add", "--name", "x", "--metric", "cpu", "--above", "hot"),
                              ARGV("add", "--name", "x", "--metric", "cpu", "--above", "hot"), &b,
                              &err) < 0);
    CHECK(strstr(err.msg, "not a number") != NULL);
    CHECK(cli_build_alert_add(ARGC("add", "--name", "x", "--event", "node-down", "extra"),
                              ARGV("add", "--name", "x", "--event", "node-down", "extra"), &b,
                              &err) < 0);
    CHECK(strstr(err.msg, "unexpected argument 'extra'") != NULL);
}
