/*
 * verbs.h - the image/volume/system verbs and management groups of the
 * `berth` CLI (imageverbs.c, login.c, volume.c, system.c, groups.c) and the
 * helpers they share (cliutil.c, progress.c).
 */
#ifndef BERTH_CLI_VERBS_H
#define BERTH_CLI_VERBS_H

#include <stdio.h>
#include <jansson.h>

#include "cli/cli.h"

/* Print "Usage: berth <text>" to stdout (help: returns 0) or stderr (returns 125, docker's). */
int cli_usage(const char *text, bool help);
/* One request; on a status other than want prints the daemon's error and returns -1. */
long cli_expect(struct cli *cli, const char *method, const json_t *body, json_t **ret, long want,
		const char *path);
/* --filter k=v -> filters["k"]["v"] = true (docker's encoding). */
void cli_filter_add(json_t *filters, const char *kv);
/* "?filters=<escaped json>" or "" when there are none (never NULL; caller frees). */
char *cli_filters_query(const json_t *filters);
/*
 * POST /v1.41/WHAT/prune with the filters and print docker's report: "Deleted
 * HEADING:" and each entry of the answer's KEY (an image's as "untagged: X" /
 * "deleted: X"), then, with reclaimed, a blank line after a non-empty list and
 * "Total reclaimed space: S". 0, or 1 after printing the daemon's error.
 */
int cli_prune_post(struct cli *cli, const char *what, const json_t *filters, const char *key,
		   const char *heading, bool reclaimed);
/* Ask "<prompt> [y/N] " on stderr and read stdin; true for y/yes. */
bool cli_confirm(const char *prompt);
/* Print a Go-template (--format) line or collect a table row. */
void cli_emit_row(const char *format, const json_t *obj, json_t *rows, const char *const *keys, size_t n);

/*
 * docker's X-Registry-Auth header line ("X-Registry-Auth: <base64url json>")
 * for the registry host of `ref` from $DOCKER_CONFIG/config.json (or
 * ~/.docker/config.json) "auths"; an empty object ("e30=") when there are
 * no credentials. Caller frees.
 */
char *cli_registry_auth_header(const char *host);
/* The same header for the given credentials (none: NULL user or password). Caller frees. */
char *cli_registry_auth_header_for(const char *user, const char *password, const char *host);
/* Tag image id (or name) as repo:tag on the daemon; 0 or 1 (error printed). */
int cli_tag_image(const char *id, const char *repo, const char *tag);
/* Push repo:tag from the daemon with the given registry credentials, quietly; 0 or 1 (error printed). */
int cli_push_image(const char *repo, const char *tag, const char *user, const char *password,
		   const char *host);
/* The registry host of a reference ("docker.io" for Hub names); caller frees. NULL when unparsable. */
char *cli_ref_host(const char *ref);

/*
 * Renderer of docker's JSON message stream (pull, push, load): one JSON
 * object per line. On a terminal, per-layer lines are redrawn in place with
 * a progress bar; otherwise each status change is one line and intermediate
 * progress is skipped. quiet prints nothing. The first "error" seen is kept.
 */
struct cli_progress {
	FILE *out;
	bool tty, quiet;
	struct strbuf pending;
	char **ids;  /* ids of the lines on screen, in order (tty) */
	char **last; /* last status printed per id (non-tty) */
	size_t nids;
	char *error; /* first error message, owned */
	json_t *aux; /* last "aux" object, owned */
};
void cli_progress_init(struct cli_progress *p, FILE *out, bool tty, bool quiet);
/* Feed raw stream bytes (lines may span calls). Always 0 (usable as an http_body_fn). */
int cli_progress_feed(void *p, const char *data, size_t len);
/* Flush a trailing line without newline and free the state (error/aux stay until done). */
void cli_progress_finish(struct cli_progress *p);
void cli_progress_done(struct cli_progress *p);

int cli_pull(int argc, char **argv);
int cli_push(int argc, char **argv);
int cli_save(int argc, char **argv);
int cli_load(int argc, char **argv);
int cli_history(int argc, char **argv);
int cli_image_prune(int argc, char **argv);
int cli_login(int argc, char **argv);
int cli_logout(int argc, char **argv);
int cli_volume(int argc, char **argv);
int cli_system(int argc, char **argv);
int cli_system_df(int argc, char **argv);
int cli_system_prune(int argc, char **argv);
int cli_container(int argc, char **argv);
int cli_image(int argc, char **argv);

#endif
