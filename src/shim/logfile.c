/*
 * logfile.c - the json-file log driver as the shim writes it: one JSON object
 * per line, {"log":"...","stream":"stdout","time":"..."}, byte-compatible
 * with docker's, split at newlines (partial lines are flushed when the buffer
 * fills or the stream ends), rotated at max_size into <path>.1 .. <path>.N-1.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/util.h"
#include "shim/logfile.h"

void logfile_init(struct logfile *l, const char *path, int64_t max_size, int max_file)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->path = path ? xstrdup(path) : NULL;
	l->max_size = max_size;
	l->max_file = max_file < 1 ? 1 : max_file;
	strbuf_init(&l->partial[0], 0);
	strbuf_init(&l->partial[1], 0);
}

int logfile_open(struct logfile *l)
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
	for (int i = l->max_file - 1; i >= 1; i--) {
		_cleanup_free_ char *from = i == 1 ? xstrdup(l->path) : xasprintf("%s.%d", l->path, i - 1);
		_cleanup_free_ char *to = xasprintf("%s.%d", l->path, i);
		(void)rename(from, to);
	}
	close(l->fd);
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	l->size = 0;
}

static void write_record(struct logfile *l, int stream, const char *data, size_t len)
{
	if (l->fd < 0)
		return;
	struct timespec ts;
	char t[RFC3339_MAX];
	clock_gettime(CLOCK_REALTIME, &ts);
	format_rfc3339(&ts, t);
	_cleanup_free_ char *s = xstrndup(data, len);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "{\"log\":");
	strbuf_add_json_string(&sb, s);
	strbuf_addf(&sb, ",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream == 2 ? "stderr" : "stdout", t);
	if (l->max_size > 0 && l->size > 0 && l->size + (int64_t)sb.len > l->max_size)
		rotate(l);
	if (l->fd >= 0 && fs_write_all(l->fd, sb.buf, sb.len) == 0)
		l->size += (int64_t)sb.len;
}

void logfile_write(struct logfile *l, int stream, const char *data, size_t len)
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

void logfile_flush(struct logfile *l, int stream)
{
	struct strbuf *p = &l->partial[stream == 2 ? 1 : 0];
	if (p->len > 0) {
		write_record(l, stream, p->buf, p->len);
		strbuf_reset(p);
	}
}

void logfile_done(struct logfile *l)
{
	logfile_flush(l, 1);
	logfile_flush(l, 2);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->path);
	l->path = NULL;
	strbuf_release(&l->partial[0]);
	strbuf_release(&l->partial[1]);
}
