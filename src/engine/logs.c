/*
 * logs.c - log driver settings (json-file, local, none) and reading the logs
 * the shim writes: rotated files first (<log>.N[.gz] ... <log>.1, then
 * <log>), --tail, --since/--until, timestamps, and follow. Follow waits on
 * inotify for the file to grow (or be rotated) and ends once the container
 * is no longer running and the file is drained. --tail N reads back from
 * the end of the live file (lines, or local frames by their trailing
 * lengths), not the whole log. Both formats are decoded
 * into the same record objects ({"log","stream","time"} as json-file's) so
 * that filtering and framing are shared.
 */
#include <ctype.h>
#include <regex.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"
#include "shim/loglocal.h"
#include "shim/shim.h"

/* Most rotated files read back. */
#define LOGS_MAX_FILES    100
/* Bytes of the live file one follow step reads at most (then the records go out). */
#define LOGS_FOLLOW_BATCH (1 << 20)

struct engine_log_reader {
	struct engine *e;
	char *id, *path;
	bool local;
	struct engine_log_opts opts;
	bool tty;
	json_t *backlog; /* records from the initial read, not yet sent */
	size_t backlog_pos;
	int fd, ino;
	ino_t inode;
	struct strbuf partial;
	bool done;
};

static bool key_in(const char *k, const char *const *keys)
{
	for (; *keys; keys++)
		if (streq(k, *keys))
			return true;
	return false;
}

/* Add to out the members of `from` named in the comma-separated list names. */
static void attrs_named(json_t *out, const json_t *from, const char *names)
{
	_cleanup_free_ char *copy = xstrdup(names);
	char *save = NULL;
	for (char *n = strtok_r(copy, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		json_t *v = json_object_get(from, n);
		if (json_is_string(v))
			json_object_set(out, n, v);
	}
}

/* Add to out the members of `from` whose keys match the regular expression re. */
static int attrs_matching(json_t *out, const json_t *from, const char *re, struct berth_error **err)
{
	regex_t rx;
	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		return berth_error_msg(err, EINVAL, "error parsing regexp: '%s'", re);
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)from, k, v)
		if (json_is_string(v) && regexec(&rx, k, 0, NULL, 0) == 0)
			json_object_set(out, k, v);
	regfree(&rx);
	return 0;
}

int engine_log_attrs(const json_t *config, const json_t *logconfig, char **ret, struct berth_error **err)
{
	*ret = NULL;
	const char *type = json_string_value(json_object_get(logconfig, "Type"));
	if (type && *type && !streq(type, "json-file"))
		return 0; /* moby: only json-file records carry attrs (local's entries have no field) */
	const json_t *opts = json_object_get(logconfig, "Config");
	const char *labels = json_string_value(json_object_get(opts, "labels"));
	const char *labels_re = json_string_value(json_object_get(opts, "labels-regex"));
	const char *env = json_string_value(json_object_get(opts, "env"));
	const char *env_re = json_string_value(json_object_get(opts, "env-regex"));
	if (!(labels && *labels) && !(labels_re && *labels_re) && !(env && *env) && !(env_re && *env_re))
		return 0;
	_cleanup_json_ json_t *envmap = json_object(), *attrs = json_object();
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(config, "Env"), i, el) {
		const char *kv = json_string_value(el), *eq = kv ? strchr(kv, '=') : NULL;
		if (eq) {
			_cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
			json_object_set_new(envmap, k, json_string(eq + 1));
		}
	}
	const json_t *clabels = json_object_get(config, "Labels");
	int r = 0;
	if (labels && *labels)
		attrs_named(attrs, clabels, labels);
	if (labels_re && *labels_re && (r = attrs_matching(attrs, clabels, labels_re, err)) < 0)
		return r;
	if (env && *env)
		attrs_named(attrs, envmap, env);
	if (env_re && *env_re && (r = attrs_matching(attrs, envmap, env_re, err)) < 0)
		return r;
	if (json_object_size(attrs))
		*ret = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
	return 0;
}

static int check_opts(const char *driver, const json_t *opts, struct berth_error **err)
{
	static const char *const json_keys[] = {
		"max-size", "max-file", "compress",        "labels", "labels-regex", "env", "env-regex",
		"tag",      "mode",     "max-buffer-size", NULL
	};
	static const char *const local_keys[] = { "max-size", "max-file",        "compress",
						  "mode",     "max-buffer-size", NULL };
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)opts, k, v) {
		if (!json_is_string(v))
			return json_type_error("HostConfig.LogConfig.Config", k, "string", v, err);
		if (streq(driver, "json-file") && !key_in(k, json_keys))
			return berth_error_msg(err, EINVAL, "unknown log opt '%s' for json-file log driver",
					       k);
		if (streq(driver, "local") && !key_in(k, local_keys))
			return berth_error_msg(err, EINVAL, "unknown log opt '%s' for log driver local", k);
	}
	return 0;
}

int engine_log_settings_get(const json_t *lc, const char *cdir, const char *cid, struct log_settings *ret,
			    struct berth_error **err)
{
	const char *driver = json_string_value(json_object_get(lc, "Type"));
	const json_t *opts = json_object_get(lc, "Config");
	if (!driver || !*driver)
		driver = "json-file";
	if (!streq(driver, "json-file") && !streq(driver, "local") && !streq(driver, "none"))
		return berth_error_msg(err, EINVAL, "logger: no log driver named '%s' is registered", driver);
	int r = check_opts(driver, opts, err);
	if (r < 0)
		return r;
	bool local = streq(driver, "local");
	struct log_settings s = { .local = local,
				  .compress = local,
				  .max_file = local ? LOGLOCAL_DEFAULT_MAX_FILE : 1,
				  .max_size = local ? LOGLOCAL_DEFAULT_MAX_SIZE : 0 };
	const char *ms = json_string_value(json_object_get(opts, "max-size"));
	const char *mf = json_string_value(json_object_get(opts, "max-file"));
	const char *cp = json_string_value(json_object_get(opts, "compress"));
	if (ms && (util_parse_bytes(ms, &s.max_size) < 0 || s.max_size < 0))
		return berth_error_msg(err, EINVAL, "invalid log max-size '%s'", ms);
	if (mf && (util_parse_int64(mf, &s.max_file) < 0 || s.max_file < 1 || s.max_file > 100))
		return berth_error_msg(err, EINVAL, "invalid log max-file '%s'", mf);
	if (cp && !streq(cp, "true") && !streq(cp, "false") && !streq(cp, "1") && !streq(cp, "0"))
		return berth_error_msg(err, EINVAL, "invalid log compress '%s'", cp);
	if (cp)
		s.compress = streq(cp, "true") || streq(cp, "1");
	if (ret) {
		if (!streq(driver, "none"))
			s.path = local ? xasprintf("%s/local-logs/container.log", cdir)
				       : xasprintf("%s/%s-json.log", cdir, cid);
		*ret = s;
	}
	return 0;
}

void engine_log_settings_done(struct log_settings *s)
{
	free(s->path);
	s->path = NULL;
}

static int64_t record_time_ns(const char *t)
{
	struct timespec ts;
	if (!t || util_parse_rfc3339(t, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool wanted(const struct engine_log_reader *r, const json_t *rec)
{
	const char *stream = json_string_value(json_object_get(rec, "stream"));
	bool is_err = stream && streq(stream, "stderr");
	if ((is_err && !r->opts.err) || (!is_err && !r->opts.out))
		return false;
	int64_t t = record_time_ns(json_string_value(json_object_get(rec, "time")));
	if (r->opts.since_ns && t < r->opts.since_ns)
		return false;
	if (r->opts.until_ns && t > r->opts.until_ns)
		return false;
	return true;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void query_escape(const char *s, struct strbuf *out)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || strchr("-_.~", ch))
			strbuf_addch(out, (char)ch);
		else if (ch == ' ')
			strbuf_addch(out, '+');
		else
			strbuf_addf(out, "%%%02X", ch);
	}
}

/* docker logs --details: the record's attrs as "k=v,..." by key (query-escaped), then a space. */
static void details_prefix(const json_t *attrs, struct strbuf *out)
{
	size_t n = json_object_size(attrs), k = 0;
	_cleanup_free_ const char **keys = xcalloc(n + 1, sizeof(*keys));
	const char *key;
	json_t *v;
	json_object_foreach ((json_t *)attrs, key, v)
		keys[k++] = key;
	qsort(keys, k, sizeof(*keys), key_cmp);
	for (size_t i = 0; i < k; i++) {
		if (i)
			strbuf_addch(out, ',');
		query_escape(keys[i], out);
		strbuf_addch(out, '=');
		query_escape(json_string_value(json_object_get(attrs, keys[i])) ?: "", out);
	}
	strbuf_addch(out, ' ');
}

static void emit(const struct engine_log_reader *r, const json_t *rec, struct strbuf *out)
{
	const json_t *logv = json_object_get(rec, "log");
	const char *log = json_string_value(logv);
	const char *stream = json_string_value(json_object_get(rec, "stream"));
	if (!log)
		return;
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	if (r->opts.timestamps)
		strbuf_addf(&line, "%s ", json_string_value(json_object_get(rec, "time")));
	if (r->opts.details)
		details_prefix(json_object_get(rec, "attrs"), &line);
	strbuf_add(&line, log, json_string_length(logv));
	if (r->tty) {
		strbuf_add(out, line.buf, line.len);
		return;
	}
	unsigned char hdr[8] = { stream && streq(stream, "stderr") ? 2 : 1, 0, 0, 0 };
	hdr[4] = (unsigned char)(line.len >> 24);
	hdr[5] = (unsigned char)(line.len >> 16);
	hdr[6] = (unsigned char)(line.len >> 8);
	hdr[7] = (unsigned char)line.len;
	strbuf_add(out, hdr, sizeof(hdr));
	strbuf_add(out, line.buf, line.len);
}

/* A local-format entry as a json-file record (the newline back on complete lines). */
static json_t *local_record(const struct loglocal_entry *le)
{
	struct timespec ts = { .tv_sec = le->time_ns / 1000000000, .tv_nsec = le->time_ns % 1000000000 };
	if (le->time_ns < 0)
		ts = (struct timespec){ 0 };
	char t[RFC3339_MAX];
	util_format_rfc3339(&ts, t);
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	strbuf_add(&line, le->line, le->len);
	if (!le->partial)
		strbuf_addch(&line, '\n');
	return json_pack("{s:o,s:s,s:s}", "log", json_stringn_nocheck(line.buf, line.len), "stream",
			 le->stream == 2 ? "stderr" : "stdout", "time", t);
}

/* Decode complete frames; a corrupt frame drops what is buffered (the rest cannot be framed). */
static void parse_frames(struct engine_log_reader *r, json_t *list)
{
	size_t off = 0;
	for (;;) {
		struct loglocal_entry le;
		ssize_t n = shim_loglocal_decode(r->partial.buf + off, r->partial.len - off, &le);
		if (n < 0) {
			off = r->partial.len;
			break;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		json_t *rec = local_record(&le);
		if (rec && wanted(r, rec))
			json_array_append_new(list, rec);
		else
			json_decref(rec);
	}
	memmove(r->partial.buf, r->partial.buf + off, r->partial.len - off);
	strbuf_setlen(&r->partial, r->partial.len - off);
}

/* Parse complete lines of buf into records appended to list; keeps an incomplete tail in partial. */
static void parse_lines(struct engine_log_reader *r, const char *buf, size_t len, json_t *list)
{
	strbuf_add(&r->partial, buf, len);
	if (r->local) {
		parse_frames(r, list);
		return;
	}
	size_t start = 0;
	for (size_t i = 0; i < r->partial.len; i++) {
		if (r->partial.buf[i] != '\n')
			continue;
		json_t *rec = json_loadb(r->partial.buf + start, i - start, JSON_ALLOW_NUL, NULL);
		if (rec && wanted(r, rec))
			json_array_append_new(list, rec);
		else
			json_decref(rec);
		start = i + 1;
	}
	memmove(r->partial.buf, r->partial.buf + start, r->partial.len - start);
	strbuf_setlen(&r->partial, r->partial.len - start);
}

static void read_file(struct engine_log_reader *r, const char *path, json_t *list)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[64 * 1024];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		parse_lines(r, buf, (size_t)n, list);
	strbuf_reset(&r->partial);
}

/* A gzipped rotated file (compress=true). */
static void read_gz_file(struct engine_log_reader *r, const char *path, json_t *list)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	gzFile gz = gzdopen(fd, "rb");
	if (!gz) {
		close(fd);
		return;
	}
	char buf[64 * 1024];
	int n;
	while ((n = gzread(gz, buf, sizeof(buf))) > 0)
		parse_lines(r, buf, (size_t)n, list);
	gzclose(gz);
	strbuf_reset(&r->partial);
}

/*
 * Offset in fd's [0, end) where the last n json-file lines begin, counting
 * back from the end (an unterminated last line is no line: it stays with the
 * region and becomes the partial record that follow completes). 0 when the
 * file holds no more than n.
 */
static off_t tail_start_lines(int fd, off_t end, int64_t n)
{
	char buf[64 * 1024];
	int64_t seen = 0;
	for (off_t pos = end; pos > 0;) {
		size_t len = (size_t)MIN((off_t)sizeof(buf), pos);
		pos -= (off_t)len;
		if (pread(fd, buf, len, pos) != (ssize_t)len)
			return 0;
		for (size_t i = len; i-- > 0;)
			if (buf[i] == '\n' && ++seen == n + 1)
				return pos + (off_t)i + 1;
	}
	return 0;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * The same for local frames (length, message, length again): walk back over
 * the trailing lengths. Anything that does not frame (a frame being written)
 * gives 0, a whole read, as before.
 */
static off_t tail_start_frames(int fd, off_t end, int64_t n)
{
	off_t pos = end;
	for (int64_t k = 0; k < n && pos > 0; k++) {
		unsigned char len[4], head[4];
		if (pos < 8 || pread(fd, len, 4, pos - 4) != 4)
			return 0;
		uint32_t l = be32(len);
		if (l > LOGLOCAL_MAX_FRAME || (off_t)l + 8 > pos ||
		    pread(fd, head, 4, pos - 8 - (off_t)l) != 4 || be32(head) != l)
			return 0;
		pos -= 8 + (off_t)l;
	}
	return pos;
}

/* Parse fd's [start, end) into list (the live file's tail region). */
static void read_range(struct engine_log_reader *r, int fd, off_t start, off_t end, json_t *list)
{
	char buf[64 * 1024];
	for (off_t pos = start; pos < end;) {
		ssize_t n = pread(fd, buf, (size_t)MIN((off_t)sizeof(buf), end - pos), pos);
		if (n <= 0)
			break;
		parse_lines(r, buf, (size_t)n, list);
		pos += n;
	}
}

/*
 * --tail N without reading the whole log: the live file is read from where
 * its last N wanted records start (doubling the look-back while filters drop
 * records) and left positioned at the end of what was read, so that follow
 * continues exactly there and no record written meanwhile is lost or doubled.
 * Rotated files are read only when the live file holds fewer than N.
 */
static void load_tail(struct engine_log_reader *r)
{
	struct stat st;
	r->backlog = json_array();
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &st) < 0)
		return;
	r->inode = st.st_ino;
	off_t end = st.st_size, start;
	int64_t want = r->opts.tail;
	for (int64_t raw = want;; raw = raw * 2 + 1) {
		start = r->local ? tail_start_frames(r->fd, end, raw) : tail_start_lines(r->fd, end, raw);
		json_array_clear(r->backlog);
		strbuf_reset(&r->partial);
		read_range(r, r->fd, start, end, r->backlog);
		if ((int64_t)json_array_size(r->backlog) >= want || start == 0)
			break;
	}
	(void)lseek(r->fd, end, SEEK_SET);
	if ((int64_t)json_array_size(r->backlog) < want) {
		/* older files, keeping the live file's partial record for follow */
		struct strbuf live_partial = r->partial;
		strbuf_init(&r->partial, 0);
		json_t *older = json_array();
		for (int i = LOGS_MAX_FILES; i >= 1; i--) {
			_cleanup_free_ char *p = xasprintf("%s.%d", r->path, i);
			_cleanup_free_ char *gz = xasprintf("%s.%d.gz", r->path, i);
			if (access(gz, F_OK) == 0)
				read_gz_file(r, gz, older);
			else if (access(p, F_OK) == 0)
				read_file(r, p, older);
		}
		strbuf_release(&r->partial);
		r->partial = live_partial;
		json_array_extend(older, r->backlog);
		json_decref(r->backlog);
		r->backlog = older;
	}
	if ((size_t)want < json_array_size(r->backlog))
		r->backlog_pos = json_array_size(r->backlog) - (size_t)want;
}

static void load_backlog(struct engine_log_reader *r)
{
	if (r->opts.tail >= 0) {
		load_tail(r);
		return;
	}
	r->backlog = json_array();
	for (int i = LOGS_MAX_FILES; i >= 1; i--) {
		_cleanup_free_ char *p = xasprintf("%s.%d", r->path, i);
		_cleanup_free_ char *gz = xasprintf("%s.%d.gz", r->path, i);
		if (access(gz, F_OK) == 0)
			read_gz_file(r, gz, r->backlog);
		else if (access(p, F_OK) == 0)
			read_file(r, p, r->backlog);
	}
	/* The live file: keep it open to follow from where we stopped. */
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd >= 0) {
		struct stat st;
		if (fstat(r->fd, &st) == 0)
			r->inode = st.st_ino;
		char buf[64 * 1024];
		ssize_t n;
		while ((n = read(r->fd, buf, sizeof(buf))) > 0)
			parse_lines(r, buf, (size_t)n, r->backlog);
	}
}

int engine_logs_open(struct engine *e, const char *ref, const struct engine_log_opts *opts,
		     struct engine_log_reader **ret, bool *ret_tty, struct berth_error **err)
{
	struct container *c;
	pthread_mutex_lock(&e->lock);
	int rr = engine_container_find_locked(e, ref, &c, err);
	if (rr < 0) {
		pthread_mutex_unlock(&e->lock);
		return rr;
	}
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	struct log_settings ls = { 0 };
	int sr = engine_log_settings_get(json_object_get(c->hostconfig, "LogConfig"), dir, c->id, &ls, err);
	if (sr < 0 || !ls.path) {
		engine_container_unref(c);
		pthread_mutex_unlock(&e->lock);
		return sr < 0 ? sr
			      : berth_error_msg(err, EOPNOTSUPP,
						"configured logging driver does not support reading");
	}
	struct engine_log_reader *r = xcalloc(1, sizeof(*r));
	r->e = e;
	r->id = xstrdup(c->id);
	r->path = TAKE_PTR(ls.path);
	r->local = ls.local;
	r->opts = *opts;
	r->tty = json_is_true(json_object_get(c->config, "Tty"));
	r->fd = r->ino = -1;
	strbuf_init(&r->partial, 0);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	load_backlog(r);
	if (opts->follow) {
		r->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		_cleanup_free_ char *wdir = xstrdup(r->path);
		*strrchr(wdir, '/') = '\0';
		if (r->ino >= 0)
			inotify_add_watch(r->ino, wdir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
	}
	*ret = r;
	*ret_tty = r->tty;
	return 0;
}

static bool container_live(struct engine_log_reader *r)
{
	struct container *c;
	pthread_mutex_lock(&r->e->lock);
	bool live = false;
	if (r->e->closing) {
		pthread_mutex_unlock(&r->e->lock);
		return false;
	}
	if (engine_container_find_locked(r->e, r->id, &c, NULL) >= 0) {
		live =
		    c->state == ENGINE_RUNNING || c->state == ENGINE_PAUSED || c->state == ENGINE_RESTARTING;
		engine_container_unref(c);
	}
	pthread_mutex_unlock(&r->e->lock);
	return live;
}

/*
 * New records of the live file, at most about LOGS_FOLLOW_BATCH bytes per
 * call (a follower that fell behind a fast writer catches up in steps, and
 * notices a gone client in between, instead of parsing everything written
 * meanwhile at once). Only at the end of the open file does it look for a
 * rotation (or a file created late), so nothing of the old file is skipped.
 */
static void read_more(struct engine_log_reader *r, json_t *list)
{
	char buf[64 * 1024];
	size_t total = 0;
	for (;;) {
		ssize_t n = r->fd >= 0 ? read(r->fd, buf, sizeof(buf)) : 0;
		if (n > 0) {
			parse_lines(r, buf, (size_t)n, list);
			if ((total += (size_t)n) >= LOGS_FOLLOW_BATCH)
				return;
			continue;
		}
		struct stat st;
		if (stat(r->path, &st) < 0 || (r->fd >= 0 && st.st_ino == r->inode))
			return;
		safe_close(r->fd);
		r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
		r->inode = st.st_ino;
		strbuf_reset(&r->partial);
		if (r->fd < 0)
			return;
	}
}

int engine_logs_read(struct engine_log_reader *r, struct strbuf *out, struct berth_error **err)
{
	if (r->done)
		return 1;
	if (r->backlog_pos < json_array_size(r->backlog)) {
		size_t end = MIN(json_array_size(r->backlog), r->backlog_pos + 256);
		for (; r->backlog_pos < end; r->backlog_pos++)
			emit(r, json_array_get(r->backlog, r->backlog_pos), out);
		return 0;
	}
	if (!r->opts.follow)
		return 1;
	for (;;) {
		_cleanup_json_ json_t *list = json_array();
		bool live = container_live(r);
		read_more(r, list);
		size_t i;
		json_t *rec;
		json_array_foreach (list, i, rec)
			emit(r, rec, out);
		if (out->len > 0)
			return 0;
		if (!live) {
			r->done = true;
			return 1;
		}
		struct pollfd p = { r->ino, POLLIN, 0 };
		/* inotify wakes us on writes; the timeout only re-checks that the container still runs */
		if (poll(&p, 1, 1000) > 0) {
			char buf[4096];
			while (read(r->ino, buf, sizeof(buf)) > 0)
				;
		}
	}
}

struct engine_log_reader *engine_logs_close(struct engine_log_reader *r)
{
	if (!r)
		return NULL;
	free(r->id);
	free(r->path);
	json_decref(r->backlog);
	safe_close(r->fd);
	safe_close(r->ino);
	strbuf_release(&r->partial);
	free(r);
	return NULL;
}
