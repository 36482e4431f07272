/*
 * records.c - JSON records in the store, ARNs, ECS field getters and
 * pagination: the small helpers every ECS operation uses.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <time.h>

#include "common/base64.h"
#include "common/strbuf.h"
#include "server/internal.h"
#include "pki/pki.h"

int server_ecs_fail(struct ecs_call *c, const char *type, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	free(c->msg);
	c->msg = strbuf_detach(&sb, NULL);
	c->type = type;
	/* awsJson's statuses: ECS, ECR and CloudWatch Logs answer a bad signature
	 * (InvalidSignatureException), an unknown key and an expired signature with 400 */
	c->status = streq(type, "ServerException") ? 500 : 400;
	if (streq(type, "MissingAuthenticationTokenException") || streq(type, "AccessDeniedException"))
		c->status = 403;
	return -1;
}

int server_ecs_internal(struct ecs_call *c, struct berth_error *err)
{
	_cleanup_free_ char *m = err ? berth_error_string(err) : xstrdup("internal error");
	return server_ecs_fail(c, "ServerException", "%s", m);
}

int server_ecs_str(struct ecs_call *c, json_t *in, const char *key, bool required, const char **ret)
{
	json_t *v = json_object_get(in, key);
	*ret = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return server_ecs_fail(c, "InvalidParameterException", "%s can not be blank.", key);
		return 0;
	}
	if (!json_is_string(v))
		return server_ecs_fail(c, "SerializationException", "'%s': expected a string", key);
	*ret = json_string_value(v);
	return 0;
}

int server_ecs_int(struct ecs_call *c, json_t *in, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	json_t *v = json_object_get(in, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return server_ecs_fail(c, "SerializationException", "'%s': expected an integer", key);
	int64_t x = json_integer_value(v);
	if (x < min || x > max)
		return server_ecs_fail(c, "InvalidParameterException", "%s must be between %lld and %lld.",
				       key, (long long)min, (long long)max);
	*ret = x;
	return 0;
}

int server_ecs_strv(struct ecs_call *c, json_t *in, const char *key, json_t **ret)
{
	json_t *v = json_object_get(in, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return server_ecs_fail(c, "SerializationException", "'%s': expected a list of strings", key);
	size_t i;
	json_t *x;
	json_array_foreach (v, i, x)
		if (!json_is_string(x))
			return server_ecs_fail(c, "SerializationException", "'%s[%zu]': expected a string",
					       key, i);
	*ret = v;
	return 0;
}

static int cmp_json_strings(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a) ?: "",
		      json_string_value(*(json_t *const *)b) ?: "");
}

int server_ecs_paginate(struct ecs_call *c, json_t *in, json_t *all, int limit, const char *key, json_t *out)
{
	int64_t max = limit;
	const char *token = NULL;
	if (server_ecs_int(c, in, "maxResults", 1, limit, &max) < 0 ||
	    server_ecs_str(c, in, "nextToken", false, &token) < 0)
		return -1;
	/* a token is base64("berth1/KEY/LAST"): LAST the last item of the page before, KEY the listing's
	 * (a token of another listing, a truncated one or any other text is refused, as ECS does) */
	_cleanup_free_ char *prefix = xasprintf("berth1/%s/", key);
	_cleanup_free_ char *decoded = NULL;
	const char *after = NULL;
	if (token && *token) {
		void *d = NULL;
		size_t n = 0;
		_cleanup_free_ char *again = NULL;
		if (base64_decode(token, &d, &n) == 0 && n && !memchr(d, '\0', n)) {
			decoded = xrealloc(d, n + 1);
			decoded[n] = '\0';
			again = base64_encode(decoded, n);
		} else {
			free(d);
		}
		if (!decoded || !streq(again, token) || !startswith(decoded, prefix) ||
		    !decoded[strlen(prefix)])
			return server_ecs_fail(c, "InvalidParameterException", "Invalid nextToken.");
		after = decoded + strlen(prefix);
	}
	/* the cursor compares with strcmp, so the page order is strcmp's whatever order all came in (a
	 * store's key order differs: "/shapes-vpc/" sorts before "/shapes/", "shapes\x01" after) */
	size_t n = json_array_size(all);
	json_t **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	for (size_t k = 0; k < n; k++)
		sorted[k] = json_array_get(all, k);
	qsort(sorted, n, sizeof(*sorted), cmp_json_strings);
	json_t *page = json_array();
	for (size_t k = 0; k < n; k++) {
		json_t *x = sorted[k];
		const char *s = json_string_value(x);
		if (after && strcmp(s, after) <= 0)
			continue;
		if ((int64_t)json_array_size(page) == max) {
			const char *last = json_string_value(json_array_get(page, json_array_size(page) - 1));
			_cleanup_free_ char *raw = xasprintf("%s%s", prefix, last);
			_cleanup_free_ char *t = base64_encode(raw, strlen(raw));
			json_object_set_new(out, "nextToken", json_string(t));
			break;
		}
		json_array_append(page, x);
	}
	free(sorted);
	json_object_set_new(out, key, page);
	return 0;
}

int server_record_get(struct server *s, const char *key, json_t **ret, int64_t *ret_rev,
		      struct berth_error **err)
{
	struct store_kv kv = { 0 };
	int r = store_get(s->store, key, &kv, err);
	if (r < 0)
		return r;
	json_t *j = json_loadb(kv.value, kv.value_len, 0, NULL);
	int64_t rev = kv.mod_revision;
	store_kv_done(&kv);
	if (!j)
		return berth_error_msg(err, EIO, "record '%s': not JSON", key);
	*ret = j;
	if (ret_rev)
		*ret_rev = rev;
	return 0;
}

/*
 * The record cache: one generation counter of the writes to cached prefixes,
 * bumped by the store's observer after each such write is durable and
 * before its writer answers. The entries hold the generation they were read
 * at: a reader that took the generation before its store read inserts only
 * if it is still the same (a write it may have missed bumps it), and a
 * lookup at a newer generation drops every entry. Writes to clusters and
 * task definitions are rare; RunTask reads both on every call.
 */
#define RECORD_CACHE_MAX 1024

static const char *const CACHED_PREFIXES[] = { "/berth/clusters/", "/berth/taskdefs/" };

struct record_cache {
	pthread_mutex_t lock;
	atomic_uint_fast64_t gen; /* writes to cached prefixes told */
	uint_fast64_t filled_gen; /* the generation of the entries (under lock) */
	json_t *entries;          /* key -> record (under lock) */
};

struct record_cache *server_record_cache_new(void)
{
	struct record_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->entries = json_object();
	return c;
}

struct record_cache *server_record_cache_free(struct record_cache *c)
{
	if (!c)
		return NULL;
	json_decref(c->entries);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

static bool cached_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(CACHED_PREFIXES); i++)
		if (startswith(key, CACHED_PREFIXES[i]))
			return true;
	return false;
}

void server_record_cache_note_write(struct record_cache *c, const struct store_op *ops, size_t n_ops)
{
	bool matters = !ops; /* a lease revoke: its keys are unknown */
	for (size_t i = 0; i < n_ops && !matters; i++)
		matters = cached_key(ops[i].key);
	if (matters)
		atomic_fetch_add(&c->gen, 1);
}

int server_record_get_shared(struct server *s, const char *key, json_t **ret, struct berth_error **err)
{
	struct record_cache *c = s->records;
	if (!c || !cached_key(key))
		return server_record_get(s, key, ret, NULL, err);
	uint_fast64_t gen = atomic_load(&c->gen);
	pthread_mutex_lock(&c->lock);
	if (c->filled_gen != gen) {
		json_object_clear(c->entries);
		c->filled_gen = gen;
	}
	json_t *j = json_incref(json_object_get(c->entries, key));
	pthread_mutex_unlock(&c->lock);
	if (j) {
		*ret = j;
		return 0;
	}
	int r = server_record_get(s, key, &j, NULL, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	if (c->filled_gen == gen && atomic_load(&c->gen) == gen) {
		if (json_object_size(c->entries) >= RECORD_CACHE_MAX)
			json_object_clear(c->entries);
		json_object_set(c->entries, key, j);
	}
	pthread_mutex_unlock(&c->lock);
	*ret = j;
	return 0;
}

void server_note_write(void *srv, const struct store_op *ops, size_t n_ops)
{
	struct server *s = srv;
	if (s->sched)
		server_sched_cache_note_write(s->sched, ops, n_ops);
	if (s->records)
		server_record_cache_note_write(s->records, ops, n_ops);
	if (s->hbc)
		server_hb_cache_note_write(s->hbc, ops, n_ops);
}

int server_record_put(struct server *s, const char *key, json_t *value, struct berth_error **err)
{
	_cleanup_free_ char *v = json_dumps(value, JSON_COMPACT);
	return store_put(s->store, key, v, strlen(v), 0, NULL, err);
}

int server_record_cas(struct server *s, const char *key, json_t *value, int64_t rev, bool *ok,
		      struct berth_error **err)
{
	_cleanup_free_ char *v = json_dumps(value, JSON_COMPACT);
	struct store_cmp cmp = { key, rev ? STORE_CMP_MOD : STORE_CMP_CREATE, STORE_CMP_EQUAL, rev };
	struct store_op op = { STORE_OP_PUT, key, v, strlen(v), 0 };
	return store_txn(s->store, &cmp, 1, &op, 1, ok, NULL, err);
}

int server_record_list(struct server *s, const char *prefix, json_t **ret, struct berth_error **err)
{
	return server_record_list_at(s, prefix, ret, NULL, err);
}

int server_record_list_at(struct server *s, const char *prefix, json_t **ret, int64_t *ret_rev,
			  struct berth_error **err)
{
	struct store_kv_list l;
	int r = store_range(s->store, prefix, NULL, 0, &l, err);
	if (r < 0)
		return r;
	json_t *a = json_array();
	for (size_t i = 0; i < l.n; i++) {
		json_t *j = json_loadb(l.kvs[i].value, l.kvs[i].value_len, 0, NULL);
		if (j)
			json_array_append_new(a, j);
	}
	if (ret_rev)
		*ret_rev = l.revision;
	store_kv_list_done(&l);
	*ret = a;
	return 0;
}

double server_record_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

char *server_arn_make(struct server *s, const char *kind, const char *rest)
{
	return xasprintf("arn:aws:ecs:%s:%s:%s/%s", s->region, s->account, kind, rest);
}

const char *server_arn_tail(const char *s)
{
	if (!startswith(s, "arn:"))
		return s;
	const char *slash = strrchr(s, '/');
	return slash ? slash + 1 : s;
}

bool server_name_valid(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

char *server_uuid_new(void)
{
	return pki_random_hex(16);
}

/*
 * Random bits for task and container ids: xoshiro256** per thread, seeded
 * from getrandom(). Such ids need to be unique, not secret (every ListTasks
 * caller sees them), and OpenSSL's RAND_bytes took a twentieth of a
 * placement's CPU (two ids per task).
 */
static uint64_t id_random(void)
{
	static __thread uint64_t st[4];
	static __thread bool seeded;
	if (!seeded) {
		while (getrandom(st, sizeof(st), 0) != (ssize_t)sizeof(st))
			;
		st[0] |= 1; /* never all zero */
		seeded = true;
	}
	uint64_t x = st[1] * 5, r = (x << 7 | x >> 57) * 9, t = st[1] << 17;
	st[2] ^= st[0];
	st[3] ^= st[1];
	st[1] ^= st[2];
	st[0] ^= st[3];
	st[2] ^= t;
	st[3] = st[3] << 45 | st[3] >> 19;
	return r;
}

void server_id_hex_fill(char buf[ID_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (int w = 0; w < 2; w++) {
		uint64_t v = id_random();
		for (int i = 15; i >= 0; i--, v >>= 4)
			buf[w * 16 + i] = hex[v & 15];
	}
	buf[ID_HEX_LEN] = '\0';
}

char *server_id_hex_new(void)
{
	char buf[ID_HEX_LEN + 1];
	server_id_hex_fill(buf);
	return xstrdup(buf);
}

char *server_task_id_new(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	return xasprintf("%012llx%016llx%04llx", (unsigned long long)(ms & 0xffffffffffffull),
			 (unsigned long long)id_random(), (unsigned long long)(id_random() & 0xffff));
}
