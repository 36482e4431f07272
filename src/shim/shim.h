/*
 * shim.h - `berth shim`, the per-container monitor, and its wire protocol.
 *
 * The engine writes <dir>/shim.json and runs `berth shim <dir>`. The shim
 * detaches (double fork, new session), becomes a child subreaper, creates the
 * container through the OCI runtime with pipes (or a pty) as its stdio, binds
 * <dir>/shim.sock, writes "ok <init pid>\n" (or "error <message>\n") to fd 3
 * and closes it. From then on it: copies the container's output into the log
 * (json-file, with rotation) and to attached clients; reaps the init and
 * writes <dir>/exit.json ({"exit_code":N,"finished_at":"...","signal":S})
 * atomically; then deletes the runtime container and exits. It never depends
 * on the daemon being alive.
 *
 * Protocol on shim.sock: the client sends one JSON request line; the shim
 * answers one JSON line ({"ok":true,...} or {"error":"..."}), then, for
 * streaming ops, the raw stream follows on the same connection (with a TTY raw
 * bytes, otherwise Docker's multiplexed frames; bytes the client sends are
 * stdin, its half-close closes stdin when the container's stdin is "once").
 *
 *   {"op":"start"}                               release the created container
 *   {"op":"attach","stdin":b,"stdout":b,"stderr":b}   stream
 *   {"op":"exec","id":"...","process":{OCI process},"detach":b}
 *        stream of the exec's stdio; at its end <dir>/exec-<id>.json holds
 *        {"exit_code":N,"pid":P}; written before the stream closes
 *   {"op":"resize","height":h,"width":w[,"exec":"id"]}
 */
#ifndef BERTH_SHIM_SHIM_H
#define BERTH_SHIM_SHIM_H

#include <jansson.h>
#include <sys/types.h>

#include "common/error.h"

/* Longest request line a shim accepts. */
#define SHIM_MAX_REQUEST (256 * 1024)

/* Entry point of `berth shim DIR` (hidden command). */
int shim_main(int argc, char **argv);

/*
 * Client side: connect to <dir>/shim.sock, send req (borrowed), read the reply
 * line into *ret_reply (may be NULL). Returns the connected fd (for streams)
 * or -errno; a {"error":...} reply becomes -EIO with that message.
 */
int shim_request(const char *dir, const json_t *req, json_t **ret_reply, struct berth_error **err);
/*
 * shim_request in two halves, to pipeline requests: the shim takes connections
 * one at a time in the order they were made, so requests sent one after the
 * other are handled in that order, and their replies are read afterwards.
 * _send: connect and send (the connected fd or -errno); _finish: read the
 * reply of fd (taking it over: closed on errors), as shim_request returns.
 */
int shim_request_send(const char *dir, const json_t *req, struct berth_error **err);
int shim_request_finish(int fd, json_t **ret_reply, struct berth_error **err);

/* Docker stream ids of multiplexed frames. */
enum shim_stream {
	SHIM_STDIN = 0,
	SHIM_STDOUT = 1,
	SHIM_STDERR = 2,
};

/* Write one multiplexed frame (8-byte header + data) to fd. 0 or -errno. */
int shim_write_frame(int fd, enum shim_stream s, const void *data, size_t len);

#endif
