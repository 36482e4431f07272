/*
 * proto.c - the shim's wire protocol, client side (used by the engine) and
 * the frame writer both sides use. Requests and replies are single JSON lines.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "shim/shim.h"

int shim_write_frame(int fd, enum shim_stream s, const void *data, size_t len)
{
	unsigned char hdr[8] = { (unsigned char)s,
				 0,
				 0,
				 0,
				 (unsigned char)(len >> 24),
				 (unsigned char)(len >> 16),
				 (unsigned char)(len >> 8),
				 (unsigned char)len };
	int r = fs_write_all(fd, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	return fs_write_all(fd, data, len);
}

/* One reply line (without its newline); the stream bytes after it stay in fd. */
static int read_line(int fd, struct strbuf *sb, struct berth_error **err)
{
	int r = fs_read_until(fd, "\n", SHIM_MAX_REQUEST, sb);
	if (r == -EIO)
		return berth_error_msg(err, EPIPE, "read shim reply: connection closed");
	if (r == -EMSGSIZE)
		return berth_error_msg(err, EMSGSIZE, "read shim reply: line too long");
	if (r < 0)
		return berth_error_set(err, -r, "read shim reply");
	strbuf_setlen(sb, sb->len - 1);
	return 0;
}

int shim_request_send(const char *dir, const json_t *req, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *path = xasprintf("%s/shim.sock", dir);
	if (strlen(path) >= sizeof(sa.sun_path))
		return berth_error_set(err, ENAMETOOLONG, "connect to shim '%s'", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "create socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_errno(err, "connect to shim '%s'", path);
	_cleanup_free_ char *line = json_dumps(req, JSON_COMPACT);
	if (!line)
		return berth_error_set(err, ENOMEM, "encode shim request");
	size_t n = strlen(line);
	line[n] = '\n'; /* one write: json_dumps' NUL becomes the line's end */
	int r = fs_write_all(fd, line, n + 1);
	if (r < 0)
		return berth_error_set(err, -r, "send shim request");
	return TAKE_FD(fd);
}

int shim_request_finish(int fd, json_t **ret_reply, struct berth_error **err)
{
	_cleanup_close_ int owned = fd;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = read_line(fd, &sb, err);
	if (r < 0)
		return r;
	json_t *reply = NULL;
	r = json_parse(sb.buf, sb.len, "shim reply", &reply, err);
	if (r < 0)
		return r;
	const char *emsg = json_string_value(json_object_get(reply, "error"));
	if (emsg) {
		r = berth_error_msg(err, EIO, "%s", emsg);
		json_decref(reply);
		return r;
	}
	if (ret_reply)
		*ret_reply = reply;
	else
		json_decref(reply);
	return TAKE_FD(owned);
}

int shim_request(const char *dir, const json_t *req, json_t **ret_reply, struct berth_error **err)
{
	int fd = shim_request_send(dir, req, err);
	return fd < 0 ? fd : shim_request_finish(fd, ret_reply, err);
}
