#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon_config.h"
#include "daemon/shoal.h"
#include "manager/metrics_history.h"
#include "unit.h"

/* daemon_config_load of `text` written to a file of its own; the file's
 * path in *path (new) for messages. */
static int load_text(struct shoal *sh, const char *text, char **path, struct serr *err)
{
    char tmpl[] = "/tmp/shoal-unit-daemon-json.XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    memset(sh, 0, sizeof(*sh));
    int rc = daemon_config_load(sh, tmpl, err);
    unlink(tmpl);
    *path = strdup(tmpl);
    return rc;
}

/* The keys of the last session's daemon.json, each read into its setting;
 * absent, their defaults. */
TEST(daemon_config_reads_host_jobs_job_image_history_days_and_labels)
{
    struct shoal sh;
    struct serr err = {0};
    char *path;
    CHECK(load_text(&sh, "{}", &path, &err) == 0);
    CHECK(!sh.host_jobs_disabled && sh.job_image == NULL && sh.engine_labels == NULL);
    CHECK(sh.metrics_history_days == METRICS_HISTORY_DAYS_DEFAULT);
    daemon_config_free(&sh);
    free(path);

    CHECK(load_text(&sh,
                    "{\"host-jobs\": false, \"job-image\": \"alpine:3.20\", "
                    "\"metrics-history-days\": 30, \"labels\": [\"zone=a\", \"disk=ssd=fast\"]}",
                    &path, &err) == 0);
    CHECK(sh.host_jobs_disabled);
    CHECK_STR(sh.job_image, "alpine:3.20");
    CHECK(sh.metrics_history_days == 30);
    char *labels = json_dumps(sh.engine_labels, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(labels, "{\"disk\":\"ssd=fast\",\"zone\":\"a\"}");
    free(labels);
    daemon_config_free(&sh);
    CHECK(sh.job_image == NULL && sh.engine_labels == NULL);
    free(path);

    /* the range's ends */
    CHECK(load_text(&sh, "{\"metrics-history-days\": 0, \"host-jobs\": true}", &path, &err) == 0);
    CHECK(sh.metrics_history_days == 0 && !sh.host_jobs_disabled);
    free(path);
    CHECK(load_text(&sh, "{\"metrics-history-days\": 366, \"labels\": []}", &path, &err) == 0);
    CHECK(sh.metrics_history_days == 366 && json_object_size(sh.engine_labels) == 0);
    daemon_config_free(&sh);
    free(path);
}

/* A bad value is refused with the file and what the key takes. */
TEST(daemon_config_refuses_bad_values_saying_why)
{
    static const struct {
        const char *text, *message;
    } cases[] = {
        {"{\"host-jobs\": \"no\"}", "host-jobs must be true or false"},
        {"{\"host-jobs\": 0}", "host-jobs must be true or false"},
        {"{\"job-image\": \"\"}", "job-image must be a string"},
        {"{\"job-image\": 3}", "job-image must be a string"},
        {"{\"metrics-history-days\": -1}", "metrics-history-days must be a number of days (0 to 366)"},
        {"{\"metrics-history-days\": 367}", "metrics-history-days must be a number of days (0 to 366)"},
        {"{\"metrics-history-days\": 7.5}", "metrics-history-days must be a number of days (0 to 366)"},
        {"{\"metrics-history-days\": \"7\"}", "metrics-history-days must be a number of days (0 to 366)"},
        {"{\"labels\": \"zone=a\"}", "labels must be a list of \"key=value\" strings"},
        {"{\"labels\": [\"zone\"]}", "labels must be a list of \"key=value\" strings"},
        {"{\"labels\": [\"=a\"]}", "labels must be a list of \"key=value\" strings"},
        {"{\"labels\": [\"my zone=a\"]}", "labels must be a list of \"key=value\" strings"},
        {"{\"labels\": [1]}", "labels must be a list of \"key=value\" strings"},
        {"{\"metric-history-days\": 7}", "unknown key 'metric-history-days'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct shoal sh;
        struct serr err = {0};
        char *path;
        int rc = load_text(&sh, cases[i].text, &path, &err);
        if (rc == 0 || strstr(err.msg, cases[i].message) == NULL || strstr(err.msg, path) == NULL)
            fprintf(stderr, "%s: got %d \"%s\"\n", cases[i].text, rc, err.msg);
        CHECK(rc < 0);
        CHECK(strstr(err.msg, cases[i].message) != NULL && strstr(err.msg, path) != NULL);
        CHECK(sh.job_image == NULL && sh.engine_labels == NULL); /* nothing kept */
        free(path);
    }
}
