/*
 * cli.h - the `berth` client: docker's verbs and flags over the Engine API.
 * Each command is `int cli_<verb>(int argc, char **argv)` returning the
 * process exit code (docker's: 0, 1 for daemon errors, 125 when the command
 * itself failed, the container's code for run/start -a/exec). No engine
 * logic lives here: every command is a few API calls and formatting.
 */
#ifndef BERTH_CLI_CLI_H
#define BERTH_CLI_CLI_H

#include <jansson.h>
#include <termios.h>

#include "http/http.h"

/* Exit codes of docker run. */
#define CLI_EXIT_DAEMON        125
#define CLI_EXIT_CANNOT_INVOKE 126
#define CLI_EXIT_NOT_FOUND     127

struct cli {
	struct http_client *http;
	const char *host;
};

/*
 * Host from -H (may be NULL), $BERTH_HOST, $DOCKER_HOST, $BERTH_EXEC_ROOT/berth.sock, or
 * unix:///run/berth/berth.sock. For tcp:// hosts, $DOCKER_TLS_VERIFY (TLS, server checked against
 * ca.pem) or $DOCKER_TLS (TLS only) use ca.pem, cert.pem, key.pem in $DOCKER_CERT_PATH (~/.docker).
 */
int cli_open(struct cli *cli, const char *host_flag);
void cli_close(struct cli *cli);

/*
 * One request; path is printf-style. JSON body (borrowed, may be NULL).
 * Returns the HTTP status (or -errno with the error printed); the response
 * body is parsed into *ret (may be NULL: ignored) when it is JSON.
 */
long cli_call(struct cli *cli, const char *method, const json_t *body, json_t **ret, const char *fmt, ...)
    _printf_(5, 6);
/* Print "Error response from daemon: <message>" for an error response body. */
void cli_print_daemon_error(const json_t *body, long status);

/* URL-escape a query value. Caller frees. */
char *cli_escape(const char *s);

/* Docker's flag conventions shared by commands. */
bool cli_is_help(int argc, char **argv);

/* Format: "table"/"json"/Go-like template with {{.Field}}, {{.A.B}}, {{json .X}}. */
char *cli_format(const char *tmpl, const json_t *obj);
/* Print a table: headers, rows of strings (json arrays), columns padded like docker (3 spaces). */
void cli_print_table(const char *const *headers, size_t ncols, const json_t *rows);

/* Copy a multiplexed (or raw, tty) stream from fd to stdout/stderr until EOF. */
void cli_copy_stream(int fd, bool tty);
/* Bidirectional: stdin -> fd (when in), fd -> stdout/stderr until the stream ends. */
void cli_attach_stdio(int fd, bool in, bool tty);
/* Copy what fd has now to stdout (tty) or demultiplexed to stdout/stderr (8-byte frame
 * headers; a partial frame waits in pending); false at the stream's end. */
bool cli_pump_out(int fd, bool tty, struct strbuf *pending);

/* attach.c: forward SIGINT/TERM/HUP/QUIT/USR1/USR2/ALRM to container id (a thread; docker's --sig-proxy). */
int cli_sig_proxy_start(const char *host, const char *id);
/*
 * Like cli_attach_stdio(); with tty and in, stdin is filtered for the detach
 * keys (spec; NULL: ctrl-p,ctrl-q): the sequence ends the session with
 * *ret_detached set (the keys are not sent).
 */
int cli_attach_session(int fd, bool in, bool tty, const char *keys, bool *ret_detached);
/*
 * A TTY stream ended without a local detach: did the daemon detach it (its
 * own default keys)? True when no exit shows on the pending wait response
 * wfd within a short grace period and the container still runs.
 */
bool cli_detached_by_daemon(struct cli *cli, const char *id, int wfd);
/*
 * POST a wait (path) on its own connection and read the answer's head: the
 * daemon answers it once the waiter is registered, so the container may be
 * started after this returns (an exit or removal right after the start is
 * not missed). The socket, or -1 after printing the error. head: for
 * cli_wait_response.
 */
int cli_wait_begin(struct cli *cli, const char *path, struct strbuf *head);
/* StatusCode of the wait whose head cli_wait_begin read; 125 (printed) on errors. */
int cli_wait_response(int wfd, const char *head);
/* 1 running, 0 not, -errno (printed); Config.Tty/OpenStdin into the optional ret_*. */
int cli_container_running(struct cli *cli, const char *id, bool *ret_tty, bool *ret_stdin);
/* Raw mode for an attached TTY (restore saved); resize the container's or exec's TTY. */
bool cli_raw_terminal(struct termios *saved);
void cli_resize(struct cli *cli, const char *what, const char *id);
/* "Error response from daemon: ..." from a raw error body. */
void cli_print_daemon_error_text(const char *body, size_t len, long status);
/* POST path (with an optional JSON body) and take over the connection (101 or a raw 200 stream);
 * -1 after printing the client's or the daemon's error. */
int cli_hijack(struct cli *cli, const char *path, const char *body, int *ret_fd);

/* Human sizes and durations like docker's CLI. */
char *cli_human_size(double bytes);
char *cli_human_ago(int64_t unix_seconds);

int cli_run(int argc, char **argv);
int cli_attach(int argc, char **argv);
int cli_create(int argc, char **argv);
int cli_start(int argc, char **argv);
int cli_exec(int argc, char **argv);
int cli_ps(int argc, char **argv);
int cli_logs(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_stop(int argc, char **argv);
int cli_restart(int argc, char **argv);
int cli_kill(int argc, char **argv);
int cli_rm(int argc, char **argv);
int cli_pause(int argc, char **argv);
int cli_unpause(int argc, char **argv);
int cli_wait(int argc, char **argv);
int cli_rename(int argc, char **argv);
int cli_update(int argc, char **argv);
int cli_top(int argc, char **argv);
int cli_images(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_rmi(int argc, char **argv);
int cli_tag(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_events(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_cp(int argc, char **argv);
int cli_diff(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_commit(int argc, char **argv);

#endif
