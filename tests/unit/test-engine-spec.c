/*
 * test-engine-spec.c - the Docker -> OCI translation (engine/spec.c): the config.json that
 * engine_spec_write() hands the runtime for a Config/HostConfig, and the exec process. Env, mounts,
 * capabilities, resources, user and groups, devices, seccomp selection, init, rlimits, and
 * the errors for bad input. The engine is a bare struct: no daemon, store or shim.
 */
#include "unit.h"

#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "engine/internal.h"

#define CID "c0ffee0123456789c0ffee0123456789c0ffee0123456789c0ffee0123456789"

struct fixture {
	char *dir, *rootfs;
	struct engine e;
	struct container c;
};

static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	assert_int_equal(fs_write_file_replace(p, text, strlen(text), mode, NULL), 0);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	f->rootfs = xasprintf("%s/rootfs", f->dir);
	_cleanup_free_ char *etc = xasprintf("%s/etc", f->rootfs);
	_cleanup_free_ char *xdir = xasprintf("%s/exec/c/%.24s", f->dir, CID);
	assert_int_equal(fs_mkdir_p(etc, 0755, NULL), 0);
	assert_int_equal(fs_mkdir_p(xdir, 0755, NULL), 0);
	write_file(etc, "passwd",
		   "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n"
		   "broken:x:notanumber:0::/:/bin/sh\n",
		   0644);
	write_file(etc, "group",
		   "root:x:0:\nstaff:x:50:alice,bob\nwheel:x:10:carol\nalice:x:1001:\n"
		   "audio:x:29:bob,alice\n",
		   0644);
	f->e.root = xasprintf("%s/root", f->dir);
	f->e.exec_root = xasprintf("%s/exec", f->dir);
	f->e.cgroup_parent = xstrdup("berth");
	f->e.init_path = xasprintf("%s/no-init", f->dir);
	f->c.id = xstrdup(CID);
	f->c.config = json_pack("{s:[s],s:[s],s:s}", "Entrypoint", "/bin/sh", "Cmd", "-c", "Hostname", "web");
	f->c.hostconfig = json_object();
	f->c.mounts = json_array();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->rootfs);
	free(f->e.root);
	free(f->e.exec_root);
	free(f->e.cgroup_parent);
	free(f->e.init_path);
	free(f->c.id);
	json_decref(f->c.config);
	json_decref(f->c.hostconfig);
	json_decref(f->c.mounts);
	free(f);
	return 0;
}

/* Merge JSON text into the container's Config / HostConfig. */
static void set_cfg(struct fixture *f, const char *cfg, const char *hc)
{
	const char *texts[] = { cfg, hc };
	json_t *dst[] = { f->c.config, f->c.hostconfig };
	for (size_t i = 0; i < 2; i++) {
		if (!texts[i])
			continue;
		_cleanup_json_ json_t *o = json_loads(texts[i], 0, NULL);
		assert_non_null(o);
		assert_int_equal(json_object_update(dst[i], o), 0);
	}
}

/* engine_spec_write(), then the config.json it wrote; NULL with *ret_err on failure. */
static json_t *spec(struct fixture *f, const char *netns, char **ret_err)
{
	struct berth_error *err = NULL;
	int r = engine_spec_write(&f->e, &f->c, f->rootfs, netns, &err);
	if (r < 0) {
		assert_non_null(err);
		if (ret_err)
			*ret_err = berth_error_string(err);
		else
			fail_msg("spec_write: %s", berth_error_string(err));
		berth_error_free(err);
		return NULL;
	}
	assert_null(err);
	_cleanup_free_ char *path = xasprintf("%s/exec/c/%.24s/config.json", f->dir, CID);
	json_t *j = json_load_file(path, 0, NULL);
	assert_non_null(j);
	return j;
}

static char *spec_error(struct fixture *f)
{
	char *msg = NULL;
	json_t *j = spec(f, NULL, &msg);
	assert_null(j);
	assert_non_null(msg);
	return msg;
}

static const json_t *mount_at(const json_t *spec, const char *dst)
{
	size_t i;
	json_t *m;
	json_array_foreach (json_object_get(spec, "mounts"), i, m)
		if (streq_ptr(json_string_value(json_object_get(m, "destination")), dst))
			return m;
	return NULL;
}

#define PROC(j)  json_object_get(j, "process")
#define LINUX(j) json_object_get(j, "linux")
#define CAPS(j)  json_object_get(json_object_get(PROC(j), "capabilities"), "bounding")

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	_cleanup_json_ json_t *j = spec(f, "/run/netns/x", NULL);
	const json_t *p = PROC(j), *l = LINUX(j);
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "web");
	assert_false(json_is_true(json_object_get(json_object_get(j, "root"), "readonly")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "root"), "path")),
			    f->rootfs);
	/* args: Entrypoint then Cmd; cwd "/" when WorkingDir is empty; root */
	assert_int_equal(json_array_size(json_object_get(p, "args")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(p, "args"), 0)), "/bin/sh");
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")), 0);
	/* the primary group is a supplementary one too (dockerd since 20.10.18: `id` shows groups=0(root)) */
	_cleanup_json_ json_t *root_gids = json_pack("[i]", 0);
	assert_true(json_equal(json_object_get(json_object_get(p, "user"), "additionalGids"), root_gids));
	assert_false(json_is_true(json_object_get(p, "terminal")));
	assert_false(json_is_true(json_object_get(p, "noNewPrivileges")));
	/* docker's 14 default capabilities, the same in every set */
	assert_int_equal(json_array_size(CAPS(j)), 14);
	assert_true(json_strv_contains(CAPS(j), "CAP_NET_BIND_SERVICE"));
	assert_false(json_strv_contains(CAPS(j), "CAP_SYS_ADMIN"));
	assert_true(json_equal(CAPS(j), json_object_get(json_object_get(p, "capabilities"), "effective")));
	/* namespaces: the network one joins the given netns */
	size_t i;
	json_t *ns;
	bool net = false, mnt = false;
	json_array_foreach (json_object_get(l, "namespaces"), i, ns) {
		const char *t = json_string_value(json_object_get(ns, "type"));
		mnt |= streq(t, "mount");
		if (streq(t, "network")) {
			net = true;
			assert_string_equal(json_string_value(json_object_get(ns, "path")), "/run/netns/x");
		}
	}
	assert_true(net && mnt);
	assert_string_equal(json_string_value(json_object_get(l, "cgroupsPath")), "/berth/" CID);
	assert_true(json_strv_contains(json_object_get(l, "maskedPaths"), "/proc/kcore"));
	assert_true(json_strv_contains(json_object_get(l, "readonlyPaths"), "/proc/sys"));
	assert_null(json_object_get(l, "devices"));
	/* the default seccomp profile */
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(l, "seccomp"), "defaultAction")),
	    "SCMP_ACT_ERRNO");
	/* /sys read-only, the container's own hosts/resolv.conf/hostname bound in */
	assert_true(json_strv_contains(json_object_get(mount_at(j, "/sys"), "options"), "ro"));
	_cleanup_free_ char *hosts = xasprintf("%s/root/containers/%s/hosts", f->dir, CID);
	assert_string_equal(json_string_value(json_object_get(mount_at(j, "/etc/hosts"), "source")), hosts);
	assert_non_null(mount_at(j, "/dev/shm"));
	/* no resources asked: only the device allowlist */
	const json_t *res = json_object_get(l, "resources");
	assert_int_equal(json_object_size(res), 1);
	assert_null(json_object_get(l, "rlimits"));
}

static void test_env(void **state)
{
	struct fixture *f = *state;
	set_cfg(f, "{\"Env\":[\"A=1\",\"UNSET\",\"B=\",\"C=x=y\",7]}", NULL);
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	const json_t *env = json_object_get(PROC(j), "env");
	/* PATH first when the image sets none; "KEY" alone unsets; HOSTNAME from Config.Hostname */
	assert_string_equal(json_string_value(json_array_get(env, 0)),
			    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	assert_true(json_strv_contains(env, "A=1") && json_strv_contains(env, "B=") &&
		    json_strv_contains(env, "C=x=y"));
	assert_false(json_strv_contains(env, "UNSET"));
	assert_true(json_strv_contains(env, "HOSTNAME=web"));
	assert_false(json_strv_contains(env, "TERM=xterm"));
	assert_int_equal(json_array_size(env), 5);
	json_decref(j);

	/* the image's PATH and HOSTNAME win; a tty adds TERM unless set */
	set_cfg(f, "{\"Env\":[\"PATH=/opt/bin\",\"HOSTNAME=other\"],\"Tty\":true}", NULL);
	j = spec(f, NULL, NULL);
	env = json_object_get(PROC(j), "env");
	assert_string_equal(json_string_value(json_array_get(env, 0)), "PATH=/opt/bin");
	assert_false(json_strv_contains(env, "HOSTNAME=web"));
	assert_true(json_strv_contains(env, "TERM=xterm"));
	assert_true(json_is_true(json_object_get(PROC(j), "terminal")));
	json_decref(j);
	set_cfg(f, "{\"Env\":[\"TERM=vt100\"]}", NULL);
	j = spec(f, NULL, NULL);
	assert_true(json_strv_contains(json_object_get(PROC(j), "env"), "TERM=vt100"));
	assert_false(json_strv_contains(json_object_get(PROC(j), "env"), "TERM=xterm"));
}

static void test_capabilities(void **state)
{
	struct fixture *f = *state;
	set_cfg(f, NULL,
		"{\"CapAdd\":[\"net_admin\",\"CAP_SYS_TIME\",\"NET_RAW\"],"
		"\"CapDrop\":[\"chown\",\"CAP_KILL\"]}");
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	assert_true(json_strv_contains(CAPS(j), "CAP_NET_ADMIN") &&
		    json_strv_contains(CAPS(j), "CAP_SYS_TIME"));
	assert_false(json_strv_contains(CAPS(j), "CAP_CHOWN") || json_strv_contains(CAPS(j), "CAP_KILL"));
	assert_int_equal(json_array_size(CAPS(j)), 14); /* NET_RAW was already there: not twice */
	json_decref(j);

	set_cfg(f, NULL, "{\"CapAdd\":[\"SYS_PTRACE\"],\"CapDrop\":[\"ALL\"]}");
	j = spec(f, NULL, NULL);
	assert_int_equal(json_array_size(CAPS(j)), 1);
	assert_string_equal(json_string_value(json_array_get(CAPS(j), 0)), "CAP_SYS_PTRACE");
	json_decref(j);

	/* ALL: the daemon's bounding set, less what is dropped */
	set_cfg(f, NULL, "{\"CapAdd\":[\"all\"],\"CapDrop\":[\"MKNOD\"]}");
	j = spec(f, NULL, NULL);
	assert_true(json_array_size(CAPS(j)) > 14);
	assert_false(json_strv_contains(CAPS(j), "CAP_MKNOD") || json_strv_contains(CAPS(j), "CAP_ALL"));

	/* create-time checks: unknown names, in either list */
	struct berth_error *err = NULL;
	_cleanup_json_ json_t *bad = json_pack("{s:[s]}", "CapAdd", "CAP_FLY");
	assert_int_equal(engine_spec_caps_check(bad, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "invalid CapAdd: unknown capability: \"CAP_FLY\"");
	err = berth_error_free(err);
	_cleanup_json_ json_t *bad2 = json_pack("{s:[s,s]}", "CapDrop", "ALL", "wings");
	assert_int_equal(engine_spec_caps_check(bad2, &err), -EINVAL);
	_cleanup_free_ char *m2 = berth_error_string(err);
	assert_non_null(strstr(m2, "CapDrop") ? m2 : NULL);
	err = berth_error_free(err);
	/* non-strings are refused at create (they used to reach cap_name(NULL) at start) */
	_cleanup_json_ json_t *bad3 = json_pack("{s:[s,i]}", "CapAdd", "chown", 5);
	assert_int_equal(engine_spec_caps_check(bad3, &err), -EINVAL);
	_cleanup_free_ char *m3 = berth_error_string(err);
	assert_string_equal(m3, "invalid CapAdd: expected a list of strings");
	err = berth_error_free(err);
	_cleanup_json_ json_t *bad4 = json_pack("{s:[n]}", "CapDrop");
	assert_int_equal(engine_spec_caps_check(bad4, NULL), -EINVAL);
	_cleanup_json_ json_t *good =
	    json_pack("{s:[s,s,s],s:[s]}", "CapAdd", "all", "chown", "CAP_KILL", "CapDrop", "net_raw");
	assert_int_equal(engine_spec_caps_check(good, NULL), 0);
}

static void test_privileged(void **state)
{
	struct fixture *f = *state;
	set_cfg(f, NULL, "{\"Privileged\":true,\"CapDrop\":[\"ALL\"]}");
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	const json_t *l = LINUX(j);
	/* every capability the daemon holds (CapDrop does not apply), host devices, no confinement */
	assert_true(json_array_size(CAPS(j)) > 14);
	assert_null(json_object_get(l, "seccomp"));
	assert_null(json_object_get(l, "maskedPaths"));
	assert_null(json_object_get(l, "readonlyPaths"));
	assert_false(json_strv_contains(json_object_get(mount_at(j, "/sys"), "options"), "ro"));
	const json_t *devs = json_object_get(json_object_get(l, "resources"), "devices");
	assert_int_equal(json_array_size(devs), 1);
	assert_true(json_is_true(json_object_get(json_array_get(devs, 0), "allow")));
	size_t i;
	json_t *d;
	bool null_dev = false;
	json_array_foreach (json_object_get(l, "devices"), i, d)
		null_dev |= streq_ptr(json_string_value(json_object_get(d, "path")), "/dev/null") &&
			    json_integer_value(json_object_get(d, "major")) == 1 &&
			    json_integer_value(json_object_get(d, "minor")) == 3;
	assert_true(null_dev);
}

static void test_device_allowlist(void **state)
{
	struct fixture *f = *state;
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	const json_t *devs = json_object_get(json_object_get(LINUX(j), "resources"), "devices");
	/* deny everything first, then docker's allowlist: mknod, null, zero, full, tty, urandom, ptys */
	const json_t *first = json_array_get(devs, 0);
	assert_false(json_is_true(json_object_get(first, "allow")));
	assert_string_equal(json_string_value(json_object_get(first, "access")), "rwm");
	static const int allowed[][2] = {
		{ 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 }, { 5, 0 }, { 5, 2 }
	};
	for (size_t k = 0; k < ARRAY_SIZE(allowed); k++) {
		bool found = false;
		size_t i;
		json_t *d;
		json_array_foreach (devs, i, d)
			found |= json_is_true(json_object_get(d, "allow")) &&
				 json_integer_value(json_object_get(d, "major")) == allowed[k][0] &&
				 json_integer_value(json_object_get(d, "minor")) == allowed[k][1];
		assert_true(found);
	}
	/* no block device beyond mknod */
	size_t i;
	json_t *d;
	json_array_foreach (devs, i, d)
		if (streq_ptr(json_string_value(json_object_get(d, "type")), "b"))
			assert_string_equal(json_string_value(json_object_get(d, "access")), "m");
}

static void test_resources(void **state)
{
	_cleanup_json_ json_t *none = json_object();
	_cleanup_json_ json_t *r0 = engine_spec_resources(none);
	assert_int_equal(json_object_size(r0), 0);

	_cleanup_json_ json_t *hc =
	    json_pack("{s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:I,s:I}", "Memory", (json_int_t)64 << 20, "MemorySwap",
		      (json_int_t)128 << 20, "CpuShares", (json_int_t)512, "CpuPeriod", (json_int_t)50000,
		      "CpuQuota", (json_int_t)25000, "CpusetCpus", "0-1", "CpusetMems", "", "PidsLimit",
		      (json_int_t)-1, "BlkioWeight", (json_int_t)300);
	_cleanup_json_ json_t *r = engine_spec_resources(hc);
	const json_t *mem = json_object_get(r, "memory"), *cpu = json_object_get(r, "cpu");
	assert_int_equal(json_integer_value(json_object_get(mem, "limit")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(mem, "swap")), 128 << 20);
	assert_int_equal(json_integer_value(json_object_get(cpu, "shares")), 512);
	assert_int_equal(json_integer_value(json_object_get(cpu, "period")), 50000);
	assert_int_equal(json_integer_value(json_object_get(cpu, "quota")), 25000);
	assert_string_equal(json_string_value(json_object_get(cpu, "cpus")), "0-1");
	assert_null(json_object_get(cpu, "mems")); /* empty: not set */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "pids"), "limit")), -1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "blockIO"), "weight")), 300);

	/* NanoCpus wins over period/quota: 1.5 CPUs = 150000/100000 */
	json_object_set_new(hc, "NanoCpus", json_integer(1500000000));
	json_decref(r);
	r = engine_spec_resources(hc);
	cpu = json_object_get(r, "cpu");
	assert_int_equal(json_integer_value(json_object_get(cpu, "period")), 100000);
	assert_int_equal(json_integer_value(json_object_get(cpu, "quota")), 150000);

	/* negative or wrongly typed values are not passed on: no memory limit, no swap alone */
	_cleanup_json_ json_t *odd =
	    json_pack("{s:I,s:I,s:s,s:I}", "Memory", (json_int_t)-1, "MemorySwap", (json_int_t)1 << 20,
		      "CpuShares", "lots", "BlkioWeight", (json_int_t)-5);
	_cleanup_json_ json_t *r2 = engine_spec_resources(odd);
	assert_int_equal(json_object_size(r2), 0);
	/* PidsLimit 0 means unset, a positive one is kept */
	_cleanup_json_ json_t *pids = json_pack("{s:I}", "PidsLimit", (json_int_t)100);
	_cleanup_json_ json_t *r3 = engine_spec_resources(pids);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r3, "pids"), "limit")), 100);
}

static void assert_user(struct fixture *f, const char *user, uint32_t uid, uint32_t gid)
{
	uint32_t u = 99, g = 99;
	assert_int_equal(engine_spec_resolve_user(f->rootfs, user, &u, &g, NULL), 0);
	assert_int_equal(u, uid);
	assert_int_equal(g, gid);
}

static void assert_user_error(struct fixture *f, const char *user, const char *msg)
{
	uint32_t u, g;
	struct berth_error *err = NULL;
	assert_int_equal(engine_spec_resolve_user(f->rootfs, user, &u, &g, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, msg);
	berth_error_free(err);
}

static void test_user(void **state)
{
	struct fixture *f = *state;
	assert_user(f, NULL, 0, 0);
	assert_user(f, "", 0, 0);
	assert_user(f, "alice", 1000, 1001);
	assert_user(f, "alice:staff", 1000, 50);
	assert_user(f, "alice:7", 1000, 7);
	assert_user(f, "4242", 4242, 0);
	assert_user(f, "4242:4343", 4242, 4343);
	assert_user(f, "root:", 0, 0);
	assert_user_error(f, "bob", "unable to find user bob: no matching entries in passwd file");
	assert_user_error(f, "alice:nogroup",
			  "unable to find group nogroup: no matching entries in group file");
	assert_user_error(f, "99999999999", /* beyond uint32: a name, and nobody has it */
			  "unable to find user 99999999999: no matching entries in passwd file");
	assert_user_error(f, "broken", "unable to find user broken: no matching entries in passwd file");
	/* without a rootfs only numbers work */
	uint32_t u, g;
	assert_int_equal(engine_spec_resolve_user("/nonexistent", "12:34", &u, &g, NULL), 0);
	assert_int_equal(engine_spec_resolve_user("/nonexistent", "alice", &u, &g, NULL), -EINVAL);

	/* in the spec: uid/gid, the primary group, the groups that list the user by name, then GroupAdd */
	set_cfg(f, "{\"User\":\"alice\"}", "{\"GroupAdd\":[\"wheel\",\"4000\"]}");
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	const json_t *user = json_object_get(PROC(j), "user");
	assert_int_equal(json_integer_value(json_object_get(user, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(user, "gid")), 1001);
	_cleanup_json_ json_t *want = json_pack("[i,i,i,i,i]", 1001, 50, 29, 10, 4000);
	assert_true(json_equal(json_object_get(user, "additionalGids"), want));
	json_decref(j);
	/* a user given with a group gets no membership lookup (docker/runc): only that group */
	set_cfg(f, "{\"User\":\"alice:alice\"}", "{\"GroupAdd\":[]}");
	j = spec(f, NULL, NULL);
	_cleanup_json_ json_t *alice = json_pack("[i]", 1001);
	assert_true(json_equal(json_object_get(json_object_get(PROC(j), "user"), "additionalGids"), alice));

	/* errors name what is missing, and no config.json is half-written */
	set_cfg(f, "{\"User\":\"mallory\"}", NULL);
	_cleanup_free_ char *m1 = spec_error(f);
	assert_string_equal(m1, "unable to find user mallory: no matching entries in passwd file");
	set_cfg(f, "{\"User\":\"alice\"}", "{\"GroupAdd\":[\"nosuch\"]}");
	_cleanup_free_ char *m2 = spec_error(f);
	assert_string_equal(m2, "unable to find group nosuch: no matching entries in group file");
	set_cfg(f, NULL, "{\"GroupAdd\":[\"\"]}");
	_cleanup_free_ char *m3 = spec_error(f);
	assert_string_equal(m3, "invalid GroupAdd entry");
	set_cfg(f, NULL, "{\"GroupAdd\":[5]}");
	_cleanup_free_ char *m4 = spec_error(f);
	assert_string_equal(m4, "invalid GroupAdd entry");
}

static const json_t *linux_seccomp_of(const json_t *j)
{
	return json_object_get(LINUX(j), "seccomp");
}

static void test_seccomp_selection(void **state)
{
	struct fixture *f = *state;
	static const char *const unconfined[] = { "{\"SecurityOpt\":[\"seccomp=unconfined\"]}",
						  "{\"SecurityOpt\":[\"seccomp:unconfined\"]}" };
	for (size_t i = 0; i < ARRAY_SIZE(unconfined); i++) {
		set_cfg(f, NULL, unconfined[i]);
		_cleanup_json_ json_t *j = spec(f, NULL, NULL);
		assert_null(linux_seccomp_of(j));
		/* unconfined seccomp is not privileged */
		assert_non_null(json_object_get(LINUX(j), "maskedPaths"));
	}
	/* a custom profile replaces the default */
	set_cfg(
	    f, NULL,
	    "{\"SecurityOpt\":[\"seccomp={\\\"defaultAction\\\":\\\"SCMP_ACT_LOG\\\","
	    "\\\"syscalls\\\":[{\\\"names\\\":[\\\"mkdir\\\"],\\\"action\\\":\\\"SCMP_ACT_ERRNO\\\"}]}\"]}");
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(linux_seccomp_of(j), "defaultAction")),
			    "SCMP_ACT_LOG");
	/* a profile file */
	write_file(f->dir, "profile.json", "{\"defaultAction\":\"SCMP_ACT_TRACE\"}", 0644);
	_cleanup_free_ char *opt = xasprintf("{\"SecurityOpt\":[\"seccomp=%s/profile.json\"]}", f->dir);
	set_cfg(f, NULL, opt);
	_cleanup_json_ json_t *j2 = spec(f, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(linux_seccomp_of(j2), "defaultAction")),
			    "SCMP_ACT_TRACE");
	/* a broken profile fails the start with the cause */
	set_cfg(f, NULL, "{\"SecurityOpt\":[\"seccomp={not json\"]}");
	_cleanup_free_ char *m = spec_error(f);
	assert_non_null(strstr(m, "decoding seccomp profile failed"));
	_cleanup_free_ char *missing = xasprintf("{\"SecurityOpt\":[\"seccomp=%s/nope.json\"]}", f->dir);
	set_cfg(f, NULL, missing);
	_cleanup_free_ char *m2 = spec_error(f);
	assert_non_null(strstr(m2, "nope.json"));
	/* no-new-privileges, in its three spellings */
	static const char *const nnp[] = { "no-new-privileges", "no-new-privileges:true",
					   "no-new-privileges=true" };
	for (size_t i = 0; i < ARRAY_SIZE(nnp); i++) {
		_cleanup_free_ char *o = xasprintf("{\"SecurityOpt\":[\"%s\"]}", nnp[i]);
		set_cfg(f, NULL, o);
		_cleanup_json_ json_t *k = spec(f, NULL, NULL);
		assert_true(json_is_true(json_object_get(PROC(k), "noNewPrivileges")));
		assert_non_null(linux_seccomp_of(k));
	}
	set_cfg(f, NULL, "{\"SecurityOpt\":[\"no-new-privileges:false\"]}");
	_cleanup_json_ json_t *k = spec(f, NULL, NULL);
	assert_false(json_is_true(json_object_get(PROC(k), "noNewPrivileges")));
}

static void test_mounts_namespaces_and_init(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *src = xasprintf("%s/data", f->dir);
	assert_int_equal(fs_mkdir_p(src, 0755, NULL), 0);
	_cleanup_free_ char *hc =
	    xasprintf("{\"Binds\":[\"%s:/data:ro\"],\"Tmpfs\":{\"/run\":\"size=1m\","
		      "\"/scratch\":\"\"},\"ReadonlyRootfs\":true,\"NetworkMode\":\"host\","
		      "\"CgroupParent\":\"/custom/parent\",\"Init\":true}",
		      src);
	set_cfg(f, "{\"WorkingDir\":\"/srv\"}", hc);
	json_decref(f->c.mounts);
	f->c.mounts = NULL;
	assert_int_equal(engine_mounts_plan(NULL, f->c.config, f->c.hostconfig, &f->c.mounts, NULL), 0);
	/* --init without its binary: the start fails and names it */
	_cleanup_free_ char *m = spec_error(f);
	assert_non_null(strstr(m, "--init: init binary"));
	write_file(f->dir, "no-init", "#!/bin/sh\n", 0755);
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	const json_t *bind = mount_at(j, "/data");
	assert_non_null(bind);
	assert_string_equal(json_string_value(json_object_get(bind, "source")), src);
	assert_true(json_strv_contains(json_object_get(bind, "options"), "ro"));
	const json_t *run = mount_at(j, "/run");
	assert_string_equal(json_string_value(json_object_get(run, "type")), "tmpfs");
	_cleanup_json_ json_t *want = json_pack("[s,s,s,s]", "nosuid", "nodev", "noexec", "size=1m");
	assert_true(json_equal(json_object_get(run, "options"), want));
	assert_int_equal(json_array_size(json_object_get(mount_at(j, "/scratch"), "options")), 3);
	assert_true(json_is_true(json_object_get(json_object_get(j, "root"), "readonly")));
	assert_string_equal(json_string_value(json_object_get(PROC(j), "cwd")), "/srv");
	assert_string_equal(json_string_value(json_object_get(LINUX(j), "cgroupsPath")),
			    "/custom/parent/" CID);
	/* host network: no network namespace at all */
	size_t i;
	json_t *ns;
	json_array_foreach (json_object_get(LINUX(j), "namespaces"), i, ns)
		assert_false(streq_ptr(json_string_value(json_object_get(ns, "type")), "network"));
	/* init in front of the command, bound read-only */
	const json_t *args = json_object_get(PROC(j), "args");
	assert_string_equal(json_string_value(json_array_get(args, 0)), "/sbin/docker-init");
	assert_string_equal(json_string_value(json_array_get(args, 1)), "--");
	assert_string_equal(json_string_value(json_array_get(args, 2)), "/bin/sh");
	assert_true(json_strv_contains(json_object_get(mount_at(j, "/sbin/docker-init"), "options"), "ro"));
}

static bool has_ns(const json_t *j, const char *type)
{
	size_t i;
	json_t *ns;
	json_array_foreach (json_object_get(LINUX(j), "namespaces"), i, ns)
		if (streq_ptr(json_string_value(json_object_get(ns, "type")), type))
			return true;
	return false;
}

/* PidMode/IpcMode/UTSMode/CgroupnsMode, Devices, ShmSize, OomScoreAdj, MaskedPaths: dockerd's meanings */
static void test_host_namespaces_devices_shm_oom(void **state)
{
	struct fixture *f = *state;
	set_cfg(
	    f, "{\"Hostname\":\"h\"}",
	    "{\"PidMode\":\"host\",\"IpcMode\":\"host\",\"UTSMode\":\"host\",\"CgroupnsMode\":\"private\","
	    "\"Devices\":[{\"PathOnHost\":\"/dev/null\",\"PathInContainer\":\"/dev/mynull\","
	    "\"CgroupPermissions\":\"r\"}],\"OomScoreAdj\":100,\"MaskedPaths\":[],\"ReadonlyPaths\":[\"/"
	    "x\"]}");
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	assert_false(has_ns(j, "pid") || has_ns(j, "ipc") || has_ns(j, "uts"));
	assert_true(has_ns(j, "cgroup") && has_ns(j, "mount") && has_ns(j, "network"));
	assert_null(json_object_get(j, "hostname")); /* the host's UTS namespace: no hostname of ours */
	assert_string_equal(json_string_value(json_object_get(mount_at(j, "/dev/shm"), "type")), "bind");
	const json_t *dev = json_array_get(json_object_get(LINUX(j), "devices"), 0);
	assert_string_equal(json_string_value(json_object_get(dev, "path")), "/dev/mynull");
	assert_int_equal(json_integer_value(json_object_get(dev, "major")), 1);
	assert_int_equal(json_integer_value(json_object_get(dev, "minor")), 3);
	const json_t *rules = json_object_get(json_object_get(LINUX(j), "resources"), "devices");
	const json_t *last = json_array_get(rules, json_array_size(rules) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "access")), "r");
	assert_int_equal(json_integer_value(json_object_get(PROC(j), "oomScoreAdj")), 100);
	assert_int_equal(json_array_size(json_object_get(LINUX(j), "maskedPaths")), 0);
	assert_int_equal(json_array_size(json_object_get(LINUX(j), "readonlyPaths")), 1);
	json_decref(j);
	/* defaults: own namespaces, a 64 MiB /dev/shm, ShmSize when given */
	set_cfg(f, NULL,
		"{\"ShmSize\":1048576,\"PidMode\":\"\",\"IpcMode\":\"private\",\"UTSMode\":\"\","
		"\"CgroupnsMode\":\"host\",\"Devices\":[]}"); /* set_cfg merges */
	j = spec(f, NULL, NULL);
	assert_true(has_ns(j, "pid") && has_ns(j, "ipc") && has_ns(j, "uts") && !has_ns(j, "cgroup"));
	assert_true(json_strv_contains(json_object_get(mount_at(j, "/dev/shm"), "options"), "size=1048576"));
	json_decref(TAKE_PTR(j));
	set_cfg(f, NULL, "{\"Devices\":[{\"PathOnHost\":\"/dev/nosuchdevice\"}]}");
	_cleanup_free_ char *m = spec_error(f);
	assert_string_equal(m, "error gathering device information while adding custom device "
			       "\"/dev/nosuchdevice\": no such file or directory");
}

static void test_rlimits(void **state)
{
	struct fixture *f = *state;
	set_cfg(f, NULL, "{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1024,\"Hard\":2048}]}");
	_cleanup_json_ json_t *j = spec(f, NULL, NULL);
	const json_t *rl = json_array_get(json_object_get(PROC(j), "rlimits"), 0);
	assert_string_equal(json_string_value(json_object_get(rl, "type")), "RLIMIT_NOFILE");
	assert_int_equal(json_integer_value(json_object_get(rl, "soft")), 1024);
	assert_int_equal(json_integer_value(json_object_get(rl, "hard")), 2048);
	set_cfg(f, NULL, "{\"Ulimits\":[{\"Name\":\"wings\",\"Soft\":1,\"Hard\":1}]}");
	_cleanup_free_ char *m = spec_error(f);
	assert_non_null(strstr(m, "wings"));
	set_cfg(f, NULL, "{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":4096,\"Hard\":1024}]}");
	_cleanup_free_ char *m2 = spec_error(f);
	assert_non_null(m2);
}

static void test_exec_process(void **state)
{
	struct fixture *f = *state;
	f->c.rootfs = f->rootfs;
	set_cfg(f, "{\"User\":\"alice\",\"WorkingDir\":\"/app\",\"Env\":[\"A=1\"]}", NULL);
	json_t *p = NULL;
	struct berth_error *err = NULL;
	/* Cmd is required */
	_cleanup_json_ json_t *nocmd = json_pack("{s:[]}", "Cmd");
	assert_int_equal(engine_spec_exec_process(&f->e, &f->c, nocmd, &p, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "No exec command specified");
	err = berth_error_free(err);
	_cleanup_json_ json_t *strcmd = json_pack("{s:s}", "Cmd", "ls");
	assert_int_equal(engine_spec_exec_process(&f->e, &f->c, strcmd, &p, NULL), -EINVAL);
	/* defaults from the container: its user, cwd, env (plus the exec's own), no tty */
	_cleanup_json_ json_t *xc = json_pack("{s:[s],s:[s]}", "Cmd", "id", "Env", "B=2");
	assert_int_equal(engine_spec_exec_process(&f->e, &f->c, xc, &p, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")), 1000);
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/app");
	assert_true(json_strv_contains(json_object_get(p, "env"), "A=1") &&
		    json_strv_contains(json_object_get(p, "env"), "B=2"));
	assert_int_equal(json_array_size(json_object_get(json_object_get(p, "capabilities"), "bounding")),
			 14);
	json_decref(p);
	/* the exec's own user, workdir, tty and privileges */
	_cleanup_json_ json_t *xc2 = json_pack("{s:[s],s:s,s:s,s:b,s:b}", "Cmd", "id", "User", "0:0",
					       "WorkingDir", "/tmp", "Tty", 1, "Privileged", 1);
	assert_int_equal(engine_spec_exec_process(&f->e, &f->c, xc2, &p, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "user"), "uid")), 0);
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/tmp");
	assert_true(json_is_true(json_object_get(p, "terminal")));
	assert_true(json_strv_contains(json_object_get(p, "env"), "TERM=xterm"));
	assert_true(json_array_size(json_object_get(json_object_get(p, "capabilities"), "bounding")) > 14);
	json_decref(p);
	/* an unknown user fails the exec, p untouched */
	p = NULL;
	_cleanup_json_ json_t *xc3 = json_pack("{s:[s],s:s}", "Cmd", "id", "User", "mallory");
	assert_int_equal(engine_spec_exec_process(&f->e, &f->c, xc3, &p, NULL), -EINVAL);
	assert_null(p);
	f->c.rootfs = NULL;
}

/* --log-opt labels/env (moby's ExtraAttributes): named and matching labels and env values, sorted. */
static void test_log_attrs(void **state)
{
	(void)state;
	json_t *cfg = json_loads("{\"Labels\":{\"team\":\"core\",\"tier\":\"db\",\"x\":\"y\"},"
				 "\"Env\":[\"APP=web\",\"REGION=eu\",\"NOVALUE\",\"A=b=c\"]}",
				 0, NULL);
	json_t *lc = json_loads("{\"Type\":\"json-file\",\"Config\":{\"labels\":\"team,nosuch\","
				"\"labels-regex\":\"^ti\",\"env\":\"APP,A\",\"env-regex\":\"^REG\"}}",
				0, NULL);
	char *attrs = NULL;
	assert_int_equal(engine_log_attrs(cfg, lc, &attrs, NULL), 0);
	assert_string_equal(attrs, "{\"A\":\"b=c\",\"APP\":\"web\",\"REGION\":\"eu\",\"team\":\"core\","
				   "\"tier\":\"db\"}");
	free(attrs);
	json_t *none = json_loads("{\"Type\":\"json-file\",\"Config\":{\"max-size\":\"1m\"}}", 0, NULL);
	assert_int_equal(engine_log_attrs(cfg, none, &attrs, NULL), 0);
	assert_null(attrs);
	json_t *local = json_loads("{\"Type\":\"local\",\"Config\":{\"env\":\"APP\"}}", 0, NULL);
	assert_int_equal(engine_log_attrs(cfg, local, &attrs, NULL), 0);
	assert_null(attrs);
	json_t *bad = json_loads("{\"Config\":{\"env-regex\":\"(\"}}", 0, NULL);
	struct berth_error *err = NULL;
	assert_int_equal(engine_log_attrs(cfg, bad, &attrs, &err), -EINVAL);
	assert_null(attrs);
	berth_error_free(err);
	json_decref(cfg);
	json_decref(lc);
	json_decref(none);
	json_decref(local);
	json_decref(bad);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_env),
		T(test_capabilities),
		T(test_privileged),
		T(test_device_allowlist),
		T(test_resources),
		T(test_user),
		T(test_seccomp_selection),
		T(test_mounts_namespaces_and_init),
		T(test_log_attrs),
		T(test_host_namespaces_devices_shm_oom),
		T(test_rlimits),
		T(test_exec_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
