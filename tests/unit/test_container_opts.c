/* Names shared by the manager and the agent (model/container_opts.c). */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include "model/container_opts.h"
#include "unit.h"

TEST(container_opts_names)
{
    CHECK(container_cap_known("CAP_NET_ADMIN"));
    CHECK(!container_cap_known("NET_ADMIN"));
    const char *oci = NULL;
    CHECK(container_ulimit_resource("nofile", &oci) == RLIMIT_NOFILE);
    CHECK_STR(oci, "RLIMIT_NOFILE");
    CHECK(container_ulimit_resource("files", NULL) < 0);
    CHECK(container_sysctl_allowed("kernel.shmmax", false));
    CHECK(container_sysctl_allowed("fs.mqueue.msg_max", false));
    CHECK(!container_sysctl_allowed("fs.mqueue.", true));
    CHECK(container_sysctl_allowed("net.ipv4.ip_forward", true));
    CHECK(!container_sysctl_allowed("net.ipv4.ip_forward", false));
    CHECK(!container_sysctl_allowed("vm.swappiness", true));
    CHECK(container_signal_number("SIGINT") == SIGINT);
    CHECK(container_signal_number("TERM") == SIGTERM);
    CHECK(container_signal_number("9") == 9);
    CHECK(container_signal_number("65") < 0);
    CHECK(container_signal_number("SIG") < 0);
    CHECK(container_signal_number("") < 0);
}
