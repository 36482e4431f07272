/* fuzz-build-context-scan.c - a hostile POST /build body through the context
 * scanner: the scan (entries, digests, ignore rules) and, when it succeeds,
 * the extraction from the spool and the lookups a build makes must never
 * crash or write outside the temp directory, which is removed afterwards.
 * Oracle: the view a RUN bind mount shows (build_context_view) holds exactly
 * the entries COPY sees, each with its type. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "build/context.h"
#include "common/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct body {
	const uint8_t *data;
	size_t size, pos;
	int spool;
};

static ssize_t body_read(void *ud, void *buf, size_t n)
{
	struct body *b = ud;
	size_t k = b->size - b->pos < n ? b->size - b->pos : n;
	if (k > 4096)
		k = 4096; /* small pieces, as a socket delivers them */
	memcpy(buf, b->data + b->pos, k);
	b->pos += k;
	return fs_write_all(b->spool, buf, k) < 0 ? -EIO : (ssize_t)k;
}

/* Entries below dirfd (no symlink followed), at most `depth` levels down. */
static size_t count_tree(int dirfd, int depth)
{
	DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return 0;
	}
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		n++;
		int sub = depth > 0
			      ? openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			      : -1;
		if (sub >= 0)
			n += count_tree(sub, depth - 1);
	}
	closedir(d);
	return n;
}

static void check_view(struct build_context *ctx, const char *tmpdir)
{
	const char *v = NULL;
	if (build_context_view(ctx, tmpdir, &v, NULL) < 0)
		return;
	int vfd = open(v, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (vfd < 0)
		__builtin_trap();
	size_t kept = 0;
	for (size_t i = 0; i < ctx->n; i++) {
		if (ctx->e[i].build_only)
			continue;
		kept++;
		struct stat st;
		if (fstatat(vfd, ctx->e[i].path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (st.st_mode & S_IFMT) != (ctx->e[i].mode & S_IFMT))
			__builtin_trap(); /* an entry COPY sees is missing */
	}
	if (count_tree(vfd, CONTEXT_MAX_DEPTH + 1) != kept && v != ctx->root)
		__builtin_trap(); /* something ignored is there */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	char dir_tmpl[] = "/tmp/berth-fuzz-ctx-XXXXXX";
	int spool = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (spool < 0)
		return 0;
	if (!mkdtemp(dir_tmpl)) {
		close(spool);
		return 0;
	}
	struct body b = { .data = data, .size = size, .spool = spool };
	struct build_context_scan_opts o = { .read = body_read,
					     .read_userdata = &b,
					     .spool_fd = spool,
					     .dockerfile = "Dockerfile",
					     .tmpdir = dir_tmpl };
	struct build_context *ctx = NULL;
	struct berth_error *err = NULL;
	if (build_context_scan_tar(&o, &ctx, &err) == 0) {
		struct strbuf sb = STRBUF_INIT;
		(void)build_context_read(ctx, "Dockerfile", 1 << 16, &sb, NULL);
		strbuf_release(&sb);
		for (size_t i = 0; i < ctx->n && i < 64; i++)
			if (S_ISREG(ctx->e[i].mode))
				(void)build_context_is_archive(ctx, ctx->e[i].path, NULL);
		if (build_context_extract(ctx, NULL) == 0)
			check_view(ctx, dir_tmpl);
		build_context_free(ctx);
	}
	berth_error_free(err);
	close(spool);
	fs_rm_rf(dir_tmpl, NULL);
	return 0;
}
