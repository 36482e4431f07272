/*
 * replicas.c - server replicas that know each other (docs/cluster.md,
 * "Several servers"): each replica has a stable id (ROOT/replica-id, made
 * at its first start) and registers /berth/replicas/ID = {"id", "endpoint"}
 * under a lease it keeps alive every second, so the key vanishes within
 * leader_ttl seconds of its death. Data that lives on one replica (log
 * segments, docs/logs.md) is reached through server_replica_call(): an API call
 * to that replica's endpoint, signed with the cluster's own access key and
 * marked "berthLocal" so the callee answers from what it holds and never
 * forwards again. Those calls keep their connections: an idle client per
 * (replica, endpoint, service) waits in a small pool for the next call (a
 * TLS handshake per forwarded batch cost more than the batch).
 *
 * The same lease carries this replica's copies of the agents' metrics
 * (metrics.c), so they vanish with it too. A replica running the cluster
 * registry (--registry) adds "registry": HOST:PORT to its registration, so
 * the others find it (server_ecr_locate(), docs/ecr.md "Several servers").
 */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "aws/client.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strbuf.h"
#include "server/internal.h"

#define REPLICAS_PREFIX "/berth/replicas/"
/* Idle connections kept per (replica, endpoint, service), and in all. */
#define POOL_PER_PEER   4
#define POOL_MAX        32

struct replica_conn {
	char *key; /* id \n endpoint \n service \n prefix */
	struct aws_client *cl;
	struct replica_conn *next;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* Close and free a list of pooled connections. */
static void conns_free(struct replica_conn *p)
{
	for (struct replica_conn *n; p; p = n) {
		n = p->next;
		aws_client_free(p->cl);
		free(p->key);
		free(p);
	}
}

/* Register (a new lease and the key) when we have no lease. Under s->replicas_lock. */
static int register_locked(struct server *s, struct berth_error **err)
{
	if (s->replica_lease)
		return 0;
	int64_t lease = 0;
	int r = store_lease_grant(s->store, s->leader_ttl, &lease, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *v = json_pack("{s:s,s:s}", "id", s->replica_id, "endpoint", s->advertise);
	if (server_ecr_endpoint(s))
		json_object_set_new(v, "registry", json_string(server_ecr_endpoint(s)));
	_cleanup_free_ char *text = json_dumps(v, JSON_COMPACT);
	_cleanup_free_ char *key = xasprintf(REPLICAS_PREFIX "%s", s->replica_id);
	if ((r = store_put(s->store, key, text, strlen(text), lease, NULL, err)) < 0) {
		(void)store_lease_revoke(s->store, lease, NULL);
		return r;
	}
	s->replica_lease = lease;
	return 0;
}

int64_t server_replica_lease(struct server *s)
{
	pthread_mutex_lock(&s->replicas_lock);
	int64_t l = s->replica_lease;
	pthread_mutex_unlock(&s->replicas_lock);
	return l;
}

static void *replicas_main(void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->replicas_lock);
	while (!s->replicas_stop) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (s->replica_lease && store_lease_keepalive(s->store, s->replica_lease, NULL, &err) < 0) {
			log_fields(LOG_LEVEL_WARN, "replica lease lost: registering again", "error",
				   err ? err->msg : "", NULL);
			s->replica_lease = 0;
			berth_error_free(err), err = NULL;
		}
		if (register_locked(s, &err) < 0)
			log_fields(LOG_LEVEL_WARN, "replica registration failed", "error",
				   err ? err->msg : "", NULL);
		struct timespec ts = proc_deadline(CLOCK_MONOTONIC, 1000);
		pthread_cond_timedwait(&s->replicas_cond, &s->replicas_lock, &ts);
	}
	pthread_mutex_unlock(&s->replicas_lock);
	return NULL;
}

/* The replica id in ROOT/replica-id (16 hex), made at the first start. */
static int load_id(struct server *s, struct berth_error **err)
{
	_cleanup_free_ char *p = xasprintf("%s/replica-id", s->root);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, p, 64, &sb, NULL) >= 0) {
		strbuf_trim_trailing(&sb);
		if (sb.len == 16 && strspn(sb.buf, "0123456789abcdef") == 16) {
			s->replica_id = xstrdup(sb.buf);
			return 0;
		}
	}
	unsigned char b[8];
	_cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		return berth_error_errno(err, "read /dev/urandom");
	s->replica_id =
	    xasprintf("%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
	return fs_write_file_atomic(p, s->replica_id, 16, 0600, err);
}

int server_replicas_start(struct server *s, const char *endpoint, struct berth_error **err)
{
	int r = load_id(s, err);
	if (r < 0)
		return r;
	if (!s->advertise)
		s->advertise = xstrdup(endpoint);
	pthread_mutex_lock(&s->replicas_lock);
	r = register_locked(s, err);
	pthread_mutex_unlock(&s->replicas_lock);
	if (r < 0)
		return berth_error_wrap(err, r, "register this server replica");
	if ((r = pthread_create(&s->replicas_thread, NULL, replicas_main, s)) != 0)
		return berth_error_set(err, r, "start the replica thread");
	s->replicas_running = true;
	return 0;
}

void server_replicas_stop(struct server *s)
{
	pthread_mutex_lock(&s->replicas_lock);
	s->replicas_stop = true;
	pthread_cond_broadcast(&s->replicas_cond);
	pthread_mutex_unlock(&s->replicas_lock);
	if (s->replicas_running)
		pthread_join(s->replicas_thread, NULL);
	s->replicas_running = false;
	if (s->replica_lease) /* our keys (registration, metrics copies) go at once */
		(void)store_lease_revoke(s->store, s->replica_lease, NULL);
	s->replica_lease = 0;
	pthread_mutex_lock(&pool_lock);
	struct replica_conn *p = s->replica_pool;
	s->replica_pool = NULL;
	pthread_mutex_unlock(&pool_lock);
	conns_free(p);
}

/* An idle client for key from the pool (taken out of it), or NULL. */
static struct aws_client *pool_take(struct server *s, const char *key)
{
	struct aws_client *cl = NULL;
	pthread_mutex_lock(&pool_lock);
	for (struct replica_conn **pp = &s->replica_pool; *pp; pp = &(*pp)->next)
		if (streq((*pp)->key, key)) {
			struct replica_conn *p = *pp;
			*pp = p->next;
			cl = p->cl;
			free(p->key);
			free(p);
			break;
		}
	pthread_mutex_unlock(&pool_lock);
	return cl;
}

/* Put a client that just worked back at the pool's head (the oldest idle ones beyond the limits go). */
static void pool_give(struct server *s, const char *key, struct aws_client *cl)
{
	struct replica_conn *p = xcalloc(1, sizeof(*p)), *drop = NULL;
	p->key = xstrdup(key);
	p->cl = cl;
	pthread_mutex_lock(&pool_lock);
	p->next = s->replica_pool;
	s->replica_pool = p;
	size_t same = 0, all = 0;
	for (struct replica_conn **pp = &s->replica_pool; *pp;) {
		all++;
		same += streq((*pp)->key, key);
		if (same > POOL_PER_PEER || all > POOL_MAX) {
			struct replica_conn *x = *pp;
			*pp = x->next;
			x->next = drop;
			drop = x;
			all--;
			continue;
		}
		pp = &(*pp)->next;
	}
	pthread_mutex_unlock(&pool_lock);
	conns_free(drop);
}

bool server_replica_is_self(struct server *s, const char *id)
{
	return !id || !s->replica_id || streq(id, s->replica_id);
}

int server_replica_registered(struct server *s, const char *id, struct berth_error **err)
{
	_cleanup_free_ char *key = xasprintf(REPLICAS_PREFIX "%s", id);
	_cleanup_json_ json_t *rec = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = server_record_get(s, key, &rec, NULL, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0 && err)
		*err = TAKE_PTR(e);
	return r < 0 ? r : 1;
}

int server_replica_find(struct server *s, const char *field, json_t **ret, struct berth_error **err)
{
	_cleanup_json_ json_t *recs = NULL;
	int r = server_record_list(s, REPLICAS_PREFIX, &recs, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *rec;
	json_array_foreach (recs, i, rec) /* in key order: every replica picks the same one */
		if (json_object_get(rec, field) && json_is_string(json_object_get(rec, "id"))) {
			*ret = json_incref(rec);
			return 0;
		}
	return -ENOENT;
}

/*
 * A peer's error type as a string that lives as long as the process: c->type
 * points to it after the call returns. The set of types is small (the APIs'
 * own); beyond TYPES_MAX distinct ones the rest read as ServiceException.
 */
#define TYPES_MAX 128
static const char *intern_type(const char *type)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char *types[TYPES_MAX];
	const char *found = "ServiceException";
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < TYPES_MAX; i++) {
		if (!types[i])
			types[i] = xstrdup(type);
		if (streq(types[i], type)) {
			found = types[i];
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	return found;
}

static int unavailable(struct ecs_call *c, const char *id)
{
	c->status = 503;
	return server_ecs_fail(
	    c, "ServiceUnavailableException",
	    "The data is held by server replica %s, which is not reachable now; try again later.", id);
}

int server_replica_call(struct ecs_call *c, const char *id, const char *target_prefix, const char *service,
			const char *op, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	_cleanup_free_ char *key = xasprintf(REPLICAS_PREFIX "%s", id);
	_cleanup_json_ json_t *rec = NULL;
	const char *ep = NULL;
	if (server_record_get(s, key, &rec, NULL, NULL) < 0 ||
	    !(ep = json_string_value(json_object_get(rec, "endpoint"))))
		return unavailable(c, id);
	_cleanup_free_ char *ca = xasprintf("%s/pki/ca.pem", s->root);
	struct aws_config cfg = { .access_key = s->access_key,
				  .secret_key = s->secret,
				  .region = s->region,
				  .endpoint = (char *)ep,
				  .ca_bundle = ca };
	_cleanup_free_ char *pkey = xasprintf("%s\n%s\n%s\n%s", id, ep, service, target_prefix);
	_cleanup_aws_client_ struct aws_client *cl = pool_take(s, pkey);
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *body = json_deep_copy(in);
	json_object_set_new(body, "berthLocal", json_true());
	int r = cl ? 0 : aws_client_new(&cfg, service, target_prefix, &cl, &err);
	if (r >= 0)
		r = aws_client_call(cl, op, body, out, &err);
	if (r >= 0 || r == -EREMOTEIO) /* the connection works: keep it */
		pool_give(s, pkey, TAKE_PTR(cl));
	if (r == -EREMOTEIO && err) { /* the replica's own answer: "<Type>: <message>" */
		const char *colon = strstr(err->msg, ": ");
		_cleanup_free_ char *type = colon ? xstrndup(err->msg, (size_t)(colon - err->msg)) : NULL;
		if (type && !strchr(type, ' ')) /* c->type outlives this call */
			return server_ecs_fail(c, intern_type(type), "%s", colon + 2);
		return server_ecs_fail(c, "ServiceException", "%s", err->msg);
	}
	if (r < 0) {
		log_fields(LOG_LEVEL_WARN, "replica call failed", "replica", id, "op", op, "error",
			   err ? err->msg : "", NULL);
		return unavailable(c, id);
	}
	log_fields(LOG_LEVEL_DEBUG, "replica call", "replica", id, "op", op, NULL);
	return 0;
}
