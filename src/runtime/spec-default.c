/*
 * spec-default.c - the config.json that `berth runtime spec` writes: the same
 * shape as `runc spec` (busybox-friendly "sh", read-only root, the default
 * mounts, masked and read-only /proc paths), optionally rootless.
 */
#include "common/strbuf.h"
#include "runtime/spec.h"

static const char default_head[] =
    "{\n"
    "\t\"ociVersion\": \"1.1.0\",\n"
    "\t\"process\": {\n"
    "\t\t\"terminal\": true,\n"
    "\t\t\"user\": { \"uid\": 0, \"gid\": 0 },\n"
    "\t\t\"args\": [ \"sh\" ],\n"
    "\t\t\"env\": [\n"
    "\t\t\t\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
    "\t\t\t\"TERM=xterm\"\n"
    "\t\t],\n"
    "\t\t\"cwd\": \"/\",\n"
    "\t\t\"capabilities\": {\n"
    "\t\t\t\"bounding\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "\t\t\t\"effective\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "\t\t\t\"permitted\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ],\n"
    "\t\t\t\"ambient\": [ \"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\" ]\n"
    "\t\t},\n"
    "\t\t\"rlimits\": [ { \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 } ],\n"
    "\t\t\"noNewPrivileges\": true\n"
    "\t},\n"
    "\t\"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
    "\t\"hostname\": \"berth\",\n"
    "\t\"mounts\": [\n"
    "\t\t{ \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },\n"
    "\t\t{ \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
    "\t\t  \"options\": [ \"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\" ] },\n"
    "\t\t{ \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\",\n"
    "\t\t  \"options\": [ \"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\"%s ] },\n"
    "\t\t{ \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
    "\t\t  \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\" ] },\n"
    "\t\t{ \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\",\n"
    "\t\t  \"options\": [ \"nosuid\", \"noexec\", \"nodev\" ] },\n";

static const char default_sys[] =
    "\t\t{ \"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
    "\t\t  \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"ro\" ] },\n"
    "\t\t{ \"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\",\n"
    "\t\t  \"options\": [ \"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\" ] }\n";

static const char default_sys_rootless[] =
    "\t\t{ \"destination\": \"/sys\", \"type\": \"none\", \"source\": \"/sys\",\n"
    "\t\t  \"options\": [ \"rbind\", \"nosuid\", \"noexec\", \"nodev\", \"ro\" ] }\n";

static const char default_linux[] =
    "\t],\n"
    "\t\"linux\": {\n"
    "%s"
    "\t\t\"namespaces\": [\n"
    "\t\t\t{ \"type\": \"pid\" }, { \"type\": \"network\" }, { \"type\": \"ipc\" },\n"
    "\t\t\t{ \"type\": \"uts\" }, { \"type\": \"mount\" }, { \"type\": \"cgroup\" }%s\n"
    "\t\t],\n"
    "\t\t\"maskedPaths\": [\n"
    "\t\t\t\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\", \"/proc/latency_stats\",\n"
    "\t\t\t\"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\",\n"
    "\t\t\t\"/proc/scsi\"\n"
    "\t\t],\n"
    "\t\t\"readonlyPaths\": [\n"
    "\t\t\t\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"\n"
    "\t\t]\n"
    "\t}\n"
    "}\n";

char *runtime_spec_default_json(bool rootless)
{
	struct strbuf sb = STRBUF_INIT;
	uid_t uid = getuid();
	gid_t gid = getgid();
	strbuf_addf(&sb, default_head, rootless ? "" : ", \"gid=5\"");
	strbuf_addstr(&sb, rootless ? default_sys_rootless : default_sys);
	if (rootless) {
		_cleanup_free_ char *maps = xasprintf(
		    "\t\t\"uidMappings\": [ { \"containerID\": 0, \"hostID\": %u, \"size\": 1 } ],\n"
		    "\t\t\"gidMappings\": [ { \"containerID\": 0, \"hostID\": %u, \"size\": 1 } ],\n",
		    (unsigned)uid, (unsigned)gid);
		strbuf_addf(&sb, default_linux, maps, ", { \"type\": \"user\" }");
	} else {
		strbuf_addf(
		    &sb, default_linux,
		    "\t\t\"resources\": { \"devices\": [ { \"allow\": false, \"access\": \"rwm\" } ] },\n",
		    "");
	}
	return strbuf_detach(&sb, NULL);
}
