/*
 * logs.c - the CloudWatch Logs API (X-Amz-Target Logs_20140328.<Op>, SigV4
 * service "logs") on the server's endpoint, the agents' log ingest call
 * (POST /agent/v1/logs) and the retention sweep. Group and stream records
 * live in the store; events in segment files under ROOT/logs (logs/logstore.h),
 * on the server that received them. See docs/logs.md.
 *
 * Store layout:
 *   /berth/logs/groups/NAME                      {logGroupName, creationTime, retentionInDays, arn}
 *   /berth/logs/streams/<32 hex of group>/NAME   {logStreamName, creationTime, arn}
 */
#include <ctype.h>
#include <pthread.h>
#include <time.h>

#include "aws/client.h"
#include "common/base64.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "http/http.h"
#include "logs/filter.h"
#include "logs/logstore.h"
#include "logs/wire.h"
#include "server/internal.h"

#define GROUPS_PREFIX    "/berth/logs/groups/"
#define STREAMS_PREFIX   "/berth/logs/streams/"
/* Most bytes of messages in one GetLogEvents/FilterLogEvents answer (CloudWatch: 1 MB). */
#define MAX_ANSWER_BYTES (1 << 20)
/* PutLogEvents: events more than this far in the future are refused (CloudWatch: 2 hours). */
#define TOO_NEW_MS       (2LL * 3600 * 1000)
/* ... and older than this (CloudWatch: 14 days). */
#define TOO_OLD_DAYS     14
/* CloudWatch counts 26 bytes per event toward the 1 MiB batch limit. */
#define EVENT_OVERHEAD   26

static const int RETENTION_DAYS[] = { 1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
				      365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 };

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool group_name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len < 1 || len > 512)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-/#", *p))
			return false;
	return true;
}

static bool stream_name_ok(const char *n)
{
	size_t len = strlen(n);
	return len >= 1 && len <= 512 && !strpbrk(n, ":*");
}

static char *group_key(const char *name)
{
	return xasprintf(GROUPS_PREFIX "%s", name);
}

static char *streams_prefix(const char *group)
{
	char hex[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, group, strlen(group), hex);
	return xasprintf(STREAMS_PREFIX "%.32s/", hex + strlen("sha256:"));
}

static char *stream_key(const char *group, const char *stream)
{
	_cleanup_free_ char *p = streams_prefix(group);
	return xasprintf("%s%s", p, stream);
}

static char *group_arn(struct server *s, const char *name)
{
	return xasprintf("arn:aws:logs:%s:%s:log-group:%s:*", s->region, s->account, name);
}

/* The oldest timestamp a group still keeps (retention), 0 without a policy. */
static int64_t expired_before(struct server *s, json_t *group)
{
	json_t *d = json_object_get(group, "retentionInDays");
	if (!json_is_integer(d))
		return 0;
	return now_ms() - json_integer_value(d) * (int64_t)s->logs_day_seconds * 1000;
}

/* ---- groups and streams ---- */

/* The group named by logGroupName or logGroupIdentifier (name or ARN). */
static int group_lookup(struct ecs_call *c, json_t *in, json_t **ret, const char **ret_name)
{
	const char *name, *ident;
	if (server_ecs_str(c, in, "logGroupName", false, &name) < 0 ||
	    server_ecs_str(c, in, "logGroupIdentifier", false, &ident) < 0)
		return -1;
	if (name && ident)
		return server_ecs_fail(c, "InvalidParameterException",
				       "LogGroup name and LogGroup ARN are mutually exclusive parameters.");
	_cleanup_free_ char *from_arn = NULL;
	if (!name && ident && startswith(ident, "arn:")) {
		const char *p = strstr(ident, ":log-group:");
		if (!p)
			return server_ecs_fail(c, "InvalidParameterException", "Invalid log group ARN '%s'.",
					       ident);
		p += strlen(":log-group:");
		from_arn = xstrndup(p, strcspn(p, ":"));
		name = from_arn;
	} else if (!name) {
		name = ident;
	}
	if (!name)
		return server_ecs_fail(c, "InvalidParameterException",
				       "Either logGroupName or logGroupIdentifier must be specified.");
	if (!group_name_ok(name))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid log group name '%s'.", name);
	_cleanup_free_ char *key = group_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *g = NULL;
	int r = server_record_get(c->srv, key, &g, NULL, &err);
	if (r == -ENOENT)
		return server_ecs_fail(c, "ResourceNotFoundException",
				       "The specified log group does not exist.");
	if (r < 0)
		return server_ecs_internal(c, err);
	*ret = g;
	*ret_name = json_string_value(json_object_get(g, "logGroupName"));
	return 0;
}

/* The replica holding a stream's events when it is another one (new string), else NULL. */
static char *remote_owner(struct server *s, json_t *rec)
{
	const char *o = json_string_value(json_object_get(rec, "berthReplica"));
	return server_replica_is_self(s, o) ? NULL : xstrdup(o);
}

/* ---- epochs: a stream's events by owner (docs/logs.md "Owner failover") ---- */

/* A global sequence number (tokens, eventId) is the epoch << EPOCH_SHIFT | the epoch's own number. */
#define EPOCH_SHIFT 40
#define EPOCH_MASK  ((UINT64_C(1) << EPOCH_SHIFT) - 1)

static int64_t rec_epoch(json_t *rec)
{
	json_t *e = json_object_get(rec, "berthEpoch");
	return json_is_integer(e) ? json_integer_value(e) : 0;
}

/* The name under which a replica's logstore keeps epoch k of stream sn: sn, then "sn:k" (':' is not in
 * stream names). New string. */
static char *epoch_name(const char *sn, int64_t k)
{
	return k ? xasprintf("%s:%lld", sn, (long long)k) : xstrdup(sn);
}

/* Every epoch of a stream record, oldest first: [{"replica": id or null, "epoch": k}]. New array. */
static json_t *rec_epochs(json_t *rec)
{
	json_t *a = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (json_object_get(rec, "berthFormer"), i, x)
		json_array_append(a, x);
	json_array_append_new(a, json_pack("{s:O?,s:I}", "replica", json_object_get(rec, "berthReplica"),
					   "epoch", (json_int_t)rec_epoch(rec)));
	return a;
}

/* The epochs of stream sn named in m ({name: [k...]}, a private call's "berthEpochs"); [0] without. */
static json_t *epochs_in(json_t *m, const char *sn)
{
	json_t *ks = json_object_get(m, sn);
	return json_is_array(ks) ? json_incref(ks) : json_pack("[i]", 0);
}

/*
 * Where stream sn's events are to be written (ingest): *ret_owner the replica (new string), NULL when
 * here, and then *ret_epoch the epoch to append to. An owner whose registration is gone (its lease
 * expired: down for longer than the lease, or for good) loses the stream: this replica takes it over
 * by compare-and-swap on the record (the owner's epoch joins berthFormer, a new epoch starts here), so
 * two replicas racing agree on one new owner. With c->local (a peer forwarded the write) it is here,
 * in the epoch the peer names (in's berthEpoch) or the record's.
 */
static int write_target(struct ecs_call *c, const char *group, const char *sn, json_t *in, char **ret_owner,
			int64_t *ret_epoch)
{
	struct server *s = c->srv;
	_cleanup_free_ char *key = stream_key(group, sn);
	*ret_owner = NULL;
	for (int attempt = 0; attempt < 4; attempt++) {
		_cleanup_json_ json_t *rec = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		int64_t rev = 0;
		int r = server_record_get(s, key, &rec, &rev, &err);
		if (r == -ENOENT)
			return server_ecs_fail(c, "ResourceNotFoundException",
					       "The specified log stream does not exist.");
		if (r < 0)
			return server_ecs_internal(c, err);
		*ret_epoch = rec_epoch(rec);
		json_t *e = json_object_get(in, "berthEpoch");
		if (c->local && json_is_integer(e))
			*ret_epoch = json_integer_value(e);
		_cleanup_free_ char *owner = c->local ? NULL : remote_owner(s, rec);
		if (!owner)
			return 0;
		if ((r = server_replica_registered(s, owner, &err)) < 0)
			return server_ecs_internal(c, err);
		if (r > 0) {
			*ret_owner = TAKE_PTR(owner);
			return 0;
		}
		_cleanup_json_ json_t *next = json_deep_copy(rec);
		json_t *former = json_object_get(next, "berthFormer");
		if (!json_is_array(former))
			json_object_set_new(next, "berthFormer", former = json_array());
		json_array_append_new(
		    former, json_pack("{s:s,s:I}", "replica", owner, "epoch", (json_int_t)*ret_epoch));
		json_object_set_new(next, "berthReplica", json_string(s->replica_id));
		json_object_set_new(next, "berthEpoch", json_integer(*ret_epoch + 1));
		bool ok = false;
		if (server_record_cas(s, key, next, rev, &ok, &err) < 0)
			return server_ecs_internal(c, err);
		if (ok) {
			log_fields(LOG_LEVEL_INFO, "log stream taken over from a replica that is gone",
				   "group", group, "stream", sn, "replica", owner, NULL);
			*ret_epoch += 1;
			return 0;
		}
		/* another replica changed the record first (took it over too): read it again */
	}
	return server_ecs_fail(c, "ServiceUnavailableException",
			       "The log stream's owner is changing; try again.");
}

static int stream_exists(struct ecs_call *c, const char *group, const char *stream, char **ret_owner)
{
	if (!stream_name_ok(stream))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid log stream name '%s'.",
				       stream);
	_cleanup_free_ char *key = stream_key(group, stream);
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *j = NULL;
	int r = server_record_get(c->srv, key, &j, NULL, &err);
	if (r >= 0 && ret_owner)
		*ret_owner = c->local ? NULL : remote_owner(c->srv, j);
	json_decref(j);
	if (r == -ENOENT)
		return server_ecs_fail(c, "ResourceNotFoundException",
				       "The specified log stream does not exist.");
	return r < 0 ? server_ecs_internal(c, err) : 0;
}

/* logStreamName and the group of a stream call; the stream must exist. *ret_owner: remote_owner(). */
static int stream_lookup(struct ecs_call *c, json_t *in, json_t **ret_group, const char **ret_name,
			 const char **ret_stream, char **ret_owner)
{
	if (server_ecs_str(c, in, "logStreamName", true, ret_stream) < 0 ||
	    group_lookup(c, in, ret_group, ret_name) < 0)
		return -1;
	return stream_exists(c, *ret_name, *ret_stream, ret_owner);
}

/* Create the group record; *ok false when it exists. */
static int group_create(struct server *s, const char *name, bool *ok, struct berth_error **err)
{
	_cleanup_free_ char *key = group_key(name);
	_cleanup_free_ char *arn = group_arn(s, name);
	_cleanup_json_ json_t *g = json_pack("{s:s,s:I,s:i,s:s}", "logGroupName", name, "creationTime",
					     (json_int_t)now_ms(), "metricFilterCount", 0, "arn", arn);
	return server_record_cas(s, key, g, 0, ok, err);
}

static int stream_create(struct server *s, const char *group, const char *name, bool *ok,
			 struct berth_error **err)
{
	_cleanup_free_ char *key = stream_key(group, name);
	_cleanup_free_ char *arn =
	    xasprintf("arn:aws:logs:%s:%s:log-group:%s:log-stream:%s", s->region, s->account, group, name);
	_cleanup_json_ json_t *st = json_pack("{s:s,s:I,s:s}", "logStreamName", name, "creationTime",
					      (json_int_t)now_ms(), "arn", arn);
	if (s->replica_id) /* the events live on this replica (docs/logs.md "Several servers") */
		json_object_set_new(st, "berthReplica", json_string(s->replica_id));
	return server_record_cas(s, key, st, 0, ok, err);
}

/* Fold statistics v (DescribeLogStreams' fields of one stream) into into: the union of both. */
static void stats_merge(json_t *into, json_t *v)
{
	const char *k;
	json_t *x;
	json_object_foreach (v, k, x) {
		json_t *y = json_object_get(into, k);
		if (!y) {
			json_object_set(into, k, x);
		} else if (streq(k, "storedBytes")) {
			json_object_set_new(into, k,
					    json_integer(json_integer_value(y) + json_integer_value(x)));
		} else if (streq(k, "uploadSequenceToken")) {
			if (strtoull(json_string_value(x) ?: "0", NULL, 10) >
			    strtoull(json_string_value(y) ?: "0", NULL, 10))
				json_object_set(into, k, x);
		} else if (json_is_integer(x) && (streq(k, "firstEventTimestamp")
						      ? json_integer_value(x) < json_integer_value(y)
						      : json_integer_value(x) > json_integer_value(y))) {
			json_object_set(into, k, x);
		}
	}
}

/* A stream's event statistics held here (its epochs ks), as DescribeLogStreams' fields. */
static json_t *local_stats(struct server *s, const char *group, const char *name, json_t *ks)
{
	json_t *all = json_object();
	size_t i;
	json_t *k;
	json_array_foreach (ks, i, k) {
		_cleanup_free_ char *en = epoch_name(name, json_integer_value(k));
		struct logs_stream_stat st;
		if (logs_stream_stat(s->logs, group, en, &st, NULL) < 0)
			continue;
		_cleanup_json_ json_t *v = json_object();
		if (st.last_ingest) {
			json_object_set_new(v, "firstEventTimestamp", json_integer(st.first_ts));
			json_object_set_new(v, "lastEventTimestamp", json_integer(st.last_ts));
			json_object_set_new(v, "lastIngestionTime", json_integer(st.last_ingest));
		}
		json_object_set_new(v, "uploadSequenceToken",
				    json_sprintf("%llu", (unsigned long long)(((uint64_t)json_integer_value(k)
									       << EPOCH_SHIFT) +
									      st.next_seq)));
		json_object_set_new(v, "storedBytes", json_integer((json_int_t)st.stored_bytes));
		stats_merge(all, v);
	}
	return all;
}

static int streams_of(struct server *s, const char *group, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *p = streams_prefix(group);
	return server_record_list(s, p, ret, err);
}

/*
 * The stream records recs (an array) grouped by the replicas holding their
 * events: {"": {name: [epochs held here]}, "ID": {name: [epochs]}, ...}; a
 * stream whose owner changed is under each replica holding one of its epochs.
 * With c->local (a peer asks) every stream is here, in the epochs in's
 * "berthEpochs" names for it.
 */
static json_t *by_owner(struct ecs_call *c, json_t *recs, json_t *in)
{
	json_t *m = json_object();
	json_t *given = c->local ? json_object_get(in, "berthEpochs") : NULL;
	size_t i;
	json_t *x;
	json_array_foreach (recs, i, x) {
		const char *sn = json_string_value(json_object_get(x, "logStreamName"));
		if (!sn)
			continue;
		if (c->local) {
			json_t *list = json_object_get(m, "");
			if (!list)
				json_object_set_new(m, "", list = json_object());
			json_object_set_new(list, sn, epochs_in(given, sn));
			continue;
		}
		_cleanup_json_ json_t *eps = rec_epochs(x);
		size_t k;
		json_t *e;
		json_array_foreach (eps, k, e) {
			const char *r = json_string_value(json_object_get(e, "replica"));
			const char *o = server_replica_is_self(c->srv, r) ? "" : r;
			json_t *list = json_object_get(m, o);
			if (!list)
				json_object_set_new(m, o, list = json_object());
			json_t *ks = json_object_get(list, sn);
			if (!ks)
				json_object_set_new(list, sn, ks = json_array());
			json_array_append(ks, json_object_get(e, "epoch"));
		}
	}
	return m;
}

/* The names of a {name: ...} object, as an array. */
static json_t *names_of(json_t *m)
{
	json_t *a = json_array();
	const char *k;
	json_t *v;
	json_object_foreach (m, k, v)
		json_array_append_new(a, json_string(k));
	return a;
}

/* The input of a private call about the streams of epochs (by_owner's {name: [epochs]}) in group. */
static json_t *private_in(const char *group, json_t *epochs)
{
	return json_pack("{s:s,s:o,s:O}", "logGroupName", group, "logStreamNames", names_of(epochs),
			 "berthEpochs", epochs);
}

/* Statistics of the streams recs of group: {name: local_stats()}, from whichever replicas hold them
 * (a replica that is down: its part is missing). */
static json_t *streams_stats(struct ecs_call *c, const char *group, json_t *recs)
{
	json_t *stats = json_object();
	_cleanup_json_ json_t *owners = by_owner(c, recs, NULL);
	const char *owner;
	json_t *eps;
	json_object_foreach (owners, owner, eps) {
		_cleanup_json_ json_t *in = private_in(group, eps), *out = NULL;
		if (!*owner) {
			struct ecs_call sub = { .srv = c->srv, .local = true };
			server_logs_berth_stream_stats(&sub, in, &out);
		} else {
			struct ecs_call sub = { .srv = c->srv };
			server_replica_call(&sub, owner, AWS_LOGS_TARGET_PREFIX, AWS_LOGS_SERVICE,
					    "BerthLogStreamStats", in, &out);
			free(sub.msg);
		}
		const char *n;
		json_t *v;
		json_object_foreach (json_object_get(out, "streams"), n, v) {
			json_t *into = json_object_get(stats, n);
			if (!into)
				json_object_set_new(stats, n, into = json_object());
			stats_merge(into, v);
		}
	}
	return stats;
}

/* Private: {logGroupName, logStreamNames, berthEpochs} -> {"streams": {name: statistics}} of what this
 * replica holds. */
int server_logs_berth_stream_stats(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *group;
	json_t *names;
	if (server_ecs_str(c, in, "logGroupName", true, &group) < 0 ||
	    server_ecs_strv(c, in, "logStreamNames", &names) < 0)
		return -1;
	json_t *m = json_object();
	size_t i;
	json_t *n;
	json_array_foreach (names, i, n) {
		_cleanup_json_ json_t *ks =
		    epochs_in(json_object_get(in, "berthEpochs"), json_string_value(n));
		json_object_set_new(m, json_string_value(n),
				    local_stats(c->srv, group, json_string_value(n), ks));
	}
	*out = json_pack("{s:o}", "streams", m);
	return 0;
}

/* Private: {logGroupName, logStreamNames, berthEpochs} -> remove the events this replica holds for them. */
int server_logs_berth_delete_files(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *group;
	json_t *names;
	if (server_ecs_str(c, in, "logGroupName", true, &group) < 0 ||
	    server_ecs_strv(c, in, "logStreamNames", &names) < 0)
		return -1;
	size_t i;
	json_t *n;
	json_array_foreach (names, i, n) {
		_cleanup_json_ json_t *ks =
		    epochs_in(json_object_get(in, "berthEpochs"), json_string_value(n));
		size_t k;
		json_t *e;
		json_array_foreach (ks, k, e) {
			_cleanup_error_ struct berth_error *err = NULL;
			_cleanup_free_ char *en = epoch_name(json_string_value(n), json_integer_value(e));
			if (logs_stream_delete(c->srv->logs, group, en, &err) < 0)
				return server_ecs_internal(c, err);
		}
	}
	*out = json_object();
	return 0;
}

/* Remove the events of the streams recs of group wherever they are (a replica that is down keeps its
 * files: logged). */
static int delete_files(struct ecs_call *c, const char *group, json_t *recs)
{
	_cleanup_json_ json_t *owners = by_owner(c, recs, NULL);
	const char *owner;
	json_t *eps;
	json_object_foreach (owners, owner, eps) {
		_cleanup_json_ json_t *in = private_in(group, eps), *out = NULL;
		if (!*owner) {
			if (server_logs_berth_delete_files(c, in, &out) < 0)
				return -1;
			continue;
		}
		struct ecs_call sub = { .srv = c->srv };
		if (server_replica_call(&sub, owner, AWS_LOGS_TARGET_PREFIX, AWS_LOGS_SERVICE,
					"BerthDeleteLogStreamFiles", in, &out) < 0)
			log_fields(LOG_LEVEL_WARN, "log stream files left on a replica", "replica", owner,
				   "group", group, "error", sub.msg ? sub.msg : "", NULL);
		free(sub.msg);
	}
	return 0;
}

/* limit (1..max, default max) and an index nextToken ("i:N" base64); *ret_from, *ret_limit. */
static int page_args(struct ecs_call *c, json_t *in, int64_t max, size_t *ret_from, int64_t *ret_limit)
{
	int64_t limit = max;
	const char *token;
	if (server_ecs_int(c, in, "limit", 1, max, &limit) < 0 ||
	    server_ecs_str(c, in, "nextToken", false, &token) < 0)
		return -1;
	*ret_from = 0;
	if (token) {
		void *d = NULL;
		size_t n = 0;
		unsigned long long from;
		char tail;
		if (base64_decode(token, &d, &n) < 0 || n == 0 || n > 30 || memchr(d, '\0', n)) {
			free(d);
			return server_ecs_fail(c, "InvalidParameterException",
					       "The specified nextToken is invalid.");
		}
		_cleanup_free_ char *t = xstrndup(d, n);
		free(d);
		if (sscanf(t, "i:%llu%c", &from, &tail) != 1)
			return server_ecs_fail(c, "InvalidParameterException",
					       "The specified nextToken is invalid.");
		*ret_from = (size_t)from;
	}
	*ret_limit = limit;
	return 0;
}

/* items[from, from+limit) into out[key], and nextToken when more remain. */
static void page_out(json_t *items, size_t from, int64_t limit, const char *key, json_t *out)
{
	json_t *page = json_array();
	size_t n = json_array_size(items);
	for (size_t i = from; i < n && (int64_t)(i - from) < limit; i++)
		json_array_append(page, json_array_get(items, i));
	json_object_set_new(out, key, page);
	if (from + (size_t)limit < n) {
		_cleanup_free_ char *t = xasprintf("i:%zu", from + (size_t)limit);
		_cleanup_free_ char *b = base64_encode(t, strlen(t));
		json_object_set_new(out, "nextToken", json_string(b));
	}
}

int server_logs_create_log_group(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	if (server_ecs_str(c, in, "logGroupName", true, &name) < 0)
		return -1;
	if (!group_name_ok(name))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "1 validation error detected: Value '%s' at 'logGroupName' failed to satisfy "
		    "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+",
		    name);
	bool ok = false;
	_cleanup_error_ struct berth_error *err = NULL;
	if (group_create(c->srv, name, &ok, &err) < 0)
		return server_ecs_internal(c, err);
	if (!ok)
		return server_ecs_fail(c, "ResourceAlreadyExistsException",
				       "The specified log group already exists");
	*out = json_object();
	return 0;
}

int server_logs_delete_log_group(struct ecs_call *c, json_t *in, json_t **out)
{
	_cleanup_json_ json_t *g = NULL, *streams = NULL;
	const char *name;
	if (group_lookup(c, in, &g, &name) < 0)
		return -1;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *key = group_key(name);
	if (store_remove(c->srv->store, key, NULL, &err) < 0 || streams_of(c->srv, name, &streams, &err) < 0)
		return server_ecs_internal(c, err);
	size_t i;
	json_t *x;
	json_array_foreach (streams, i, x) {
		const char *sn = json_string_value(json_object_get(x, "logStreamName"));
		_cleanup_free_ char *sk = stream_key(name, sn);
		if (store_remove(c->srv->store, sk, NULL, &err) < 0)
			return server_ecs_internal(c, err);
	}
	if (delete_files(c, name, streams) < 0)
		return -1;
	*out = json_object();
	return 0;
}

int server_logs_describe_log_groups(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *prefix, *pattern;
	size_t from;
	int64_t limit;
	if (server_ecs_str(c, in, "logGroupNamePrefix", false, &prefix) < 0 ||
	    server_ecs_str(c, in, "logGroupNamePattern", false, &pattern) < 0 ||
	    page_args(c, in, 50, &from, &limit) < 0)
		return -1;
	if (prefix && pattern)
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.");
	_cleanup_json_ json_t *all = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, GROUPS_PREFIX, &all, &err) < 0)
		return server_ecs_internal(c, err);
	_cleanup_json_ json_t *items = json_array();
	size_t i;
	json_t *g;
	json_array_foreach (all, i, g) {
		const char *name = json_string_value(json_object_get(g, "logGroupName"));
		if (!name || (prefix && !startswith(name, prefix)) || (pattern && !strstr(name, pattern)))
			continue;
		json_t *v = json_deep_copy(g);
		uint64_t bytes = 0;
		_cleanup_json_ json_t *streams = NULL;
		if (streams_of(c->srv, name, &streams, NULL) == 0) {
			_cleanup_json_ json_t *stats = streams_stats(c, name, streams);
			const char *k;
			json_t *st;
			json_object_foreach (stats, k, st)
				bytes += (uint64_t)json_integer_value(json_object_get(st, "storedBytes"));
		}
		json_object_set_new(v, "storedBytes", json_integer((json_int_t)bytes));
		json_array_append_new(items, v);
	}
	*out = json_object();
	page_out(items, from, limit, "logGroups", *out);
	return 0;
}

int server_logs_put_retention_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	int64_t days = 0;
	if (server_ecs_int(c, in, "retentionInDays", INT32_MIN, INT32_MAX, &days) < 0)
		return -1;
	bool valid = false;
	for (size_t i = 0; i < ARRAY_SIZE(RETENTION_DAYS); i++)
		valid |= RETENTION_DAYS[i] == days;
	if (!json_object_get(in, "retentionInDays") || !valid)
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "1 validation error detected: Value '%lld' at 'retentionInDays' failed to satisfy "
		    "constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, "
		    "150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
		    (long long)days);
	_cleanup_json_ json_t *g = NULL;
	const char *name;
	if (group_lookup(c, in, &g, &name) < 0)
		return -1;
	json_object_set_new(g, "retentionInDays", json_integer(days));
	_cleanup_free_ char *key = group_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_put(c->srv, key, g, &err) < 0)
		return server_ecs_internal(c, err);
	server_logs_sweep_kick(c->srv);
	*out = json_object();
	return 0;
}

int server_logs_delete_retention_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	_cleanup_json_ json_t *g = NULL;
	const char *name;
	if (group_lookup(c, in, &g, &name) < 0)
		return -1;
	json_object_del(g, "retentionInDays");
	_cleanup_free_ char *key = group_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_put(c->srv, key, g, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_object();
	return 0;
}

int server_logs_create_log_stream(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *sn;
	_cleanup_json_ json_t *g = NULL;
	const char *name;
	if (server_ecs_str(c, in, "logStreamName", true, &sn) < 0 || group_lookup(c, in, &g, &name) < 0)
		return -1;
	if (!stream_name_ok(sn))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid log stream name '%s'.", sn);
	bool ok = false;
	_cleanup_error_ struct berth_error *err = NULL;
	if (stream_create(c->srv, name, sn, &ok, &err) < 0)
		return server_ecs_internal(c, err);
	if (!ok)
		return server_ecs_fail(c, "ResourceAlreadyExistsException",
				       "The specified log stream already exists");
	*out = json_object();
	return 0;
}

int server_logs_delete_log_stream(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *sn;
	_cleanup_json_ json_t *g = NULL;
	const char *name;
	_cleanup_free_ char *owner = NULL;
	if (stream_lookup(c, in, &g, &name, &sn, &owner) < 0)
		return -1;
	_cleanup_free_ char *key = stream_key(name, sn);
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *rec = NULL;
	if (server_record_get(c->srv, key, &rec, NULL, &err) < 0 ||
	    store_remove(c->srv->store, key, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	_cleanup_json_ json_t *recs = json_pack("[O]", rec);
	if (delete_files(c, name, recs) < 0)
		return -1;
	*out = json_object();
	return 0;
}

static int by_last_event(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "lastEventTimestamp"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "lastEventTimestamp"));
	return x < y ? -1 : x > y;
}

int server_logs_describe_log_streams(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *prefix, *order;
	size_t from;
	int64_t limit;
	_cleanup_json_ json_t *g = NULL, *all = NULL;
	const char *name;
	if (server_ecs_str(c, in, "logStreamNamePrefix", false, &prefix) < 0 ||
	    server_ecs_str(c, in, "orderBy", false, &order) < 0 || page_args(c, in, 50, &from, &limit) < 0 ||
	    group_lookup(c, in, &g, &name) < 0)
		return -1;
	json_t *desc = json_object_get(in, "descending");
	if (desc && !json_is_boolean(desc))
		return server_ecs_fail(c, "SerializationException", "'descending': expected a boolean");
	bool by_time = order && streq(order, "LastEventTime");
	if (order && !by_time && !streq(order, "LogStreamName"))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "1 validation error detected: Value '%s' at 'orderBy' failed to satisfy constraint: "
		    "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
		    order);
	if (by_time && prefix)
		return server_ecs_fail(c, "InvalidParameterException",
				       "Cannot order by LastEventTime with a logStreamNamePrefix.");
	_cleanup_error_ struct berth_error *err = NULL;
	if (streams_of(c->srv, name, &all, &err) < 0)
		return server_ecs_internal(c, err);
	size_t n = 0;
	json_t **v = xcalloc(json_array_size(all) + 1, sizeof(*v));
	size_t i;
	json_t *x;
	_cleanup_json_ json_t *stats = streams_stats(c, name, all);
	json_array_foreach (all, i, x) {
		const char *sn = json_string_value(json_object_get(x, "logStreamName"));
		if (!sn || (prefix && !startswith(sn, prefix)))
			continue;
		v[n] = json_deep_copy(x);
		json_object_del(v[n], "berthReplica");
		json_object_del(v[n], "berthEpoch");
		json_object_del(v[n], "berthFormer");
		json_object_update(v[n++], json_object_get(stats, sn));
	}
	if (by_time)
		qsort(v, n, sizeof(*v), by_last_event);
	_cleanup_json_ json_t *items = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(items, v[json_is_true(desc) ? n - 1 - i : i]);
	free(v);
	*out = json_object();
	page_out(items, from, limit, "logStreams", *out);
	return 0;
}

/* ---- PutLogEvents ---- */

struct batch_in {
	struct logs_in_event *ev;
	uint64_t *offsets; /* agent calls */
	size_t n;
};

static void batch_in_done(struct batch_in *b)
{
	free(b->ev);
	free(b->offsets);
}

/* events [{timestamp, message[, offset]}] (borrowing the messages); a message for what is wrong. */
static const char *batch_parse(json_t *events, bool with_offsets, struct batch_in *b)
/* with_offsets (agents): events keep their file order, whatever their timestamps */
{
	if (!json_is_array(events) || json_array_size(events) > LOGS_MAX_BATCH_EVENTS)
		return "logEvents must be a list of 1 to 10000 events.";
	size_t n = json_array_size(events), bytes = 0;
	b->ev = xcalloc(n + 1, sizeof(*b->ev));
	if (with_offsets)
		b->offsets = xcalloc(n + 1, sizeof(*b->offsets));
	size_t i;
	json_t *e;
	json_array_foreach (events, i, e) {
		json_t *ts = json_object_get(e, "timestamp"), *msg = json_object_get(e, "message");
		json_t *off = json_object_get(e, "offset");
		if (!json_is_integer(ts) || !json_is_string(msg) || (with_offsets && !json_is_integer(off)))
			return "Each log event needs an integer timestamp and a string message.";
		size_t len = json_string_length(msg);
		if (len == 0)
			return "Log event messages must not be empty.";
		if (len > LOGS_MAX_EVENT_BYTES - EVENT_OVERHEAD)
			return "Log event too large.";
		bytes += len + EVENT_OVERHEAD;
		b->ev[i] = (struct logs_in_event){ json_integer_value(ts), json_string_value(msg), len };
		if (with_offsets)
			b->offsets[i] = (uint64_t)json_integer_value(off);
		if (!with_offsets && i && b->ev[i].timestamp < b->ev[i - 1].timestamp)
			return "Log events in a single PutLogEvents request must be in chronological order.";
	}
	if (bytes > LOGS_MAX_BATCH_BYTES + (size_t)EVENT_OVERHEAD * LOGS_MAX_BATCH_EVENTS ||
	    bytes - n * EVENT_OVERHEAD > LOGS_MAX_BATCH_BYTES)
		return "Upload too large: the batch exceeds 1,048,576 bytes.";
	b->n = n;
	return NULL;
}

/* The limits batch_parse checks, for events already split (the agents' binary batches). */
static const char *batch_check(const struct logs_in_event *ev, size_t n)
{
	size_t bytes = 0;
	if (n > LOGS_MAX_BATCH_EVENTS)
		return "logEvents must be a list of 1 to 10000 events.";
	for (size_t i = 0; i < n; i++) {
		if (ev[i].len > LOGS_MAX_EVENT_BYTES - EVENT_OVERHEAD)
			return "Log event too large.";
		bytes += ev[i].len;
	}
	return bytes > LOGS_MAX_BATCH_BYTES ? "Upload too large: the batch exceeds 1,048,576 bytes." : NULL;
}

int server_logs_put_log_events(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *sn;
	_cleanup_json_ json_t *g = NULL;
	const char *name;
	_cleanup_free_ char *owner = NULL, *en = NULL;
	int64_t epoch = 0;
	if (stream_lookup(c, in, &g, &name, &sn, NULL) < 0 ||
	    write_target(c, name, sn, in, &owner, &epoch) < 0)
		return -1;
	if (owner) { /* its events are on another replica */
		_cleanup_json_ json_t *fwd = json_deep_copy(in);
		json_object_set_new(fwd, "berthEpoch", json_integer(epoch));
		return server_replica_call(c, owner, AWS_LOGS_TARGET_PREFIX, AWS_LOGS_SERVICE, "PutLogEvents",
					   fwd, out);
	}
	en = epoch_name(sn, epoch);
	json_t *events = json_object_get(in, "logEvents");
	if (!events || json_array_size(events) == 0)
		return server_ecs_fail(c, "InvalidParameterException", "logEvents can not be empty.");
	_cleanup_(batch_in_done) struct batch_in b = { 0 };
	const char *bad = batch_parse(events, false, &b);
	if (bad)
		return server_ecs_fail(c, "InvalidParameterException", "%s", bad);
	int64_t now = now_ms(), gone = expired_before(c->srv, g);
	int64_t too_old = now - (int64_t)TOO_OLD_DAYS * c->srv->logs_day_seconds * 1000;
	size_t lo = 0, hi = b.n; /* events are in time order: the accepted ones are one range */
	while (lo < hi && (b.ev[lo].timestamp < too_old || b.ev[lo].timestamp < gone))
		lo++;
	while (hi > lo && b.ev[hi - 1].timestamp > now + TOO_NEW_MS)
		hi--;
	json_t *rej = json_object();
	if (lo > 0) {
		bool expired = gone && b.ev[lo - 1].timestamp < gone && b.ev[lo - 1].timestamp >= too_old;
		json_object_set_new(rej, expired ? "expiredLogEventEndIndex" : "tooOldLogEventEndIndex",
				    json_integer((json_int_t)lo - 1));
	}
	if (hi < b.n)
		json_object_set_new(rej, "tooNewLogEventStartIndex", json_integer((json_int_t)hi));
	_cleanup_error_ struct berth_error *err = NULL;
	uint64_t first = 0, next;
	if (hi > lo && logs_append(c->srv->logs, name, en, b.ev + lo, hi - lo, now, 0, &first, &err) < 0) {
		json_decref(rej);
		return server_ecs_internal(c, err);
	}
	if (hi > lo) {
		next = first + (hi - lo);
	} else {
		struct logs_stream_stat st = { 0 };
		logs_stream_stat(c->srv->logs, name, en, &st, NULL);
		next = st.next_seq;
	}
	next += (uint64_t)epoch << EPOCH_SHIFT;
	*out = json_pack("{s:o}", "nextSequenceToken", json_sprintf("%llu", (unsigned long long)next));
	if (json_object_size(rej))
		json_object_set_new(*out, "rejectedLogEventsInfo", rej);
	else
		json_decref(rej);
	return 0;
}

/* ---- GetLogEvents ---- */

struct collect {
	json_t *events;
	bool cut; /* stopped by limit or bytes */
	size_t limit, bytes;
	uint64_t lo, hi;    /* lowest and highest seq taken */
	const char *stream; /* FilterLogEvents: set on events */
};

static int collect_one(void *ud, const struct logs_event *ev)
{
	struct collect *c = ud;
	if (json_array_size(c->events) >= c->limit || c->bytes + ev->len > MAX_ANSWER_BYTES) {
		c->cut = true;
		return 2;
	}
	json_array_append_new(c->events,
			      json_pack("{s:I,s:s%,s:I}", "timestamp", (json_int_t)ev->timestamp, "message",
					ev->message, ev->len, "ingestionTime", (json_int_t)ev->ingestion));
	c->bytes += ev->len;
	c->lo = json_array_size(c->events) == 1 || ev->seq < c->lo ? ev->seq : c->lo;
	c->hi = ev->seq > c->hi ? ev->seq : c->hi;
	return 0;
}

static int time_args(struct ecs_call *c, json_t *in, struct logs_read *q)
{
	int64_t start = 0, end = 0;
	if (server_ecs_int(c, in, "startTime", 0, INT64_MAX, &start) < 0 ||
	    server_ecs_int(c, in, "endTime", 0, INT64_MAX, &end) < 0)
		return -1;
	if (end && start > end)
		return server_ecs_fail(c, "InvalidParameterException",
				       "startTime must be less than or equal to endTime.");
	q->start_ms = start, q->end_ms = end;
	return 0;
}

/*
 * One epoch's part of a GetLogEvents read held here (store name en): events (oldest first) into *ret_events,
 * the epoch's own sequence numbers of the next forward and backward reads, *ret_cut when the limit or
 * the answer's size stopped the read (else the epoch has nothing more that way).
 */
static int get_local(struct ecs_call *c, json_t *g, const char *name, const char *en, struct logs_read *q,
		     size_t limit, json_t **ret_events, uint64_t *ret_fwd, uint64_t *ret_back, bool *ret_cut)
{
	struct collect col = { .events = json_array(), .limit = limit };
	q->expired_before = expired_before(c->srv, g);
	_cleanup_error_ struct berth_error *err = NULL;
	if (logs_read_stream(c->srv->logs, name, en, q, collect_one, &col, NULL, &err) < 0) {
		json_decref(col.events);
		return server_ecs_internal(c, err);
	}
	size_t n = json_array_size(col.events);
	if (q->backward) { /* newest first from the store; the answer is oldest first */
		for (size_t i = 0; i < n / 2; i++) {
			json_t *a = json_incref(json_array_get(col.events, i));
			json_array_set(col.events, i, json_array_get(col.events, n - 1 - i));
			json_array_set_new(col.events, n - 1 - i, a);
		}
	}
	uint64_t at = q->seq;
	if (at == UINT64_MAX) { /* from the end without a token: the end is where the stream is now */
		struct logs_stream_stat st = { 0 };
		logs_stream_stat(c->srv->logs, name, en, &st, NULL);
		at = st.next_seq;
	}
	*ret_fwd = n ? col.hi + 1 : at;
	*ret_back = n ? col.lo : at;
	*ret_cut = col.cut;
	*ret_events = col.events;
	return 0;
}

/*
 * Epoch e ({replica, epoch}) of stream sn: get_local here, else GetLogEvents on its replica with
 * "berthEpoch" (the epoch's own tokens; "berthCut"). local: q->seq in the epoch's numbering
 * (UINT64_MAX: its end).
 */
static int get_epoch(struct ecs_call *c, json_t *in, json_t *g, const char *name, const char *sn, json_t *e,
		     struct logs_read *q, size_t limit, json_t **ret_events, uint64_t *ret_fwd,
		     uint64_t *ret_back, bool *ret_cut)
{
	const char *r = json_string_value(json_object_get(e, "replica"));
	int64_t k = json_integer_value(json_object_get(e, "epoch"));
	if (server_replica_is_self(c->srv, r)) {
		_cleanup_free_ char *en = epoch_name(sn, k);
		return get_local(c, g, name, en, q, limit, ret_events, ret_fwd, ret_back, ret_cut);
	}
	_cleanup_json_ json_t *sub =
	    json_pack("{s:s,s:s,s:I,s:b,s:I}", "logGroupName", name, "logStreamName", sn, "limit",
		      (json_int_t)limit, "startFromHead", !q->backward, "berthEpoch", (json_int_t)k);
	json_object_set(sub, "startTime", json_object_get(in, "startTime"));
	json_object_set(sub, "endTime", json_object_get(in, "endTime"));
	if (q->seq != UINT64_MAX)
		json_object_set_new(
		    sub, "nextToken",
		    json_sprintf("%c/%020llu", q->backward ? 'b' : 'f', (unsigned long long)q->seq));
	_cleanup_json_ json_t *res = NULL;
	if (server_replica_call(c, r, AWS_LOGS_TARGET_PREFIX, AWS_LOGS_SERVICE, "GetLogEvents", sub, &res) <
	    0)
		return -1;
	unsigned long long f = 0, b = 0;
	char d;
	if (sscanf(json_string_value(json_object_get(res, "nextForwardToken")) ?: "", "%c/%llu", &d, &f) !=
		2 ||
	    sscanf(json_string_value(json_object_get(res, "nextBackwardToken")) ?: "", "%c/%llu", &d, &b) !=
		2)
		return server_ecs_fail(c, "ServiceException",
				       "replica %s answered GetLogEvents without tokens", r);
	*ret_fwd = f, *ret_back = b;
	*ret_cut = json_is_true(json_object_get(res, "berthCut"));
	*ret_events = json_incref(json_object_get(res, "events"));
	if (!json_is_array(*ret_events)) {
		json_decref(*ret_events);
		*ret_events = json_array();
	}
	return 0;
}

int server_logs_get_log_events(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *sn, *token;
	int64_t limit = 10000;
	_cleanup_json_ json_t *g = NULL, *rec = NULL;
	const char *name;
	struct logs_read q = { 0 };
	if (server_ecs_str(c, in, "nextToken", false, &token) < 0 ||
	    server_ecs_int(c, in, "limit", 1, 10000, &limit) < 0 || time_args(c, in, &q) < 0 ||
	    stream_lookup(c, in, &g, &name, &sn, NULL) < 0)
		return -1;
	json_t *head = json_object_get(in, "startFromHead");
	if (head && !json_is_boolean(head))
		return server_ecs_fail(c, "SerializationException", "'startFromHead': expected a boolean");
	q.backward = !json_is_true(head);
	q.seq = q.backward ? UINT64_MAX : 0;
	if (token) {
		unsigned long long seq;
		char dir, tail;
		if (sscanf(token, "%c/%llu%c", &dir, &seq, &tail) != 2 || (dir != 'f' && dir != 'b'))
			return server_ecs_fail(c, "InvalidParameterException",
					       "The specified nextToken is invalid.");
		q.backward = dir == 'b';
		q.seq = seq;
	}
	if (c->local) { /* a peer reads one epoch held here, in the epoch's own numbering */
		json_t *k = json_object_get(in, "berthEpoch");
		_cleanup_free_ char *en = epoch_name(sn, json_is_integer(k) ? json_integer_value(k) : 0);
		json_t *events;
		uint64_t fwd, back;
		bool cut;
		if (get_local(c, g, name, en, &q, (size_t)limit, &events, &fwd, &back, &cut) < 0)
			return -1;
		*out = json_pack("{s:o,s:o,s:o,s:b}", "events", events, "nextForwardToken",
				 json_sprintf("f/%020llu", (unsigned long long)fwd), "nextBackwardToken",
				 json_sprintf("b/%020llu", (unsigned long long)back), "berthCut", cut);
		return 0;
	}
	/*
	 * The stream's epochs in the read's direction, from the token's (global sequence numbers:
	 * epoch << EPOCH_SHIFT | the epoch's own), until the limit or the answer's size cuts the read. An
	 * epoch whose replica is gone (not registered) is passed over: its events come back with it.
	 */
	_cleanup_free_ char *key = stream_key(name, sn);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_get(c->srv, key, &rec, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	_cleanup_json_ json_t *eps = rec_epochs(rec);
	size_t n_eps = json_array_size(eps), idx = q.backward ? n_eps - 1 : 0;
	if (token) {
		int64_t k = (int64_t)(q.seq >> EPOCH_SHIFT);
		for (idx = 0; idx < n_eps; idx++)
			if (json_integer_value(json_object_get(json_array_get(eps, idx), "epoch")) == k)
				break;
		if (idx == n_eps)
			return server_ecs_fail(c, "InvalidParameterException",
					       "The specified nextToken is invalid.");
		q.seq &= EPOCH_MASK;
	}
	json_t *events = json_array();
	bool first = true;
	uint64_t tok_first = 0, tok_last = 0; /* forward: back from the first epoch read, fwd from the last */
	for (;;) {
		json_t *e = json_array_get(eps, idx), *part = NULL;
		uint64_t base = (uint64_t)json_integer_value(json_object_get(e, "epoch")) << EPOCH_SHIFT;
		uint64_t fwd = 0, back = 0;
		bool cut = false;
		size_t want = (size_t)limit - json_array_size(events);
		int r = get_epoch(c, in, g, name, sn, e, &q, want, &part, &fwd, &back, &cut);
		if (r < 0) {
			const char *rid = json_string_value(json_object_get(e, "replica"));
			bool gone =
			    idx + 1 < n_eps && rid && server_replica_registered(c->srv, rid, NULL) == 0;
			if (!gone) {
				json_decref(events);
				return -1;
			}
			free(c->msg), c->msg = NULL; /* a former owner gone: its part is skipped */
			c->type = NULL, c->status = 0;
		} else {
			if (q.backward) { /* an older epoch's events go first */
				json_array_extend(part, events);
				json_decref(events);
				events = part;
			} else {
				json_array_extend(events, part);
				json_decref(part);
			}
			uint64_t mine = q.backward ? base + back : base + fwd,
				 other = q.backward ? base + fwd : base + back;
			if (first)
				tok_first = other;
			tok_last = mine;
			first = false;
		}
		bool more = q.backward ? idx > 0 : idx + 1 < n_eps;
		if (cut || !more || json_array_size(events) >= (size_t)limit)
			break;
		idx = q.backward ? idx - 1 : idx + 1;
		q.seq = q.backward ? UINT64_MAX : 0;
	}
	if (first) { /* every epoch read was gone: nothing to page from */
		json_decref(events);
		return server_ecs_fail(c, "ServiceUnavailableException",
				       "The log stream's replicas are not reachable now.");
	}
	uint64_t fwd = q.backward ? tok_first : tok_last, back = q.backward ? tok_last : tok_first;
	*out = json_pack("{s:o,s:o,s:o}", "events", events, "nextForwardToken",
			 json_sprintf("f/%020llu", (unsigned long long)fwd), "nextBackwardToken",
			 json_sprintf("b/%020llu", (unsigned long long)back));
	return 0;
}

/* ---- FilterLogEvents ---- */

struct fkey {
	int64_t ts;
	const char *stream;
	uint64_t seq;
};

static int fkey_cmp(const struct fkey *a, const struct fkey *b)
{
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	int r = strcmp(a->stream, b->stream);
	if (r)
		return r;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct fhit {
	struct fkey k;
	int64_t ingest;
	char *msg;
	size_t len;
};

struct fscan {
	const struct logs_filter *filter;
	struct fkey after;
	bool has_after;
	const char *stream;
	uint64_t base; /* the epoch's first global sequence number */
	bool time_ordered;
	struct fhit *hits;
	size_t n, cap, limit;
	bool more;
	bool full; /* hits were cut to limit: worst is the largest kept */
	struct fkey worst;
};

static int fhit_cmp(const void *a, const void *b)
{
	return fkey_cmp(&((const struct fhit *)a)->k, &((const struct fhit *)b)->k);
}

/* Keep the limit smallest keys. */
static void fscan_trim(struct fscan *f)
{
	qsort(f->hits, f->n, sizeof(*f->hits), fhit_cmp);
	if (f->n > f->limit) {
		for (size_t i = f->limit; i < f->n; i++)
			free(f->hits[i].msg);
		f->n = f->limit;
		f->more = true;
	}
	if (f->n == f->limit) {
		f->full = true;
		f->worst = f->hits[f->n - 1].k;
	}
}

static int fscan_one(void *ud, const struct logs_event *ev)
{
	struct fscan *f = ud;
	struct fkey k = { ev->timestamp, f->stream, f->base + ev->seq };
	if (f->has_after && fkey_cmp(&k, &f->after) <= 0)
		return 0;
	if (f->full && fkey_cmp(&k, &f->worst) > 0) {
		f->more = true;
		return f->time_ordered ? 2 : 0; /* later events of a time-ordered stream cannot be smaller */
	}
	if (f->filter && !logs_filter_match(f->filter, ev->message, ev->len))
		return 0;
	if (f->n == f->cap)
		f->hits = xrealloc(f->hits, (f->cap = f->cap ? 2 * f->cap : 256) * sizeof(*f->hits));
	f->hits[f->n++] = (struct fhit){ k, ev->ingestion, xstrndup(ev->message, ev->len), ev->len };
	f->hits[f->n - 1].k.stream = f->stream;
	if (f->n >= 2 * f->limit)
		fscan_trim(f);
	return 0;
}

static int filter_token(struct ecs_call *c, const char *token, struct fscan *f, char **ret_stream)
{
	void *d = NULL;
	size_t n = 0;
	if (base64_decode(token, &d, &n) < 0 || n == 0 || memchr(d, '\0', n)) {
		free(d);
		return server_ecs_fail(c, "InvalidParameterException", "The specified nextToken is invalid.");
	}
	_cleanup_json_ json_t *j = json_loadb(d, n, 0, NULL);
	free(d);
	json_t *t = json_object_get(j, "t"), *s = json_object_get(j, "s"), *q = json_object_get(j, "q");
	if (!json_is_integer(t) || !json_is_string(s) || !json_is_integer(q))
		return server_ecs_fail(c, "InvalidParameterException", "The specified nextToken is invalid.");
	*ret_stream = xstrdup(json_string_value(s));
	f->after = (struct fkey){ json_integer_value(t), *ret_stream, (uint64_t)json_integer_value(q) };
	f->has_after = true;
	return 0;
}

/* The stream records FilterLogEvents searches: logStreamNames, or logStreamNamePrefix, or all. */
static int filter_streams(struct ecs_call *c, json_t *in, const char *group, json_t **ret)
{
	json_t *names;
	const char *prefix;
	if (server_ecs_strv(c, in, "logStreamNames", &names) < 0 ||
	    server_ecs_str(c, in, "logStreamNamePrefix", false, &prefix) < 0)
		return -1;
	if (names && prefix)
		return server_ecs_fail(c, "InvalidParameterException",
				       "Cannot specify both logStreamNames and logStreamNamePrefix.");
	if (names && (json_array_size(names) < 1 || (json_array_size(names) > 100 && !c->local)))
		return server_ecs_fail(c, "InvalidParameterException",
				       "logStreamNames must hold 1 to 100 names.");
	_cleanup_json_ json_t *all = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (streams_of(c->srv, group, &all, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *out = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (all, i, x) {
		const char *sn = json_string_value(json_object_get(x, "logStreamName"));
		if (names ? json_strv_contains(names, sn) : !prefix || startswith(sn, prefix))
			json_array_append(out, x);
	}
	*ret = out;
	return 0;
}

/*
 * The part of a FilterLogEvents call held by replica owner (its streams names): its matching events join
 * f's hits (kept alive in keep), its streams join searched; a replica that is down: its streams are
 * reported as not searched completely.
 */
static void filter_remote(struct ecs_call *c, json_t *in, const char *owner, json_t *eps, struct fscan *f,
			  json_t *keep, json_t *searched)
{
	_cleanup_json_ json_t *sub_in = json_deep_copy(in), *names = names_of(eps);
	json_object_del(sub_in, "logStreamNamePrefix");
	json_object_set(sub_in, "logStreamNames", names);
	json_object_set(sub_in, "berthEpochs", eps);
	struct ecs_call sub = { .srv = c->srv };
	json_t *res = NULL;
	if (server_replica_call(&sub, owner, AWS_LOGS_TARGET_PREFIX, AWS_LOGS_SERVICE, "FilterLogEvents",
				sub_in, &res) < 0) {
		size_t i;
		json_t *n;
		json_array_foreach (names, i, n)
			json_array_append_new(searched, json_pack("{s:O,s:b}", "logStreamName", n,
								  "searchedCompletely", false));
		free(sub.msg);
		return;
	}
	json_array_append_new(keep, res);
	json_array_extend(searched, json_object_get(res, "searchedLogStreams"));
	f->more |= json_object_get(res, "nextToken") != NULL;
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(res, "events"), i, e) {
		const char *sn = json_string_value(json_object_get(e, "logStreamName"));
		const char *msg = json_string_value(json_object_get(e, "message"));
		const char *id = json_string_value(json_object_get(e, "eventId"));
		if (!sn || !msg || !id || strlen(id) < 20)
			continue;
		if (f->n == f->cap)
			f->hits = xrealloc(f->hits, (f->cap = f->cap ? 2 * f->cap : 256) * sizeof(*f->hits));
		size_t len = json_string_length(json_object_get(e, "message"));
		f->hits[f->n++] = (struct fhit){ { json_integer_value(json_object_get(e, "timestamp")), sn,
						   strtoull(id, NULL, 10) },
						 json_integer_value(json_object_get(e, "ingestionTime")),
						 xstrndup(msg, len),
						 len };
	}
}

/* searched (consumed) with one entry per stream: a stream held by several replicas was searched
 * completely when every part of it was. New array. */
static json_t *searched_once(json_t *searched)
{
	_cleanup_json_ json_t *m = json_object();
	json_t *order = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (searched, i, x) {
		const char *sn = json_string_value(json_object_get(x, "logStreamName"));
		if (!sn)
			continue;
		json_t *have = json_object_get(m, sn);
		bool done = json_is_true(json_object_get(x, "searchedCompletely"));
		if (!have) {
			json_t *v = json_pack("{s:s,s:b}", "logStreamName", sn, "searchedCompletely", done);
			json_object_set(m, sn, v);
			json_array_append_new(order, v);
		} else if (!done) {
			json_object_set_new(have, "searchedCompletely", json_false());
		}
	}
	json_decref(searched);
	return order;
}

int server_logs_filter_log_events(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *pattern, *token;
	int64_t limit = 10000;
	_cleanup_json_ json_t *g = NULL, *streams = NULL;
	const char *name;
	struct logs_read q = { 0 };
	if (server_ecs_str(c, in, "filterPattern", false, &pattern) < 0 ||
	    server_ecs_str(c, in, "nextToken", false, &token) < 0 ||
	    server_ecs_int(c, in, "limit", 1, 10000, &limit) < 0 || time_args(c, in, &q) < 0 ||
	    group_lookup(c, in, &g, &name) < 0 || filter_streams(c, in, name, &streams) < 0)
		return -1;
	struct logs_filter *filter = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (pattern && logs_filter_parse(pattern, &filter, &err) < 0)
		return server_ecs_fail(c, "InvalidParameterException", "%s", err->msg);
	struct fscan f = { .filter = filter, .limit = (size_t)limit };
	_cleanup_free_ char *after_stream = NULL;
	int r = token ? filter_token(c, token, &f, &after_stream) : 0;
	q.expired_before = expired_before(c->srv, g);
	if (f.has_after && f.after.ts > q.start_ms)
		q.start_ms = f.after.ts;
	json_t *searched = json_array();
	_cleanup_json_ json_t *owners = by_owner(c, streams, in), *keep = json_array();
	const char *owner;
	json_t *eps;
	json_object_foreach (owners, owner, eps) {
		if (r < 0)
			break;
		if (*owner) {
			filter_remote(c, in, owner, eps, &f, keep, searched);
			continue;
		}
		const char *sn;
		json_t *ks;
		json_object_foreach (eps, sn, ks) {
			f.stream = sn;
			size_t k;
			json_t *e;
			json_array_foreach (ks, k, e) {
				_cleanup_free_ char *en = epoch_name(sn, json_integer_value(e));
				struct logs_stream_stat st = { 0 };
				logs_stream_stat(c->srv->logs, name, en, &st, NULL);
				f.time_ordered = st.time_ordered;
				f.base = (uint64_t)json_integer_value(e) << EPOCH_SHIFT;
				if (logs_read_stream(c->srv->logs, name, en, &q, fscan_one, &f, NULL, &err) <
				    0) {
					r = server_ecs_internal(c, err);
					break;
				}
			}
			if (r < 0)
				break;
			json_array_append_new(searched, json_pack("{s:s,s:b}", "logStreamName", sn,
								  "searchedCompletely", true));
		}
	}
	searched = searched_once(searched);
	logs_filter_free(filter);
	size_t i;
	if (r >= 0) {
		fscan_trim(&f);
		json_t *events = json_array();
		size_t bytes = 0;
		for (i = 0; i < f.n; i++) {
			struct fhit *h = &f.hits[i];
			if (bytes + h->len > MAX_ANSWER_BYTES) {
				f.more = true;
				break;
			}
			bytes += h->len;
			json_array_append_new(
			    events,
			    json_pack("{s:s,s:I,s:s%,s:I,s:o}", "logStreamName", h->k.stream, "timestamp",
				      (json_int_t)h->k.ts, "message", h->msg, h->len, "ingestionTime",
				      (json_int_t)h->ingest, "eventId",
				      json_sprintf("%020llu%s", (unsigned long long)h->k.seq, h->k.stream)));
		}
		*out = json_pack("{s:o,s:o}", "events", events, "searchedLogStreams", searched);
		size_t n_ev = json_array_size(events);
		if (f.more && n_ev) {
			struct fhit *last = &f.hits[n_ev - 1];
			_cleanup_json_ json_t *t =
			    json_pack("{s:I,s:s,s:I}", "t", (json_int_t)last->k.ts, "s", last->k.stream, "q",
				      (json_int_t)last->k.seq);
			_cleanup_free_ char *ts = json_dumps(t, JSON_COMPACT);
			_cleanup_free_ char *b64 = base64_encode(ts, strlen(ts));
			json_object_set_new(*out, "nextToken", json_string(b64));
		}
	} else {
		json_decref(searched);
	}
	for (i = 0; i < f.n; i++)
		free(f.hits[i].msg);
	free(f.hits);
	return r;
}

/* ---- the agents' ingest call ---- */

static void agent_logs_error(struct http_request *req, unsigned status, const char *code, const char *msg)
{
	http_respond_json(req, status, json_pack("{s:s,s:s}", "error", msg, "code", code));
}

/*
 * An agent's batch for group/stream (the group made when create asks): exactly once by byte offsets
 * (logs_append_from) on the replica holding the stream, this one unless the stream was started on another
 * (then the batch is forwarded there). -1 with c's error.
 */
static int ingest_batch(struct ecs_call *c, json_t *in, const char *group, const char *stream, bool create,
			struct batch_in *b, uint64_t end, uint64_t *ret_token, size_t *ret_taken)
{
	struct server *s = c->srv;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *gk = group_key(group);
	_cleanup_json_ json_t *g = NULL;
	int r = server_record_get(s, gk, &g, NULL, &err);
	bool ok;
	if (r == -ENOENT && create) {
		berth_error_free(err), err = NULL;
		if ((r = group_create(s, group, &ok, &err)) >= 0)
			r = server_record_get(s, gk, &g, NULL, &err);
	}
	if (r == -ENOENT)
		return server_ecs_fail(c, "ResourceNotFoundException",
				       "The specified log group does not exist.");
	if (r >= 0)
		r = stream_create(s, group, stream, &ok, &err);
	if (r < 0)
		return server_ecs_internal(c, err);
	_cleanup_free_ char *owner = NULL, *en = NULL;
	int64_t epoch = 0;
	if (write_target(c, group, stream, in, &owner, &epoch) < 0)
		return -1;
	if (owner) {
		_cleanup_json_ json_t *events = json_array(), *out = NULL;
		for (size_t i = 0; i < b->n; i++)
			json_array_append_new(events, json_pack("{s:I,s:s%,s:I}", "timestamp",
								(json_int_t)b->ev[i].timestamp, "message",
								b->ev[i].message, b->ev[i].len, "offset",
								(json_int_t)b->offsets[i]));
		_cleanup_json_ json_t *fwd =
		    json_pack("{s:s,s:s,s:b,s:I,s:O,s:I}", "logGroupName", group, "logStreamName", stream,
			      "createGroup", create, "end", (json_int_t)end, "events", events, "berthEpoch",
			      (json_int_t)epoch);
		if (server_replica_call(c, owner, AWS_LOGS_TARGET_PREFIX, AWS_LOGS_SERVICE,
					"BerthAgentLogEvents", fwd, &out) < 0)
			return -1;
		*ret_token = (uint64_t)json_integer_value(json_object_get(out, "token"));
		*ret_taken = (size_t)json_integer_value(json_object_get(out, "taken"));
		return 0;
	}
	en = epoch_name(stream, epoch);
	if (logs_append_from(s->logs, group, en, b->ev, b->offsets, b->n, now_ms(), end, ret_taken, ret_token,
			     &err) < 0)
		return server_ecs_internal(c, err);
	return 0;
}

/*
 * POST /agent/v1/logs: the events in logs/wire.h's binary shape (Content-Type
 * LOGS_WIRE_TYPE: a head line {"logGroupName", "logStreamName", "createGroup",
 * "end"}, then the events), or, from older agents, one JSON object with the
 * same keys and "events": [{"timestamp", "message", "offset"}] → {"token": T}.
 */
void server_logs_agent_ingest(struct server *s, struct http_request *req)
{
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	const char *ct = http_request_header(req, "Content-Type");
	bool wire = ct && startswith(ct, LOGS_WIRE_TYPE);
	_cleanup_(logs_wire_batch_done) struct logs_wire_batch wb = { 0 };
	_cleanup_(batch_in_done) struct batch_in jb = { 0 };
	_cleanup_json_ json_t *in = NULL;
	const char *bad = NULL;
	if (wire) {
		bad = logs_wire_parse(body, len, LOGS_MAX_BATCH_EVENTS, &wb);
		in = bad ? NULL : json_loadb(wb.head, wb.head_len, 0, NULL);
	} else {
		in = json_loadb(body ? body : "", len, 0, NULL);
	}
	const char *group = json_string_value(json_object_get(in, "logGroupName"));
	const char *stream = json_string_value(json_object_get(in, "logStreamName"));
	json_t *end = json_object_get(in, "end");
	if (!bad && (!group || !stream || !group_name_ok(group) || !stream_name_ok(stream) ||
		     !json_is_integer(end) || json_integer_value(end) < 0))
		bad = "logs needs logGroupName, logStreamName (valid names) and end";
	if (!bad)
		bad = wire ? batch_check(wb.ev, wb.n) : batch_parse(json_object_get(in, "events"), true, &jb);
	if (bad)
		return agent_logs_error(req, 400, "BadRequest", bad);
	struct batch_in b = wire ? (struct batch_in){ wb.ev, wb.offsets, wb.n } : jb; /* borrowed */
	struct ecs_call c = { .srv = s };
	uint64_t token = 0;
	size_t taken = 0;
	if (ingest_batch(&c, NULL, group, stream, json_is_true(json_object_get(in, "createGroup")), &b,
			 (uint64_t)json_integer_value(end), &token, &taken) < 0) {
		unsigned status = streq(c.type, "ResourceNotFoundException")     ? 404
				  : streq(c.type, "ServiceUnavailableException") ? 503
										 : 500;
		agent_logs_error(req, status, status == 500 ? "ServerError" : c.type, c.msg ? c.msg : "");
		free(c.msg);
		return;
	}
	http_respond_json(req, 200,
			  json_pack("{s:I,s:I}", "token", (json_int_t)token, "taken", (json_int_t)taken));
}

/* Private: an agent's batch (the JSON shape of POST /agent/v1/logs) that another replica received for a
 * stream held here -> {"token", "taken"}. */
int server_logs_berth_agent_events(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *group, *stream;
	int64_t end = 0;
	if (server_ecs_str(c, in, "logGroupName", true, &group) < 0 ||
	    server_ecs_str(c, in, "logStreamName", true, &stream) < 0 ||
	    server_ecs_int(c, in, "end", 0, INT64_MAX, &end) < 0)
		return -1;
	if (!group_name_ok(group) || !stream_name_ok(stream))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid log group or stream name.");
	_cleanup_(batch_in_done) struct batch_in b = { 0 };
	const char *bad = batch_parse(json_object_get(in, "events"), true, &b);
	if (bad)
		return server_ecs_fail(c, "InvalidParameterException", "%s", bad);
	uint64_t token = 0;
	size_t taken = 0;
	if (ingest_batch(c, in, group, stream, json_is_true(json_object_get(in, "createGroup")), &b,
			 (uint64_t)end, &token, &taken) < 0)
		return -1;
	*out = json_pack("{s:I,s:I}", "token", (json_int_t)token, "taken", (json_int_t)taken);
	return 0;
}

/* ---- retention sweep ---- */

static void sweep_once(struct server *s)
{
	_cleanup_json_ json_t *groups = NULL;
	if (server_record_list(s, GROUPS_PREFIX, &groups, NULL) < 0)
		return;
	size_t i;
	json_t *g;
	json_array_foreach (groups, i, g) {
		int64_t before = expired_before(s, g);
		const char *name = json_string_value(json_object_get(g, "logGroupName"));
		_cleanup_json_ json_t *streams = NULL;
		if (!before || !name || streams_of(s, name, &streams, NULL) < 0)
			continue;
		size_t k;
		json_t *st;
		struct ecs_call c = { .srv = s };
		_cleanup_json_ json_t *owners = by_owner(&c, streams, NULL);
		const char *sn;
		json_t *ks;
		json_object_foreach (json_object_get(owners, ""), sn, ks) {
			json_array_foreach (ks, k, st) { /* the epochs of the stream held here */
				_cleanup_free_ char *en = epoch_name(sn, json_integer_value(st));
				uint64_t freed = 0;
				_cleanup_error_ struct berth_error *err = NULL;
				if (logs_stream_expire(s->logs, name, en, before, &freed, &err) < 0) {
					_cleanup_free_ char *m = berth_error_string(err);
					log_fields(LOG_LEVEL_WARN, "log retention failed", "group", name,
						   "stream", en, "error", m, NULL);
				} else if (freed) {
					log_fields(LOG_LEVEL_DEBUG, "log retention", "group", name, "stream",
						   en, NULL);
				}
			}
		}
	}
}

static void *sweep_main(void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->logs_lock);
	while (!s->logs_stop) {
		s->logs_kicked = false;
		pthread_mutex_unlock(&s->logs_lock);
		sweep_once(s);
		pthread_mutex_lock(&s->logs_lock);
		struct timespec ts = proc_deadline(CLOCK_MONOTONIC, (int64_t)s->logs_sweep_interval * 1000);
		while (!s->logs_stop && !s->logs_kicked &&
		       pthread_cond_timedwait(&s->logs_cond, &s->logs_lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&s->logs_lock);
	return NULL;
}

void server_logs_sweep_kick(struct server *s)
{
	pthread_mutex_lock(&s->logs_lock);
	s->logs_kicked = true;
	pthread_cond_broadcast(&s->logs_cond);
	pthread_mutex_unlock(&s->logs_lock);
}

int server_logs_start(struct server *s, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/logs", s->root);
	struct logs_store_opts o = { .fsync = s->logs_fsync };
	int r = logs_store_open(dir, &o, &s->logs, err);
	if (r < 0)
		return r;
	if ((r = pthread_create(&s->logs_sweeper, NULL, sweep_main, s)) != 0)
		return berth_error_set(err, r, "start the log retention thread");
	s->logs_sweeping = true;
	return 0;
}

void server_logs_stop(struct server *s)
{
	pthread_mutex_lock(&s->logs_lock);
	s->logs_stop = true;
	pthread_cond_broadcast(&s->logs_cond);
	pthread_mutex_unlock(&s->logs_lock);
	if (s->logs_sweeping)
		pthread_join(s->logs_sweeper, NULL);
	s->logs_sweeping = false;
	s->logs = logs_store_close(s->logs);
}
