/* Health checks: the state machine (agent_health.c) and the --health-*
 * flags of service create/update (cli_service_spec.c). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "cli/cli.h"
#include "unit.h"

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define SPEC(err, spec, ...)                                                                       \
    cli_build_service_spec(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), spec, &(bool){false}, err)
#define PATCH(err, patch, ...)                                                                     \
    cli_build_service_patch(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), patch, &(const char *){NULL}, \
                            &(bool){false}, err)

TEST(health_state_machine)
{
    struct health_state s = {HEALTH_STARTING, 0};
    /* failures inside the start period do not count while starting */
    for (int i = 0; i < 10; i++)
        CHECK(!health_apply(&s, false, true, 3));
    CHECK(s.status == HEALTH_STARTING && s.failures == 0);
    /* after it they do: `retries` in a row */
    CHECK(!health_apply(&s, false, false, 3));
    CHECK(!health_apply(&s, false, false, 3));
    CHECK(s.failures == 2 && s.status == HEALTH_STARTING);
    CHECK(health_apply(&s, false, false, 3));
    CHECK(s.status == HEALTH_UNHEALTHY);

    s = (struct health_state){HEALTH_STARTING, 0};
    CHECK(health_apply(&s, true, true, 3)); /* a success ends `starting`, start period or not */
    CHECK(s.status == HEALTH_HEALTHY);
    /* once healthy, start-period failures count */
    CHECK(!health_apply(&s, false, true, 2));
    CHECK(s.failures == 1);
    CHECK(!health_apply(&s, true, true, 2)); /* a success resets the count */
    CHECK(s.failures == 0 && s.status == HEALTH_HEALTHY);
    CHECK(!health_apply(&s, false, false, 2));
    CHECK(health_apply(&s, false, false, 2));
    CHECK(s.status == HEALTH_UNHEALTHY);

    s = (struct health_state){HEALTH_STARTING, 0};
    CHECK(health_apply(&s, false, false, 1)); /* retries 1: the first failure */
    CHECK(s.status == HEALTH_UNHEALTHY);
    CHECK(strcmp(health_status_name(HEALTH_STARTING), "starting") == 0);
    CHECK(strcmp(health_status_name(HEALTH_HEALTHY), "healthy") == 0);
    CHECK(strcmp(health_status_name(HEALTH_UNHEALTHY), "unhealthy") == 0);
}

static json_int_t hc_int(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(obj, "healthcheck"), key));
}

TEST(cli_health_flags)
{
    json_t *spec;
    struct serr err;
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "curl -f http://localhost/ || exit 1",
               "--health-interval", "500ms", "--health-timeout", "2s", "--health-retries", "5",
               "--health-start-period", "1m", "busybox") == 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(spec, "healthcheck"), "cmd")),
              "curl -f http://localhost/ || exit 1");
    CHECK(hc_int(spec, "interval_ms") == 500 && hc_int(spec, "timeout_ms") == 2000);
    CHECK(hc_int(spec, "retries") == 5 && hc_int(spec, "start_period_ms") == 60000);
    json_decref(spec);
    /* only what was given: the daemon fills in the defaults */
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "busybox") == 0);
    CHECK(json_object_size(json_object_get(spec, "healthcheck")) == 1);
    json_decref(spec);
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "--health-start-period", "0",
               "busybox") == 0);
    CHECK(json_is_integer(json_object_get(json_object_get(spec, "healthcheck"), "start_period_ms")));
    json_decref(spec);
    /* --no-healthcheck alone: no check at all */
    CHECK(SPEC(&err, &spec, "create", "--no-healthcheck", "busybox") == 0);
    CHECK(json_object_get(spec, "healthcheck") == NULL);
    json_decref(spec);

    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "--health-retries", "0", "b") < 0);
    CHECK(strstr(err.msg, "--health-retries") && strstr(err.msg, "at least 1"));
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "--health-retries", "x", "b") < 0);
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "--health-interval", "0", "b") < 0);
    CHECK(strstr(err.msg, "--health-interval") && strstr(err.msg, "at least 1ms"));
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "--health-timeout", "0s", "b") < 0);
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", "true", "--health-interval", "5", "b") < 0);
    CHECK(strstr(err.msg, "--health-interval") != NULL);
    CHECK(SPEC(&err, &spec, "create", "--health-cmd", " ", "b") < 0);
    CHECK(strstr(err.msg, "--health-cmd") != NULL);
    CHECK(SPEC(&err, &spec, "create", "--health-retries", "2", "b") < 0);
    CHECK(strstr(err.msg, "need --health-cmd") != NULL);
    CHECK(SPEC(&err, &spec, "create", "--no-healthcheck", "--health-cmd", "true", "b") < 0);
    CHECK(strstr(err.msg, "conflicts") != NULL);
    CHECK(SPEC(&err, &spec, "create", "--health-timeout", "1s", "--no-healthcheck", "b") < 0);
    CHECK(strstr(err.msg, "conflicts") != NULL);
}

TEST(cli_health_update_flags)
{
    json_t *patch;
    struct serr err;
    /* one field alone changes that field of the current check */
    CHECK(PATCH(&err, &patch, "update", "--health-retries", "4", "web") == 0);
    CHECK(json_object_size(json_object_get(patch, "healthcheck")) == 1);
    CHECK(hc_int(patch, "retries") == 4);
    json_decref(patch);
    CHECK(PATCH(&err, &patch, "update", "--health-cmd", "true", "--health-interval", "1s",
                "web") == 0);
    CHECK(hc_int(patch, "interval_ms") == 1000);
    json_decref(patch);
    /* --no-healthcheck removes it: null */
    CHECK(PATCH(&err, &patch, "update", "--no-healthcheck", "web") == 0);
    CHECK(json_is_null(json_object_get(patch, "healthcheck")));
    json_decref(patch);
    CHECK(PATCH(&err, &patch, "update", "--no-healthcheck", "--health-retries", "2", "web") < 0);
    CHECK(PATCH(&err, &patch, "update", "--health-retries", "0", "web") < 0);
}
