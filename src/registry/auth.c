/*
 * auth.c - htpasswd Basic auth (bcrypt via libxcrypt crypt_rn), ES256 JWT bearer tokens
 * per the distribution token spec, and the permission model.
 *
 * Trade-off: bcrypt costs ~50 ms by design; verifying it on every request
 * would cap an authenticated client at ~20 requests/s per core. Successful
 * verifications are cached as SHA-256("user\0password") (never the password),
 * bounded and cleared when full.
 */
#include "registry/auth-private.h"

#include <crypt.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <time.h>

#include "common/base64.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"

#define HTPASSWD_MAX_SIZE (4u << 20)

bool registry_auth_enabled(const struct registry_auth *a)
{
	return a &&
	       (a->cfg->htpasswd || a->cfg->token_enabled || (a->cfg->hooks && a->cfg->hooks->check_basic));
}

bool registry_auth_token_mode(const struct registry_auth *a)
{
	return a && a->cfg->token_enabled;
}

static int load_htpasswd(struct registry_auth *a, const char *path, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, path, HTPASSWD_MAX_SIZE, &sb, err);
	if (r < 0)
		return berth_error_wrap(err, r, "load htpasswd");
	char *save = NULL;
	for (char *line = strtok_r(sb.buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon || line[0] == '#')
			continue;
		*colon = '\0';
		if (!startswith(colon + 1, "$2y$") && !startswith(colon + 1, "$2b$") &&
		    !startswith(colon + 1, "$2a$"))
			return berth_error_msg(err, EINVAL, "htpasswd '%s': user '%s' does not use bcrypt",
					       path, line);
		a->users = xrealloc(a->users, (a->n_users + 1) * sizeof(*a->users));
		a->users[a->n_users].user = xstrdup(line);
		a->users[a->n_users].hash = xstrdup(colon + 1);
		a->n_users++;
	}
	return 0;
}

static int load_or_make_key(struct registry_auth *a, const char *path, struct berth_error **err)
{
	if (path) {
		FILE *f = fopen(path, "re");
		if (f) {
			a->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
			if (!a->key || EVP_PKEY_base_id(a->key) != EVP_PKEY_EC)
				return berth_error_msg(err, EINVAL,
						       "token key '%s' is not a PEM EC private key", path);
			return 0;
		}
	}
	a->key = EVP_EC_gen("P-256");
	if (!a->key)
		return berth_error_msg(err, EIO, "generate token signing key failed");
	if (path) {
		_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f)
			return berth_error_errno(err, "create token key '%s'", path);
		fd = -1;
		int ok = PEM_write_PrivateKey(f, a->key, NULL, NULL, 0, NULL, NULL);
		fclose(f);
		if (!ok)
			return berth_error_msg(err, EIO, "write token key '%s' failed", path);
	}
	return 0;
}

int registry_auth_new(const struct registry_config *c, struct registry_auth **ret, struct berth_error **err)
{
	struct registry_auth *a = xcalloc(1, sizeof(*a));
	a->cfg = c;
	pthread_mutex_init(&a->lock, NULL);
	int r = 0;
	if (c->htpasswd)
		r = load_htpasswd(a, c->htpasswd, err);
	if (r == 0 && c->token_enabled)
		r = load_or_make_key(a, c->token_key, err);
	if (r < 0) {
		registry_auth_free(a);
		return r;
	}
	*ret = a;
	return 0;
}

struct registry_auth *registry_auth_free(struct registry_auth *a)
{
	if (!a)
		return NULL;
	for (size_t i = 0; i < a->n_users; i++) {
		free(a->users[i].user);
		free(a->users[i].hash);
	}
	free(a->users);
	EVP_PKEY_free(a->key);
	pthread_mutex_destroy(&a->lock);
	free(a);
	return NULL;
}

/* ---- base64 / base64url (common/base64; the alphabet checked per use) ---- */

#define B64_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

void registry_b64url_add(struct strbuf *sb, const unsigned char *in, size_t n)
{
	_cleanup_free_ char *s = base64url_encode(in, n, false);
	strbuf_addstr(sb, s);
}

/* Decode standard or url-safe base64 (padding optional) into sb. -EINVAL on bad input. */
int registry_b64_decode(const char *in, size_t n, bool url, struct strbuf *sb)
{
	if (memchr(in, '\0', n))
		return -EINVAL;
	_cleanup_free_ char *s = xstrndup(in, n);
	if (strspn(s, url ? B64_DIGITS "-_" : B64_DIGITS "+/") != strcspn(s, "="))
		return -EINVAL;
	_cleanup_free_ void *raw = NULL;
	size_t len;
	if (base64_decode(s, &raw, &len) < 0)
		return -EINVAL;
	strbuf_add(sb, raw, len);
	return 0;
}

/* ---- Basic ---- */

static const struct htpasswd_entry *find_user(struct registry_auth *a, const char *user)
{
	for (size_t i = 0; i < a->n_users; i++)
		if (streq(a->users[i].user, user))
			return &a->users[i];
	return NULL;
}

static bool cache_has(struct registry_auth *a, const char *key)
{
	bool hit = false;
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->n_cache && !hit; i++)
		hit = streq(a->cache[i], key);
	pthread_mutex_unlock(&a->lock);
	return hit;
}

static void cache_add(struct registry_auth *a, const char *key)
{
	pthread_mutex_lock(&a->lock);
	if (a->n_cache == CRED_CACHE_SLOTS)
		a->n_cache = 0;
	memcpy(a->cache[a->n_cache++], key, DIGEST_STRING_MAX);
	pthread_mutex_unlock(&a->lock);
}

static int check_password(struct registry_auth *a, const char *user, const char *pass)
{
	const struct htpasswd_entry *e = find_user(a, user);
	if (!e)
		return -EACCES;
	char key[DIGEST_STRING_MAX];
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, e->hash);
	strbuf_addch(&sb, '\0');
	strbuf_addstr(&sb, pass);
	digest_buffer(DIGEST_SHA256, sb.buf, sb.len, key);
	if (cache_has(a, key))
		return 0;
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	/* crypt_rn (libxcrypt) rather than crypt_r: sanitizers intercept crypt_r and break it */
	const char *h = crypt_rn(pass, e->hash, cd, (int)sizeof(*cd));
	bool ok = h && h[0] != '*' && streq(h, e->hash);
	free(cd);
	if (!ok)
		return -EACCES;
	cache_add(a, key);
	return 0;
}

static int identify_basic(struct registry_auth *a, const char *b64, struct auth_identity *id)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	size_t n = strlen(b64);
	if (n > 4096 || registry_b64_decode(b64, n, false, &sb) < 0 || memchr(sb.buf, '\0', sb.len))
		return -EACCES;
	char *colon = strchr(sb.buf, ':');
	if (!colon || (size_t)(colon - sb.buf) >= AUTH_USER_MAX)
		return -EACCES;
	*colon = '\0';
	if (sb.buf[0] == '\0')
		return 0; /* "Basic Og==" (empty credentials): some clients send it for anonymous access */
	const struct registry_hooks *h = a->cfg->hooks;
	if (h && h->check_basic) {
		if (h->check_basic(a->cfg->hooks_data, sb.buf, colon + 1) < 0)
			return -EACCES;
	} else if (!a->cfg->htpasswd || check_password(a, sb.buf, colon + 1) < 0) {
		return -EACCES;
	}
	snprintf(id->user, sizeof(id->user), "%s", sb.buf);
	id->authenticated = true;
	return 0;
}

int registry_auth_identify(struct registry_auth *a, const char *authz, struct auth_identity *id)
{
	*id = (struct auth_identity){ 0 };
	if (!registry_auth_enabled(a) || !authz || !*authz)
		return 0;
	if (strncasecmp(authz, "Basic ", 6) == 0)
		return identify_basic(a, authz + 6, id);
	if (strncasecmp(authz, "Bearer ", 7) == 0 && registry_auth_token_mode(a))
		return registry_auth_verify_token(a, authz + 7, id);
	return -EACCES;
}

/* ---- permissions ---- */

unsigned registry_auth_config_actions(const struct registry_config *c, const struct auth_identity *id,
				      const char *repo)
{
	unsigned actions = 0;
	const struct registry_repo_rule *rule = registry_config_rule(c, repo);
	if (rule && rule->public_pull)
		actions |= REGISTRY_PULL;
	if (!id->authenticated)
		return actions;
	if (c->n_acl == 0)
		return REGISTRY_ALL;
	for (size_t i = 0; i < c->n_acl; i++) {
		const struct registry_acl *e = &c->acl[i];
		if ((streq(e->user, "*") || streq(e->user, id->user)) && fnmatch(e->repository, repo, 0) == 0)
			actions |= e->actions;
	}
	return actions;
}

bool registry_auth_allowed(struct registry_auth *a, const struct auth_identity *id, const char *repo,
			   unsigned actions)
{
	if (!registry_auth_enabled(a))
		return true;
	if (!repo)
		return id->authenticated;
	if (id->bearer) {
		unsigned granted = 0;
		for (size_t i = 0; i < id->n_grants; i++)
			if (streq(id->grants[i].repo, repo))
				granted |= id->grants[i].actions;
		return (granted & actions) == actions;
	}
	return (registry_auth_config_actions(a->cfg, id, repo) & actions) == actions;
}

void registry_auth_add_actions(struct strbuf *sb, unsigned actions)
{
	const char *sep = "";
	if (actions & REGISTRY_PULL) {
		strbuf_addstr(sb, "pull");
		sep = ",";
	}
	if (actions & REGISTRY_PUSH) {
		strbuf_addf(sb, "%spush", sep);
		sep = ",";
	}
	if (actions & REGISTRY_DELETE)
		strbuf_addf(sb, "%sdelete", sep);
}

char *registry_auth_challenge(struct registry_auth *a, const char *realm_base, const char *repo,
			      unsigned actions)
{
	struct strbuf sb = STRBUF_INIT;
	if (!registry_auth_token_mode(a)) {
		strbuf_addstr(&sb, "Basic realm=\"berth-registry\"");
		return strbuf_detach(&sb, NULL);
	}
	if (a->cfg->token_realm)
		strbuf_addf(&sb, "Bearer realm=\"%s\"", a->cfg->token_realm);
	else
		strbuf_addf(&sb, "Bearer realm=\"%s/auth/token\"", realm_base);
	strbuf_addf(&sb, ",service=\"%s\"", a->cfg->token_service);
	if (repo && !*repo) {
		strbuf_addstr(&sb, ",scope=\"registry:catalog:*\"");
	} else if (repo && actions) {
		strbuf_addf(&sb, ",scope=\"repository:%s:", repo);
		registry_auth_add_actions(&sb, actions);
		strbuf_addch(&sb, '"');
	}
	return strbuf_detach(&sb, NULL);
}
