/*
 * run.c - RUN: a container of the engine on the step's state (on the build's
 * network, see network_of), its output streamed line by line, then the
 * container's upper dir committed as the new state.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "build/context.h"
#include "buildexec/internal.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strv.h"
#include "common/util.h"

#define TAIL_LINES    10
#define BX_SECRET_MAX (512u << 10) /* BuildKit's limit on a secret */

struct run_job {
	struct buildexec *b;
	json_t *binds, *tmpfs;
	char **snapshots; /* bind-mounted stage snapshots to remove */
	size_t n_snapshots;
	char *pipes;   /* host dir of a #! heredoc script */
	char *secrets; /* host dir of this RUN's secret files */
	char **env;    /* extra environment: secrets with env=, SSH_AUTH_SOCK */
	size_t n_env;
	char *ssh_env;
};

static void job_done(struct run_job *j)
{
	for (size_t i = 0; i < j->n_snapshots; i++) {
		(void)image_snapshot_remove(j->b->images, j->snapshots[i], NULL);
		free(j->snapshots[i]);
	}
	free(j->snapshots);
	if (j->pipes) {
		(void)fs_rm_rf(j->pipes, NULL);
		free(j->pipes);
	}
	if (j->secrets) {
		(void)fs_rm_rf(j->secrets, NULL);
		free(j->secrets);
	}
	for (size_t i = 0; i < j->n_env; i++) {
		explicit_bzero(j->env[i], strlen(j->env[i]));
		free(j->env[i]);
	}
	free(j->env);
	free(j->ssh_env);
	json_decref(j->binds);
	json_decref(j->tmpfs);
}

static int cache_dir(struct run_job *j, const struct df_mount *m, char **ret, struct berth_error **err)
{
	char dg[DIGEST_STRING_MAX];
	const char *id = m->id ? m->id : m->target;
	digest_buffer(DIGEST_SHA256, id, strlen(id), dg);
	_cleanup_free_ char *dir = xasprintf("%s/builder/mounts/%s", j->b->root, dg + 7);
	if (access(dir, F_OK) < 0) {
		int r = fs_mkdir_p(dir, 0755, err);
		if (r < 0)
			return r;
		if (chmod(dir, m->mode >= 0 ? (mode_t)m->mode : 0755) < 0 ||
		    chown(dir, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0)
			return berth_error_errno(err, "prepare cache mount '%s'", id);
	}
	*ret = TAKE_PTR(dir);
	return 0;
}

/* The host path of src inside root, symlinks resolved within root (never out of it). */
static int resolve_in(const char *root, const char *src, char **ret, struct berth_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return berth_error_errno(err, "open '%s'", root);
	_cleanup_close_ int fd = fs_open_in_root(rootfd, src, O_PATH, 0, FS_RESOLVE_DEFAULT, NULL);
	if (fd < 0)
		return berth_error_msg(err, ENOENT, "RUN --mount=type=bind: source '%s' not found", src);
	_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
	char buf[PATH_MAX];
	ssize_t n = readlink(proc, buf, sizeof(buf) - 1);
	if (n < 0)
		return berth_error_errno(err, "resolve bind source '%s'", src);
	buf[n] = '\0';
	*ret = xstrdup(buf);
	return 0;
}

static int bind_source(struct run_job *j, const struct df_mount *m, const char *state, char **ret,
		       struct berth_error **err)
{
	_cleanup_free_ char *src = NULL;
	int r = build_context_clean_source(m->source ? m->source : "/", &src, err);
	if (r < 0)
		return r;
	if (state) {
		_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
		char *id = NULL;
		if ((r = buildexec_snapshot(j->b, state, &id, &sn, err)) < 0)
			return r;
		j->snapshots = xrealloc(j->snapshots, (j->n_snapshots + 1) * sizeof(*j->snapshots));
		j->snapshots[j->n_snapshots++] = id;
		return resolve_in(sn->rootfs, src, ret, err);
	}
	if (!j->b->ctx)
		return berth_error_msg(err, EINVAL, "RUN --mount=type=bind: no build context");
	/* the context as BuildKit sends it: what .dockerignore excludes is not there */
	_cleanup_free_ char *tmp = xasprintf("%s/builder/tmp", j->b->root);
	const char *view = NULL;
	if ((r = fs_mkdir_p(tmp, 0700, err)) < 0 || (r = build_context_view(j->b->ctx, tmp, &view, err)) < 0)
		return r;
	return resolve_in(view, src, ret, err);
}

static const char *lookup(char *const *kv, const char *id)
{
	size_t n = strlen(id);
	for (; kv && *kv; kv++)
		if (strncmp(*kv, id, n) == 0 && (*kv)[n] == '=')
			return *kv + n + 1;
	return NULL;
}

/*
 * RUN --mount=type=secret: a private copy of the secret (mode, uid, gid of the mount)
 * bind-mounted read-only at the target, or its value in an environment variable (env=).
 * The target is a mount point, removed from the layer afterwards (mp_clean); the value
 * never reaches a layer, the image config or a cache key.
 */
static int add_secret(struct run_job *j, const struct df_mount *m, struct berth_error **err)
{
	const char *path = lookup(j->b->secrets, m->id);
	if (!path) {
		if (m->required)
			return berth_error_msg(err, ENOENT,
					       "secret '%s' is required but was not provided (berth build "
					       "--secret id=%s,src=FILE)",
					       m->id, m->id);
		return 0;
	}
	_cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, path, BX_SECRET_MAX, &v, err);
	if (r < 0)
		return berth_error_wrap(err, r, "read secret '%s'", m->id);
	if (m->env) {
		j->env = xrealloc(j->env, (j->n_env + 2) * sizeof(char *));
		j->env[j->n_env++] = xasprintf("%s=%s", m->env, v.buf);
		j->env[j->n_env] = NULL;
	}
	if (!m->target)
		return 0;
	if (!j->secrets) {
		_cleanup_free_ char *hex = util_random_hex(8);
		j->secrets = xasprintf("%s/builder/tmp/secrets-%s", j->b->root, hex);
		if ((r = fs_mkdir_p(j->secrets, 0700, err)) < 0)
			return r;
	}
	_cleanup_free_ char *hex = util_random_hex(8);
	_cleanup_free_ char *f = xasprintf("%s/%s", j->secrets, hex);
	if ((r = fs_write_file_atomic(f, v.buf, v.len, m->mode >= 0 ? (mode_t)m->mode & 07777 : 0400, err)) <
	    0)
		return r;
	if (chown(f, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0) < 0)
		return berth_error_errno(err, "chown secret '%s'", m->id);
	json_array_append_new(j->binds, json_sprintf("%s:%s:ro", f, m->target));
	return 0;
}

static int add_mount(struct run_job *j, const struct df_mount *m, const char *state, struct berth_error **err)
{
	_cleanup_free_ char *src = NULL;
	int r = 0;
	bool ro = m->readonly;
	switch (m->type) {
	case DF_MOUNT_CACHE: r = cache_dir(j, m, &src, err); break;
	case DF_MOUNT_BIND:
		r = bind_source(j, m, state, &src, err);
		ro = ro || !state; /* the build context is never written */
		break;
	case DF_MOUNT_TMPFS: {
		_cleanup_free_ char *o =
		    m->size > 0 ? xasprintf("size=%lld", (long long)m->size) : xstrdup("");
		json_object_set_new(j->tmpfs, m->target, json_string(o));
		return 0;
	}
	case DF_MOUNT_SECRET: return add_secret(j, m, err);
	case DF_MOUNT_SSH: {
		const char *sock = lookup(j->b->ssh, m->id);
		if (!sock)
			return berth_error_msg(
			    err, ENOENT,
			    "no ssh agent '%s' was forwarded: use berth build --ssh %s=SOCKET "
			    "(or --ssh default to forward $SSH_AUTH_SOCK)",
			    m->id, m->id);
		struct stat st;
		if (stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode))
			return berth_error_msg(err, EINVAL, "ssh agent '%s': '%s' is not a socket", m->id,
					       sock);
		json_array_append_new(j->binds, json_sprintf("%s:%s:rw", sock, m->target));
		if (!j->ssh_env)
			j->ssh_env = xasprintf("SSH_AUTH_SOCK=%s", m->target);
		return 0;
	}
	}
	if (r < 0)
		return r;
	json_array_append_new(j->binds, json_sprintf("%s:%s:%s", src, m->target, ro ? "ro" : "rw"));
	return 0;
}

static int script_dir(struct run_job *j, const struct plan_run *run, struct berth_error **err)
{
	_cleanup_free_ char *hex = util_random_hex(8);
	j->pipes = xasprintf("%s/builder/tmp/pipes-%s", j->b->root, hex);
	int r = fs_mkdir_p(j->pipes, 0755, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *f = xasprintf("%s/%s", j->pipes, run->script_name);
	if ((r = fs_write_file_atomic(f, run->script_data, strlen(run->script_data), 0755, err)) < 0)
		return r;
	json_array_append_new(j->binds, json_sprintf("%s:/dev/pipes:ro", j->pipes));
	return 0;
}

/*
 * RUN --network=none|host wins; otherwise the build's network: "default" (the
 * daemon's default bridge, like dockerd's classic builder), "bridge", "none",
 * "host" or a user network, each attached through the engine's network ops like
 * any container (so NAT, DNS and --add-host work and nothing outlives the step).
 */
static const char *network_of(struct buildexec *b, const struct plan_run *run)
{
	if (run->network && (streq(run->network, "host") || streq(run->network, "none")))
		return run->network;
	return b->network && *b->network ? b->network : "default";
}

/* docker's classic builder colours what a RUN writes to stderr (streamformatter's stderr writer) */
#define STDERR_ON  "\033[91m"
#define STDERR_OFF "\033[0m"

struct out_lines {
	build_output_fn fn;
	void *ud;
	struct strbuf partial[2]; /* stdout, stderr */
	char *tail[TAIL_LINES];   /* the last lines, uncoloured, for the error message */
	size_t n;
};

/* A whole line of stream 1 (stdout) or 2 (stderr), without its newline. */
static void line_out(struct out_lines *o, int stream, const char *line)
{
	if (o->fn) {
		_cleanup_free_ char *text =
		    stream == 2 ? xasprintf(STDERR_ON "%s\n" STDERR_OFF, line) : xasprintf("%s\n", line);
		o->fn(o->ud, text);
	}
	free(o->tail[o->n % TAIL_LINES]);
	o->tail[o->n++ % TAIL_LINES] = xstrdup(line);
}

static void feed(struct out_lines *o, int stream, const char *data, size_t len)
{
	struct strbuf *p = &o->partial[stream == 2];
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			line_out(o, stream, p->buf);
			strbuf_reset(p);
		} else {
			strbuf_addch(p, data[i]);
		}
	}
}

/* Read docker's multiplexed frames (8-byte header: stream, 0, 0, 0, size) until EOF. */
static void pump(int fd, bool tty, struct out_lines *o)
{
	char buf[8192];
	size_t need = 0;
	unsigned char hdr[8];
	size_t hlen = 0;
	int stream = 1;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (tty) {
			feed(o, 1, buf, (size_t)n);
			continue;
		}
		for (size_t i = 0; i < (size_t)n;) {
			if (need == 0) {
				hdr[hlen++] = (unsigned char)buf[i++];
				if (hlen == 8) {
					stream = hdr[0] == 2 ? 2 : 1;
					need = (size_t)hdr[4] << 24 | (size_t)hdr[5] << 16 |
					       (size_t)hdr[6] << 8 | hdr[7];
					hlen = 0;
				}
				continue;
			}
			size_t take = MIN(need, (size_t)n - i);
			feed(o, stream, buf + i, take);
			i += take;
			need -= take;
		}
	}
	for (int k = 0; k < 2; k++)
		if (o->partial[k].len)
			line_out(o, k + 1, o->partial[k].buf);
}

static char *tail_text(struct out_lines *o)
{
	struct strbuf sb = STRBUF_INIT;
	size_t first = o->n > TAIL_LINES ? o->n - TAIL_LINES : 0;
	for (size_t i = first; i < o->n; i++)
		strbuf_addf(&sb, "\n%s", o->tail[i % TAIL_LINES]);
	return strbuf_detach(&sb, NULL);
}

static json_t *container_config(const char *state, const struct plan_run *run, const struct run_job *j)
{
	json_t *env = strv_to_json(run->env);
	for (size_t i = 0; i < j->n_env; i++)
		json_array_append_new(env, json_string(j->env[i]));
	if (j->ssh_env)
		json_array_append_new(env, json_string(j->ssh_env));
	return json_pack("{s:s, s:o, s:o, s:[], s:s, s:s, s:{s:s}, s:b, s:b}", "Image", state, "Cmd",
			 strv_to_json(run->argv), "Env", env, "Entrypoint", "User",
			 run->user && *run->user ? run->user : "0", "WorkingDir",
			 run->workdir && *run->workdir ? run->workdir : "/", "Labels", "berth.build", "1",
			 "AttachStdout", 1, "AttachStderr", 1);
}

/*
 * Mount points the runtime creates in the rootfs (/etc/hosts, /etc/resolv.conf,
 * /etc/hostname, RUN --mount targets) do not belong in the layer: paths
 * missing before the run that are empty files or directories in the upper dir
 * afterwards are removed from it, parents first missing too.
 */
struct mountpoints {
	char *paths[64];
	size_t n;
};

static void mp_note(struct mountpoints *mp, const char *path)
{
	_cleanup_free_ char *clean = fs_path_clean(path);
	const char *rel = clean;
	while (*rel == '/')
		rel++;
	if (!*rel || mp->n >= ARRAY_SIZE(mp->paths))
		return;
	mp->paths[mp->n++] = xstrdup(rel);
	_cleanup_free_ char *parent = xstrdup(rel);
	char *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		mp_note(mp, parent);
	}
}

static void mp_collect(const struct plan_run *run, struct mountpoints *mp)
{
	static const char *const files[] = { "etc/hosts", "etc/resolv.conf", "etc/hostname" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		mp_note(mp, files[i]);
	for (size_t i = 0; i < run->n_mounts; i++)
		if (run->mounts[i].target)
			mp_note(mp, run->mounts[i].target);
}

static bool in_lower(const struct image_snapshot *sn, const char *rel, struct stat *ret)
{
	for (char **l = sn->lowerdirs; l && *l; l++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", *l, rel);
		if (lstat(p, ret) == 0)
			return true;
	}
	return false;
}

/* A directory only copied up for a removed mount point: same owner and mode, empty, not opaque. */
static void drop_copied_up(const char *upper, const struct stat *lower)
{
	struct stat st;
	char v;
	if (lstat(upper, &st) == 0 && S_ISDIR(st.st_mode) && S_ISDIR(lower->st_mode) &&
	    st.st_mode == lower->st_mode && st.st_uid == lower->st_uid && st.st_gid == lower->st_gid &&
	    lgetxattr(upper, "trusted.overlay.opaque", &v, 1) < 0)
		(void)rmdir(upper); /* fails unless empty */
}

static void mp_clean(struct buildexec *b, const char *cid, struct mountpoints *mp)
{
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	if (mp->n && image_snapshot_mount(b->images, cid, &sn, NULL) >= 0)
		for (size_t i = 0; i < mp->n; i++) { /* children are noted before their parents */
			_cleanup_free_ char *p = xasprintf("%s/%s", sn->upperdir, mp->paths[i]);
			struct stat st;
			if (in_lower(sn, mp->paths[i], &st)) {
				drop_copied_up(p, &st);
				continue;
			}
			if (lstat(p, &st) < 0)
				continue;
			if (S_ISREG(st.st_mode) && st.st_size == 0)
				(void)unlink(p);
			else if (S_ISDIR(st.st_mode))
				(void)rmdir(p); /* only when empty */
		}
	for (size_t i = 0; i < mp->n; i++)
		free(mp->paths[i]);
	mp->n = 0;
}

void buildexec_cancel(struct buildexec *b)
{
	atomic_store(&b->cancelled, true);
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < ARRAY_SIZE(b->running); i++)
		if (b->running[i])
			(void)engine_container_kill(b->engine, b->running[i], SIGKILL, NULL);
	pthread_mutex_unlock(&b->lock);
}

/* Note cid as running (for buildexec_cancel); false when the build is already cancelled. */
static bool running_add(struct buildexec *b, const char *cid, size_t *ret_slot)
{
	pthread_mutex_lock(&b->lock);
	bool ok = !atomic_load(&b->cancelled);
	*ret_slot = SIZE_MAX;
	for (size_t i = 0; ok && i < ARRAY_SIZE(b->running); i++)
		if (!b->running[i]) {
			b->running[i] = xstrdup(cid);
			*ret_slot = i;
			break;
		}
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static void running_del(struct buildexec *b, size_t slot)
{
	if (slot == SIZE_MAX)
		return;
	pthread_mutex_lock(&b->lock);
	free(b->running[slot]);
	b->running[slot] = NULL;
	pthread_mutex_unlock(&b->lock);
}

static int run_container(struct buildexec *b, const char *cid, struct out_lines *o, int *ret_code,
			 struct berth_error **err)
{
	struct engine_stream_opts so = { .out = true, .err = true };
	int fd = -1;
	bool tty = false;
	size_t slot;
	if (!running_add(b, cid, &slot))
		return berth_error_msg(err, ECANCELED, "build cancelled");
	int r = engine_container_attach(b->engine, cid, &so, &fd, &tty, err);
	if (r >= 0 && (r = engine_container_start(b->engine, cid, err)) < 0)
		fd = safe_close(fd);
	/* a cancel between running_add() and the start found nothing running to kill */
	if (r >= 0 && atomic_load(&b->cancelled))
		(void)engine_container_kill(b->engine, cid, SIGKILL, NULL);
	if (r >= 0) {
		pump(fd, tty, o);
		close(fd);
		r = engine_container_wait(b->engine, cid, ENGINE_WAIT_NOT_RUNNING, ret_code, err);
	}
	running_del(b, slot);
	if (r >= 0 && atomic_load(&b->cancelled))
		return berth_error_msg(err, ECANCELED, "build cancelled");
	return r;
}

static char *argv_text(char *const *argv)
{
	struct strbuf sb = STRBUF_INIT;
	for (char *const *a = argv; a && *a; a++)
		strbuf_addf(&sb, "%s%s", a == argv ? "" : " ", *a);
	return strbuf_detach(&sb, NULL);
}

static int run_in(struct buildexec *b, struct run_job *j, const char *state, const struct plan_run *run,
		  struct out_lines *o, char **ret_state, struct berth_error **err)
{
	_cleanup_json_ json_t *cfg = container_config(state, run, j);
	_cleanup_json_ json_t *hc =
	    json_pack("{s:s, s:O, s:O, s:b, s:o}", "NetworkMode", network_of(b, run), "Binds", j->binds,
		      "Tmpfs", j->tmpfs, "Privileged", run->security && streq(run->security, "insecure"),
		      "ExtraHosts", strv_to_json(b->extra_hosts));
	_cleanup_free_ char *cid = NULL;
	int r = engine_container_create(b->engine, NULL, cfg, hc, &cid, err);
	if (r < 0)
		return r;
	int code = -1;
	struct mountpoints mp = { .n = 0 };
	mp_collect(run, &mp);
	_cleanup_free_ char *line = xasprintf(" ---> Running in %.12s\n", cid);
	if (o->fn)
		o->fn(o->ud, line);
	r = run_container(b, cid, o, &code, err);
	mp_clean(b, cid, &mp);
	_cleanup_free_ char *cmd = argv_text(run->argv);
	if (r >= 0 && code != 0) {
		_cleanup_free_ char *tail = tail_text(o);
		r = berth_error_msg(err, EIO, "The command '%s' returned a non-zero code: %d%s%s", cmd, code,
				    o->n ? "; last output lines:" : "", tail);
	}
	if (r >= 0) {
		_cleanup_free_ char *by = xasprintf("/bin/sh -c #(nop) RUN %s", cmd);
		struct image_commit_opts co = { .created_by = by, .comment = BX_INTERMEDIATE };
		r = image_commit(b->images, cid, &co, ret_state, err);
	}
	(void)engine_container_remove(b->engine, cid, true, true, NULL);
	if (r >= 0 && o->fn) {
		free(line);
		line = xasprintf("Removing intermediate container %.12s\n", cid);
		o->fn(o->ud, line);
	}
	return r;
}

int buildexec_run(void *be, const char *state, const struct plan_run *run, const char *const *mount_states,
		  build_output_fn out, void *out_ud, char **ret_state, struct berth_error **err)
{
	struct buildexec *b = be;
	if (streq(state, BX_SCRATCH))
		return berth_error_msg(err, ENOENT,
				       "RUN on an empty root filesystem (FROM scratch): no shell to run '%s'",
				       run->argv && run->argv[0] ? run->argv[0] : "");
	struct run_job j = { .b = b, .binds = json_array(), .tmpfs = json_object() };
	int r = 0;
	for (size_t i = 0; r >= 0 && i < run->n_mounts; i++)
		r = add_mount(&j, &run->mounts[i], mount_states ? mount_states[i] : NULL, err);
	if (r >= 0 && run->script_name)
		r = script_dir(&j, run, err);
	struct out_lines o = { .fn = out, .ud = out_ud, .partial = { STRBUF_INIT, STRBUF_INIT } };
	if (r >= 0)
		r = run_in(b, &j, state, run, &o, ret_state, err);
	for (size_t i = 0; i < TAIL_LINES; i++)
		free(o.tail[i]);
	strbuf_release(&o.partial[0]);
	strbuf_release(&o.partial[1]);
	job_done(&j);
	return r;
}
