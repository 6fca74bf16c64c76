/* `shoal exec`: what crun needs to run a command in a running container
 * with the user's settings (see runtime_exec_prepare in runtime.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/runtime.h"
#include "agent/runtime_internal.h"
#include "base/util.h"

/* `user` resolved in the container's rootfs (runtime_user.c). */
static int set_user(json_t *process, const char *rootfs, const char *user, struct serr *err)
{
    struct runtime_user ids;
    if (runtime_user_resolve(rootfs, user, &ids, err) < 0)
        return -1;
    json_object_set_new(process, "user", runtime_user_json(&ids));
    return 0;
}

/* The container's env with each "K=V" of `add` replacing its K. */
static int merge_env(json_t *process, json_t *add, struct serr *err)
{
    json_t *env = json_object_get(process, "env");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(process, "env", env);
    }
    size_t i, k;
    json_t *e, *old;
    json_array_foreach(add, i, e)
    {
        const char *kv = json_string_value(e);
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (eq == NULL || eq == kv)
            return serr_set(err, SERR_INVALID, "invalid env \"%s\": expected KEY=VALUE",
                            kv ? kv : "");
        size_t klen = (size_t)(eq - kv) + 1;
        bool replaced = false;
        json_array_foreach(env, k, old)
        {
            const char *o = json_string_value(old);
            if (o && strncmp(o, kv, klen) == 0) {
                json_array_set_new(env, k, json_string(kv));
                replaced = true;
                break;
            }
        }
        if (!replaced)
            json_array_append_new(env, json_string(kv));
    }
    return 0;
}

static int build_process(json_t *process, const char *rootfs, const struct runtime_exec_opts *o,
                         struct serr *err)
{
    json_t *args = json_array();
    for (size_t i = 0; o->argv[i] != NULL; i++)
        json_array_append_new(args, json_string(o->argv[i]));
    json_object_set_new(process, "args", args);
    json_object_set_new(process, "terminal", json_boolean(o->console_socket != NULL));
    json_object_del(process, "consoleSize");
    if (o->console_socket && o->rows > 0 && o->cols > 0)
        json_object_set_new(process, "consoleSize", json_pack("{s:i,s:i}", "height", o->rows,
                                                               "width", o->cols));
    if (o->cwd && o->cwd[0] != '/')
        return serr_set(err, SERR_INVALID, "invalid workdir \"%s\": not an absolute path", o->cwd);
    if (o->cwd)
        json_object_set_new(process, "cwd", json_string(o->cwd));
    if (o->user && o->user[0] && set_user(process, rootfs, o->user, err) < 0)
        return -1;
    return o->env ? merge_env(process, o->env, err) : 0;
}

static int write_process(const struct runtime *rt, const char *id,
                         const struct runtime_exec_opts *o, const char *path, struct serr *err)
{
    char *config_path = xasprintf("%s/%s/config.json", rt->containers_dir, id);
    char *rootfs = xasprintf("%s/%s/rootfs", rt->containers_dir, id);
    json_error_t jerr;
    json_t *config = json_load_file(config_path, 0, &jerr);
    free(config_path);
    json_t *process = json_object_get(config, "process");
    int rc;
    if (!json_is_object(process))
        rc = serr_set(err, SERR_NOT_FOUND, "No such container: %s", id);
    else
        rc = build_process(process, rootfs, o, err);
    if (rc == 0) {
        char *text = json_dumps(process, JSON_COMPACT);
        rc = write_file_atomic(path, text, strlen(text), false, err);
        free(text);
    }
    json_decref(config);
    free(rootfs);
    return rc;
}

/* On v1/hybrid hosts: `args` run by a shell that first moves itself into the
 * container's cpuset cgroup, so the command keeps to the container's cores (a
 * batch job's cpuset; every core for a service). Takes `args`. */
static char **join_cpuset(const struct runtime *rt, const char *id, char **args)
{
    char *dir = runtime_cgroup_cpuset_dir(rt, id);
    if (dir == NULL)
        return args;
    size_t n = 0;
    while (args[n])
        n++;
    char **out = xcalloc(n + 5, sizeof(*out));
    out[0] = xstrdup("/bin/sh");
    out[1] = xstrdup("-c");
    out[2] = xstrdup("echo $$ > \"$0/cgroup.procs\" && exec \"$@\"");
    out[3] = dir; /* $0 */
    memcpy(out + 4, args, n * sizeof(*out));
    free(args); /* its strings are out's now */
    return out;
}

char **runtime_exec_prepare(const struct runtime *rt, const char *id,
                            const struct runtime_exec_opts *o, const char *files, struct serr *err)
{
    if (strchr(id, '/') || strchr(id, '.') || id[0] == '\0') {
        serr_set(err, SERR_INVALID, "invalid container id");
        return NULL;
    }
    if (o->argv == NULL || o->argv[0] == NULL) {
        serr_set(err, SERR_INVALID, "no command to run");
        return NULL;
    }
    char *process_path = xasprintf("%s.process.json", files);
    int rc = write_process(rt, id, o, process_path, err);
    if (rc < 0) {
        free(process_path);
        return NULL;
    }
    char **args = xcalloc(12, sizeof(*args));
    size_t n = 0;
    args[n++] = xstrdup(rt->runtime_path);
    if (rt->cgroup_mode != CGROUP_V2 && !runtime_is_runc(rt))
        args[n++] = xstrdup("--cgroup-manager=disabled");
    args[n++] = xasprintf("--root=%s", rt->runtime_root);
    args[n++] = xstrdup("exec");
    args[n++] = xasprintf("--process=%s", process_path);
    args[n++] = xasprintf("--pid-file=%s.pid", files);
    if (o->console_socket) {
        args[n++] = xstrdup("--tty");
        args[n++] = xasprintf("--console-socket=%s", o->console_socket);
    }
    args[n++] = xstrdup(id);
    free(process_path);
    return join_cpuset(rt, id, args);
}

void runtime_exec_argv_free(char **argv)
{
    runtime_strv_free(argv);
}
