#include "model/container_opts.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/util.h"

const char *const container_all_caps[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    NULL,
};

bool container_cap_known(const char *name)
{
    return str_in_list(name, container_all_caps);
}

static const struct {
    const char *name, *oci;
    int resource;
} ulimits[] = {
    {"core", "RLIMIT_CORE", RLIMIT_CORE},
    {"cpu", "RLIMIT_CPU", RLIMIT_CPU},
    {"data", "RLIMIT_DATA", RLIMIT_DATA},
    {"fsize", "RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"locks", "RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"memlock", "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"msgqueue", "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"nice", "RLIMIT_NICE", RLIMIT_NICE},
    {"nofile", "RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"nproc", "RLIMIT_NPROC", RLIMIT_NPROC},
    {"rss", "RLIMIT_RSS", RLIMIT_RSS},
    {"rtprio", "RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"rttime", "RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"sigpending", "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"stack", "RLIMIT_STACK", RLIMIT_STACK},
};

int container_ulimit_resource(const char *name, const char **oci_name)
{
    for (size_t i = 0; i < sizeof(ulimits) / sizeof(ulimits[0]); i++)
        if (strcmp(ulimits[i].name, name) == 0) {
            if (oci_name)
                *oci_name = ulimits[i].oci;
            return ulimits[i].resource;
        }
    return -1;
}

bool container_sysctl_allowed(const char *key, bool own_network)
{
    static const char *const exact[] = {"kernel.msgmax", "kernel.msgmnb",          "kernel.msgmni",
                                        "kernel.sem",    "kernel.shmall",          "kernel.shmmax",
                                        "kernel.shmmni", "kernel.shm_rmid_forced", NULL};
    if (str_in_list(key, exact))
        return true;
    if (strncmp(key, "fs.mqueue.", 10) == 0 && key[10] != '\0')
        return true;
    return own_network && strncmp(key, "net.", 4) == 0 && key[4] != '\0';
}

int container_signal_number(const char *name)
{
    static const struct {
        const char *name;
        int number;
    } signals[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"STOP", SIGSTOP},
        {"PWR", SIGPWR},   {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"ABRT", SIGABRT},
    };
    if (name == NULL || *name == '\0')
        return -1;
    if (name[0] >= '0' && name[0] <= '9') {
        char *end;
        long n = strtol(name, &end, 10);
        return *end == '\0' && n >= 1 && n <= 64 ? (int)n : -1;
    }
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
        if (strcmp(signals[i].name, name) == 0)
            return signals[i].number;
    return -1;
}
