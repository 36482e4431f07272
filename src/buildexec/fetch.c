/*
 * fetch.c - remote ADD sources: http(s) downloads (libcurl) and git
 * repositories (`git clone`), fetched by the daemon into a private
 * directory under <root>/builder/tmp, checked against ADD --checksum, then
 * placed into the step's snapshot by copy.c like local sources. A download
 * is a file of mode 0600 named after the URL's last path component (docker's
 * rule), with the server's Last-Modified time when it sends one. Offline, the
 * step fails with curl's or git's reason (e.g. "Could not resolve host").
 * The plan keys the step by the URLs and the checksum: a cached step is not
 * fetched again (--no-cache refetches).
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/plan.h"
#include "buildexec/internal.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/process.h"
#include "common/util.h"
#include "http/xfer.h"

#define FETCH_MAX_BYTES   (8ull << 30) /* one download */
#define FETCH_GIT_TIMEOUT (10 * 60 * 1000)

struct sink {
	int fd;
	struct digester *d;
	bool failed;
};

static int on_data(void *ud, const char *p, size_t n)
{
	struct sink *s = ud;
	int r = fs_write_all(s->fd, p, n);
	if (r < 0) {
		s->failed = true;
		return r;
	}
	digester_update(s->d, p, n);
	return 0;
}

/* The file name docker gives a download: the last component of the URL's path. */
static int url_file_name(const char *url, char **ret, struct berth_error **err)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	size_t n = p ? strcspn(p, "?#") : 0;
	_cleanup_free_ char *path = p ? xstrndup(p, n) : xstrdup("");
	while (*path && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!*base || streq(base, "..") || streq(base, "."))
		return berth_error_msg(err, EINVAL, "cannot determine a file name from the URL '%s'", url);
	*ret = xstrdup(base);
	return 0;
}

static int download(const char *url, int dirfd, const char *name, const char *checksum,
		    struct berth_error **err)
{
	enum digest_algo algo = DIGEST_SHA256;
	if (checksum)
		(void)digest_parse(checksum, &algo, NULL, NULL);
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "create download '%s'", name);
	_cleanup_digester_ struct digester *d = digester_new(algo);
	struct sink s = { .fd = fd, .d = d };
	struct http_xfer_req q = {
		.url = url,
		.protocols = "http,https",
		.redir_protocols = "http,https",
		.max_redirs = 10,
		.fail_on_error = true,
		.connect_timeout_ms = 30 * 1000,
		.want_filetime = true,
		.max_filesize = FETCH_MAX_BYTES,
		.on_data = on_data,
		.data_ctx = &s,
		.user_agent = "berth-build",
	};
	_cleanup_http_xfer_ struct http_xfer *x = http_xfer_new();
	struct http_xfer_res res;
	if (http_xfer_perform(x, &q, &res, NULL) < 0 || s.failed)
		return berth_error_msg(err, EIO, "download '%s' failed: %s", url,
				       s.failed ? "write error" : res.detail);
	int64_t ft = res.filetime;
	if (ft >= 0) {
		struct timespec ts[2] = { { .tv_sec = (time_t)ft }, { .tv_sec = (time_t)ft } };
		(void)futimens(fd, ts);
	}
	char got[DIGEST_STRING_MAX];
	digester_final(d, got);
	if (checksum && !streq(got, checksum))
		return berth_error_msg(err, EINVAL, "checksum mismatch for '%s': expected %s, got %s", url,
				       checksum, got);
	return 0;
}

static int git(const char *const *argv, struct berth_error **err)
{
	static const char *const env[] = { "GIT_TERMINAL_PROMPT=0",
					   "GIT_ALLOW_PROTOCOL=http:https:git:ssh",
					   "GIT_SSH_COMMAND=ssh -o BatchMode=yes",
					   "HOME=/nonexistent",
					   "PATH=/usr/local/bin:/usr/bin:/bin",
					   NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.envp = env;
	_cleanup_strbuf_ struct strbuf eo = STRBUF_INIT;
	int status = 0;
	int r = proc_run(&o, NULL, 0, NULL, &eo, 64 << 10, FETCH_GIT_TIMEOUT, &status, err);
	if (r < 0)
		return berth_error_wrap(err, r, "run git");
	if (proc_exit_code(status) != 0) {
		strbuf_trim_trailing(&eo);
		return berth_error_msg(err, EIO, "%s", eo.len ? eo.buf : "git failed");
	}
	return 0;
}

/* url[#ref[:subdir]] cloned into dir; *ret_subdir the part to copy (caller frees). */
static int git_fetch(const char *src, const char *dir, bool keep_git_dir, char **ret_subdir,
		     struct berth_error **err)
{
	const char *hash = strchr(src, '#');
	_cleanup_free_ char *url = hash ? xstrndup(src, (size_t)(hash - src)) : xstrdup(src);
	_cleanup_free_ char *ref = hash && hash[1] ? xstrdup(hash + 1) : NULL;
	char *colon = ref ? strchr(ref, ':') : NULL;
	if (colon)
		*colon++ = '\0';
	const char *clone[] = { "git", "clone", "--quiet", "--no-checkout", "--", url, dir, NULL };
	int r = git(clone, err);
	const char *co[] = { "git", "-C", dir, "checkout", "--quiet", ref && *ref ? ref : "HEAD", NULL };
	if (r >= 0)
		r = git(co, err);
	if (r < 0)
		return berth_error_wrap(err, r, "git source '%s'", src);
	if (!keep_git_dir) {
		_cleanup_free_ char *g = xasprintf("%s/.git", dir);
		if ((r = fs_rm_rf(g, err)) < 0)
			return r;
	}
	_cleanup_free_ char *sub = colon && *colon ? fs_path_clean(colon) : NULL;
	if (sub && (startswith(sub, "..") || sub[0] == '/'))
		return berth_error_msg(err, EINVAL, "git source '%s': subdirectory outside the repository",
				       src);
	*ret_subdir = TAKE_PTR(sub);
	return 0;
}

static int fetch_one(struct buildexec *b, const struct plan_copy *pc, size_t i, const char *tmp,
		     struct bx_fetched *f, struct berth_error **err)
{
	const char *url = pc->srcs[i];
	f->dir = xasprintf("%s/%zu", tmp, i);
	int r = fs_mkdir_p(f->dir, 0700, err);
	if (r < 0)
		return r;
	if (build_url_is_git(url)) {
		_cleanup_free_ char *clone = xasprintf("%s/repo", f->dir), *sub = NULL;
		if ((r = git_fetch(url, clone, pc->keep_git_dir, &sub, err)) < 0)
			return r;
		f->is_dir = true;
		f->name = sub ? xasprintf("repo/%s", sub) : xstrdup("repo");
		return 0;
	}
	if ((r = url_file_name(url, &f->name, err)) < 0)
		return r;
	_cleanup_close_ int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_errno(err, "open '%s'", f->dir);
	(void)b;
	return download(url, dfd, f->name, pc->checksum, err);
}

int buildexec_fetch_urls(void *be, const char *state, const struct build_copy_req *req, char **ret_state,
			 struct berth_error **err)
{
	struct buildexec *b = be;
	const struct plan_copy *pc = req->copy;
	_cleanup_free_ char *hex = util_random_hex(8);
	_cleanup_free_ char *tmp = xasprintf("%s/builder/tmp/fetch-%s", b->root, hex);
	size_t n = 0;
	while (pc->srcs && pc->srcs[n])
		n++;
	struct bx_fetched *f = xcalloc(n + 1, sizeof(*f));
	int r = fs_mkdir_p(tmp, 0700, err);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = fetch_one(b, pc, i, tmp, &f[i], err);
	if (r >= 0)
		r = buildexec_copy_fetched(b, state, req, f, n, ret_state, err);
	for (size_t i = 0; i < n; i++) {
		free(f[i].dir);
		free(f[i].name);
	}
	free(f);
	(void)fs_rm_rf(tmp, NULL);
	return r;
}
