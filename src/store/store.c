/*
 * store.c - the backend-independent half of the store: opening by spec,
 * the dispatch through the vtable, argument checks that every backend would
 * otherwise repeat, and freeing results.
 */
#include "store/store.h"

int store_connect(const char *spec, const char *root, struct store **ret, struct berth_error **err)
{
	if (streq(spec, "sqlite")) {
		_cleanup_free_ char *path = xasprintf("%s/store.db", root);
		return store_sqlite_open(path, ret, err);
	}
	if (startswith(spec, "etcd://"))
		return store_etcd_open(spec + 7, ret, err);
	return berth_error_msg(err, EINVAL,
			       "invalid store '%s': expected 'sqlite' or 'etcd://HOST:PORT[,...]'", spec);
}

struct store *store_free(struct store *s)
{
	if (s)
		s->ops->free(s);
	return NULL;
}

static int check_key(const char *key, struct berth_error **err)
{
	if (!key || !*key || strlen(key) > STORE_MAX_KEY)
		return berth_error_msg(err, EINVAL, "invalid store key '%s'", key ? key : "");
	return 0;
}

int store_get(struct store *s, const char *key, struct store_kv *ret, struct berth_error **err)
{
	int r = check_key(key, err);
	return r < 0 ? r : s->ops->get(s, key, ret, err);
}

int store_put(struct store *s, const char *key, const char *value, size_t value_len, int64_t lease,
	      int64_t *ret_revision, struct berth_error **err)
{
	struct store_op op = { STORE_OP_PUT, key, value, value_len, lease };
	bool ok;
	return store_txn(s, NULL, 0, &op, 1, &ok, ret_revision, err);
}

int store_remove(struct store *s, const char *key, int64_t *ret_revision, struct berth_error **err)
{
	struct store_op op = { .type = STORE_OP_DELETE, .key = key };
	bool ok;
	return store_txn(s, NULL, 0, &op, 1, &ok, ret_revision, err);
}

int store_txn(struct store *s, const struct store_cmp *cmps, size_t n_cmps, const struct store_op *ops,
	      size_t n_ops, bool *ret_ok, int64_t *ret_revision, struct berth_error **err)
{
	for (size_t i = 0; i < n_cmps; i++)
		if (check_key(cmps[i].key, err) < 0)
			return -EINVAL;
	for (size_t i = 0; i < n_ops; i++) {
		if (check_key(ops[i].key, err) < 0)
			return -EINVAL;
		if (ops[i].type == STORE_OP_PUT && ops[i].value_len > STORE_MAX_VALUE)
			return berth_error_msg(err, E2BIG, "value of '%s' too large (%zu bytes, limit %d)",
					       ops[i].key, ops[i].value_len, STORE_MAX_VALUE);
	}
	bool ok = false;
	int64_t rev = 0;
	int r = s->ops->txn(s, cmps, n_cmps, ops, n_ops, &ok, &rev, err);
	if (s->on_write && (r < 0 || ok))
		s->on_write(s->on_write_arg, ops, n_ops);
	if (r < 0)
		return r;
	*ret_ok = ok;
	if (ret_revision)
		*ret_revision = rev;
	return 0;
}

int store_range(struct store *s, const char *prefix, const char *start_after, size_t limit,
		struct store_kv_list *ret, struct berth_error **err)
{
	if (limit == 0 || limit > STORE_RANGE_MAX)
		limit = STORE_RANGE_MAX;
	*ret = (struct store_kv_list){ 0 };
	return s->ops->range(s, prefix ? prefix : "", start_after, limit, ret, err);
}

int store_watch(struct store *s, const char *prefix, int64_t from_revision, int timeout_ms,
		struct store_event_list *ret, struct berth_error **err)
{
	*ret = (struct store_event_list){ 0 };
	return s->ops->watch(s, prefix ? prefix : "", from_revision, timeout_ms < 0 ? 0 : timeout_ms, ret,
			     err);
}

int store_watch_values(struct store *s, const char *prefix, int64_t from_revision, int timeout_ms,
		       store_value_fn *want, void *want_arg, struct store_event_list *ret,
		       struct berth_error **err)
{
	*ret = (struct store_event_list){ 0 };
	prefix = prefix ? prefix : "";
	timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
	if (s->ops->watch_values)
		return s->ops->watch_values(s, prefix, from_revision, timeout_ms, want, want_arg, ret, err);
	int r = s->ops->watch(s, prefix, from_revision, timeout_ms, ret, err);
	for (size_t i = 0; r == 0 && i < ret->n; i++) {
		struct store_kv *kv = &ret->events[i].kv;
		if (ret->events[i].type == STORE_EVENT_PUT &&
		    !want(want_arg, kv->key, kv->value, kv->value_len)) {
			free(kv->value);
			kv->value = NULL;
			kv->value_len = 0;
		}
	}
	return r;
}

int store_revision(struct store *s, int64_t *ret, struct berth_error **err)
{
	return s->ops->revision(s, ret, err);
}

int store_lease_grant(struct store *s, int64_t ttl_sec, int64_t *ret_id, struct berth_error **err)
{
	if (ttl_sec <= 0 || ttl_sec > 86400)
		return berth_error_msg(err, EINVAL, "invalid lease TTL %lld", (long long)ttl_sec);
	return s->ops->lease_grant(s, ttl_sec, ret_id, err);
}

int store_lease_keepalive(struct store *s, int64_t id, int64_t *ret_ttl, struct berth_error **err)
{
	int64_t ttl = 0;
	int r = s->ops->lease_keepalive(s, id, &ttl, err);
	if (r >= 0 && ret_ttl)
		*ret_ttl = ttl;
	return r;
}

int store_lease_revoke(struct store *s, int64_t id, struct berth_error **err)
{
	int r = s->ops->lease_revoke(s, id, err);
	if (s->on_write)
		s->on_write(s->on_write_arg, NULL, 0);
	return r;
}

void store_on_write(struct store *s, store_write_fn *fn, void *arg)
{
	s->on_write = fn;
	s->on_write_arg = arg;
}

void store_kv_done(struct store_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	*kv = (struct store_kv){ 0 };
}

void store_kv_list_done(struct store_kv_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		store_kv_done(&l->kvs[i]);
	free(l->kvs);
	*l = (struct store_kv_list){ 0 };
}

void store_event_list_done(struct store_event_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		store_kv_done(&l->events[i].kv);
	free(l->events);
	*l = (struct store_event_list){ 0 };
}

char *store_prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *end = xstrdup(prefix);
	while (n > 0) {
		unsigned char c = (unsigned char)end[n - 1];
		if (c < 0xff) {
			end[n - 1] = (char)(c + 1);
			end[n] = '\0';
			return end;
		}
		n--;
	}
	end[0] = '\0';
	return end;
}
