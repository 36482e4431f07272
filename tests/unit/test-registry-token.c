/*
 * test-registry-token.c - the registry's Bearer token verification against forged tokens:
 * expired and not-yet-valid, wrong alg (incl. "none"), bad or foreign signature, wrong
 * audience/issuer, scopes that do not cover the request, malformed base64 and JSON.
 */
#include "unit.h"

#include <openssl/ecdsa.h>
#include <time.h>

#include "common/base64.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "registry/auth-private.h"

#define SERVICE "berth-registry"

struct fixture {
	struct registry_config cfg;
	struct registry_auth *auth;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	registry_config_init(&f->cfg);
	f->cfg.token_enabled = true;
	assert_int_equal(registry_auth_new(&f->cfg, &f->auth, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	registry_auth_free(f->auth);
	registry_config_done(&f->cfg);
	free(f);
	return 0;
}

static void add_b64url(struct strbuf *sb, const void *data, size_t n)
{
	_cleanup_free_ char *s = base64url_encode(data, n, false);
	strbuf_addstr(sb, s);
}

/* prefix + "." + the ES256 signature of prefix with key, as r||s (64 bytes) or DER when der. */
static char *sign_prefix(EVP_PKEY *key, const char *prefix, bool der)
{
	struct strbuf tok = STRBUF_INIT;
	strbuf_addstr(&tok, prefix);
	unsigned char sig[128], raw[64];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &slen, (const unsigned char *)tok.buf, tok.len), 1);
	EVP_MD_CTX_free(ctx);
	strbuf_addch(&tok, '.');
	if (der) {
		add_b64url(&tok, sig, slen);
		return strbuf_detach(&tok, NULL);
	}
	const unsigned char *p = sig;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(es, &r, &s);
	assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
	assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
	ECDSA_SIG_free(es);
	add_b64url(&tok, raw, sizeof(raw));
	return strbuf_detach(&tok, NULL);
}

/* A JWS of header and claims (JSON texts, any content) signed with key. */
static char *forge(EVP_PKEY *key, const char *header, const char *claims, bool der)
{
	_cleanup_strbuf_ struct strbuf prefix = STRBUF_INIT;
	add_b64url(&prefix, header, strlen(header));
	strbuf_addch(&prefix, '.');
	add_b64url(&prefix, claims, strlen(claims));
	return sign_prefix(key, prefix.buf, der);
}

static const char *es256 = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";

/* Claims valid for the fixture, with overrides merged in (a JSON null deletes a member). */
static char *claims(const char *overrides)
{
	json_int_t now = (json_int_t)time(NULL);
	_cleanup_json_ json_t *c =
	    json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:[{s:s,s:s,s:[s,s]}]}", "iss", "berth-registry", "sub",
		      "alice", "aud", SERVICE, "exp", now + 300, "nbf", now - 10, "iat", now, "access",
		      "type", "repository", "name", "team/app", "actions", "pull", "push");
	if (overrides) {
		_cleanup_json_ json_t *o = json_loads(overrides, 0, NULL);
		assert_non_null(o);
		const char *k;
		json_t *v;
		json_object_foreach (o, k, v) {
			if (json_is_null(v))
				json_object_del(c, k);
			else
				json_object_set(c, k, v);
		}
	}
	return json_dump_compact(c);
}

static int verify_claims(struct fixture *f, const char *overrides, struct auth_identity *id)
{
	_cleanup_free_ char *c = claims(overrides);
	_cleanup_free_ char *tok = forge(f->auth->key, es256, c, false);
	return registry_auth_verify_token(f->auth, tok, id);
}

static void test_valid_token_grants_exactly_its_scope(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	assert_string_equal(f->cfg.token_service, SERVICE);
	assert_int_equal(verify_claims(f, NULL, &id), 0);
	assert_true(id.bearer);
	assert_true(id.authenticated);
	assert_string_equal(id.user, "alice");
	assert_false(id.catalog);
	assert_true(registry_auth_allowed(f->auth, &id, "team/app", REGISTRY_PULL | REGISTRY_PUSH));
	/* wrong scope: another repository, a prefix of it, or an action not granted */
	assert_false(registry_auth_allowed(f->auth, &id, "team/app", REGISTRY_DELETE));
	assert_false(registry_auth_allowed(f->auth, &id, "team/ap", REGISTRY_PULL));
	assert_false(registry_auth_allowed(f->auth, &id, "team/app/sub", REGISTRY_PULL));
	assert_false(registry_auth_allowed(f->auth, &id, "other", REGISTRY_PULL));
	/* nbf up to 60 s ahead is clock skew, accepted */
	_cleanup_free_ char *skew = xasprintf("{\"nbf\":%lld}", (long long)time(NULL) + 30);
	assert_int_equal(verify_claims(f, skew, &id), 0);
	/* an empty subject is an anonymous token */
	assert_int_equal(verify_claims(f, "{\"sub\":\"\"}", &id), 0);
	assert_false(id.authenticated);
}

static void test_expired_and_not_yet_valid(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	long long now = (long long)time(NULL);
	_cleanup_free_ char *expired = xasprintf("{\"exp\":%lld}", now - 1);
	_cleanup_free_ char *future = xasprintf("{\"nbf\":%lld}", now + 3600);
	assert_int_equal(verify_claims(f, expired, &id), -EACCES);
	assert_int_equal(verify_claims(f, future, &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"exp\":null}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"exp\":\"9999999999\"}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"exp\":1e12}", &id), -EACCES);
}

static void test_wrong_audience_issuer_or_subject(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	assert_int_equal(verify_claims(f, "{\"aud\":\"other-registry\"}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"aud\":null}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"aud\":[\"berth-registry\"]}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"iss\":\"evil\"}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"iss\":null}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"sub\":null}", &id), -EACCES);
	assert_int_equal(verify_claims(f, "{\"sub\":42}", &id), -EACCES);
}

static void test_wrong_alg_including_none(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	_cleanup_free_ char *c = claims(NULL);
	static const char *const algs[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256\"}",
		"{\"alg\":\"RS256\"}",
		"{\"alg\":\"es256\"}",
		"{\"typ\":\"JWT\"}",
		"{\"alg\":null}",
		"{\"alg\":[\"ES256\"]}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
		/* a genuine ES256 signature does not make another alg acceptable */
		_cleanup_free_ char *tok = forge(f->auth->key, algs[i], c, false);
		assert_int_equal(registry_auth_verify_token(f->auth, tok, &id), -EACCES);
	}
	/* the classic "none" attack: no signature at all */
	_cleanup_strbuf_ struct strbuf none = STRBUF_INIT;
	add_b64url(&none, "{\"alg\":\"none\"}", 14);
	strbuf_addch(&none, '.');
	add_b64url(&none, c, strlen(c));
	strbuf_addch(&none, '.');
	assert_int_equal(registry_auth_verify_token(f->auth, none.buf, &id), -EACCES);
	/* ...and an unsigned token claiming ES256 */
	_cleanup_strbuf_ struct strbuf unsigned_es = STRBUF_INIT;
	add_b64url(&unsigned_es, es256, strlen(es256));
	strbuf_addch(&unsigned_es, '.');
	add_b64url(&unsigned_es, c, strlen(c));
	strbuf_addch(&unsigned_es, '.');
	assert_int_equal(registry_auth_verify_token(f->auth, unsigned_es.buf, &id), -EACCES);
}

static void test_bad_signature(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	_cleanup_free_ char *c = claims(NULL);
	/* another key's signature */
	EVP_PKEY *other = EVP_EC_gen("P-256");
	assert_non_null(other);
	_cleanup_free_ char *foreign = forge(other, es256, c, false);
	EVP_PKEY_free(other);
	assert_int_equal(registry_auth_verify_token(f->auth, foreign, &id), -EACCES);
	/* the right key, but DER instead of JWS's raw r||s */
	_cleanup_free_ char *der = forge(f->auth->key, es256, c, true);
	assert_int_equal(registry_auth_verify_token(f->auth, der, &id), -EACCES);
	/* claims swapped under a valid signature */
	_cleanup_free_ char *good = forge(f->auth->key, es256, c, false);
	_cleanup_free_ char *c2 = claims("{\"access\":[{\"type\":\"repository\",\"name\":\"*\","
					 "\"actions\":[\"*\"]}]}");
	_cleanup_strbuf_ struct strbuf swapped = STRBUF_INIT;
	const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
	strbuf_add(&swapped, good, (size_t)(d1 - good) + 1);
	add_b64url(&swapped, c2, strlen(c2));
	strbuf_addstr(&swapped, d2);
	assert_int_equal(registry_auth_verify_token(f->auth, swapped.buf, &id), -EACCES);
	/* a truncated signature, and every single-bit flip of the last signature byte */
	assert_int_equal(verify_claims(f, NULL, &id), 0);
	_cleanup_free_ char *cut = xstrndup(good, strlen(good) - 4);
	assert_int_equal(registry_auth_verify_token(f->auth, cut, &id), -EACCES);
	_cleanup_free_ char *flip = xstrdup(good);
	size_t last = strlen(flip) - 2;
	flip[last] = flip[last] == 'A' ? 'B' : 'A';
	assert_int_equal(registry_auth_verify_token(f->auth, flip, &id), -EACCES);
}

static int verify_prefix(struct fixture *f, const char *prefix)
{
	struct auth_identity id;
	_cleanup_free_ char *tok = sign_prefix(f->auth->key, prefix, false);
	return registry_auth_verify_token(f->auth, tok, &id);
}

static void test_malformed_base64_and_json(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	_cleanup_free_ char *c = claims(NULL);
	_cleanup_free_ char *hb = base64url_encode(es256, strlen(es256), false);
	_cleanup_free_ char *cb = base64url_encode(c, strlen(c), false);
	/* the well-formed control, signed the same way as every case below */
	_cleanup_free_ char *ok = xasprintf("%s.%s", hb, cb);
	assert_int_equal(verify_prefix(f, ok), 0);

	/* validly signed, but a segment is not base64url or not the JSON it must be */
	static const char *const bad_segments[][2] = {
		{ "!!!!", NULL },                  /* header outside the alphabet */
		{ "eyJhbGciOiJFUzI1NiJ9+", NULL }, /* standard alphabet's '+' */
		{ "A", NULL },                     /* impossible length */
		{ "aGVsbG8", NULL },               /* "hello": not JSON */
		{ "WyJFUzI1NiJd", NULL },          /* ["ES256"]: not an object */
		{ NULL, "!!!!" },                  /* claims outside the alphabet */
		{ NULL, "aGVsbG8" },               /* claims "hello" */
		{ NULL, "WzFd" },                  /* claims [1] */
		{ NULL, "" },                      /* empty claims */
		{ "", NULL },                      /* empty header */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_segments); i++) {
		_cleanup_free_ char *p = xasprintf("%s.%s", bad_segments[i][0] ? bad_segments[i][0] : hb,
						   bad_segments[i][1] ? bad_segments[i][1] : cb);
		assert_int_equal(verify_prefix(f, p), -EACCES);
	}
	/* a bad signature segment, and the wrong number of segments */
	_cleanup_free_ char *badsig = xasprintf("%s.%s.!!!!", hb, cb);
	_cleanup_free_ char *two = xasprintf("%s.%s", hb, cb);
	_cleanup_free_ char *good = sign_prefix(f->auth->key, ok, false);
	_cleanup_free_ char *four = xasprintf("%s.x", good);
	static const char *const bad_shapes[] = { "", ".", "..", "...", "a.b", "a.b.c" };
	assert_int_equal(registry_auth_verify_token(f->auth, badsig, &id), -EACCES);
	assert_int_equal(registry_auth_verify_token(f->auth, two, &id), -EACCES);
	assert_int_equal(registry_auth_verify_token(f->auth, four, &id), -EACCES);
	for (size_t i = 0; i < ARRAY_SIZE(bad_shapes); i++)
		assert_int_equal(registry_auth_verify_token(f->auth, bad_shapes[i], &id), -EACCES);
	/* a validly signed token over the size limit */
	_cleanup_strbuf_ struct strbuf big = STRBUF_INIT;
	strbuf_addstr(&big, "{\"pad\":\"");
	for (int i = 0; i < 9000; i++)
		strbuf_addch(&big, 'x');
	strbuf_addstr(&big, "\"}");
	assert_int_equal(verify_claims(f, big.buf, &id), -EACCES);
	/* Authorization: Bearer goes through the same check */
	_cleanup_free_ char *authz = xasprintf("Bearer %s", good);
	assert_int_equal(registry_auth_identify(f->auth, authz, &id), 0);
	assert_int_equal(registry_auth_identify(f->auth, "Bearer x.y.z", &id), -EACCES);
}

static void test_grants_from_access_claim(void **state)
{
	struct fixture *f = *state;
	struct auth_identity id;
	/* malformed entries are skipped, unknown actions ignored, the catalog grant recognised */
	assert_int_equal(
	    verify_claims(f,
			  "{\"access\":[{\"type\":\"repository\",\"name\":\"a\",\"actions\":\"pull\"},"
			  "{\"type\":\"repository\",\"actions\":[\"pull\"]},"
			  "{\"type\":\"repository\",\"name\":\"b\",\"actions\":[\"fly\",7,\"pull\"]},"
			  "{\"type\":\"registry\",\"name\":\"catalog\",\"actions\":[\"*\"]},"
			  "{\"type\":\"namespace\",\"name\":\"c\",\"actions\":[\"pull\"]}, 5]}",
			  &id),
	    0);
	assert_true(id.catalog);
	assert_false(registry_auth_allowed(f->auth, &id, "a", REGISTRY_PULL));
	assert_true(registry_auth_allowed(f->auth, &id, "b", REGISTRY_PULL));
	assert_false(registry_auth_allowed(f->auth, &id, "b", REGISTRY_PUSH));
	assert_false(registry_auth_allowed(f->auth, &id, "c", REGISTRY_PULL));
	/* a non-array access claim grants nothing, and more than AUTH_GRANTS_MAX entries are capped */
	assert_int_equal(verify_claims(f, "{\"access\":{\"type\":\"repository\"}}", &id), 0);
	assert_int_equal(id.n_grants, 0);
	assert_false(registry_auth_allowed(f->auth, &id, "team/app", REGISTRY_PULL));
	_cleanup_strbuf_ struct strbuf many = STRBUF_INIT;
	strbuf_addstr(&many, "{\"access\":[");
	for (int i = 0; i < AUTH_GRANTS_MAX + 4; i++)
		strbuf_addf(&many, "%s{\"type\":\"repository\",\"name\":\"r%d\",\"actions\":[\"pull\"]}",
			    i ? "," : "", i);
	strbuf_addstr(&many, "]}");
	assert_int_equal(verify_claims(f, many.buf, &id), 0);
	assert_int_equal(id.n_grants, AUTH_GRANTS_MAX);
	assert_false(registry_auth_allowed(f->auth, &id, "r17", REGISTRY_PULL));
	/* a name too long for a grant is skipped, not truncated into another repository's name */
	_cleanup_strbuf_ struct strbuf longname = STRBUF_INIT;
	strbuf_addstr(&longname, "{\"access\":[{\"type\":\"repository\",\"name\":\"");
	for (int i = 0; i < 300; i++)
		strbuf_addch(&longname, 'x');
	strbuf_addstr(&longname, "\",\"actions\":[\"pull\"]}]}");
	assert_int_equal(verify_claims(f, longname.buf, &id), 0);
	assert_int_equal(id.n_grants, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_token_grants_exactly_its_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_and_not_yet_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_audience_issuer_or_subject, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_alg_including_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_base64_and_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grants_from_access_claim, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
