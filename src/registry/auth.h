/*
 * auth.h - authentication and authorization for the registry.
 *
 * Basic auth against an htpasswd file (bcrypt "$2y$"/"$2b$", verified with
 * libxcrypt's crypt_rn; successful verifications are cached by SHA-256 of the
 * credentials so bcrypt's deliberate slowness is paid once per client), and
 * token auth per the distribution token spec: GET /auth/token issues an ES256
 * JWT whose "access" claim lists the granted repository actions, and requests
 * carry it as "Authorization: Bearer". Permissions come from the config's
 * access list; anonymous callers may pull repositories marked public.
 *
 * When neither htpasswd nor token auth is configured, everything is allowed.
 */
#ifndef BERTH_REGISTRY_AUTH_H
#define BERTH_REGISTRY_AUTH_H

#include "registry/config.h"

struct registry_auth;

#define AUTH_USER_MAX   128
#define AUTH_GRANTS_MAX 16

struct auth_grant {
	char repo[256];
	unsigned actions;
};

struct auth_identity {
	char user[AUTH_USER_MAX]; /* "" = anonymous */
	bool authenticated;
	bool bearer;  /* identity from a token: only `grants` apply */
	bool catalog; /* token grants registry:catalog:* */
	size_t n_grants;
	struct auth_grant grants[AUTH_GRANTS_MAX];
};

int registry_auth_new(const struct registry_config *c, struct registry_auth **ret, struct berth_error **err);
struct registry_auth *registry_auth_free(struct registry_auth *a);
bool registry_auth_enabled(const struct registry_auth *a);
bool registry_auth_token_mode(const struct registry_auth *a);

/*
 * Identify the caller from the Authorization header (may be NULL: anonymous).
 * -EACCES for wrong credentials or an invalid/expired token.
 */
int registry_auth_identify(struct registry_auth *a, const char *authorization, struct auth_identity *id);

/* Actions on repo the config grants to the identity (user or anonymous). */
unsigned registry_auth_config_actions(const struct registry_config *c, const struct auth_identity *id,
				      const char *repo);
/* Whether the identity may do `actions` on repo (token grants, or the config for Basic/anonymous). */
bool registry_auth_allowed(struct registry_auth *a, const struct auth_identity *id, const char *repo,
			   unsigned actions);

/*
 * WWW-Authenticate value for a 401. realm_base is "http(s)://host" of this
 * request. repo NULL: no scope; repo "": the catalog scope. Caller frees.
 */
char *registry_auth_challenge(struct registry_auth *a, const char *realm_base, const char *repo,
			      unsigned actions);

/*
 * Issue a token for the identity covering the requested scopes (each
 * "repository:<name>:<actions>" or "registry:catalog:*"), intersected with
 * what the config allows. Returns the JSON response body. Caller frees.
 */
char *registry_auth_issue_token(struct registry_auth *a, const struct auth_identity *id,
				const char *const *scopes, size_t n_scopes);

/* Exposed for tests and fuzzing: verify a JWT and fill grants. */
int registry_auth_verify_token(struct registry_auth *a, const char *jwt, struct auth_identity *id);

#endif
