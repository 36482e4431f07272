/*
 * lb-plan.c - the pure half of the agent's load balancer (lb.h): the
 * dataplane answer as backends, the slot assignment (which target sits in
 * which HAProxy server slot) with the runtime API commands that move it, and
 * the rendering of HAProxy's configuration and the resolver's records.
 *
 * Slots, not `add server`/`del server`: a backend has a fixed set of servers
 * s1..sN; a target keeps its slot for its whole life, so a change is one or
 * two `set server` commands and never disturbs the other servers'
 * connections or health state. More targets than slots is the one target
 * change that needs a reload.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "agent/lb.h"
#include "common/macro.h"
#include "common/strbuf.h"

static void backend_done(struct lb_backend *b)
{
	for (size_t i = 0; i < b->n_slots; i++) {
		free(b->slots[i].id);
		free(b->slots[i].addr);
	}
	free(b->slots);
	free(b->name);
	free(b->health_path);
	free(b->tls_pem);
}

void agent_lb_set_done(struct lb_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		backend_done(&s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool path_ok(const char *s)
{
	if (!s || s[0] != '/' || strlen(s) > 1024)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int int_in(const json_t *o, const char *key, int def, int min, int max)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		return def;
	json_int_t x = json_integer_value(v);
	return x < min ? min : x > max ? max : (int)x;
}

void agent_lb_set_from_answer(const json_t *lbs, struct lb_set *ret, size_t *ret_skipped)
{
	size_t i, skipped = 0;
	json_t *l;
	*ret = (struct lb_set){ 0 };
	json_array_foreach (lbs, i, l) {
		const char *name = json_string_value(json_object_get(l, "name"));
		const char *proto = json_string_value(json_object_get(l, "protocol"));
		const char *path = json_string_value(json_object_get(l, "healthCheckPath"));
		json_int_t port = json_integer_value(json_object_get(l, "port"));
		json_t *tls = json_object_get(l, "tls");
		const char *cert = json_string_value(json_object_get(tls, "certificate"));
		const char *key = json_string_value(json_object_get(tls, "privateKey"));
		bool http = proto && streq(proto, "HTTP");
		if (!name_ok(name) || port < 1 || port > 65535 || !proto || (!http && !streq(proto, "TCP")) ||
		    (http && path && !path_ok(path)) || (tls && (!cert || !key))) {
			skipped++;
			continue;
		}
		ret->v = xrealloc(ret->v, (ret->n + 1) * sizeof(*ret->v));
		ret->v[ret->n++] = (struct lb_backend){
			.name = xstrdup(name),
			.port = (int)port,
			.http = http,
			.health_path = http ? xstrdup(path ? path : "/") : NULL,
			.interval = int_in(l, "healthCheckIntervalSeconds", 5, 1, 300),
			.rise = int_in(l, "healthyThresholdCount", 2, 1, 10),
			.fall = int_in(l, "unhealthyThresholdCount", 2, 1, 10),
			.tls_pem =
			    tls ? xasprintf("%s%s%s", cert, cert[strlen(cert) - 1] == '\n' ? "" : "\n", key)
				: NULL,
		};
	}
	if (ret_skipped)
		*ret_skipped = skipped;
}

bool agent_lb_backend_listener_changed(const struct lb_backend *a, const struct lb_backend *b)
{
	return a->port != b->port || a->http != b->http || !streq_ptr(a->health_path, b->health_path) ||
	       a->interval != b->interval || a->rise != b->rise || a->fall != b->fall ||
	       !streq_ptr(a->tls_pem, b->tls_pem);
}

void agent_lb_backend_grow(struct lb_backend *b, size_t n)
{
	size_t want = b->n_slots ? b->n_slots : LB_MIN_SLOTS;
	while (want < n && want < LB_MAX_SLOTS)
		want *= 2;
	if (want > LB_MAX_SLOTS)
		want = LB_MAX_SLOTS;
	if (want <= b->n_slots)
		return;
	b->slots = xrealloc(b->slots, want * sizeof(*b->slots));
	memset(b->slots + b->n_slots, 0, (want - b->n_slots) * sizeof(*b->slots));
	b->n_slots = want;
}

void agent_lb_backend_take_slots(struct lb_backend *b, struct lb_backend *old)
{
	for (size_t i = 0; i < b->n_slots; i++) {
		free(b->slots[i].id);
		free(b->slots[i].addr);
	}
	free(b->slots);
	b->slots = old->slots;
	b->n_slots = old->n_slots;
	old->slots = NULL;
	old->n_slots = 0;
}

struct want {
	const char *id, *addr;
	int port;
	enum lb_slot_state st;
};

/* The valid targets of an answer; *ret caller frees (strings borrowed from targets). */
static size_t wanted(const json_t *targets, struct want **ret)
{
	size_t n = 0, i;
	json_t *t;
	struct want *w = xcalloc(json_array_size(targets) + 1, sizeof(*w));
	json_array_foreach (targets, i, t) {
		const char *id = json_string_value(json_object_get(t, "id"));
		const char *addr = json_string_value(json_object_get(t, "address"));
		const char *st = json_string_value(json_object_get(t, "state"));
		json_int_t port = json_integer_value(json_object_get(t, "port"));
		struct in_addr a;
		if (!id || !*id || !addr || inet_pton(AF_INET, addr, &a) != 1 || port < 1 || port > 65535 ||
		    !st || (!streq(st, "healthy") && !streq(st, "draining")))
			continue;
		bool dup = false;
		for (size_t k = 0; k < n; k++)
			dup |= streq(w[k].id, id);
		if (!dup)
			w[n++] = (struct want){ id, addr, (int)port,
						streq(st, "healthy") ? LB_SLOT_READY : LB_SLOT_DRAIN };
	}
	*ret = w;
	return n;
}

static const char *state_cmd(enum lb_slot_state st)
{
	return st == LB_SLOT_READY ? "ready" : st == LB_SLOT_DRAIN ? "drain" : "maint";
}

static void set_slot(struct lb_backend *b, size_t i, const struct want *w, struct strbuf *cmds)
{
	struct lb_slot *s = &b->slots[i];
	bool moved = !s->addr || !streq(s->addr, w->addr) || s->port != w->port;
	if (moved && cmds)
		strbuf_addf(cmds, "set server be_%s/s%zu addr %s port %d\n", b->name, i + 1, w->addr,
			    w->port);
	if ((moved || s->st != w->st) && cmds)
		strbuf_addf(cmds, "set server be_%s/s%zu state %s\n", b->name, i + 1, state_cmd(w->st));
	if (!s->id || !streq(s->id, w->id)) {
		free(s->id);
		s->id = xstrdup(w->id);
	}
	if (moved) {
		free(s->addr);
		s->addr = xstrdup(w->addr);
		s->port = w->port;
	}
	s->st = w->st;
}

bool agent_lb_plan(struct lb_backend *b, const json_t *targets, struct strbuf *cmds)
{
	_cleanup_free_ struct want *w = NULL;
	size_t n = wanted(targets, &w);
	if (n > b->n_slots)
		return false;
	bool *placed = xcalloc(n + 1, sizeof(*placed));
	/* known targets keep their slots; gone ones leave (maint: no new connections, live ones finish) */
	for (size_t i = 0; i < b->n_slots; i++) {
		struct lb_slot *s = &b->slots[i];
		if (!s->id)
			continue;
		size_t k = 0;
		while (k < n && !streq(w[k].id, s->id))
			k++;
		if (k < n) {
			set_slot(b, i, &w[k], cmds);
			placed[k] = true;
			continue;
		}
		if (cmds)
			strbuf_addf(cmds, "set server be_%s/s%zu state maint\n", b->name, i + 1);
		free(s->id);
		s->id = NULL;
		s->st = LB_SLOT_FREE;
	}
	/* new targets take free slots, lowest first */
	size_t next = 0;
	for (size_t k = 0; k < n; k++) {
		if (placed[k])
			continue;
		while (b->slots[next].id)
			next++;
		set_slot(b, next, &w[k], cmds);
	}
	free(placed);
	return true;
}

static void render_backend(const struct lb_backend *b, const char *dir, struct strbuf *out)
{
	const char *mode = b->http ? "http" : "tcp";
	strbuf_addf(out, "\nfrontend fe_%s\n    mode %s\n    bind :%d", b->name, mode, b->port);
	if (b->tls_pem)
		strbuf_addf(out, " ssl crt %s/certs/%s.pem", dir, b->name);
	strbuf_addf(out, "\n    default_backend be_%s\n", b->name);
	if (b->http)
		strbuf_addstr(out, "    option forwardfor\n");
	strbuf_addf(out, "\nbackend be_%s\n    mode %s\n    balance roundrobin\n", b->name, mode);
	if (b->http)
		strbuf_addf(out,
			    "    option httpchk GET %s\n    http-check expect status 200-399\n"
			    "    retry-on conn-failure empty-response junk-response\n"
			    "    http-request disable-l7-retry unless METH_GET || METH_OPTIONS\n",
			    b->health_path);
	strbuf_addf(out, "    default-server check inter %ds rise %d fall %d\n", b->interval, b->rise,
		    b->fall);
	for (size_t i = 0; i < b->n_slots; i++) {
		const struct lb_slot *s = &b->slots[i];
		if (s->id)
			strbuf_addf(out, "    server s%zu %s:%d%s\n", i + 1, s->addr, s->port,
				    s->st == LB_SLOT_READY ? "" : " disabled");
		else
			strbuf_addf(out, "    server s%zu 127.0.0.1:1 disabled\n", i + 1);
	}
}

void agent_lb_render_config(const struct lb_set *s, const char *dir, struct strbuf *out)
{
	strbuf_addf(out,
		    "# written by berth agent (docs/lb.md); changes are lost\n"
		    "global\n"
		    "    master-worker\n"
		    "    maxconn 8192\n"
		    "    hard-stop-after 5m\n"
		    "    stats socket %s/admin.sock mode 600 level admin expose-fd listeners\n"
		    "    server-state-file %s/server-state\n"
		    "    log stderr format short local0 warning\n"
		    "\ndefaults\n"
		    "    log global\n"
		    "    load-server-state-from-file global\n"
		    "    timeout connect 2s\n"
		    "    timeout client 60s\n"
		    "    timeout server 60s\n"
		    "    timeout http-keep-alive 10s\n"
		    "    timeout check 2s\n"
		    "    retries 3\n"
		    "    option redispatch 1\n",
		    dir, dir);
	for (size_t i = 0; i < s->n; i++)
		render_backend(&s->v[i], dir, out);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void agent_lb_render_records(const json_t *discovery, struct strbuf *out)
{
	const char *domain = json_string_value(json_object_get(discovery, "domain"));
	json_t *names = json_object_get(discovery, "names");
	if (!json_is_object(names))
		return;
	const char **keys = xcalloc(json_object_size(names) + 1, sizeof(*keys));
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach (names, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < n; i++) {
		json_t *list = json_object_get(names, keys[i]);
		for (int pass = 0; pass < (domain && *domain ? 2 : 1); pass++) {
			if (pass)
				strbuf_addf(out, "%s.%s", keys[i], domain);
			else
				strbuf_addstr(out, keys[i]);
			size_t j;
			json_t *ip;
			json_array_foreach (list, j, ip)
				if (json_is_string(ip))
					strbuf_addf(out, " %s", json_string_value(ip));
			strbuf_addch(out, '\n');
		}
	}
	free(keys);
}

/* Index of column name in a `show stat` header ("# pxname,svname,..."), or -1. */
static int stat_column(const char *header, const char *name)
{
	int i = 0;
	for (const char *p = header + 2; *p; i++) {
		size_t n = strcspn(p, ",\n");
		if (n == strlen(name) && strncmp(p, name, n) == 0)
			return i;
		if (p[n] != ',')
			break;
		p += n + 1;
	}
	return -1;
}

/* Field i of a CSV line (no quoting in HAProxy's stats), copied into buf; "" when absent. */
static const char *stat_field(const char *line, int i, char *buf, size_t size)
{
	const char *p = line;
	for (int k = 0; k < i && p; k++) {
		p = strpbrk(p, ",\n");
		p = p && *p == ',' ? p + 1 : NULL;
	}
	size_t n = p ? strcspn(p, ",\n") : 0;
	snprintf(buf, size, "%.*s", (int)MIN(n, size - 1), p ? p : "");
	return buf;
}

json_t *agent_lb_parse_stat(const char *csv)
{
	json_t *out = json_object();
	if (!csv || !startswith(csv, "# "))
		return out;
	int px = stat_column(csv, "pxname"), sv = stat_column(csv, "svname");
	int stot = stat_column(csv, "stot"), req = stat_column(csv, "req_tot");
	if (px < 0 || sv < 0 || stot < 0)
		return out;
	for (const char *l = strchr(csv, '\n'); l && *++l;) {
		char name[128], what[32], v[32];
		stat_field(l, px, name, sizeof(name));
		stat_field(l, sv, what, sizeof(what));
		if (startswith(name, "fe_") && streq(what, "FRONTEND") && name[3]) {
			const char *val = req >= 0 ? stat_field(l, req, v, sizeof(v)) : "";
			if (!*val)
				val = stat_field(l, stot, v, sizeof(v));
			char *end;
			unsigned long long n = strtoull(val, &end, 10);
			if (*val && !*end)
				json_object_set_new(
				    out, name + 3,
				    json_integer((json_int_t)MIN(n, (unsigned long long)INT64_MAX)));
		}
		l = strchr(l, '\n');
	}
	return out;
}

json_t *agent_lb_slot_map(const struct lb_set *s)
{
	json_t *out = json_object();
	for (size_t i = 0; i < s->n; i++) {
		const struct lb_backend *b = &s->v[i];
		for (size_t k = 0; k < b->n_slots; k++) {
			const struct lb_slot *sl = &b->slots[k];
			if (!sl->id || !sl->addr)
				continue;
			char key[64], addr[80];
			snprintf(key, sizeof(key), "be_%s/s%zu", b->name, k + 1);
			snprintf(addr, sizeof(addr), "%s:%d", sl->addr, sl->port);
			json_object_set_new(
			    out, key, json_pack("{s:s,s:s,s:s}", "lb", b->name, "id", sl->id, "addr", addr));
		}
	}
	return out;
}

/* One server's HAProxy status and last check -> {state, reason, description} (ELB's names), or NULL. */
static json_t *health_of(const char *status, const char *check, const char *code)
{
	if (!*status || startswith(status, "MAINT"))
		return NULL;         /* not a target on this node */
	if (startswith(check, "* ")) /* HAProxy marks the last check's result so while the next one runs */
		check += 2;
	const char *state, *reason = NULL, *desc = NULL;
	char buf[96];
	if (startswith(status, "DRAIN") || startswith(status, "NOLB")) {
		state = "draining";
		reason = "Target.DeregistrationInProgress";
		desc = "Target deregistration is in progress";
	} else if (startswith(status, "UP") || streq(status, "no check")) {
		state = "healthy";
	} else if (!*check || streq(check, "INI") || streq(check, "UNK")) {
		state = "initial";
		reason = "Elb.InitialHealthChecking";
		desc = "Initial health checks in progress";
	} else {
		state = "unhealthy";
		if (streq(check, "L7STS") && *code) {
			reason = "Target.ResponseCodeMismatch";
			snprintf(buf, sizeof(buf), "Health checks failed with these codes: [%s]", code);
			desc = buf;
		} else if (strstr(check, "TOUT")) {
			reason = "Target.Timeout";
			desc = "Request timed out";
		} else {
			reason = "Target.FailedHealthChecks";
			desc = "Health checks failed";
		}
	}
	json_t *h = json_pack("{s:s}", "state", state);
	if (reason)
		json_object_set_new(h, "reason", json_string(reason));
	if (desc)
		json_object_set_new(h, "description", json_string(desc));
	return h;
}

json_t *agent_lb_parse_health(const char *csv, const json_t *slots)
{
	json_t *out = json_object();
	/* every load balancer of the node is in the report, also without targets */
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)slots, k, v) {
		const char *lb = json_string_value(json_object_get(v, "lb"));
		if (lb && !json_object_get(out, lb))
			json_object_set_new(out, lb, json_object());
	}
	if (!csv || !startswith(csv, "# "))
		return out;
	int px = stat_column(csv, "pxname"), sv = stat_column(csv, "svname");
	int status = stat_column(csv, "status"), check = stat_column(csv, "check_status");
	int code = stat_column(csv, "check_code"), addr = stat_column(csv, "addr");
	if (px < 0 || sv < 0 || status < 0)
		return out;
	for (const char *l = strchr(csv, '\n'); l && *++l; l = strchr(l, '\n')) {
		char name[128], srv[32], st[32], chk[32] = "", cd[16] = "", ad[80] = "", key[192];
		stat_field(l, px, name, sizeof(name));
		stat_field(l, sv, srv, sizeof(srv));
		snprintf(key, sizeof(key), "%s/%s", name, srv);
		json_t *slot = json_object_get(slots, key);
		if (!slot)
			continue;
		stat_field(l, status, st, sizeof(st));
		if (check >= 0)
			stat_field(l, check, chk, sizeof(chk));
		if (code >= 0)
			stat_field(l, code, cd, sizeof(cd));
		/* a slot given to another target since the map was taken: not this target's health */
		if (addr >= 0 && *stat_field(l, addr, ad, sizeof(ad)) &&
		    !streq(ad, json_string_value(json_object_get(slot, "addr"))))
			continue;
		json_t *h = health_of(st, chk, cd);
		if (h)
			json_object_set_new(
			    json_object_get(out, json_string_value(json_object_get(slot, "lb"))),
			    json_string_value(json_object_get(slot, "id")), h);
	}
	return out;
}

void agent_lb_runtime_line(const char *cmds, struct strbuf *out)
{
	size_t n = strlen(cmds);
	while (n && (cmds[n - 1] == '\n' || cmds[n - 1] == ';'))
		n--;
	for (size_t i = 0; i < n; i++)
		strbuf_addch(out, cmds[i] == '\n' ? ';' : cmds[i]);
	strbuf_addch(out, '\n');
}

bool agent_lb_runtime_answer_ok(const char *out)
{
	/* success is an empty line per command; `set server ... addr` also says what it changed */
	static const char *const info[] = { "IP changed from", "no need to change the addr",
					    "port changed from" };
	for (const char *l = out; l && *l;) {
		size_t n = strcspn(l, "\n");
		bool blank = true;
		for (size_t i = 0; i < n; i++)
			blank &= l[i] == ' ';
		bool known = false;
		for (size_t i = 0; !blank && i < ARRAY_SIZE(info); i++)
			known |= n >= strlen(info[i]) && !strncmp(l, info[i], strlen(info[i]));
		if (!blank && !known)
			return false;
		l += n;
		if (*l)
			l++;
	}
	return true;
}

/* The slot of backend be_NAME in s holding addr:port as a ready target, or 0 (slots count from 1). */
static size_t ready_slot(const struct lb_set *s, const char *be, const char *addr, const char *port)
{
	for (size_t i = 0; i < s->n && startswith(be, "be_"); i++) {
		const struct lb_backend *b = &s->v[i];
		if (!streq(b->name, be + 3))
			continue;
		for (size_t k = 0; k < b->n_slots; k++) {
			const struct lb_slot *sl = &b->slots[k];
			char p[16];
			snprintf(p, sizeof(p), "%d", sl->port);
			if (sl->id && sl->st == LB_SLOT_READY && sl->addr && streq(sl->addr, addr) &&
			    streq(p, port))
				return k + 1;
		}
	}
	return 0;
}

#define STATE_HEADER                                                                                     \
	"# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight " \
	"srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state " \
	"srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "        \
	"srv_check_port "                                                                                \
	"srv_check_addr srv_agent_addr srv_agent_port"

char *agent_lb_server_state(const char *shown, const struct lb_set *next)
{
	struct strbuf out = STRBUF_INIT;
	strbuf_addstr(&out, "1\n" STATE_HEADER "\n");
	/* per ready slot: 0 unknown to the running worker, 1 carried (up), 2 known down */
	size_t total = 0;
	for (size_t i = 0; i < next->n; i++)
		total += next->v[i].n_slots;
	char *seen = xcalloc(total + 1, 1);
	const char *header = shown && !strncmp(shown, "1\n", 2) ? strstr(shown, "# be_id ") : NULL;
	for (const char *l = header ? header + strcspn(header, "\n") : ""; *l;) {
		l += *l == '\n';
		size_t n = strcspn(l, "\n");
		/* be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port (19th) ...
		 */
		char *line = xstrndup(l, n), *save = NULL, *f[32];
		size_t nf = 0;
		for (char *t = strtok_r(line, " ", &save); t && nf < ARRAY_SIZE(f);
		     t = strtok_r(NULL, " ", &save))
			f[nf++] = t;
		size_t slot = nf >= 19 ? ready_slot(next, f[1], f[4], f[18]) : 0;
		size_t base = 0;
		for (size_t i = 0; slot && i < next->n && !streq(next->v[i].name, f[1] + 3); i++)
			base += next->v[i].n_slots;
		bool up = slot && streq(f[5], "2") && streq(f[6], "0");
		if (slot && !seen[base + slot - 1]) {
			seen[base + slot - 1] = up ? 1 : 2;
			if (up) {
				strbuf_addf(&out, "%s %s %zu s%zu", f[0], f[1], slot, slot);
				for (size_t i = 4; i < nf; i++)
					strbuf_addf(&out, " %s", f[i]);
				strbuf_addch(&out, '\n');
			}
		}
		free(line);
		l += n;
	}
	/* targets the running worker never checked start up, as HAProxy starts a server without checks */
	size_t base = 0;
	for (size_t i = 0; i < next->n; base += next->v[i].n_slots, i++) {
		const struct lb_backend *b = &next->v[i];
		for (size_t k = 0; k < b->n_slots; k++) {
			const struct lb_slot *sl = &b->slots[k];
			if (!sl->id || sl->st != LB_SLOT_READY || !sl->addr || seen[base + k])
				continue;
			/* op state 2 running, admin 0, weights 1, check status L7OK/L4OK passed, full health,
			 * checks configured and enabled (HAProxy 2.6's values, as `show servers state` writes
			 * them) */
			strbuf_addf(&out, "0 be_%s %zu s%zu %s 2 0 1 1 0 %d 3 %d 6 0 0 0 - %d - 0 0 - - 0\n",
				    b->name, k + 1, k + 1, sl->addr, b->http ? 15 : 6, b->rise + b->fall - 1,
				    sl->port);
		}
	}
	free(seen);
	return strbuf_detach(&out, NULL);
}
