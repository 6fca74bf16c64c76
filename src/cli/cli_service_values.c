/* Values of the `service create/update` flags that shape the containers
 * (--label, --user, --cap-add, --ulimit, --sysctl, --dns, --env-file lines)
 * into spec JSON: pure, unit-tested; the option tables are in
 * cli_service_spec.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "model/user.h"
#include "model/container_opts.h"

json_t *cli_json_member(json_t *obj, const char *key)
{
    json_t *member = json_object_get(obj, key);
    if (member == NULL) {
        member = json_object();
        json_object_set_new(obj, key, member);
    }
    return member;
}

json_t *cli_json_array(json_t *obj, const char *key)
{
    json_t *a = json_object_get(obj, key);
    if (!json_is_array(a))
        json_object_set_new(obj, key, a = json_array());
    return a;
}

/* "KEY=VALUE" or "KEY" (an empty value, as Docker) into obj[key]. */
int cli_add_label(json_t *obj, const char *key, const char *flag, const char *arg, struct serr *err)
{
    size_t klen = strcspn(arg, "=");
    if (klen == 0 || strcspn(arg, " \t\n") < klen)
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": use KEY=VALUE", flag, arg);
    char *label_key = xstrdup(arg);
    label_key[klen] = '\0';
    json_object_set_new(cli_json_member(obj, key), label_key,
                        json_string(arg[klen] == '=' ? arg + klen + 1 : ""));
    free(label_key);
    return 0;
}

int cli_check_user(const char *user, struct serr *err)
{
    if (!user_spec_valid(user))
        return serr_set(err, SERR_INVALID,
                        "invalid --user \"%s\": give USER or USER:GROUP, names (looked up in "
                        "the image's /etc/passwd and /etc/group) or numbers",
                        user);
    return 0;
}

/* "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "ALL" kept;
 * several may be given comma-separated. */
int cli_add_caps(json_t *spec, const char *key, const char *flag, const char *arg, struct serr *err)
{
    char *copy = xstrdup(arg), *save = NULL;
    int rc = 0;
    for (char *c = strtok_r(copy, ",", &save); c && rc == 0; c = strtok_r(NULL, ",", &save)) {
        for (char *p = c; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        char *name = strcmp(c, "ALL") == 0 || strncmp(c, "CAP_", 4) == 0 ? xstrdup(c)
                                                                         : xasprintf("CAP_%s", c);
        if (strcmp(name, "ALL") != 0 && !container_cap_known(name))
            rc = serr_set(err, SERR_INVALID, "invalid %s \"%s\": unknown capability", flag, c);
        else
            json_array_append_new(cli_json_array(spec, key), json_string(name));
        free(name);
    }
    free(copy);
    if (rc == 0 && json_array_size(json_object_get(spec, key)) == 0)
        rc = serr_set(err, SERR_INVALID, "invalid %s: empty", flag);
    return rc;
}

int cli_parse_ulimit(const char *text, json_t *ulimits, struct serr *err)
{
    const char *eq = strchr(text, '=');
    char name[32];
    if (eq == NULL || eq == text || (size_t)(eq - text) >= sizeof(name))
        return serr_set(err, SERR_INVALID, "invalid --ulimit \"%s\": use NAME=SOFT[:HARD]", text);
    snprintf(name, sizeof(name), "%.*s", (int)(eq - text), text);
    if (container_ulimit_resource(name, NULL) < 0)
        return serr_set(err, SERR_INVALID,
                        "invalid --ulimit \"%s\": unknown limit %s (nofile, nproc, core, ...)",
                        text, name);
    char *end;
    errno = 0;
    long long soft = strtoll(eq + 1, &end, 10), hard = soft;
    if (end != eq + 1 && *end == ':') {
        const char *h = end + 1;
        hard = strtoll(h, &end, 10);
        if (end == h)
            end = (char *)"x";
    }
    if (errno != 0 || end == eq + 1 || *end != '\0' || soft < 0 || hard < soft)
        return serr_set(err, SERR_INVALID,
                        "invalid --ulimit \"%s\": use NAME=SOFT[:HARD], 0 <= SOFT <= HARD", text);
    json_object_set_new(
        ulimits, name, json_pack("{s:I, s:I}", "soft", (json_int_t)soft, "hard", (json_int_t)hard));
    return 0;
}

int cli_add_sysctl(json_t *obj, const char *key_name, const char *flag, const char *arg,
                   struct serr *err)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || eq[1] == '\0')
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": use KEY=VALUE", flag, arg);
    char *key = xstrdup(arg);
    key[eq - arg] = '\0';
    bool ok = container_sysctl_allowed(key, true);
    if (ok)
        json_object_set_new(cli_json_member(obj, key_name), key, json_string(eq + 1));
    free(key);
    if (!ok)
        return serr_set(err, SERR_INVALID,
                        "invalid %s \"%s\": not a namespaced sysctl (kernel.msg*, "
                        "kernel.sem, kernel.shm*, fs.mqueue.*, net.*)",
                        flag, arg);
    return 0;
}

int cli_add_dns(json_t *obj, const char *key, const char *flag, const char *arg,
                struct serr *err)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, arg, buf) != 1 && inet_pton(AF_INET6, arg, buf) != 1)
        return serr_set(err, SERR_INVALID, "invalid %s \"%s\": not an IP address", flag, arg);
    json_array_append_new(cli_json_array(obj, key), json_string(arg));
    return 0;
}

int cli_parse_env_lines(const char *text, json_t *list, struct serr *err)
{
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0, line = 0;
    for (char *l = strtok_r(copy, "\n", &save); l && rc == 0; l = strtok_r(NULL, "\n", &save)) {
        line++;
        l += strspn(l, " \t");
        size_t n = strlen(l);
        while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
            l[--n] = '\0';
        if (l[0] == '\0' || l[0] == '#')
            continue;
        char *env = NULL;
        rc = cli_parse_env(l, &env, err);
        if (env != NULL)
            json_array_append_new(list, json_string(env));
        free(env);
        if (rc < 0)
            serr_wrap(err, "line %d", line);
    }
    free(copy);
    return rc;
}
