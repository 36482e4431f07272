/*
 * flags.h - small value parsers of the builder's flags: COPY/ADD --chmod
 * (octal or chmod(1)'s symbolic form, as BuildKit's Dockerfile 1.x accepts)
 * and `berth build --secret` / `--ssh` specs (buildx's syntax).
 */
#ifndef BERTH_BUILD_FLAGS_H
#define BERTH_BUILD_FLAGS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Longest --chmod value accepted (a symbolic mode is a short list of clauses). */
#define BUILD_CHMOD_MAX 128

/*
 * Check a --chmod value: octal ("755", "0644", at most 07777) or symbolic
 * clauses separated by ',': [ugoa]*([-+=]([rwxXst]*|[ugo]))+ (no umask: an
 * empty "who" means "a"). -EINVAL with "invalid chmod parameter '...'".
 */
int build_chmod_check(const char *spec, struct berth_error **err);

/* The mode (permission bits, 07777) a file of mode `old` gets; spec must have passed
 * build_chmod_check(). is_dir matters for 'X'. */
mode_t build_chmod_apply(const char *spec, mode_t old, bool is_dir);

/*
 * `--secret id=ID[,src=PATH|,source=PATH|,env=VAR][,type=file|env]`:
 * where a secret's value comes from. Without src and env, the environment
 * variable named ID is used when set, else the file named ID. Strings are
 * malloc'd (build_secret_spec_done frees them).
 */
struct build_secret_spec {
	char *id;
	char *src; /* a file, or NULL */
	char *env; /* an environment variable, or NULL */
};
int build_secret_spec_parse(const char *spec, struct build_secret_spec *ret, struct berth_error **err);
void build_secret_spec_done(struct build_secret_spec *s);

/* `--ssh ID[=SOCKET]` ("default" and $SSH_AUTH_SOCK when omitted): *ret_id, *ret_sock (caller frees). */
int build_ssh_spec_parse(const char *spec, const char *auth_sock_env, char **ret_id, char **ret_sock,
			 struct berth_error **err);

#endif
