/*
 * auth-token.c - ES256 JSON Web Tokens per the distribution token spec:
 * issued by GET /auth/token, verified on every Bearer request.
 *
 * JWS ES256 carries the raw r||s signature (64 bytes); OpenSSL speaks DER, so
 * we convert with ECDSA_SIG in both directions.
 */
#include <openssl/ecdsa.h>
#include <time.h>

#include "common/json.h"
#include "common/util.h"
#include "registry/auth-private.h"
#include "registry/route.h"

#define TOKEN_MAX 8192

static int sign_es256(EVP_PKEY *key, const char *data, size_t len, unsigned char out[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128];
	size_t dlen = sizeof(der);
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		 EVP_DigestSign(ctx, der, &dlen, (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -EIO;
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	if (!sig)
		return -EIO;
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -EIO;
}

static bool verify_es256(EVP_PKEY *key, const char *data, size_t len, const unsigned char *rs, size_t rslen)
{
	if (rslen != 64)
		return false;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
	if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return false;
	}
	unsigned char *der = NULL;
	int dlen = i2d_ECDSA_SIG(sig, &der);
	ECDSA_SIG_free(sig);
	if (dlen <= 0)
		return false;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
		  EVP_DigestVerify(ctx, der, (size_t)dlen, (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return ok;
}

/* "repository:<name>:<actions>" -> grant; 1 on success, 0 to ignore the scope. */
static int parse_scope(const char *scope, struct auth_grant *g, bool *catalog)
{
	if (streq(scope, "registry:catalog:*")) {
		*catalog = true;
		return 0;
	}
	if (!startswith(scope, "repository:"))
		return 0;
	const char *name = scope + 11;
	const char *colon = strrchr(name, ':');
	if (!colon || (size_t)(colon - name) >= sizeof(g->repo))
		return 0;
	memcpy(g->repo, name, (size_t)(colon - name));
	g->repo[colon - name] = '\0';
	/* a name may carry a registry host with a port ("host:5000/repo") in some clients: refuse */
	if (!registry_name_valid(g->repo) || registry_parse_actions(colon + 1, &g->actions) < 0)
		return 0;
	return 1;
}

static json_t *access_claim(struct registry_auth *a, const struct auth_identity *id,
			    const char *const *scopes, size_t n, bool *catalog)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n && i < AUTH_GRANTS_MAX; i++) {
		struct auth_grant g;
		bool cat = false;
		if (parse_scope(scopes[i], &g, &cat) <= 0) {
			if (cat && id->authenticated)
				*catalog = true;
			continue;
		}
		unsigned granted = g.actions & registry_auth_config_actions(a->cfg, id, g.repo);
		_cleanup_strbuf_ struct strbuf acts = STRBUF_INIT;
		registry_auth_add_actions(&acts, granted);
		json_t *list = json_array();
		char *save = NULL;
		for (char *t = strtok_r(acts.buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(list, json_string(t));
		json_array_append_new(
		    arr, json_pack("{s:s,s:s,s:o}", "type", "repository", "name", g.repo, "actions", list));
	}
	if (*catalog)
		json_array_append_new(
		    arr, json_pack("{s:s,s:s,s:[s]}", "type", "registry", "name", "catalog", "actions", "*"));
	return arr;
}

char *registry_auth_issue_token(struct registry_auth *a, const struct auth_identity *id,
				const char *const *scopes, size_t n_scopes)
{
	time_t now = time(NULL);
	bool catalog = false;
	_cleanup_free_ char *jti = util_random_hex(16);
	_cleanup_json_ json_t *claims =
	    json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:o}", "iss", a->cfg->token_issuer, "sub", id->user,
		      "aud", a->cfg->token_service, "exp", (json_int_t)(now + a->cfg->token_ttl_s), "nbf",
		      (json_int_t)(now - 10), "iat", (json_int_t)now, "jti", jti, "access",
		      access_claim(a, id, scopes, n_scopes, &catalog));
	static const char header[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
	_cleanup_free_ char *payload = json_dump_compact(claims);
	struct strbuf tok = STRBUF_INIT;
	registry_b64url_add(&tok, (const unsigned char *)header, sizeof(header) - 1);
	strbuf_addch(&tok, '.');
	registry_b64url_add(&tok, (const unsigned char *)payload, strlen(payload));
	unsigned char sig[64];
	if (sign_es256(a->key, tok.buf, tok.len, sig) < 0) {
		strbuf_release(&tok);
		return NULL;
	}
	strbuf_addch(&tok, '.');
	registry_b64url_add(&tok, sig, sizeof(sig));
	char issued[RFC3339_MAX];
	struct timespec ts = { .tv_sec = now };
	util_format_rfc3339(&ts, issued);
	_cleanup_json_ json_t *resp =
	    json_pack("{s:s,s:s,s:I,s:s}", "token", tok.buf, "access_token", tok.buf, "expires_in",
		      (json_int_t)a->cfg->token_ttl_s, "issued_at", issued);
	strbuf_release(&tok);
	return json_dump_compact(resp);
}

static void grants_from_claims(const json_t *access, struct auth_identity *id)
{
	size_t i;
	json_t *e;
	json_array_foreach (access, i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *acts = json_object_get(e, "actions");
		if (!type || !name || !json_is_array(acts))
			continue;
		if (streq(type, "registry") && streq(name, "catalog")) {
			id->catalog = true;
			continue;
		}
		if (!streq(type, "repository") || id->n_grants >= AUTH_GRANTS_MAX || strlen(name) >= 256)
			continue;
		struct auth_grant *g = &id->grants[id->n_grants++];
		snprintf(g->repo, sizeof(g->repo), "%s", name);
		g->actions = 0;
		size_t j;
		json_t *act;
		json_array_foreach (acts, j, act) {
			unsigned x = 0;
			if (json_is_string(act) && registry_parse_actions(json_string_value(act), &x) == 0)
				g->actions |= x;
		}
	}
}

int registry_auth_verify_token(struct registry_auth *a, const char *jwt, struct auth_identity *id)
{
	size_t n = strlen(jwt);
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (n > TOKEN_MAX || !d1 || !d2 || strchr(d2 + 1, '.') || !a->key)
		return -EACCES;
	_cleanup_strbuf_ struct strbuf hdr = STRBUF_INIT, pl = STRBUF_INIT, sig = STRBUF_INIT;
	if (registry_b64_decode(jwt, (size_t)(d1 - jwt), true, &hdr) < 0 ||
	    registry_b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), true, &pl) < 0 ||
	    registry_b64_decode(d2 + 1, strlen(d2 + 1), true, &sig) < 0)
		return -EACCES;
	_cleanup_json_ json_t *h = NULL, *c = NULL;
	if (json_parse(hdr.buf, hdr.len, "token header", &h, NULL) < 0 ||
	    !streq_ptr(json_string_value(json_object_get(h, "alg")), "ES256"))
		return -EACCES;
	if (!verify_es256(a->key, jwt, (size_t)(d2 - jwt), (const unsigned char *)sig.buf, sig.len))
		return -EACCES;
	if (json_parse(pl.buf, pl.len, "token claims", &c, NULL) < 0 || !json_is_object(c))
		return -EACCES;
	json_int_t now = (json_int_t)time(NULL);
	json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
	const char *aud = json_string_value(json_object_get(c, "aud"));
	const char *iss = json_string_value(json_object_get(c, "iss"));
	const char *sub = json_string_value(json_object_get(c, "sub"));
	if (!json_is_integer(exp) || json_integer_value(exp) < now ||
	    (nbf && json_integer_value(nbf) > now + 60) || !streq_ptr(aud, a->cfg->token_service) ||
	    !streq_ptr(iss, a->cfg->token_issuer) || !sub)
		return -EACCES;
	*id = (struct auth_identity){ .bearer = true };
	snprintf(id->user, sizeof(id->user), "%s", sub);
	id->authenticated = *sub != '\0';
	grants_from_claims(json_object_get(c, "access"), id);
	return 0;
}
