/*
 * state.c - the on-disk state of a container, <state_root>/<id>/state.json,
 * and its live status. The status is derived, never stored: the init's pid
 * plus its start time (so a recycled pid reads as "stopped"), the exec fifo
 * (present while "created") and the freezer.
 *
 * state.json is written with write + rename and no fsync: it describes
 * processes that do not survive a reboot either.
 */
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "runtime/cgroups.h"
#include "runtime/container.h"

static const char *const status_names[] = { "creating", "created", "running", "paused", "stopped" };

const char *runtime_status_name(enum runtime_status s)
{
	return s <= RUNTIME_STATUS_STOPPED ? status_names[s] : "unknown";
}

int runtime_id_validate(const char *id, struct berth_error **err)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0)
		return berth_error_msg(err, EINVAL, "container id must not be empty");
	if (n > RUNTIME_ID_MAX)
		return berth_error_msg(err, EINVAL, "container id is longer than %d bytes", RUNTIME_ID_MAX);
	if (streq(id, ".") || streq(id, ".."))
		return berth_error_msg(err, EINVAL, "invalid container id '%s'", id);
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  (i > 0 && strchr("_.+-", c));
		if (!ok)
			return berth_error_msg(
			    err, EINVAL,
			    "invalid container id '%s': only [A-Za-z0-9][A-Za-z0-9_.+-]* allowed", id);
	}
	return 0;
}

char *runtime_state_dir(const struct runtime_ctx *ctx, const char *id)
{
	return xasprintf("%s/%s", ctx->state_root ? ctx->state_root : RUNTIME_DEFAULT_STATE_ROOT, id);
}

int runtime_write_file_at(int dirfd, const char *path, const char *data, size_t len, struct berth_error **err)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
	_cleanup_close_ int fd =
	    openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", tmp);
	int r = fs_write_all(fd, data, len);
	if (r < 0)
		return berth_error_set(err, -r, "write '%s'", tmp);
	if (renameat(dirfd, tmp, dirfd, path) < 0)
		return berth_error_errno(err, "rename '%s'", tmp);
	return 0;
}

unsigned long long runtime_proc_start_time(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, path, 4096, &sb, NULL) < 0)
		return 0;
	/* comm may hold spaces and parens: fields restart after the last ')'. */
	char *p = strrchr(sb.buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0;
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

int runtime_state_save(const struct runtime_ctx *ctx, const struct container_state *s,
		       struct berth_error **err)
{
	_cleanup_json_ json_t *j = json_pack(
	    "{s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:b}", "id", s->st.id, "pid", (int)s->st.pid,
	    "pidStart", (json_int_t)s->pid_start, "bundle", s->st.bundle, "rootfs", s->st.rootfs, "created",
	    s->st.created, "owner", s->st.owner ? s->st.owner : "", "cgroupKind", s->cgroup_kind,
	    "cgroupPath", s->cgroup_path ? s->cgroup_path : "", "userns", s->userns);
	if (!j)
		return berth_error_msg(err, EINVAL, "encode state of '%s'", s->st.id);
	if (s->st.annotations)
		json_object_set(j, "annotations", s->st.annotations);
	_cleanup_free_ char *text = json_dump_compact(j);
	_cleanup_free_ char *dir = runtime_state_dir(ctx, s->st.id);
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_errno(err, "open state directory '%s'", dir);
	return runtime_write_file_at(dfd, "state.json", text, strlen(text), err);
}

int runtime_state_load(const struct runtime_ctx *ctx, const char *id, struct container_state *ret,
		       struct berth_error **err)
{
	int r = runtime_id_validate(id, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = runtime_state_dir(ctx, id);
	_cleanup_free_ char *path = xasprintf("%s/state.json", dir);
	_cleanup_json_ json_t *j = NULL;
	struct stat st;
	if (stat(dir, &st) < 0)
		return berth_error_msg(err, ENOENT, "container '%s' does not exist", id);
	if ((r = json_load_path(path, 1 << 20, &j, NULL)) < 0)
		return berth_error_msg(err, r == -ENOENT ? EAGAIN : -r,
				       r == -ENOENT ? "container '%s' is still being created"
						    : "container '%s': corrupt state",
				       id);
	const char *sid, *bundle, *rootfs, *created, *owner, *cgpath;
	int64_t pid, kind;
	uint64_t start;
	bool userns = false;
	json_t *ann = NULL;
	if (json_get_string(j, "", "id", JSON_REQUIRED, &sid, err) < 0 ||
	    json_get_int64(j, "", "pid", JSON_REQUIRED, &pid, err) < 0 ||
	    json_get_uint64(j, "", "pidStart", JSON_REQUIRED, &start, err) < 0 ||
	    json_get_string(j, "", "bundle", JSON_REQUIRED, &bundle, err) < 0 ||
	    json_get_string(j, "", "rootfs", JSON_REQUIRED, &rootfs, err) < 0 ||
	    json_get_string(j, "", "created", JSON_REQUIRED, &created, err) < 0 ||
	    json_get_string(j, "", "owner", 0, &owner, err) < 0 ||
	    json_get_int64(j, "", "cgroupKind", JSON_REQUIRED, &kind, err) < 0 ||
	    json_get_string(j, "", "cgroupPath", JSON_REQUIRED, &cgpath, err) < 0 ||
	    json_get_bool(j, "", "userns", 0, &userns, err) < 0 ||
	    json_get_object(j, "", "annotations", 0, &ann, err) < 0)
		return berth_error_wrap(err, -EINVAL, "container '%s': corrupt state", id);
	*ret = (struct container_state){
		.st = { .id = xstrdup(sid),
			.pid = (pid_t)pid,
			.bundle = xstrdup(bundle),
			.rootfs = xstrdup(rootfs),
			.created = xstrdup(created),
			.owner = xstrdup(owner ? owner : ""),
			.annotations = ann ? json_incref(ann) : NULL },
		.pid_start = start,
		.cgroup_kind = (int)kind,
		.cgroup_path = xstrdup(cgpath),
		.userns = userns,
	};
	return 0;
}

void runtime_container_state_done(struct container_state *s)
{
	runtime_state_done(&s->st);
	free(s->cgroup_path);
	s->cgroup_path = NULL;
}

void runtime_state_done(struct runtime_state *s)
{
	free(s->id);
	free(s->bundle);
	free(s->rootfs);
	free(s->created);
	free(s->owner);
	json_decref(s->annotations);
	memset(s, 0, sizeof(*s));
}

enum runtime_status runtime_state_status(const struct runtime_ctx *ctx, const struct container_state *s)
{
	if (s->st.pid <= 0 || runtime_proc_start_time(s->st.pid) != s->pid_start)
		return RUNTIME_STATUS_STOPPED;
	_cleanup_free_ char *dir = runtime_state_dir(ctx, s->st.id);
	_cleanup_free_ char *fifo = xasprintf("%s/exec.fifo", dir);
	if (access(fifo, F_OK) == 0)
		return RUNTIME_STATUS_CREATED;
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(s->cgroup_kind);
	if (ops && *s->cgroup_path && ops->is_frozen(s->cgroup_path) == 1)
		return RUNTIME_STATUS_PAUSED;
	return RUNTIME_STATUS_RUNNING;
}

int runtime_state(const struct runtime_ctx *ctx, const char *id, struct runtime_state *ret,
		  struct berth_error **err)
{
	struct container_state s;
	int r = runtime_state_load(ctx, id, &s, err);
	if (r < 0)
		return r;
	s.st.status = runtime_state_status(ctx, &s);
	if (s.st.status == RUNTIME_STATUS_STOPPED)
		s.st.pid = 0;
	*ret = s.st;
	free(s.cgroup_path);
	return 0;
}

static void add_annotations(struct strbuf *sb, const json_t *ann)
{
	const char *k;
	json_t *v;
	bool first = true;
	strbuf_addch(sb, '{');
	json_object_foreach ((json_t *)ann, k, v) {
		if (!json_is_string(v))
			continue;
		if (!first)
			strbuf_addch(sb, ',');
		first = false;
		strbuf_add_json_string(sb, k);
		strbuf_addch(sb, ':');
		strbuf_add_json_string(sb, json_string_value(v));
	}
	strbuf_addch(sb, '}');
}

char *runtime_state_hook_json(const char *id, enum runtime_status st, pid_t pid, const char *bundle,
			      const json_t *ann)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "{\"ociVersion\":\"1.1.0\",\"id\":");
	strbuf_add_json_string(&sb, id);
	strbuf_addf(&sb, ",\"status\":\"%s\"", runtime_status_name(st));
	if (pid > 0)
		strbuf_addf(&sb, ",\"pid\":%d", (int)pid);
	strbuf_addstr(&sb, ",\"bundle\":");
	strbuf_add_json_string(&sb, bundle ? bundle : "");
	if (ann && json_object_size(ann)) {
		strbuf_addstr(&sb, ",\"annotations\":");
		add_annotations(&sb, ann);
	}
	strbuf_addch(&sb, '}');
	return strbuf_detach(&sb, NULL);
}

void runtime_state_to_json(const struct runtime_state *s, struct strbuf *sb)
{
	strbuf_addstr(sb, "{\n  \"ociVersion\": \"1.1.0\",\n  \"id\": ");
	strbuf_add_json_string(sb, s->id);
	strbuf_addf(sb, ",\n  \"pid\": %d,\n  \"status\": \"%s\",\n  \"bundle\": ", (int)s->pid,
		    runtime_status_name(s->status));
	strbuf_add_json_string(sb, s->bundle);
	strbuf_addstr(sb, ",\n  \"rootfs\": ");
	strbuf_add_json_string(sb, s->rootfs);
	strbuf_addstr(sb, ",\n  \"created\": ");
	strbuf_add_json_string(sb, s->created);
	strbuf_addstr(sb, ",\n  \"owner\": ");
	strbuf_add_json_string(sb, s->owner ? s->owner : "");
	if (s->annotations && json_object_size(s->annotations)) {
		strbuf_addstr(sb, ",\n  \"annotations\": ");
		add_annotations(sb, s->annotations);
	}
	strbuf_addstr(sb, "\n}");
}

int runtime_list(const struct runtime_ctx *ctx, struct runtime_state **ret, size_t *ret_n,
		 struct berth_error **err)
{
	const char *root = ctx->state_root ? ctx->state_root : RUNTIME_DEFAULT_STATE_ROOT;
	_cleanup_closedir_ DIR *d = opendir(root);
	size_t n = 0, cap = 8;
	struct runtime_state *v = xcalloc(cap, sizeof(*v));
	if (!d) {
		if (errno == ENOENT) {
			*ret = v;
			*ret_n = 0;
			return 0;
		}
		free(v);
		return berth_error_errno(err, "open state root '%s'", root);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || runtime_id_validate(de->d_name, NULL) < 0)
			continue;
		struct runtime_state s;
		if (runtime_state(ctx, de->d_name, &s, NULL) < 0)
			continue;
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(*v));
		v[n++] = s;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void runtime_state_list_free(struct runtime_state *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		runtime_state_done(&list[i]);
	free(list);
}

int runtime_state_load_spec(const struct runtime_ctx *ctx, const struct container_state *st,
			    struct runtime_spec **ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = runtime_state_dir(ctx, st->st.id);
	_cleanup_free_ char *copy = xasprintf("%s/config.json", dir);
	_cleanup_json_ json_t *doc = NULL;
	bool have_copy = access(copy, F_OK) == 0;
	_cleanup_free_ char *cfg = have_copy ? NULL : xasprintf("%s/config.json", st->st.bundle);
	int r = json_load_path(have_copy ? copy : cfg, 0, &doc, err);
	if (r < 0)
		return berth_error_wrap(err, r, "container '%s': load its config", st->st.id);
	return runtime_spec_parse(doc, st->st.bundle, ret, err);
}
