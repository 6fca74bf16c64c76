/* json_lines (http/json_lines.h): lines queued from the thread pool reach
 * the owner's send on the loop, in order, and the owner is handed back once
 * the queue is closed. */
#include <stdbool.h>
#include <uv.h>

#include "http/json_lines.h"
#include "unit.h"

#define LINES 200

struct owner {
    struct json_lines lines;
    uv_work_t work;
    int sent;
    bool in_order;
    bool closed;
};

static void send_line(void *arg, json_t *line)
{
    struct owner *o = arg;
    o->in_order = o->in_order && json_integer_value(json_object_get(line, "n")) == o->sent;
    o->sent++;
    json_decref(line);
}

static void queue_work(uv_work_t *w)
{
    struct owner *o = w->data;
    for (int i = 0; i < LINES; i++)
        json_lines_queue(&o->lines, json_pack("{s:i}", "n", i));
}

static void owner_closed(void *arg)
{
    struct owner *o = arg;
    o->closed = true;
}

static void work_done(uv_work_t *w, int status)
{
    (void)status;
    struct owner *o = w->data;
    json_lines_flush(&o->lines); /* the last lines, before the end */
    CHECK(o->sent == LINES);
    json_lines_close(&o->lines, owner_closed);
}

TEST(json_lines_reach_the_loop_in_order_then_the_owner_is_handed_back)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct owner o = {.in_order = true};
    json_lines_init(&o.lines, &loop, &o, send_line);
    o.work.data = &o;
    uv_queue_work(&loop, &o.work, queue_work, work_done);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(o.sent == LINES);
    CHECK(o.in_order);
    CHECK(o.closed);
    CHECK(uv_loop_close(&loop) == 0);
}
