/*
 * longpoll.c - agents' long polls (GET /agent/v1/tasks and /agent/v1/peers
 * with since=R&wait=N) parked without a thread: the request is deferred in
 * the HTTP server (http_request_defer) and one watcher thread follows the
 * store's events; a poll is resumed on a worker when an event concerns it
 * (under its prefix and, for task polls, a record naming its container
 * instance or any delete), at its deadline, or when the server stops. An early answer is harmless (the agent
 * compares the tasks and polls again), so when in doubt we answer. The
 * watcher keeps the last HISTORY task events: a new poll is checked against
 * them in memory (and parked under the same lock, so no event slips between
 * the check and the parking); only a poll older than that asks the store.
 */
#include <poll.h>

#include "common/log.h"
#include "http/http.h"
#include "server/internal.h"

#define WATCH_PREFIX "/berth/"
/* A watch returns at least this often (to answer polls at their deadline). */
#define WATCH_MAX_MS 5000
/* Recent task events the watcher keeps, so that a new poll checks them in memory. */
#define HISTORY      4096

struct hist {
	int64_t rev;
	char *key;
	char *arn; /* the task's containerInstanceArn; NULL for a delete or none */
	bool del;
};

struct parked {
	struct parked *next;
	struct http_request *req;
	char *prefix;     /* "/berth/tasks/CLUSTER/", "/berth/nodes/" */
	char *arn;        /* NULL: any event under prefix */
	int64_t deadline; /* ms, server_record_now() based */
	longpoll_answer_fn answer;
	void *ctx;
};

struct longpoll {
	struct server *s;
	pthread_mutex_t mu;
	struct parked *head;
	size_t n;
	int64_t dispatched_upto; /* events up to this revision were matched against the parked polls */
	/* every task event with revision >= hist_from, the newest HISTORY of them */
	struct hist ring[HISTORY];
	size_t ring_head, ring_n;
	int64_t hist_from;
	bool stop;
	pthread_t thread;
};

static int64_t ms_now(void)
{
	return (int64_t)(server_record_now() * 1000);
}

static void resumed(struct http_request *req, void *ctx)
{
	struct parked *p = ctx;
	p->answer(req, p->ctx);
	free(p->prefix);
	free(p->arn);
	free(p);
}

/* mu held: take p off the list and let a worker answer it. */
static void wake(struct longpoll *lp, struct parked **link)
{
	struct parked *p = *link;
	*link = p->next;
	lp->n--;
	http_request_resume(p->req, resumed, p);
}

static bool event_concerns(const struct store_event *e, const char *prefix, const char *arn)
{
	return startswith(e->kv.key, prefix) &&
	       (!arn || e->type == STORE_EVENT_DELETE || (e->kv.value && strstr(e->kv.value, arn)));
}

static bool concerns(const struct parked *p, const struct store_event *e)
{
	return event_concerns(e, p->prefix, p->arn);
}

static bool hist_concerns(const struct hist *h, const char *prefix, const char *arn)
{
	return startswith(h->key, prefix) && (!arn || h->del || (h->arn && streq(h->arn, arn)));
}

/* mu held: remember an event (the oldest goes when the ring is full). */
static void hist_add(struct longpoll *lp, const struct store_event *e)
{
	struct hist *h = &lp->ring[(lp->ring_head + lp->ring_n) % HISTORY];
	if (lp->ring_n == HISTORY) {
		free(h->key);
		free(h->arn);
		lp->ring_head = (lp->ring_head + 1) % HISTORY;
		lp->hist_from = lp->ring[lp->ring_head].rev;
	} else {
		lp->ring_n++;
	}
	*h = (struct hist){ .rev = e->kv.mod_revision,
			    .key = xstrdup(e->kv.key),
			    .del = e->type == STORE_EVENT_DELETE };
	if (!h->del && e->kv.value) {
		json_t *j = json_loads(e->kv.value, 0, NULL);
		const char *arn = json_string_value(json_object_get(j, "containerInstanceArn"));
		h->arn = arn ? xstrdup(arn) : NULL;
		json_decref(j);
	}
}

static void hist_clear(struct longpoll *lp, int64_t from)
{
	for (size_t i = 0; i < lp->ring_n; i++) {
		struct hist *h = &lp->ring[(lp->ring_head + i) % HISTORY];
		free(h->key);
		free(h->arn);
	}
	lp->ring_head = lp->ring_n = 0;
	lp->hist_from = from;
}

static void *watch_main(void *arg)
{
	struct longpoll *lp = arg;
	int64_t from;
	pthread_mutex_lock(&lp->mu);
	from = lp->hist_from;
	pthread_mutex_unlock(&lp->mu);
	for (;;) {
		pthread_mutex_lock(&lp->mu);
		bool stop = lp->stop;
		pthread_mutex_unlock(&lp->mu);
		if (stop)
			break;
		/* until the next deadline, at most WATCH_MAX_MS (each timed-out watch costs etcd a
		 * connection) */
		int64_t wait = WATCH_MAX_MS, t = ms_now();
		pthread_mutex_lock(&lp->mu);
		for (struct parked *p = lp->head; p; p = p->next)
			wait = MIN(wait, p->deadline - t);
		pthread_mutex_unlock(&lp->mu);
		struct store_event_list ev = { 0 };
		int r = store_watch(lp->s->store, WATCH_PREFIX, from, (int)MAX(wait, 50), &ev, NULL);
		int64_t now = ms_now();
		pthread_mutex_lock(&lp->mu);
		if (r < 0) { /* compacted or store trouble: every agent resyncs */
			for (struct parked **pp = &lp->head; *pp;)
				wake(lp, pp);
			int64_t rev = 0;
			if (store_revision(lp->s->store, &rev, NULL) == 0)
				from = rev + 1;
			lp->dispatched_upto = from - 1;
			hist_clear(lp, from);
		}
		for (size_t i = 0; r >= 0 && i < ev.n; i++)
			hist_add(lp, &ev.events[i]);
		for (size_t i = 0; r >= 0 && i < ev.n; i++)
			for (struct parked **pp = &lp->head; *pp;) {
				if (concerns(*pp, &ev.events[i]))
					wake(lp, pp);
				else
					pp = &(*pp)->next;
			}
		if (r >= 0 && ev.n) {
			from = ev.events[ev.n - 1].kv.mod_revision + 1;
			lp->dispatched_upto = from - 1;
		}
		for (struct parked **pp = &lp->head; *pp;) {
			if ((*pp)->deadline <= now)
				wake(lp, pp);
			else
				pp = &(*pp)->next;
		}
		pthread_mutex_unlock(&lp->mu);
		if (r >= 0)
			store_event_list_done(&ev);
		else
			(void)poll(NULL, 0, 200); /* do not spin on a failing store */
	}
	return NULL;
}

int server_longpoll_start(struct server *s, struct berth_error **err)
{
	struct longpoll *lp = xcalloc(1, sizeof(*lp));
	lp->s = s;
	pthread_mutex_init(&lp->mu, NULL);
	int64_t rev = 0;
	int r = store_revision(s->store, &rev, err);
	if (r < 0) {
		pthread_mutex_destroy(&lp->mu);
		free(lp);
		return r;
	}
	lp->hist_from = rev + 1;
	lp->dispatched_upto = rev;
	if (pthread_create(&lp->thread, NULL, watch_main, lp) != 0) {
		pthread_mutex_destroy(&lp->mu);
		free(lp);
		return berth_error_set(err, EAGAIN, "start the long poll watcher");
	}
	s->longpoll = lp;
	return 0;
}

void server_longpoll_stop(struct server *s)
{
	struct longpoll *lp = s->longpoll;
	if (!lp)
		return;
	pthread_mutex_lock(&lp->mu);
	lp->stop = true;
	pthread_mutex_unlock(&lp->mu);
	pthread_join(lp->thread, NULL);
	pthread_mutex_lock(&lp->mu);
	while (lp->head) /* answered at once: the server is going away */
		wake(lp, &lp->head);
	hist_clear(lp, 0);
	pthread_mutex_unlock(&lp->mu);
	pthread_mutex_destroy(&lp->mu);
	free(lp);
	s->longpoll = NULL;
}

bool server_longpoll_park(struct server *s, struct http_request *req, const char *key_prefix, const char *arn,
			  int64_t since, int wait_sec, longpoll_answer_fn answer, void *ctx)
{
	struct longpoll *lp = s->longpoll;
	if (!lp)
		return false;
	_cleanup_free_ char *prefix = xstrdup(key_prefix);
	pthread_mutex_lock(&lp->mu);
	if (lp->stop) {
		pthread_mutex_unlock(&lp->mu);
		return false;
	}
	if (since + 1 >= lp->hist_from) {
		/* the watcher saw everything after since: check in memory, park under the same lock */
		for (size_t i = 0; i < lp->ring_n; i++) {
			const struct hist *h = &lp->ring[(lp->ring_head + i) % HISTORY];
			if (h->rev > since && hist_concerns(h, prefix, arn)) {
				pthread_mutex_unlock(&lp->mu);
				return false;
			}
		}
	} else {
		/* older than the watcher's memory (a server restart, an agent far behind): ask the store */
		pthread_mutex_unlock(&lp->mu);
		int64_t checked = 0;
		if (store_revision(s->store, &checked, NULL) < 0)
			return false;
		struct store_event_list ev = { 0 };
		if (store_watch(s->store, prefix, since + 1, 1000, &ev, NULL) < 0)
			return false; /* compacted: the agent resyncs with the answer */
		bool hit = false;
		for (size_t i = 0; i < ev.n && !hit; i++)
			hit = event_concerns(&ev.events[i], prefix, arn);
		store_event_list_done(&ev);
		if (hit)
			return false;
		pthread_mutex_lock(&lp->mu);
		/* stopping, or the watcher matched events we might not have seen */
		if (lp->stop || lp->dispatched_upto > checked) {
			pthread_mutex_unlock(&lp->mu);
			return false;
		}
	}
	struct parked *p = xcalloc(1, sizeof(*p));
	*p = (struct parked){ .next = lp->head,
			      .req = req,
			      .prefix = TAKE_PTR(prefix),
			      .arn = arn ? xstrdup(arn) : NULL,
			      .deadline = ms_now() + (int64_t)wait_sec * 1000,
			      .answer = answer,
			      .ctx = ctx };
	http_request_defer(req);
	lp->head = p;
	lp->n++;
	pthread_mutex_unlock(&lp->mu);
	return true;
}
