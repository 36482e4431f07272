/*
 * logfile.c - the log drivers as the shim writes them. json-file: one JSON
 * object per line, {"log":"...","stream":"stdout","time":"..."}, byte-
 * compatible with docker's; local: docker's protobuf frames (loglocal.h).
 * Output is split at newlines (partial lines are flushed when the buffer
 * fills or the stream ends) and rotated at max_size into <path>.1 ..
 * <path>.N-1. Compressing a rotated file runs in a forked child (the
 * shim is single-threaded, so the child may use malloc and zlib) so that a
 * 20 MB gzip never stalls the container's output; the next rotation waits
 * for it.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fs.h"
#include "common/util.h"
#include "shim/logfile.h"
#include "shim/loglocal.h"

void shim_logfile_init(struct logfile *l, const char *path, int64_t max_size, int max_file)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->path = path ? xstrdup(path) : NULL;
	l->max_size = max_size;
	l->max_file = max_file < 1 ? 1 : max_file;
	strbuf_init(&l->partial[0], 0);
	strbuf_init(&l->partial[1], 0);
}

void shim_logfile_set_format(struct logfile *l, bool local, bool compress)
{
	l->local = local;
	l->compress = compress;
}

void shim_logfile_child_exited(struct logfile *l, pid_t pid)
{
	if (pid > 0 && pid == l->compress_pid)
		l->compress_pid = 0;
}

static void wait_compress(struct logfile *l)
{
	if (l->compress_pid <= 0)
		return;
	while (waitpid(l->compress_pid, NULL, 0) < 0 && errno == EINTR)
		;
	l->compress_pid = 0;
}

/* gzip <path>.1 into <path>.1.gz in a child process. */
static void start_compress(struct logfile *l)
{
	_cleanup_free_ char *src = xasprintf("%s.1", l->path);
	_cleanup_free_ char *dst = xasprintf("%s.1.gz", l->path);
	pid_t pid = fork();
	if (pid == 0)
		_exit(shim_loglocal_compress_file(src, dst) < 0 ? 1 : 0);
	if (pid > 0)
		l->compress_pid = pid;
}

int shim_logfile_open(struct logfile *l)
{
	if (!l->path)
		return 0;
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (l->fd < 0)
		return negative_errno();
	struct stat st;
	l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

static void rotate(struct logfile *l)
{
	if (l->max_file <= 1) {
		if (ftruncate(l->fd, 0) == 0)
			l->size = 0;
		return;
	}
	wait_compress(l);
	for (int i = l->max_file - 1; i >= 1; i--) {
		_cleanup_free_ char *from = i == 1 ? xstrdup(l->path) : xasprintf("%s.%d", l->path, i - 1);
		_cleanup_free_ char *to = xasprintf("%s.%d", l->path, i);
		(void)rename(from, to);
		if (i > 1) {
			_cleanup_free_ char *gfrom = xasprintf("%s.%d.gz", l->path, i - 1);
			_cleanup_free_ char *gto = xasprintf("%s.%d.gz", l->path, i);
			(void)rename(gfrom, gto);
		}
	}
	close(l->fd);
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	l->size = 0;
	if (l->compress)
		start_compress(l);
}

/* docker's member order: log, stream, attrs (--log-opt labels/env...), time */
static void encode_json(struct strbuf *sb, int stream, const struct timespec *ts, const char *data,
			size_t len, const char *attrs)
{
	char t[RFC3339_MAX];
	util_format_rfc3339(ts, t);
	_cleanup_free_ char *s = xstrndup(data, len);
	strbuf_addstr(sb, "{\"log\":");
	strbuf_add_json_string(sb, s);
	strbuf_addf(sb, ",\"stream\":\"%s\"", stream == 2 ? "stderr" : "stdout");
	if (attrs)
		strbuf_addf(sb, ",\"attrs\":%s", attrs);
	strbuf_addf(sb, ",\"time\":\"%s\"}\n", t);
}

static void write_record(struct logfile *l, int stream, const char *data, size_t len)
{
	if (l->fd < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (l->local) {
		bool complete = len > 0 && data[len - 1] == '\n';
		shim_loglocal_encode(&sb, stream, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, data,
				     complete ? len - 1 : len, !complete);
	} else {
		encode_json(&sb, stream, &ts, data, len, l->attrs);
	}
	if (l->max_size > 0 && l->size > 0 && l->size + (int64_t)sb.len > l->max_size)
		rotate(l);
	if (l->fd < 0)
		return;
	if (fs_write_all(l->fd, sb.buf, sb.len) == 0)
		l->size += (int64_t)sb.len;
	else /* a full disk: the record is dropped whole, no torn line is left for readers */
		(void)!ftruncate(l->fd, l->size);
}

void shim_logfile_write(struct logfile *l, int stream, const char *data, size_t len)
{
	struct strbuf *p = &l->partial[stream == 2 ? 1 : 0];
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) + 1 : len;
		if (take > LOGFILE_MAX_LINE - p->len) {
			take = LOGFILE_MAX_LINE - p->len;
			nl = NULL;
		}
		strbuf_add(p, data, take);
		data += take;
		len -= take;
		if (nl || p->len >= LOGFILE_MAX_LINE) {
			write_record(l, stream, p->buf, p->len);
			strbuf_reset(p);
		}
	}
}

void shim_logfile_flush(struct logfile *l, int stream)
{
	struct strbuf *p = &l->partial[stream == 2 ? 1 : 0];
	if (p->len > 0) {
		write_record(l, stream, p->buf, p->len);
		strbuf_reset(p);
	}
}

void shim_logfile_done(struct logfile *l)
{
	shim_logfile_flush(l, 1);
	shim_logfile_flush(l, 2);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	wait_compress(l);
	free(l->path);
	l->path = NULL;
	free(l->attrs);
	l->attrs = NULL;
	strbuf_release(&l->partial[0]);
	strbuf_release(&l->partial[1]);
}
