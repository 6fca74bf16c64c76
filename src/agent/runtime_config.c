/* OCI runtime config.json for a container spec (see agent/runtime.h).
 *
 * Everything is built as jansson objects: user strings (args, env, paths)
 * never get pasted into JSON text. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/runtime_internal.h"
#include "base/json_get.h"
#include "base/util.h"
#include "model/container_opts.h"

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CPU_PERIOD_US 100000
#define NOFILE_LIMIT 1048576

/* Docker's default capability set (moby oci/caps/defaults.go). */
static const char *const default_caps[] = {
    "CAP_CHOWN",      "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",      "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP",    "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",       "CAP_AUDIT_WRITE",  NULL,
};

/* Same lists as `crun spec` (and runc, Docker): kernel information a
 * container has no business reading, and knobs it must not turn. */
static const char *const masked_paths[] = {
    "/proc/acpi",        "/proc/asound",      "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/sys/firmware",     "/proc/scsi",        NULL,
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

/* Seccomp profile choice: Docker's default profile is an allow list of
 * ~350 syscalls with argument filters (clone flags, personality), large
 * and tied to a libseccomp version. We use the inverse, smaller form:
 * allow by default and return EPERM for the syscalls Docker's profile
 * does not allow (or allows only with CAP_SYS_ADMIN & co, which containers
 * do not get). Creating namespaces through clone(2) is still refused
 * because CAP_SYS_ADMIN is not in the capability set. crun skips names
 * the host's libseccomp does not know (checked with crun 1.8.1), so
 * obsolete syscalls (_sysctl, create_module...) can stay in the list. */
static const char *const seccomp_denied[] = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
    "mbind", "mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "perf_event_open", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace",
    "query_module", "quotactl", "reboot", "request_key", "set_mempolicy", "setns",
    "settimeofday", "swapon", "swapoff", "sysfs", "_sysctl", "umount2", "unshare", "uselib",
    "userfaultfd", "ustat", NULL,
};

/* The host's native ABI and its 32-bit compat ABI, like Docker's archMap. */
static const char *const seccomp_archs[] = {
#if defined(__x86_64__)
    "SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
#elif defined(__aarch64__)
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",
#elif defined(__i386__)
    "SCMP_ARCH_X86",
#elif defined(__arm__)
    "SCMP_ARCH_ARM",
#endif
    NULL,
};

/* Kernel filesystems every container gets; options are comma separated. */
static const struct {
    const char *destination, *type, *source, *options;
} base_mounts[] = {
    {"/proc", "proc", "proc", NULL},
    {"/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"},
    {"/dev/pts", "devpts", "devpts", "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"},
    {"/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"},
    {"/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"},
    {"/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"},
};

/* Host files shared read-only so that name resolution works with host networking. */
static const char *const host_files[] = {"/etc/resolv.conf", "/etc/hosts", NULL};

static json_t *string_array(const char *const *items)
{
    json_t *arr = json_array();
    for (size_t i = 0; items[i] != NULL; i++)
        json_array_append_new(arr, json_string(items[i]));
    return arr;
}

/* "a,b,c" -> ["a","b","c"] */
static json_t *split_options(const char *csv)
{
    json_t *arr = json_array();
    char *copy = xstrdup(csv);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(arr, json_string(tok));
    free(copy);
    return arr;
}

static bool is_string_array(json_t *v)
{
    if (!json_is_array(v))
        return false;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_string(item))
            return false;
    }
    return true;
}

/* The first mount point strictly below `dir` (canonical path) in
 * /proc/self/mountinfo, copied to out[outlen]; false when there is none. */
static bool first_submount(const char *dir, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return false;
    size_t dlen = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
    char *line = NULL, point[4096];
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, f) > 0) {
        if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
            continue;
        mountinfo_unescape(point);
        found = strncmp(point, dir, dlen) == 0 && point[dlen] == '/' && point[dlen + 1] != '\0';
    }
    free(line);
    fclose(f);
    if (found)
        snprintf(out, outlen, "%s", point);
    return found;
}

/* Without mount_setattr a readonly bind would leave the submounts of its
 * source writable: refused rather than made half read-only. */
static int check_readonly_tree(const struct runtime *rt, const char *source, struct serr *err)
{
    if (rt->recursive_ro)
        return 0;
    char *real = realpath(source, NULL);
    char sub[4096];
    bool has_sub = real != NULL && first_submount(real, sub, sizeof(sub));
    free(real);
    if (has_sub)
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"bind\": readonly bind of %s: %s is "
                        "mounted below it and this kernel cannot make it read-only (needs "
                        "mount_setattr, Linux 5.12 or later)",
                        source, sub);
    return 0;
}

static int check_bind(const struct runtime *rt, json_t *mount, struct serr *err)
{
    const char *type = jstr(mount, "type");
    const char *source = jstr(mount, "source");
    const char *target = jstr(mount, "target");
    if (type != NULL && strcmp(type, "bind") != 0)
        return serr_set(err, SERR_INVALID, "invalid mount config: unsupported type \"%s\"", type);
    if (source == NULL || source[0] != '/')
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"bind\": source must be an absolute path");
    if (target == NULL || target[0] != '/')
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"bind\": target must be an absolute path");
    const char *reserved = mount_reserved_target(target);
    if (reserved != NULL)
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"bind\": target %s is reserved: the "
                        "container's %s is set up by the runtime",
                        target, reserved);
    struct stat st;
    if (stat(source, &st) < 0)
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"bind\": bind source path does not exist: %s",
                        source);
    if (json_is_true(json_object_get(mount, "readonly")))
        return check_readonly_tree(rt, source, err);
    return 0;
}

static int check_tmpfs(json_t *mount, struct serr *err)
{
    const char *target = jstr(mount, "target");
    if (target == NULL || target[0] != '/')
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"tmpfs\": target must be an absolute path");
    const char *reserved = mount_reserved_target(target);
    if (reserved != NULL)
        return serr_set(err, SERR_INVALID,
                        "invalid mount config for type \"tmpfs\": target %s is reserved", target);
    return 0;
}

static bool is_tmpfs(json_t *mount)
{
    const char *type = jstr(mount, "type");
    return type != NULL && strcmp(type, "tmpfs") == 0;
}

static int check_mounts(const struct runtime *rt, json_t *mounts, struct serr *err)
{
    if (mounts == NULL)
        return 0;
    if (!json_is_array(mounts))
        return serr_set(err, SERR_INVALID, "mounts must be an array");
    size_t i;
    json_t *m;
    json_array_foreach(mounts, i, m) {
        if (!json_is_object(m))
            return serr_set(err, SERR_INVALID, "mounts[%zu] must be an object", i);
        if (is_tmpfs(m) ? check_tmpfs(m, err) < 0 : check_bind(rt, m, err) < 0)
            return -1;
    }
    return 0;
}

static int check_limits(json_t *limits, struct serr *err)
{
    if (limits == NULL)
        return 0;
    json_t *cpus = json_object_get(limits, "cpus");
    json_t *memory = json_object_get(limits, "memory");
    if (cpus && (!json_is_number(cpus) || json_number_value(cpus) < 0))
        return serr_set(err, SERR_INVALID, "limits.cpus must be a positive number");
    if (memory && (!json_is_integer(memory) || json_integer_value(memory) < 0))
        return serr_set(err, SERR_INVALID, "limits.memory must be a positive integer (bytes)");
    json_t *cpuset = json_object_get(limits, "cpuset");
    const char *cpus_list = json_string_value(cpuset);
    if (cpuset && (cpus_list == NULL || cpus_list[0] == '\0' ||
                   cpus_list[strspn(cpus_list, "0123456789,-")] != '\0'))
        return serr_set(err, SERR_INVALID,
                        "limits.cpuset must be a list of cores such as \"0,2-3\"");
    /* The kernel refuses a memory limit this low and the error would only
     * surface as an obscure cgroup write failure. */
    if (memory && json_integer_value(memory) > 0 && json_integer_value(memory) < 6 * 1024 * 1024)
        return serr_set(err, SERR_INVALID, "minimum memory limit allowed is 6MB");
    return 0;
}

int runtime_spec_check(const struct runtime *rt, json_t *spec, struct serr *err)
{
    if (!json_is_object(spec))
        return serr_set(err, SERR_INVALID, "container spec must be an object");
    json_t *args = json_object_get(spec, "args");
    if (!is_string_array(args) || json_array_size(args) == 0)
        return serr_set(err, SERR_INVALID, "no command specified");
    json_t *env = json_object_get(spec, "env");
    if (env != NULL && !is_string_array(env))
        return serr_set(err, SERR_INVALID, "env must be an array of \"K=V\" strings");
    const char *workdir = jstr(spec, "workdir");
    if (workdir != NULL && workdir[0] != '\0' && workdir[0] != '/')
        return serr_set(err, SERR_INVALID, "working directory \"%s\" is not an absolute path",
                        workdir);
    if (runtime_user_check(jstr(spec, "user"), err) < 0)
        return -1;
    if (json_is_true(json_object_get(spec, "init")) && rt->init_path == NULL)
        return serr_set(err, SERR_INVALID, "init requested but no static init (tini-static) found");
    if (check_mounts(rt, json_object_get(spec, "mounts"), err) < 0)
        return -1;
    return check_limits(json_object_get(spec, "limits"), err);
}

static json_t *build_args(json_t *spec)
{
    json_t *args = json_array();
    if (json_is_true(json_object_get(spec, "init"))) {
        json_array_append_new(args, json_string(RUNTIME_INIT_TARGET));
        json_array_append_new(args, json_string("--"));
    }
    json_array_extend(args, json_object_get(spec, "args"));
    return args;
}

static bool has_path_env(json_t *env)
{
    size_t i;
    json_t *item;
    json_array_foreach(env, i, item) {
        if (strncmp(json_string_value(item), "PATH=", 5) == 0)
            return true;
    }
    return false;
}

static json_t *build_env(json_t *spec)
{
    json_t *spec_env = json_object_get(spec, "env");
    json_t *env = spec_env ? json_deep_copy(spec_env) : json_array();
    /* crun looks the command up in the container's PATH; like Docker, give
     * one to images that set none. */
    if (!has_path_env(env))
        json_array_append_new(env, json_string(DEFAULT_PATH_ENV));
    return env;
}

/* Docker's 1048576, unless our own hard limit is lower: without
 * CAP_SYS_RESOURCE crun could not raise it and the container would fail. */
static json_int_t nofile_limit(void)
{
    struct rlimit own;
    if (getrlimit(RLIMIT_NOFILE, &own) == 0 && own.rlim_max != RLIM_INFINITY &&
        own.rlim_max < NOFILE_LIMIT)
        return (json_int_t)own.rlim_max;
    return NOFILE_LIMIT;
}

static bool names_all(json_t *caps)
{
    size_t i;
    json_t *c;
    json_array_foreach(caps, i, c)
    {
        if (json_is_string(c) && strcmp(json_string_value(c), "ALL") == 0)
            return true;
    }
    return false;
}

static void caps_remove(json_t *set, const char *name)
{
    for (size_t i = json_array_size(set); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(set, i)), name) == 0)
            json_array_remove(set, i);
}

/* Docker's default set, less cap_drop, plus cap_add ("ALL" in either). */
static json_t *capability_set(json_t *spec)
{
    json_t *add = json_object_get(spec, "cap_add"), *drop = json_object_get(spec, "cap_drop");
    json_t *set = names_all(add) ? string_array(container_all_caps) : string_array(default_caps);
    size_t i;
    json_t *c;
    if (names_all(drop))
        json_array_clear(set);
    json_array_foreach(drop, i, c) caps_remove(set, json_string_value(c));
    json_array_foreach(add, i, c)
    {
        const char *name = json_string_value(c);
        if (strcmp(name, "ALL") != 0) {
            caps_remove(set, name);
            json_array_append(set, c);
        }
    }
    return set;
}

/* RLIMIT_NOFILE as Docker's default, then the spec's ulimits
 * ({"nofile": {"soft": N, "hard": M}}). */
static json_t *build_rlimits(json_t *spec)
{
    json_t *ulimits = json_object_get(spec, "ulimits");
    json_t *rlimits = json_array();
    if (json_object_get(ulimits, "nofile") == NULL)
        json_array_append_new(rlimits, json_pack("{s:s, s:I, s:I}", "type", "RLIMIT_NOFILE",
                                                 "hard", nofile_limit(), "soft", nofile_limit()));
    const char *name;
    json_t *lim;
    json_object_foreach(ulimits, name, lim)
    {
        const char *oci;
        if (container_ulimit_resource(name, &oci) >= 0)
            json_array_append_new(rlimits,
                                  json_pack("{s:s, s:O, s:O}", "type", oci, "hard",
                                            json_object_get(lim, "hard"), "soft",
                                            json_object_get(lim, "soft")));
    }
    return rlimits;
}

/* `user` is taken over. */
static json_t *build_process(json_t *spec, struct runtime_user *user)
{
    const char *cwd = jstr(spec, "workdir");
    if (cwd == NULL || *cwd == '\0')
        cwd = "/";
    json_t *caps = json_object();
    json_t *set = capability_set(spec);
    json_object_set(caps, "bounding", set);
    json_object_set(caps, "effective", set);
    json_object_set_new(caps, "permitted", set);
    json_t *rlimits = build_rlimits(spec);
    json_t *ids = runtime_user_json(user);
    bool terminal = json_is_true(json_object_get(spec, "tty"));
    return json_pack("{s:b, s:o, s:o, s:o, s:s, s:o, s:b, s:o}", "terminal", terminal, "user", ids,
                     "args", build_args(spec),
                     "env", build_env(spec), "cwd", cwd, "capabilities", caps,
                     "noNewPrivileges", 1, "rlimits", rlimits);
}

static json_t *mount_entry(const char *destination, const char *type, const char *source,
                           const char *options)
{
    json_t *m = json_pack("{s:s, s:s, s:s}", "destination", destination, "type", type, "source",
                          source);
    if (options != NULL)
        json_object_set_new(m, "options", split_options(options));
    return m;
}

/* Docker's tmpfs options: nosuid, nodev, noexec off (as Swarm), size and
 * mode when given. */
static json_t *tmpfs_entry(json_t *m)
{
    char options[128];
    int n = snprintf(options, sizeof(options), "nosuid,nodev%s",
                     json_is_true(json_object_get(m, "readonly")) ? ",ro" : "");
    json_t *size = json_object_get(m, "size"), *mode = json_object_get(m, "mode");
    if (json_is_integer(size))
        n += snprintf(options + n, sizeof(options) - (size_t)n, ",size=%lld",
                      (long long)json_integer_value(size));
    if (json_is_integer(mode))
        snprintf(options + n, sizeof(options) - (size_t)n, ",mode=%llo",
                 (unsigned long long)json_integer_value(mode));
    return mount_entry(jstr(m, "target"), "tmpfs", "tmpfs", options);
}

/* A readonly bind is read-only all the way down where the kernel can do it
 * (crun's "rro": mount_setattr with AT_RECURSIVE); runtime_spec_check
 * refuses trees with submounts where it cannot. */
static void add_user_binds(const struct runtime *rt, json_t *mounts, json_t *spec)
{
    const char *ro_options = rt->recursive_ro ? "rbind,rprivate,ro,rro" : "rbind,rprivate,ro";
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(spec, "mounts"), i, m) {
        if (is_tmpfs(m)) {
            json_array_append_new(mounts, tmpfs_entry(m));
            continue;
        }
        bool readonly = json_is_true(json_object_get(m, "readonly"));
        /* a single file (a task's secret): no submounts, and crun's rro opens a directory */
        bool file = json_is_true(json_object_get(m, "file"));
        json_array_append_new(mounts, mount_entry(jstr(m, "target"), "bind", jstr(m, "source"),
                                                  file       ? "bind,rprivate,ro"
                                                  : readonly ? ro_options
                                                             : "rbind,rprivate"));
    }
}

static json_t *build_mounts(const struct runtime *rt, json_t *spec)
{
    json_t *mounts = json_array();
    for (size_t i = 0; i < sizeof(base_mounts) / sizeof(base_mounts[0]); i++)
        json_array_append_new(mounts, mount_entry(base_mounts[i].destination, base_mounts[i].type,
                                                  base_mounts[i].source, base_mounts[i].options));
    const char *resolv = jstr(spec, "resolv_conf");
    for (size_t i = 0; host_files[i] != NULL; i++) {
        const char *source = host_files[i];
        if (resolv && strcmp(source, "/etc/resolv.conf") == 0)
            source = resolv; /* the node's DNS server, for tasks on our networks */
        if (access(source, F_OK) == 0)
            json_array_append_new(mounts, mount_entry(host_files[i], "bind", source, "rbind,ro"));
    }
    if (json_is_true(json_object_get(spec, "init")))
        json_array_append_new(mounts,
                              mount_entry(RUNTIME_INIT_TARGET, "bind", rt->init_path, "bind,ro"));
    add_user_binds(rt, mounts, spec);
    return mounts;
}

static json_t *build_seccomp(void)
{
    return json_pack("{s:s, s:o, s:[{s:o, s:s, s:i}]}", "defaultAction", "SCMP_ACT_ALLOW",
                     "architectures", string_array(seccomp_archs), "syscalls", "names",
                     string_array(seccomp_denied), "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM);
}

static json_t *build_namespaces(json_t *spec)
{
    /* No cgroup namespace: on v1 hosts crun does not manage cgroups for us. */
    json_t *ns = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}]", "type", "pid", "type", "mount", "type",
                           "uts", "type", "ipc");
    /* A bridged task joins the namespace the agent prepared (agent/net.h);
     * without one the container shares the host's network. */
    const char *netns = jstr(spec, "netns");
    if (netns != NULL)
        json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "network", "path", netns));
    return ns;
}

/* Device access rules Docker applies by default: mknod anything, use only
 * the harmless character devices. Only used where crun owns the cgroup (v2);
 * runtime_cgroup.c writes the same rules on v1. */
static json_t *build_device_rules(void)
{
    static const struct {
        int major, minor;
    } allowed[] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}};
    json_t *rules = json_pack("[{s:b, s:s}, {s:b, s:s, s:s}, {s:b, s:s, s:s}]", "allow", 0,
                              "access", "rwm", "allow", 1, "type", "c", "access", "m", "allow", 1,
                              "type", "b", "access", "m");
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        json_t *rule = json_pack("{s:b, s:s, s:I, s:s}", "allow", 1, "type", "c", "major",
                                 (json_int_t)allowed[i].major, "access", "rwm");
        if (allowed[i].minor >= 0)
            json_object_set_new(rule, "minor", json_integer(allowed[i].minor));
        json_array_append_new(rules, rule);
    }
    return rules;
}

static json_t *build_resources(json_t *spec)
{
    json_t *resources = json_object();
    json_object_set_new(resources, "devices", build_device_rules());
    json_t *limits = json_object_get(spec, "limits");
    json_int_t memory = json_integer_value(json_object_get(limits, "memory"));
    double cpus = json_number_value(json_object_get(limits, "cpus"));
    if (memory > 0)
        json_object_set_new(resources, "memory", json_pack("{s:I}", "limit", memory));
    json_int_t pids = json_integer_value(json_object_get(limits, "pids"));
    if (pids > 0)
        json_object_set_new(resources, "pids", json_pack("{s:I}", "limit", pids));
    json_t *cpu = json_object();
    if (cpus > 0)
        json_object_update_new(cpu, json_pack("{s:I, s:I}", "quota",
                                              (json_int_t)(cpus * CPU_PERIOD_US), "period",
                                              (json_int_t)CPU_PERIOD_US));
    const char *cpuset = jstr(limits, "cpuset");
    if (cpuset) /* a batch job's cores */
        json_object_set_new(cpu, "cpus", json_string(cpuset));
    if (json_object_size(cpu) > 0)
        json_object_set_new(resources, "cpu", cpu);
    else
        json_decref(cpu);
    return resources;
}

static json_t *build_linux(const struct runtime *rt, const char *id, json_t *spec)
{
    json_t *linux_ = json_object();
    json_object_set_new(linux_, "namespaces", build_namespaces(spec));
    json_object_set_new(linux_, "maskedPaths", string_array(masked_paths));
    json_object_set_new(linux_, "readonlyPaths", string_array(readonly_paths));
    json_object_set_new(linux_, "seccomp", build_seccomp());
    json_t *sysctls = json_object_get(spec, "sysctls");
    if (json_is_object(sysctls))
        json_object_set(linux_, "sysctl", sysctls);
    if (rt->cgroup_mode == CGROUP_V2) {
        char *path = xasprintf("/shoal/%s", id);
        json_object_set_new(linux_, "cgroupsPath", json_string(path));
        free(path);
        json_object_set_new(linux_, "resources", build_resources(spec));
    }
    return linux_;
}

static const char *hostname_of(const char *id, json_t *spec, char *buf, size_t buflen)
{
    const char *hostname = jstr(spec, "hostname");
    if (hostname != NULL && *hostname != '\0')
        return hostname;
    /* Like Docker: the short id. */
    snprintf(buf, buflen, "%.12s", id);
    return buf;
}

json_t *runtime_config_build(const struct runtime *rt, const char *id, json_t *spec,
                             struct serr *err)
{
    if (runtime_spec_check(rt, spec, err) < 0)
        return NULL;
    struct runtime_user user;
    char *rootfs = xasprintf("%s/%s/rootfs", rt->containers_dir, id);
    int rc = runtime_user_resolve(rootfs, jstr(spec, "user"), &user, err);
    free(rootfs);
    if (rc < 0)
        return NULL;
    char short_id[16];
    json_t *config = json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2",
                               "process", build_process(spec, &user), "root", "path", "rootfs",
                               "readonly", json_is_true(json_object_get(spec, "read_only")),
                               "hostname",
                               hostname_of(id, spec, short_id, sizeof(short_id)), "mounts",
                               build_mounts(rt, spec), "linux", build_linux(rt, id, spec));
    if (config == NULL) {
        serr_set(err, SERR_INTERNAL, "cannot build the OCI config");
        return NULL;
    }
    json_t *annotations = json_object_get(spec, "annotations"); /* --container-label */
    if (json_is_object(annotations))
        json_object_set(config, "annotations", annotations);
    return config;
}
