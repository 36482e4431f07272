/*
 * compose.c - compose file -> task definitions, services, load balancers
 * (see compose.h, docs/stack.md for the table).
 *
 * One pass over the located YAML tree (ytree.h): every service is mapped
 * even after an error, so a file with three mistakes reports three lines.
 * The mapping is deterministic (environment sorted, defaults explicit), so
 * the hash of a task definition changes only when the file's meaning does:
 * that is what makes a second `berth apply` a no-op.
 */
#include <ctype.h>
#include <fcntl.h>

#include "build/shlex.h"
#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "stack/compose.h"
#include "stack/ytree.h"

#define MAX_ERRORS   30
#define ENV_FILE_MAX (1u << 20)

struct ctx {
	const struct compose_opts *o;
	struct strbuf errors;
	size_t nerr;
	json_t *warnings;
	struct strbuf path; /* key path of the node being mapped: "services.web.ports[0]" */
	const struct ynode *top_networks, *top_volumes;
};

/* ---- messages ---- */

static void vreport(struct ctx *c, bool error, const struct ynode *n, const char *fmt, va_list ap)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s:%zu:%zu: %s: ", c->o->file ? c->o->file : "compose file", n ? n->line : 1,
		    n ? n->col : 1, c->path.len ? c->path.buf : "(top level)");
	strbuf_vaddf(&sb, fmt, ap);
	if (!error) {
		json_array_append_new(c->warnings, json_string(sb.buf));
		return;
	}
	if (++c->nerr <= MAX_ERRORS)
		strbuf_addf(&c->errors, "%s%s", c->errors.len ? "\n" : "", sb.buf);
}

static bool fail(struct ctx *c, const struct ynode *n, const char *fmt, ...) _printf_(3, 4);
static bool fail(struct ctx *c, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(c, true, n, fmt, ap);
	va_end(ap);
	return false;
}

static void warn(struct ctx *c, const struct ynode *n, const char *fmt, ...) _printf_(3, 4);
static void warn(struct ctx *c, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(c, false, n, fmt, ap);
	va_end(ap);
}

/* Append ".key" (or "[i]" when key is NULL) to the path; returns the length to restore. */
static size_t push(struct ctx *c, const char *key, size_t i)
{
	size_t at = c->path.len;
	if (key)
		strbuf_addf(&c->path, "%s%s", at ? "." : "", key);
	else
		strbuf_addf(&c->path, "[%zu]", i);
	return at;
}

static void pop(struct ctx *c, size_t at)
{
	strbuf_setlen(&c->path, at);
}

/* ---- keys ---- */

enum key_kind { K_OK, K_WARN, K_ERR };
struct key_rule {
	const char *name;
	enum key_kind kind;
	const char *why; /* K_WARN / K_ERR */
};

/* Unknown keys are errors; x-* extension keys are ignored, as compose does. */
static bool check_keys(struct ctx *c, const struct ynode *m, const struct key_rule *rules, size_t n)
{
	if (!m || m->kind != YNODE_MAP)
		return fail(c, m, "expected a mapping, got %s", stack_ynode_kind_name(m));
	bool ok = true;
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i]->str;
		if (startswith(k, "x-"))
			continue;
		size_t j;
		for (j = 0; j < n && !streq(rules[j].name, k); j++)
			;
		size_t at = push(c, k, 0);
		if (j == n)
			ok = fail(c, m->keys[i], "unknown key '%s'", k);
		else if (rules[j].kind == K_ERR)
			ok = fail(c, m->keys[i], "'%s' is not supported on berth: %s", k, rules[j].why);
		else if (rules[j].kind == K_WARN)
			warn(c, m->keys[i], "%s", rules[j].why);
		pop(c, at);
	}
	return ok;
}

/* ---- scalars ---- */

/* ${VAR}, $VAR, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $$ (compose's interpolation). */
static bool interpolate(struct ctx *c, const struct ynode *n, const char *s, char **ret)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	for (const char *p = s; *p;) {
		if (*p != '$') {
			strbuf_addch(&out, *p++);
			continue;
		}
		if (p[1] == '$') {
			strbuf_addch(&out, '$');
			p += 2;
			continue;
		}
		bool braced = p[1] == '{';
		const char *name = p + 1 + braced, *e = name;
		while (isalnum((unsigned char)*e) || *e == '_')
			e++;
		if (e == name || isdigit((unsigned char)*name)) {
			if (braced)
				return fail(c, n, "invalid interpolation format in '%s'", s);
			strbuf_addch(&out, *p++); /* a lone '$' stays */
			continue;
		}
		_cleanup_free_ char *var = xstrndup(name, (size_t)(e - name));
		const char *val = c->o->getenv ? c->o->getenv(var, c->o->env_ctx) : NULL;
		_cleanup_free_ char *opbuf = NULL, *argbuf = NULL;
		if (braced) {
			const char *close = strchr(e, '}');
			if (!close)
				return fail(c, n, "invalid interpolation format in '%s': missing '}'", s);
			size_t oplen = strspn(e, ":-?");
			if (oplen > 2 || (oplen == 2 && e[0] != ':') || (oplen == 0 && e != close))
				return fail(c, n, "invalid interpolation format in '%s'", s);
			opbuf = xstrndup(e, oplen);
			argbuf = xstrndup(e + oplen, (size_t)(close - e) - oplen);
			p = close + 1;
		} else {
			p = e;
		}
		const char *op = opbuf ? opbuf : "", *arg = argbuf ? argbuf : "";
		bool unset = !val, empty = !val || !*val;
		const char *use = val ? val : "";
		if ((streq(op, ":-") && empty) || (streq(op, "-") && unset))
			use = arg;
		if ((streq(op, ":?") && empty) || (streq(op, "?") && unset))
			return fail(c, n, "required variable '%s' is missing a value%s%s", var,
				    *arg ? ": " : "", arg);
		if (!*op && unset)
			warn(c, n, "the variable '%s' is not set, defaulting to a blank string", var);
		strbuf_addstr(&out, use);
	}
	*ret = strbuf_detach(&out, NULL);
	return true;
}

/* The interpolated text of a scalar (numbers and booleans as written); NULL after an error. */
static char *sval(struct ctx *c, const struct ynode *n)
{
	if (!n || n->kind != YNODE_SCALAR) {
		fail(c, n, "expected a string, got %s", stack_ynode_kind_name(n));
		return NULL;
	}
	char *s = NULL;
	return interpolate(c, n, n->str, &s) ? s : NULL;
}

static bool ival(struct ctx *c, const struct ynode *n, long long min, long long max, long long *ret)
{
	_cleanup_free_ char *s = sval(c, n);
	int64_t v;
	if (!s)
		return false;
	if (util_parse_int64(s, &v) < 0 || v < min || v > max)
		return fail(c, n, "expected an integer from %lld to %lld, got '%s'", min, max, s);
	*ret = v;
	return true;
}

static bool bval(struct ctx *c, const struct ynode *n, bool *ret)
{
	_cleanup_free_ char *s = sval(c, n);
	if (!s)
		return false;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
		*ret = true;
	else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
		*ret = false;
	else
		return fail(c, n, "expected true or false, got '%s'", s);
	return true;
}

/* A Go duration ("1m30s", "500ms") or a number of seconds, as whole seconds rounded up. */
static bool secs(struct ctx *c, const struct ynode *n, long long *ret)
{
	_cleanup_free_ char *s = sval(c, n);
	int64_t ns, v;
	if (!s)
		return false;
	if (util_parse_int64(s, &v) == 0 && v >= 0)
		ns = v * 1000000000LL;
	else if (util_parse_duration_ns(s, &ns) < 0 || ns < 0)
		return fail(c, n, "invalid duration '%s' (expected e.g. 30s, 1m30s, 500ms)", s);
	*ret = (ns + 999999999LL) / 1000000000LL;
	return true;
}

/* Bytes ("512M", "1g", 1048576) as MiB rounded up. */
static bool mib(struct ctx *c, const struct ynode *n, long long *ret)
{
	_cleanup_free_ char *s = sval(c, n);
	int64_t b;
	if (!s)
		return false;
	if (util_parse_bytes(s, &b) < 0 || b <= 0)
		return fail(c, n, "invalid size '%s' (expected e.g. 512M, 1G)", s);
	*ret = (b + (1 << 20) - 1) >> 20;
	return true;
}

/* A string (split like a shell would, without expansion) or a list of strings. */
static json_t *words(struct ctx *c, const struct ynode *n)
{
	if (n && n->kind == YNODE_SEQ) {
		json_t *a = json_array();
		for (size_t i = 0; i < n->n; i++) {
			size_t at = push(c, NULL, i);
			char *s = sval(c, n->vals[i]);
			pop(c, at);
			if (!s)
				return json_decref(a), NULL;
			json_array_append_new(a, json_string(s));
			free(s);
		}
		return a;
	}
	_cleanup_free_ char *s = sval(c, n);
	if (!s)
		return NULL;
	char *const env[] = { NULL };
	char **v = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	if (build_shlex_process_words(s, '\\', env, SHLEX_SKIP_UNSET, &v, &e) < 0) {
		_cleanup_free_ char *m = berth_error_string(e);
		fail(c, n, "cannot split '%s': %s", s, m);
		return NULL;
	}
	json_t *a = json_array();
	for (char **w = v; *w; w++) {
		json_array_append_new(a, json_string(*w));
		free(*w);
	}
	free(v);
	return a;
}

/* A string or a list of strings, as a list. */
static json_t *strings(struct ctx *c, const struct ynode *n)
{
	if (n && n->kind == YNODE_SCALAR) {
		_cleanup_free_ char *s = sval(c, n);
		return s ? json_pack("[s]", s) : NULL;
	}
	if (!n || n->kind != YNODE_SEQ) {
		fail(c, n, "expected a string or a list of strings, got %s", stack_ynode_kind_name(n));
		return NULL;
	}
	return words(c, n);
}

/*
 * A list of "K=V" (or "K" alone: sep_value NULL) or a mapping K: V, as an ordered object.
 * null values: from the environment for environment, "" for labels.
 */
static bool kv_into(struct ctx *c, const struct ynode *n, json_t *into, bool from_env)
{
	bool ok = true;
	if (n->kind == YNODE_MAP) {
		for (size_t i = 0; i < n->n; i++) {
			size_t at = push(c, n->keys[i]->str, 0);
			const struct ynode *v = n->vals[i];
			if (stack_ynode_is_null(v)) {
				const char *e = from_env && c->o->getenv
						    ? c->o->getenv(n->keys[i]->str, c->o->env_ctx)
						    : NULL;
				if (e || !from_env)
					json_object_set_new(into, n->keys[i]->str, json_string(e ? e : ""));
			} else {
				char *s = sval(c, v);
				if (s)
					json_object_set_new(into, n->keys[i]->str, json_string(s));
				ok &= s != NULL;
				free(s);
			}
			pop(c, at);
		}
		return ok;
	}
	if (n->kind != YNODE_SEQ)
		return fail(c, n, "expected a list or a mapping, got %s", stack_ynode_kind_name(n));
	for (size_t i = 0; i < n->n; i++) {
		size_t at = push(c, NULL, i);
		_cleanup_free_ char *s = sval(c, n->vals[i]);
		pop(c, at);
		if (!s) {
			ok = false;
			continue;
		}
		char *eq = strchr(s, '=');
		if (eq) {
			*eq = '\0';
			json_object_set_new(into, s, json_string(eq + 1));
		} else if (from_env) {
			const char *e = c->o->getenv ? c->o->getenv(s, c->o->env_ctx) : NULL;
			if (e)
				json_object_set_new(into, s, json_string(e));
		} else {
			json_object_set_new(into, s, json_string(""));
		}
	}
	return ok;
}

static bool ident_valid(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

bool stack_compose_stack_name_valid(const char *s)
{
	if (!ident_valid(s, STACK_NAME_MAX))
		return false;
	for (const char *p = s; *p; p++)
		if (isupper((unsigned char)*p))
			return false;
	return true;
}

char *stack_compose_default_stack_name(const char *dir)
{
	_cleanup_free_ char *clean = fs_path_clean(dir && *dir ? dir : ".");
	const char *base = strrchr(clean, '/');
	base = base && base[1] ? base + 1 : clean;
	struct strbuf sb = STRBUF_INIT;
	for (const char *p = base; *p && sb.len < STACK_NAME_MAX; p++)
		if (isalnum((unsigned char)*p) || ((*p == '-' || *p == '_') && sb.len))
			strbuf_addch(&sb, (char)tolower((unsigned char)*p));
	return strbuf_detach(&sb, NULL);
}

char *stack_compose_lb_name(const char *stack, const char *service, long port)
{
	_cleanup_free_ char *full = xasprintf("%s-%s-%ld", stack, service, port);
	for (char *p = full; *p; p++)
		if (!isalnum((unsigned char)*p))
			*p = '-';
	if (strlen(full) <= 32)
		return TAKE_PTR(full);
	char hex[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, full, strlen(full), hex);
	/* a prefix that names the stack and service, then a hash that keeps it unique */
	return xasprintf("%.23s-%.8s", full, hex + strlen("sha256:"));
}

/* ---- ports ---- */

struct port {
	long long published, target;
	const char *protocol;
};

/* "N" or "A-B" into [lo, hi]. */
static bool port_range(const char *s, long long *lo, long long *hi)
{
	const char *dash = strchr(s, '-');
	_cleanup_free_ char *a = dash ? xstrndup(s, (size_t)(dash - s)) : xstrdup(s);
	int64_t x, y;
	if (util_parse_int64(a, &x) < 0 || (dash && util_parse_int64(dash + 1, &y) < 0))
		return false;
	if (!dash)
		y = x;
	*lo = x;
	*hi = y;
	return x >= 1 && y <= 65535 && x <= y;
}

/* Short syntax: [[IP:]PUBLISHED:]TARGET[/PROTO], ranges of equal length expanded. */
static bool port_short(struct ctx *c, const struct ynode *n, json_t *out)
{
	_cleanup_free_ char *s = sval(c, n);
	if (!s)
		return false;
	char *proto = strchr(s, '/');
	if (proto)
		*proto++ = '\0';
	if (proto && !streq(proto, "tcp") && !streq(proto, "udp"))
		return fail(c, n, "invalid protocol '%s' (expected tcp or udp)", proto);
	char *last = strrchr(s, ':'), *pub = NULL;
	if (last) {
		*last = '\0';
		char *ip = strrchr(s, ':');
		pub = ip ? ip + 1 : s;
		if (ip)
			return fail(c, n,
				    "a host IP in a port ('%s') is not supported: published ports listen "
				    "on every node",
				    n->str);
	}
	const char *target = last ? last + 1 : s;
	long long tlo, thi, plo = 0, phi = 0;
	if (!port_range(target, &tlo, &thi) || (pub && *pub && !port_range(pub, &plo, &phi)))
		return fail(c, n, "invalid port '%s' (expected [PUBLISHED:]TARGET[/PROTOCOL], 1-65535)",
			    n->str);
	if (pub && *pub && phi - plo != thi - tlo)
		return fail(c, n, "invalid port '%s': the published and target ranges differ in length",
			    n->str);
	for (long long p = tlo; p <= thi; p++)
		json_array_append_new(out, json_pack("{s:I,s:I,s:s}", "target", p, "published",
						     pub && *pub ? plo + (p - tlo) : 0, "protocol",
						     proto ? proto : "tcp"));
	return true;
}

static bool port_long(struct ctx *c, const struct ynode *n, json_t *out)
{
	static const struct key_rule rules[] = {
		{ "target", K_OK, NULL },
		{ "published", K_OK, NULL },
		{ "protocol", K_OK, NULL },
		{ "mode", K_OK, NULL },
		{ "name", K_OK, NULL },
		{ "app_protocol", K_WARN, "app_protocol has no effect on berth" },
		{ "host_ip", K_ERR, "published ports listen on every node" },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	long long target = 0, published = 0;
	const struct ynode *t = stack_ynode_get(n, "target"), *p = stack_ynode_get(n, "published");
	if (!t)
		return fail(c, n, "'target' is required");
	if (!ival(c, t, 1, 65535, &target) || (p && !ival(c, p, 1, 65535, &published)))
		return false;
	_cleanup_free_ char *proto =
	    stack_ynode_get(n, "protocol") ? sval(c, stack_ynode_get(n, "protocol")) : xstrdup("tcp");
	_cleanup_free_ char *mode =
	    stack_ynode_get(n, "mode") ? sval(c, stack_ynode_get(n, "mode")) : xstrdup("ingress");
	if (!proto || !mode)
		return false;
	if (!streq(proto, "tcp") && !streq(proto, "udp"))
		return fail(c, stack_ynode_get(n, "protocol"), "invalid protocol '%s' (expected tcp or udp)",
			    proto);
	if (streq(mode, "host"))
		return fail(c, stack_ynode_get(n, "mode"),
			    "mode 'host' is not supported: awsvpc tasks have their own address; use "
			    "mode 'ingress' (a load balancer on every node)");
	if (!streq(mode, "ingress"))
		return fail(c, stack_ynode_get(n, "mode"), "invalid mode '%s' (expected ingress)", mode);
	json_array_append_new(
	    out, json_pack("{s:I,s:I,s:s}", "target", target, "published", published, "protocol", proto));
	return true;
}

/* ports and expose -> portMappings, published ports -> load balancers. */
static bool map_ports(struct ctx *c, const char *svc, const struct ynode *sn, json_t *def, json_t *published)
{
	_cleanup_json_ json_t *all = json_array();
	bool ok = true;
	const struct ynode *ports = stack_ynode_get(sn, "ports"), *expose = stack_ynode_get(sn, "expose");
	if (ports) {
		size_t at = push(c, "ports", 0);
		if (ports->kind != YNODE_SEQ)
			ok = fail(c, ports, "expected a list, got %s", stack_ynode_kind_name(ports));
		for (size_t i = 0; ports->kind == YNODE_SEQ && i < ports->n; i++) {
			size_t at2 = push(c, NULL, i);
			const struct ynode *p = ports->vals[i];
			ok &= p->kind == YNODE_MAP ? port_long(c, p, all) : port_short(c, p, all);
			size_t k;
			json_t *x;
			json_array_foreach (all, k, x) {
				long long pub = json_integer_value(json_object_get(x, "published"));
				if (pub && json_object_get(x, "line") == NULL) {
					json_object_set_new(x, "line", json_integer((json_int_t)p->line));
					if (streq(json_string_value(json_object_get(x, "protocol")), "udp"))
						ok = fail(c, p,
							  "a published udp port is not supported (load "
							  "balancers are tcp/http)");
				}
			}
			pop(c, at2);
		}
		pop(c, at);
	}
	if (expose) {
		size_t at = push(c, "expose", 0);
		json_t *e = strings(c, expose);
		size_t i;
		json_t *x;
		json_array_foreach (e, i, x) {
			_cleanup_free_ char *s = xstrdup(json_string_value(x));
			char *proto = strchr(s, '/');
			if (proto)
				*proto++ = '\0';
			long long lo, hi;
			if (!port_range(s, &lo, &hi) ||
			    (proto && !streq(proto, "tcp") && !streq(proto, "udp"))) {
				ok = fail(c, expose, "invalid port '%s'", json_string_value(x));
				continue;
			}
			for (long long p = lo; p <= hi; p++)
				json_array_append_new(all,
						      json_pack("{s:I,s:I,s:s}", "target", p, "published", 0,
								"protocol", proto ? proto : "tcp"));
		}
		ok &= e != NULL;
		json_decref(e);
		pop(c, at);
	}
	json_t *pm = json_array(), *seen = json_object();
	size_t i;
	json_t *x;
	json_array_foreach (all, i, x) {
		long long t = json_integer_value(json_object_get(x, "target"));
		long long pub = json_integer_value(json_object_get(x, "published"));
		const char *proto = json_string_value(json_object_get(x, "protocol"));
		_cleanup_free_ char *key = xasprintf("%lld/%s", t, proto);
		if (!json_object_get(seen, key)) {
			json_object_set_new(seen, key, json_true());
			json_array_append_new(pm,
					      json_pack("{s:I,s:s}", "containerPort", t, "protocol", proto));
		}
		if (!pub)
			continue;
		size_t k;
		json_t *y;
		bool dup = false;
		json_array_foreach (published, k, y)
			dup |= json_integer_value(json_object_get(y, "published")) == pub;
		if (dup) {
			ok = fail(c, ports, "port %lld is published twice", pub);
			continue;
		}
		_cleanup_free_ char *lb = stack_compose_lb_name(c->o->stack, svc, pub);
		json_array_append_new(published, json_pack("{s:I,s:I,s:s,s:s,s:O}", "published", pub,
							   "target", t, "protocol", "tcp", "lb", lb, "line",
							   json_object_get(x, "line")));
	}
	json_decref(seen);
	json_object_set_new(def, "portMappings", pm);
	if (json_array_size(published) > 5)
		ok = fail(c, ports, "%zu published ports: an ECS service takes at most 5 load balancers",
			  json_array_size(published));
	return ok;
}

/* ---- volumes ---- */

struct vol_ctx {
	json_t *volumes; /* the task definition's */
	json_t *mounts;  /* the container's mountPoints */
	json_t *tmpfs;   /* linuxParameters.tmpfs */
	unsigned binds, anon;
};

/* A named volume of the file: the task volume "STACK_NAME" shared by name on each node, as Swarm names it. */
static bool named_volume(struct ctx *c, const struct ynode *n, const char *src, struct vol_ctx *v,
			 const char **ret_name, char **ret_owned)
{
	const struct ynode *decl = NULL;
	bool declared = false;
	for (size_t i = 0; c->top_volumes && c->top_volumes->kind == YNODE_MAP && i < c->top_volumes->n; i++)
		if (streq(c->top_volumes->keys[i]->str, src)) {
			decl = c->top_volumes->vals[i];
			declared = true;
		}
	if (!declared)
		return fail(c, n, "volume '%s' is not declared in the top-level 'volumes'", src);
	_cleanup_free_ char *explicit =
	    stack_ynode_get(decl, "name") ? sval(c, stack_ynode_get(decl, "name")) : NULL;
	bool external = false;
	if (stack_ynode_get(decl, "external") && stack_ynode_get(decl, "external")->kind == YNODE_SCALAR)
		bval(c, stack_ynode_get(decl, "external"), &external);
	char *name = explicit   ? xstrdup(explicit)
		     : external ? xstrdup(src)
				: xasprintf("%s_%s", c->o->stack, src);
	if (!ident_valid(name, 255)) {
		fail(c, n, "volume name '%s' must be letters, digits, '-' and '_' on berth", name);
		free(name);
		return false;
	}
	size_t i;
	json_t *x;
	bool have = false;
	json_array_foreach (v->volumes, i, x)
		have |= streq(json_string_value(json_object_get(x, "name")), name);
	if (!have) {
		json_t *dvc = json_pack("{s:s,s:b,s:s}", "scope", "shared", "autoprovision", !external,
					"driver", "local");
		json_t *opts = json_object();
		if (stack_ynode_get(decl, "driver_opts") &&
		    kv_into(c, stack_ynode_get(decl, "driver_opts"), opts, false) && json_object_size(opts))
			json_object_set(dvc, "driverOpts", opts);
		json_decref(opts);
		json_array_append_new(v->volumes,
				      json_pack("{s:s,s:o}", "name", name, "dockerVolumeConfiguration", dvc));
	}
	*ret_name = name;
	*ret_owned = name;
	return true;
}

static bool add_mount(struct ctx *c, const struct ynode *n, const char *type, const char *src,
		      const char *target, bool ro, long long tmpfs_mib, struct vol_ctx *v)
{
	if (!target || target[0] != '/')
		return fail(c, n, "the target '%s' must be an absolute path in the container",
			    target ? target : "");
	if (streq(type, "tmpfs")) {
		json_array_append_new(v->tmpfs, json_pack("{s:s,s:I}", "containerPath", target, "size",
							  tmpfs_mib ? tmpfs_mib : 64));
		return true;
	}
	const char *name = NULL;
	_cleanup_free_ char *owned = NULL;
	if (streq(type, "bind")) {
		if (!src || src[0] != '/')
			return fail(
			    c, n,
			    "the bind source '%s' is relative: on a cluster a bind mount names a path "
			    "on the node, so it must be absolute",
			    src ? src : "");
		owned = xasprintf("bind-%u", v->binds++);
		name = owned;
		json_array_append_new(v->volumes,
				      json_pack("{s:s,s:{s:s}}", "name", name, "host", "sourcePath", src));
	} else if (!src || !*src) {
		owned = xasprintf("anon-%u", v->anon++);
		name = owned;
		json_array_append_new(v->volumes, json_pack("{s:s}", "name", name));
	} else {
		char *tmp = NULL;
		if (!named_volume(c, n, src, v, &name, &tmp))
			return false;
		owned = tmp;
	}
	json_array_append_new(v->mounts, json_pack("{s:s,s:s,s:b}", "sourceVolume", name, "containerPath",
						   target, "readOnly", ro));
	return true;
}

/* "SRC:TARGET[:ro|rw]" or "TARGET". */
static bool volume_short(struct ctx *c, const struct ynode *n, struct vol_ctx *v)
{
	_cleanup_free_ char *s = sval(c, n);
	if (!s)
		return false;
	char *parts[3] = { s, NULL, NULL };
	size_t np = 1;
	for (char *p = s; *p && np < 3; p++)
		if (*p == ':') {
			*p = '\0';
			parts[np++] = p + 1;
		}
	bool ro = false;
	if (np == 3) {
		if (streq(parts[2], "ro"))
			ro = true;
		else if (!streq(parts[2], "rw"))
			return fail(c, n, "unsupported volume mode '%s' (expected ro or rw)", parts[2]);
	}
	if (np == 1)
		return add_mount(c, n, "volume", NULL, parts[0], false, 0, v);
	const char *src = parts[0];
	bool path = src[0] == '/' || src[0] == '.' || src[0] == '~';
	return add_mount(c, n, path ? "bind" : "volume", src, parts[1], ro, 0, v);
}

static bool volume_long(struct ctx *c, const struct ynode *n, struct vol_ctx *v)
{
	static const struct key_rule rules[] = {
		{ "type", K_OK, NULL },
		{ "source", K_OK, NULL },
		{ "target", K_OK, NULL },
		{ "read_only", K_OK, NULL },
		{ "tmpfs", K_OK, NULL },
		{ "volume", K_WARN, "volume options (nocopy) have no effect on berth" },
		{ "bind", K_WARN, "bind options (propagation, create_host_path) have no effect on berth" },
		{ "consistency", K_WARN, "consistency has no effect on Linux" },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	_cleanup_free_ char *type = stack_ynode_get(n, "type") ? sval(c, stack_ynode_get(n, "type")) : NULL;
	_cleanup_free_ char *src =
	    stack_ynode_get(n, "source") ? sval(c, stack_ynode_get(n, "source")) : NULL;
	_cleanup_free_ char *target =
	    stack_ynode_get(n, "target") ? sval(c, stack_ynode_get(n, "target")) : NULL;
	bool ro = false;
	long long size = 0;
	if (!type)
		return fail(c, n, "'type' is required (volume, bind or tmpfs)");
	if (stack_ynode_get(n, "read_only") && !bval(c, stack_ynode_get(n, "read_only"), &ro))
		return false;
	const struct ynode *tn = stack_ynode_get(stack_ynode_get(n, "tmpfs"), "size");
	if (tn && !mib(c, tn, &size))
		return false;
	if (!streq(type, "volume") && !streq(type, "bind") && !streq(type, "tmpfs"))
		return fail(c, stack_ynode_get(n, "type"),
			    "unsupported volume type '%s' (expected volume, bind or tmpfs)", type);
	return add_mount(c, n, type, src, target, ro, size, v);
}

static bool map_volumes(struct ctx *c, const struct ynode *sn, json_t *td, json_t *def)
{
	struct vol_ctx v = { json_array(), json_array(), json_array(), 0, 0 };
	bool ok = true;
	const struct ynode *vols = stack_ynode_get(sn, "volumes"), *tmpfs = stack_ynode_get(sn, "tmpfs");
	if (vols) {
		size_t at = push(c, "volumes", 0);
		if (vols->kind != YNODE_SEQ)
			ok = fail(c, vols, "expected a list, got %s", stack_ynode_kind_name(vols));
		for (size_t i = 0; vols->kind == YNODE_SEQ && i < vols->n; i++) {
			size_t at2 = push(c, NULL, i);
			ok &= vols->vals[i]->kind == YNODE_MAP ? volume_long(c, vols->vals[i], &v)
							       : volume_short(c, vols->vals[i], &v);
			pop(c, at2);
		}
		pop(c, at);
	}
	if (tmpfs) {
		size_t at = push(c, "tmpfs", 0);
		json_t *l = strings(c, tmpfs);
		size_t i;
		json_t *x;
		json_array_foreach (l, i, x)
			ok &= add_mount(c, tmpfs, "tmpfs", NULL, json_string_value(x), false, 0, &v);
		ok &= l != NULL;
		json_decref(l);
		pop(c, at);
	}
	json_object_set_new(td, "volumes", v.volumes);
	json_object_set_new(def, "mountPoints", v.mounts);
	if (json_array_size(v.tmpfs))
		json_object_set_new(json_object_get(def, "linuxParameters"), "tmpfs", v.tmpfs);
	else
		json_decref(v.tmpfs);
	return ok;
}

/* ---- healthcheck ---- */

static bool clamp_secs(struct ctx *c, const struct ynode *n, const char *key, long long lo, long long hi,
		       long long dflt, json_t *hc, const char *ecs_key)
{
	long long v = dflt;
	const struct ynode *x = stack_ynode_get(n, key);
	if (x) {
		size_t at = push(c, key, 0);
		bool ok = secs(c, x, &v);
		if (ok && (v < lo || v > hi)) {
			warn(c, x, "%lld s is outside ECS's range for %s (%lld-%lld s), using %lld s", v,
			     ecs_key, lo, hi, v < lo ? lo : hi);
			v = v < lo ? lo : hi;
		}
		pop(c, at);
		if (!ok)
			return false;
	}
	json_object_set_new(hc, ecs_key, json_integer(v));
	return true;
}

static bool map_healthcheck(struct ctx *c, const struct ynode *n, json_t *def)
{
	static const struct key_rule rules[] = {
		{ "test", K_OK, NULL },
		{ "interval", K_OK, NULL },
		{ "timeout", K_OK, NULL },
		{ "retries", K_OK, NULL },
		{ "start_period", K_OK, NULL },
		{ "disable", K_OK, NULL },
		{ "start_interval", K_WARN, "start_interval has no ECS equivalent, ignoring" },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	bool disable = false;
	if (stack_ynode_get(n, "disable") && !bval(c, stack_ynode_get(n, "disable"), &disable))
		return false;
	const struct ynode *t = stack_ynode_get(n, "test");
	if (disable)
		return true;
	if (!t)
		return fail(c, n, "'test' is required (berth's images carry no HEALTHCHECK to inherit)");
	_cleanup_json_ json_t *cmd = NULL;
	size_t at = push(c, "test", 0);
	if (t->kind == YNODE_SCALAR) {
		char *s = sval(c, t);
		cmd = s ? json_pack("[s,s]", "CMD-SHELL", s) : NULL;
		free(s);
	} else {
		cmd = words(c, t);
	}
	const char *first = json_string_value(json_array_get(cmd, 0));
	bool ok = cmd != NULL;
	if (cmd && first && streq(first, "NONE")) {
		pop(c, at);
		return true;
	}
	if (cmd &&
	    (!first || (!streq(first, "CMD") && !streq(first, "CMD-SHELL")) || json_array_size(cmd) < 2))
		ok = fail(c, t, "expected [\"CMD\", ...], [\"CMD-SHELL\", \"...\"], [\"NONE\"] or a string");
	pop(c, at);
	if (!ok)
		return false;
	json_t *hc = json_pack("{s:O}", "command", cmd);
	json_object_set_new(def, "healthCheck", hc);
	long long retries = 3;
	if (stack_ynode_get(n, "retries")) {
		size_t a2 = push(c, "retries", 0);
		ok = ival(c, stack_ynode_get(n, "retries"), 1, 10, &retries);
		pop(c, a2);
	}
	json_object_set_new(hc, "retries", json_integer(retries));
	/* Swarm's defaults: 30 s interval and timeout */
	return ok && clamp_secs(c, n, "interval", 5, 300, 30, hc, "interval") &&
	       clamp_secs(c, n, "timeout", 2, 60, 30, hc, "timeout") &&
	       clamp_secs(c, n, "start_period", 0, 300, 0, hc, "startPeriod");
}

/* ---- deploy ---- */

/* "node.labels.zone == a" -> "attribute:zone == a". */
static bool constraint(struct ctx *c, const struct ynode *n, json_t *out)
{
	_cleanup_free_ char *s = sval(c, n);
	if (!s)
		return false;
	const char *op = strstr(s, "==") ? "==" : strstr(s, "!=") ? "!=" : NULL;
	if (!op)
		return fail(c, n, "invalid constraint '%s' (expected KEY==VALUE or KEY!=VALUE)", s);
	char *at = strstr(s, op);
	*at = '\0';
	char *lhs = s, *rhs = at + 2;
	while (*lhs == ' ')
		lhs++;
	for (char *e = lhs + strlen(lhs); e > lhs && e[-1] == ' ';)
		*--e = '\0';
	while (*rhs == ' ')
		rhs++;
	for (char *e = rhs + strlen(rhs); e > rhs && e[-1] == ' ';)
		*--e = '\0';
	const char *attr = NULL;
	_cleanup_free_ char *owned = NULL;
	if (startswith(lhs, "node.labels."))
		attr = lhs + strlen("node.labels.");
	else if (startswith(lhs, "engine.labels."))
		attr = lhs + strlen("engine.labels.");
	else if (streq(lhs, "node.platform.os"))
		attr = "ecs.os-type";
	else if (streq(lhs, "node.platform.arch"))
		attr = "ecs.cpu-architecture";
	for (const char *p = attr ? attr : ""; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_./", *p))
			return fail(c, n, "invalid node label '%s' in a constraint", attr);
	if (!attr || !*attr)
		return fail(
		    c, n,
		    "unsupported constraint '%s' (berth knows node.labels.*, engine.labels.*, "
		    "node.platform.os and node.platform.arch: node labels are the agents' --attribute)",
		    lhs);
	for (const char *p = rhs; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_.:/", *p))
			return fail(c, n, "unsupported value '%s' in a constraint", rhs);
	if (!*rhs)
		return fail(c, n, "empty value in constraint");
	owned = xasprintf("attribute:%s %s %s", attr, op, rhs);
	json_array_append_new(out, json_pack("{s:s,s:s}", "type", "memberOf", "expression", owned));
	return true;
}

static bool map_placement(struct ctx *c, const struct ynode *n, json_t *svc, bool daemon)
{
	static const struct key_rule rules[] = {
		{ "constraints", K_OK, NULL },
		{ "preferences", K_OK, NULL },
		{ "max_replicas_per_node", K_OK, NULL },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	bool ok = true;
	json_t *cons = json_object_get(svc, "placementConstraints");
	json_t *strat = json_object_get(svc, "placementStrategy");
	const struct ynode *cn = stack_ynode_get(n, "constraints"), *pn = stack_ynode_get(n, "preferences");
	if (cn) {
		size_t at = push(c, "constraints", 0);
		if (cn->kind != YNODE_SEQ)
			ok = fail(c, cn, "expected a list, got %s", stack_ynode_kind_name(cn));
		for (size_t i = 0; cn->kind == YNODE_SEQ && i < cn->n; i++) {
			size_t a2 = push(c, NULL, i);
			ok &= constraint(c, cn->vals[i], cons);
			pop(c, a2);
		}
		pop(c, at);
	}
	if (pn) {
		size_t at = push(c, "preferences", 0);
		if (pn->kind != YNODE_SEQ)
			ok = fail(c, pn, "expected a list, got %s", stack_ynode_kind_name(pn));
		for (size_t i = 0; pn->kind == YNODE_SEQ && i < pn->n; i++) {
			size_t a2 = push(c, NULL, i);
			static const struct key_rule prules[] = { { "spread", K_OK, NULL } };
			const struct ynode *sp = stack_ynode_get(pn->vals[i], "spread");
			_cleanup_free_ char *s = NULL;
			if (!check_keys(c, pn->vals[i], prules, 1)) {
				ok = false;
			} else if (!sp) {
				ok = fail(c, pn->vals[i], "expected {spread: node.labels.KEY}");
			} else if (!(s = sval(c, sp))) {
				ok = false;
			} else if (!startswith(s, "node.labels.") || !s[strlen("node.labels.")] ||
				   strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
					     "_./") != strlen(s)) {
				ok = fail(c, sp, "unsupported preference '%s' (expected node.labels.KEY)", s);
			} else if (daemon) {
				warn(c, sp,
				     "a global service runs on every node: preferences have no effect");
			} else {
				_cleanup_free_ char *f =
				    xasprintf("attribute:%s", s + strlen("node.labels."));
				json_array_append_new(strat,
						      json_pack("{s:s,s:s}", "type", "spread", "field", f));
			}
			pop(c, a2);
		}
		pop(c, at);
	}
	if (stack_ynode_get(n, "max_replicas_per_node")) {
		long long m = 0;
		size_t at = push(c, "max_replicas_per_node", 0);
		if (!ival(c, stack_ynode_get(n, "max_replicas_per_node"), 0, 1000000, &m))
			ok = false;
		else if (m == 1)
			json_array_append_new(cons, json_pack("{s:s}", "type", "distinctInstance"));
		else if (m > 1)
			warn(c, stack_ynode_get(n, "max_replicas_per_node"),
			     "ECS can only limit to 1 task per node (distinctInstance), ignoring %lld", m);
		pop(c, at);
	}
	return ok;
}

static bool map_update_config(struct ctx *c, const struct ynode *n, long long replicas, bool daemon,
			      bool rollback, json_t *dc)
{
	static const struct key_rule rules[] = {
		{ "parallelism", K_OK, NULL },
		{ "order", K_OK, NULL },
		{ "failure_action", K_OK, NULL },
		{ "delay", K_WARN, "ECS starts the next batch as soon as the last is healthy, ignoring" },
		{ "monitor", K_WARN, "berth watches new tasks for 3 s (its fixed monitor window), ignoring" },
		{ "max_failure_ratio", K_WARN,
		  "the circuit breaker's threshold is ECS's (half the desired count, 3 to 200), ignoring" },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	long long par = 1;
	_cleanup_free_ char *order = NULL, *action = NULL;
	if (stack_ynode_get(n, "parallelism")) {
		size_t at = push(c, "parallelism", 0);
		bool ok = ival(c, stack_ynode_get(n, "parallelism"), 0, 1000000, &par);
		pop(c, at);
		if (!ok)
			return false;
	}
	if (stack_ynode_get(n, "order") && !(order = sval(c, stack_ynode_get(n, "order"))))
		return false;
	if (stack_ynode_get(n, "failure_action") && !(action = sval(c, stack_ynode_get(n, "failure_action"))))
		return false;
	if (order && !streq(order, "stop-first") && !streq(order, "start-first"))
		return fail(c, stack_ynode_get(n, "order"),
			    "invalid order '%s' (expected stop-first or start-first)", order);
	if (action && !streq(action, "pause") && !streq(action, "continue") && !streq(action, "rollback"))
		return fail(c, stack_ynode_get(n, "failure_action"),
			    "invalid failure_action '%s' (expected pause, continue or rollback)", action);
	if (rollback) {
		/* ECS rolls back with the service's own deploymentConfiguration */
		if (n->n)
			warn(c, n,
			     "ECS rolls back with the update's settings; rollback_config is checked, not "
			     "used");
		return true;
	}
	long long pct = par == 0 || replicas <= 0 ? 100 : (100 * par + replicas - 1) / replicas;
	if (pct > 100)
		pct = 100;
	bool start_first = order && streq(order, "start-first");
	if (daemon) {
		if (start_first)
			warn(c, stack_ynode_get(n, "order"),
			     "a global service replaces its task on each node stop-first");
		json_object_set_new(dc, "minimumHealthyPercent", json_integer(0));
		json_object_set_new(dc, "maximumPercent", json_integer(100));
	} else {
		json_object_set_new(dc, "minimumHealthyPercent", json_integer(start_first ? 100 : 100 - pct));
		json_object_set_new(dc, "maximumPercent", json_integer(start_first ? 100 + pct : 100));
	}
	if (action) {
		json_t *cb = json_object_get(dc, "deploymentCircuitBreaker");
		json_object_set_new(cb, "enable", json_boolean(!streq(action, "continue")));
		json_object_set_new(cb, "rollback", json_boolean(streq(action, "rollback")));
	}
	return true;
}

static bool map_restart(struct ctx *c, const struct ynode *n, bool *job)
{
	static const struct key_rule rules[] = {
		{ "condition", K_OK, NULL },
		{ "delay", K_WARN,
		  "ECS restarts failed tasks with its own backoff (1 s doubling to 30 s), ignoring" },
		{ "max_attempts", K_WARN, "an ECS service restarts its tasks without limit, ignoring" },
		{ "window", K_WARN, "berth counts a task healthy after 3 s, ignoring" },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	const struct ynode *cn = stack_ynode_get(n, "condition");
	_cleanup_free_ char *cond = cn ? sval(c, cn) : xstrdup("any");
	if (!cond)
		return false;
	if (streq(cond, "none"))
		*job = true;
	else if (streq(cond, "on-failure"))
		warn(c, cn, "an ECS service replaces every task that stops: on-failure behaves as any");
	else if (!streq(cond, "any"))
		return fail(c, cn, "invalid condition '%s' (expected none, on-failure or any)", cond);
	return true;
}

/* CPUs as ECS cpu units (1024 per CPU), rounded up. */
static long long cpu_units(double cpus)
{
	long long u = (long long)(cpus * 1024);
	return (double)u < cpus * 1024 ? u + 1 : u;
}

/* limits.cpus -> task cpu, limits.memory -> memory, reservations -> cpu / memoryReservation. */
static bool map_resources(struct ctx *c, const struct ynode *n, json_t *td, json_t *def)
{
	static const struct key_rule rules[] = { { "limits", K_OK, NULL }, { "reservations", K_OK, NULL } };
	static const struct key_rule lim[] = {
		{ "cpus", K_OK, NULL },
		{ "memory", K_OK, NULL },
		{ "pids", K_WARN, "ECS has no pids limit, ignoring" },
	};
	static const struct key_rule res[] = {
		{ "cpus", K_OK, NULL },
		{ "memory", K_OK, NULL },
		{ "devices", K_ERR, "berth schedules no devices" },
		{ "generic_resources", K_ERR, "berth schedules cpu and memory only" },
	};
	if (!check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	bool ok = true;
	const char *const sides[] = { "limits", "reservations" };
	for (int side = 0; side < 2; side++) {
		const struct ynode *s = stack_ynode_get(n, sides[side]);
		if (!s)
			continue;
		size_t at = push(c, sides[side], 0);
		if (!check_keys(c, s, side ? res : lim, side ? ARRAY_SIZE(res) : ARRAY_SIZE(lim))) {
			ok = false;
		} else {
			const struct ynode *cpus = stack_ynode_get(s, "cpus"),
					   *mem = stack_ynode_get(s, "memory");
			if (cpus) {
				_cleanup_free_ char *v = sval(c, cpus);
				char *end = NULL;
				double d = v ? strtod(v, &end) : -1;
				if (!v || !end || *end || end == v || d <= 0 || d > 1024)
					ok = v ? fail(c, cpus, "invalid cpus '%s' (expected e.g. 0.5)", v)
					       : false;
				else if (side == 0) {
					long long units = cpu_units(d);
					if (units < 128) {
						warn(c, cpus,
						     "ECS's smallest task cpu is 128 units (0.125 CPUs), "
						     "using it");
						units = 128;
					}
					_cleanup_free_ char *u = xasprintf("%lld", units);
					json_object_set_new(td, "cpu", json_string(u));
				} else {
					json_object_set_new(def, "cpu", json_integer(cpu_units(d)));
				}
			}
			long long m = 0;
			if (mem && !mib(c, mem, &m))
				ok = false;
			else if (mem && m < 6)
				ok = fail(c, mem, "at least 6 MiB");
			else if (mem)
				json_object_set_new(def, side ? "memoryReservation" : "memory",
						    json_integer(m));
		}
		pop(c, at);
	}
	json_int_t lm = json_integer_value(json_object_get(def, "memory"));
	json_int_t rm = json_integer_value(json_object_get(def, "memoryReservation"));
	if (lm && rm && rm > lm)
		ok = fail(c, n, "the memory reservation (%lld MiB) is more than the limit (%lld MiB)",
			  (long long)rm, (long long)lm);
	json_int_t ccpu = json_integer_value(json_object_get(def, "cpu"));
	const char *tcpu = json_string_value(json_object_get(td, "cpu"));
	if (tcpu && ccpu > strtoll(tcpu, NULL, 10))
		ok = fail(c, n, "the cpu reservation is more than the limit");
	return ok;
}

static bool map_deploy(struct ctx *c, const struct ynode *n, json_t *out, json_t *td, json_t *def)
{
	static const struct key_rule rules[] = {
		{ "mode", K_OK, NULL },
		{ "replicas", K_OK, NULL },
		{ "resources", K_OK, NULL },
		{ "placement", K_OK, NULL },
		{ "update_config", K_OK, NULL },
		{ "rollback_config", K_OK, NULL },
		{ "restart_policy", K_OK, NULL },
		{ "labels", K_OK, NULL },
		{ "endpoint_mode", K_WARN,
		  "discovery names resolve to the tasks' addresses (dnsrr); there is no virtual IP" },
	};
	json_t *svc = json_object_get(out, "service");
	if (n && !check_keys(c, n, rules, ARRAY_SIZE(rules)))
		return false;
	bool ok = true, job = false, daemon = false;
	long long replicas = 1;
	_cleanup_free_ char *mode =
	    stack_ynode_get(n, "mode") ? sval(c, stack_ynode_get(n, "mode")) : xstrdup("replicated");
	if (!mode)
		return false;
	if (streq(mode, "global"))
		daemon = true;
	else if (streq(mode, "replicated-job"))
		job = true;
	else if (!streq(mode, "replicated"))
		return fail(c, stack_ynode_get(n, "mode"),
			    "%s mode '%s' (expected replicated, global or replicated-job)",
			    streq(mode, "global-job") ? "unsupported" : "invalid", mode);
	if (stack_ynode_get(n, "replicas")) {
		size_t at = push(c, "replicas", 0);
		ok &= ival(c, stack_ynode_get(n, "replicas"), 0, 10000, &replicas);
		if (daemon)
			ok = fail(c, stack_ynode_get(n, "replicas"),
				  "replicas can not be used with mode global");
		pop(c, at);
	}
	if (stack_ynode_get(n, "restart_policy")) {
		size_t at = push(c, "restart_policy", 0);
		ok &= map_restart(c, stack_ynode_get(n, "restart_policy"), &job);
		pop(c, at);
	}
	if (job && daemon)
		return fail(c, stack_ynode_get(n, "restart_policy"),
			    "a global service can not be a one-off job");
	json_object_set_new(out, "kind", json_string(job ? "job" : "service"));
	json_object_set_new(svc, "schedulingStrategy", json_string(daemon ? "DAEMON" : "REPLICA"));
	if (!daemon)
		json_object_set_new(svc, job ? "count" : "desiredCount", json_integer(replicas));
	json_t *dc = json_object_get(svc, "deploymentConfiguration");
	static const struct ynode empty = { .kind = YNODE_MAP };
	const struct ynode *uc = stack_ynode_get(n, "update_config");
	size_t at = push(c, "update_config", 0);
	ok &= map_update_config(c, uc ? uc : &empty, replicas, daemon, false, dc);
	pop(c, at);
	if (stack_ynode_get(n, "rollback_config")) {
		at = push(c, "rollback_config", 0);
		ok &= map_update_config(c, stack_ynode_get(n, "rollback_config"), replicas, daemon, true, dc);
		pop(c, at);
	}
	if (stack_ynode_get(n, "placement")) {
		at = push(c, "placement", 0);
		ok &= map_placement(c, stack_ynode_get(n, "placement"), svc, daemon);
		pop(c, at);
	}
	if (stack_ynode_get(n, "resources")) {
		at = push(c, "resources", 0);
		ok &= map_resources(c, stack_ynode_get(n, "resources"), td, def);
		pop(c, at);
	}
	if (stack_ynode_get(n, "labels")) {
		at = push(c, "labels", 0);
		json_t *labels = json_object();
		ok &= kv_into(c, stack_ynode_get(n, "labels"), labels, false);
		const char *k;
		json_t *v;
		json_object_foreach (labels, k, v)
			json_array_append_new(json_object_get(out, "tags"),
					      json_pack("{s:s,s:O}", "key", k, "value", v));
		json_decref(labels);
		pop(c, at);
	}
	if (job) {
		json_object_del(svc, "deploymentConfiguration");
		json_object_del(svc, "placementStrategy");
	}
	if (daemon)
		json_object_del(svc, "placementStrategy");
	return ok;
}

/* ---- one service ---- */

static const struct key_rule SERVICE_KEYS[] = {
	{ "image", K_OK, NULL },
	{ "build", K_OK, NULL },
	{ "command", K_OK, NULL },
	{ "entrypoint", K_OK, NULL },
	{ "environment", K_OK, NULL },
	{ "env_file", K_OK, NULL },
	{ "ports", K_OK, NULL },
	{ "expose", K_OK, NULL },
	{ "volumes", K_OK, NULL },
	{ "tmpfs", K_OK, NULL },
	{ "networks", K_OK, NULL },
	{ "healthcheck", K_OK, NULL },
	{ "depends_on", K_OK, NULL },
	{ "deploy", K_OK, NULL },
	{ "labels", K_OK, NULL },
	{ "stop_grace_period", K_OK, NULL },
	{ "working_dir", K_OK, NULL },
	{ "user", K_OK, NULL },
	{ "tty", K_OK, NULL },
	{ "stdin_open", K_OK, NULL },
	{ "read_only", K_OK, NULL },
	{ "privileged", K_OK, NULL },
	{ "init", K_OK, NULL },
	{ "cap_add", K_OK, NULL },
	{ "cap_drop", K_OK, NULL },
	{ "sysctls", K_OK, NULL },
	{ "extra_hosts", K_OK, NULL },
	{ "dns", K_OK, NULL },
	{ "dns_search", K_OK, NULL },
	{ "ulimits", K_OK, NULL },
	{ "logging", K_OK, NULL },
	{ "secrets", K_WARN, "secrets are not supported yet: the service runs without them (placeholder)" },
	{ "configs", K_WARN, "configs are not supported yet: the service runs without them (placeholder)" },
	{ "container_name", K_WARN, "ignored, as docker stack deploy does (tasks get their own names)" },
	{ "restart", K_WARN, "ignored, as docker stack deploy does: use deploy.restart_policy" },
	{ "links", K_WARN, "ignored, as docker stack deploy does: services find each other by name" },
	{ "hostname", K_WARN, "awsvpc tasks are named by the node, ignoring" },
	{ "stop_signal", K_WARN, "ECS stops containers with SIGTERM, ignoring" },
	{ "network_mode", K_ERR, "every task has its own address on the cluster network (awsvpc)" },
	{ "pid", K_ERR, "tasks have their own pid namespace" },
	{ "ipc", K_ERR, "tasks have their own IPC namespace" },
	{ "devices", K_ERR, "no device mapping in a stack" },
	{ "cgroup_parent", K_ERR, "the agent places tasks in its cgroup" },
	{ "volumes_from", K_ERR, "tasks of different services share no volumes" },
	{ "profiles", K_ERR, "profiles are a compose (single host) feature" },
	{ "extends", K_ERR, "use YAML anchors and merge keys instead" },
	{ "platform", K_ERR, "use a deploy.placement constraint on node.platform.arch" },
	{ "scale", K_ERR, "use deploy.replicas" },
	{ "mem_limit", K_ERR, "use deploy.resources.limits.memory" },
	{ "cpus", K_ERR, "use deploy.resources.limits.cpus" },
};

static bool opt_str(struct ctx *c, const struct ynode *sn, const char *key, json_t *def, const char *ecs_key)
{
	const struct ynode *n = stack_ynode_get(sn, key);
	if (!n)
		return true;
	size_t at = push(c, key, 0);
	char *s = sval(c, n);
	if (s)
		json_object_set_new(def, ecs_key, json_string(s));
	free(s);
	pop(c, at);
	return s != NULL;
}

static bool opt_bool(struct ctx *c, const struct ynode *sn, const char *key, json_t *obj, const char *ecs_key)
{
	const struct ynode *n = stack_ynode_get(sn, key);
	bool b;
	if (!n)
		return true;
	size_t at = push(c, key, 0);
	bool ok = bval(c, n, &b);
	pop(c, at);
	if (ok && b)
		json_object_set_new(obj, ecs_key, json_true());
	return ok;
}

static bool opt_strs(struct ctx *c, const struct ynode *sn, const char *key, json_t *obj, const char *ecs_key)
{
	const struct ynode *n = stack_ynode_get(sn, key);
	if (!n)
		return true;
	size_t at = push(c, key, 0);
	json_t *l = strings(c, n);
	pop(c, at);
	if (l && json_array_size(l))
		json_object_set(obj, ecs_key, l);
	json_decref(l);
	return l != NULL;
}

static int cmp_env(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
		      json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

/* An ordered {name: value} as ECS's [{name, value}] list sorted by name (a stable hash). */
static json_t *name_values(json_t *obj, const char *vkey)
{
	size_t n = json_object_size(obj), i = 0;
	json_t **v = xcalloc(n ? n : 1, sizeof(*v));
	const char *k;
	json_t *x;
	json_object_foreach (obj, k, x)
		v[i++] = json_pack("{s:s,s:O}", "name", k, vkey, x);
	qsort(v, n, sizeof(*v), cmp_env);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(out, v[i]);
	free(v);
	return out;
}

/* KEY=VALUE lines, # comments, blank lines (compose's env_file format). */
static bool env_file(struct ctx *c, const struct ynode *n, const char *path, json_t *env)
{
	_cleanup_free_ char *full =
	    path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", c->o->dir ? c->o->dir : ".", path);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *e = NULL;
	if (fs_read_file_at(AT_FDCWD, full, ENV_FILE_MAX, &sb, &e) < 0) {
		_cleanup_free_ char *m = berth_error_string(e);
		return fail(c, n, "%s", m);
	}
	size_t lineno = 0;
	for (char *line = sb.buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		lineno++;
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		if (startswith(line, "export "))
			line += 7;
		char *eq = strchr(line, '=');
		if (eq == line)
			return fail(c, n, "%s:%zu: a variable name is required before '='", full, lineno);
		if (!eq) {
			const char *v = c->o->getenv ? c->o->getenv(line, c->o->env_ctx) : NULL;
			if (v)
				json_object_set_new(env, line, json_string(v));
			continue;
		}
		*eq = '\0';
		char *v = eq + 1;
		size_t vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			v[vl - 1] = '\0';
			v++;
		}
		json_object_set_new(env, line, json_string(v));
	}
	return true;
}

static bool map_environment(struct ctx *c, const struct ynode *sn, json_t *def)
{
	bool ok = true;
	json_t *env = json_object();
	const struct ynode *ef = stack_ynode_get(sn, "env_file"), *en = stack_ynode_get(sn, "environment");
	if (ef) {
		size_t at = push(c, "env_file", 0);
		json_t *files = NULL;
		if (ef->kind == YNODE_SEQ && ef->n && ef->vals[0]->kind == YNODE_MAP) {
			ok = fail(c, ef, "the long env_file syntax is not supported: list the paths");
		} else if ((files = strings(c, ef))) {
			size_t i;
			json_t *x;
			json_array_foreach (files, i, x)
				ok &= env_file(c, ef, json_string_value(x), env);
		} else {
			ok = false;
		}
		json_decref(files);
		pop(c, at);
	}
	if (en) {
		size_t at = push(c, "environment", 0);
		ok &= kv_into(c, en, env, true);
		pop(c, at);
	}
	json_object_set_new(def, "environment", name_values(env, "value"));
	json_decref(env);
	return ok;
}

static bool map_misc(struct ctx *c, const struct ynode *sn, json_t *def)
{
	json_t *lp = json_object_get(def, "linuxParameters");
	bool ok =
	    opt_str(c, sn, "working_dir", def, "workingDirectory") && opt_str(c, sn, "user", def, "user");
	ok &= opt_bool(c, sn, "tty", def, "pseudoTerminal") &&
	      opt_bool(c, sn, "stdin_open", def, "interactive") &&
	      opt_bool(c, sn, "read_only", def, "readonlyRootFilesystem") &&
	      opt_bool(c, sn, "privileged", def, "privileged") &&
	      opt_bool(c, sn, "init", lp, "initProcessEnabled");
	ok &= opt_strs(c, sn, "dns", def, "dnsServers") &&
	      opt_strs(c, sn, "dns_search", def, "dnsSearchDomains");
	json_t *caps = json_object();
	ok &= opt_strs(c, sn, "cap_add", caps, "add") && opt_strs(c, sn, "cap_drop", caps, "drop");
	if (json_object_size(caps))
		json_object_set(lp, "capabilities", caps);
	json_decref(caps);
	const struct ynode *n;
	if ((n = stack_ynode_get(sn, "stop_grace_period"))) {
		long long s = 0;
		size_t at = push(c, "stop_grace_period", 0);
		if (secs(c, n, &s)) {
			if (s < 2 || s > 120)
				warn(c, n, "ECS's stopTimeout is 2 to 120 s, using %d s", s < 2 ? 2 : 120);
			json_object_set_new(def, "stopTimeout", json_integer(s < 2 ? 2 : s > 120 ? 120 : s));
		} else {
			ok = false;
		}
		pop(c, at);
	}
	if ((n = stack_ynode_get(sn, "labels"))) {
		size_t at = push(c, "labels", 0);
		json_t *l = json_object();
		ok &= kv_into(c, n, l, false);
		json_object_set_new(def, "dockerLabels", l);
		pop(c, at);
	}
	if ((n = stack_ynode_get(sn, "sysctls"))) {
		size_t at = push(c, "sysctls", 0);
		json_t *l = json_object();
		ok &= kv_into(c, n, l, false);
		json_t *nv = name_values(l, "value");
		size_t i;
		json_t *x;
		json_array_foreach (nv, i, x) { /* ECS calls them namespace/value */
			json_object_set(x, "namespace", json_object_get(x, "name"));
			json_object_del(x, "name");
		}
		json_object_set_new(def, "systemControls", nv);
		json_decref(l);
		pop(c, at);
	}
	if ((n = stack_ynode_get(sn, "extra_hosts"))) {
		size_t at = push(c, "extra_hosts", 0);
		json_t *l = json_object();
		if (n->kind == YNODE_SEQ) { /* "host:ip" or "host=ip" */
			for (size_t i = 0; i < n->n; i++) {
				_cleanup_free_ char *s = sval(c, n->vals[i]);
				char *sep = s ? strpbrk(s, "=:") : NULL;
				if (!sep) {
					ok = s ? fail(c, n->vals[i], "expected HOST:IP, got '%s'", s) : false;
					continue;
				}
				*sep = '\0';
				json_object_set_new(l, s, json_string(sep + 1));
			}
		} else {
			ok &= kv_into(c, n, l, false);
		}
		json_t *eh = json_array();
		const char *k;
		json_t *v;
		json_object_foreach (l, k, v)
			json_array_append_new(eh, json_pack("{s:s,s:O}", "hostname", k, "ipAddress", v));
		json_object_set_new(def, "extraHosts", eh);
		json_decref(l);
		pop(c, at);
	}
	if ((n = stack_ynode_get(sn, "ulimits"))) {
		size_t at = push(c, "ulimits", 0);
		json_t *ul = json_array();
		for (size_t i = 0; n->kind == YNODE_MAP && i < n->n; i++) {
			const struct ynode *v = n->vals[i];
			long long soft = 0, hard = 0;
			size_t a2 = push(c, n->keys[i]->str, 0);
			if (v->kind == YNODE_SCALAR) {
				ok &= ival(c, v, 0, INT32_MAX, &soft);
				hard = soft;
			} else {
				static const struct key_rule r[] = { { "soft", K_OK, NULL },
								     { "hard", K_OK, NULL } };
				ok &= check_keys(c, v, r, 2) && stack_ynode_get(v, "soft") &&
				      stack_ynode_get(v, "hard") &&
				      ival(c, stack_ynode_get(v, "soft"), 0, INT32_MAX, &soft) &&
				      ival(c, stack_ynode_get(v, "hard"), 0, INT32_MAX, &hard);
			}
			json_array_append_new(ul, json_pack("{s:s,s:I,s:I}", "name", n->keys[i]->str,
							    "softLimit", soft, "hardLimit", hard));
			pop(c, a2);
		}
		if (n->kind != YNODE_MAP)
			ok = fail(c, n, "expected a mapping, got %s", stack_ynode_kind_name(n));
		json_object_set_new(def, "ulimits", ul);
		pop(c, at);
	}
	if ((n = stack_ynode_get(sn, "logging"))) {
		static const struct key_rule r[] = { { "driver", K_OK, NULL }, { "options", K_OK, NULL } };
		size_t at = push(c, "logging", 0);
		if (check_keys(c, n, r, 2)) {
			_cleanup_free_ char *d = stack_ynode_get(n, "driver")
						     ? sval(c, stack_ynode_get(n, "driver"))
						     : xstrdup("json-file");
			json_t *opts = json_object();
			if (stack_ynode_get(n, "options"))
				ok &= kv_into(c, stack_ynode_get(n, "options"), opts, false);
			if (d)
				json_object_set_new(def, "logConfiguration",
						    json_pack("{s:s,s:o}", "logDriver", d, "options", opts));
			else
				json_decref(opts), ok = false;
		} else {
			ok = false;
		}
		pop(c, at);
	}
	return ok;
}

static bool map_networks(struct ctx *c, const struct ynode *sn)
{
	const struct ynode *n = stack_ynode_get(sn, "networks");
	if (!n)
		return true;
	size_t at = push(c, "networks", 0);
	bool ok = true;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->kind == YNODE_MAP ? n->keys[i] : n->vals[i];
		if (n->kind == YNODE_SEQ && k->kind != YNODE_SCALAR) {
			ok = fail(c, k, "expected a network name");
			continue;
		}
		bool declared = streq(k->str, "default");
		for (size_t j = 0;
		     c->top_networks && c->top_networks->kind == YNODE_MAP && j < c->top_networks->n; j++)
			declared |= streq(c->top_networks->keys[j]->str, k->str);
		if (!declared)
			ok = fail(c, k, "network '%s' is not declared in the top-level 'networks'", k->str);
		const struct ynode *opts = n->kind == YNODE_MAP ? n->vals[i] : NULL;
		if (opts && !stack_ynode_is_null(opts)) {
			static const struct key_rule r[] = {
				{ "aliases", K_WARN,
				  "network aliases are not published: services resolve by name" },
				{ "ipv4_address", K_ERR, "task addresses come from the node's subnet" },
				{ "ipv6_address", K_ERR, "task addresses come from the node's subnet" },
				{ "priority", K_WARN, "tasks have one network, ignoring" },
			};
			size_t a2 = push(c, k->str, 0);
			ok &= check_keys(c, opts, r, ARRAY_SIZE(r));
			pop(c, a2);
		}
	}
	if (n->kind == YNODE_SCALAR)
		ok = fail(c, n, "expected a list or a mapping of networks");
	pop(c, at);
	return ok;
}

static bool map_depends(struct ctx *c, const struct ynode *sn, const struct ynode *services, json_t *out)
{
	const struct ynode *n = stack_ynode_get(sn, "depends_on");
	if (!n)
		return true;
	size_t at = push(c, "depends_on", 0);
	bool ok = true;
	json_t *deps = json_object_get(out, "dependsOn");
	if (n->kind == YNODE_SCALAR)
		ok = fail(c, n, "expected a list or a mapping of services");
	for (size_t i = 0; n->kind != YNODE_SCALAR && i < n->n; i++) {
		const struct ynode *k = n->kind == YNODE_MAP ? n->keys[i] : n->vals[i];
		if (k->kind != YNODE_SCALAR) {
			ok = fail(c, k, "expected a service name");
			continue;
		}
		if (!stack_ynode_get(services, k->str)) {
			ok = fail(c, k, "service '%s' is not defined", k->str);
			continue;
		}
		const struct ynode *opt = n->kind == YNODE_MAP ? n->vals[i] : NULL;
		if (opt && !stack_ynode_is_null(opt)) {
			static const struct key_rule r[] = {
				{ "condition", K_OK, NULL },
				{ "restart", K_WARN, "ignored" },
				{ "required", K_WARN, "ignored" },
			};
			size_t a2 = push(c, k->str, 0);
			_cleanup_free_ char *cond = NULL;
			if (!check_keys(c, opt, r, ARRAY_SIZE(r)))
				ok = false;
			else if (stack_ynode_get(opt, "condition") &&
				 (cond = sval(c, stack_ynode_get(opt, "condition"))) &&
				 !streq(cond, "service_started") && !streq(cond, "service_healthy") &&
				 !streq(cond, "service_completed_successfully"))
				ok = fail(c, stack_ynode_get(opt, "condition"), "invalid condition '%s'",
					  cond);
			else if (cond && !streq(cond, "service_started"))
				warn(c, stack_ynode_get(opt, "condition"),
				     "berth creates services in dependency order but does not wait for '%s' "
				     "(docker stack deploy ignores depends_on)",
				     cond);
			pop(c, a2);
		}
		json_array_append_new(deps, json_string(k->str));
	}
	pop(c, at);
	return ok;
}

/*
 * Swarm's label on a stack's containers, and the stack searched first by the
 * task's resolver: service discovery then answers the short name `cache` of
 * the stack's service STACK_cache as cache.STACK (docs/stack.md), as the
 * stack's network does in Swarm.
 */
static void stack_discovery(struct ctx *c, json_t *def)
{
	json_t *labels = json_object_get(def, "dockerLabels");
	if (!labels) {
		labels = json_object();
		json_object_set_new(def, "dockerLabels", labels);
	}
	json_object_set_new(labels, STACK_TAG_NAMESPACE, json_string(c->o->stack));
	json_t *search = json_pack("[s]", c->o->stack);
	json_array_extend(search, json_object_get(def, "dnsSearchDomains"));
	json_object_set_new(def, "dnsSearchDomains", search);
}

static bool map_image(struct ctx *c, const struct ynode *sn, const char *name, json_t *out, json_t *def)
{
	const struct ynode *img = stack_ynode_get(sn, "image"), *build = stack_ynode_get(sn, "build");
	_cleanup_free_ char *image = NULL;
	if (img && !(image = sval(c, img)))
		return false;
	if (build) {
		/* without an image, apply builds it and pushes it to the cluster registry (compose.h) */
		json_t *b = json_object();
		bool bok = true;
		if (build->kind == YNODE_SCALAR) {
			char *s = sval(c, build);
			json_object_set_new(b, "context", json_string(s ? s : ""));
			bok = s != NULL;
			free(s);
		} else {
			static const struct key_rule r[] = {
				{ "context", K_OK, NULL }, { "dockerfile", K_OK, NULL },
				{ "args", K_OK, NULL },    { "target", K_OK, NULL },
				{ "labels", K_OK, NULL },  { "cache_from", K_OK, NULL },
			};
			size_t at = push(c, "build", 0);
			check_keys(c, build, r, ARRAY_SIZE(r));
			const struct ynode *ctxn = stack_ynode_get(build, "context");
			char *s = ctxn ? sval(c, ctxn) : xstrdup(".");
			json_object_set_new(b, "context", json_string(s ? s : ""));
			bok = s != NULL;
			free(s);
			bok &= opt_str(c, build, "dockerfile", b, "dockerfile") &&
			       opt_str(c, build, "target", b, "target") &&
			       opt_strs(c, build, "cache_from", b, "cacheFrom");
			static const char *const maps[] = { "args", "labels" };
			for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
				const struct ynode *m = stack_ynode_get(build, maps[i]);
				if (!m)
					continue;
				size_t at2 = push(c, maps[i], 0);
				json_t *o = json_object();
				bok &= kv_into(
				    c, m, o, i == 0); /* an arg without a value comes from the environment */
				json_object_set_new(b, maps[i], o);
				pop(c, at2);
			}
			pop(c, at);
		}
		json_object_set_new(b, "line", json_integer((json_int_t)build->line));
		json_object_set_new(out, "build", b);
		if (!bok)
			return false;
		if (image)
			warn(c, build,
			     "ignoring build (as docker stack deploy does): the service runs the image '%s'",
			     image);
	}
	if (!image && !build)
		return fail(c, sn, "service '%s' needs an 'image'", name);
	if (image) {
		json_object_set_new(def, "image", json_string(image));
		json_object_set_new(out, "image", json_string(image));
	}
	return true;
}

/* The hash covers what a change of the file changes: the definition and, for a job, its count. */
static void set_hash(json_t *out)
{
	json_t *h = json_pack("{s:O,s:O,s:O}", "kind", json_object_get(out, "kind"), "taskDefinition",
			      json_object_get(out, "taskDefinition"), "count",
			      json_object_get(json_object_get(out, "service"), "count") ?: json_null());
	_cleanup_free_ char *canon = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(h);
	char hex[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, canon, strlen(canon), hex);
	json_object_set_new(out, "hash", json_string(hex + strlen("sha256:")));
}

int stack_compose_set_image(json_t *service, const char *image)
{
	json_t *def = json_array_get(
	    json_object_get(json_object_get(service, "taskDefinition"), "containerDefinitions"), 0);
	json_t *tags = json_object_get(service, "tags");
	if (!def || !json_is_array(tags))
		return -EINVAL;
	json_object_set_new(def, "image", json_string(image));
	json_object_set_new(service, "image", json_string(image));
	size_t i;
	json_t *t, *found = NULL;
	json_array_foreach (tags, i, t)
		if (streq_ptr(json_string_value(json_object_get(t, "key")), STACK_TAG_IMAGE))
			found = t;
	if (found)
		json_object_set_new(found, "value", json_string(image));
	else
		json_array_append_new(tags, json_pack("{s:s,s:s}", "key", STACK_TAG_IMAGE, "value", image));
	set_hash(service);
	return 0;
}

static json_t *map_service(struct ctx *c, const char *name, const struct ynode *sn,
			   const struct ynode *services)
{
	size_t at = push(c, "services", 0);
	size_t at2 = push(c, name, 0);
	_cleanup_free_ char *ecs = xasprintf("%s_%s", c->o->stack, name);
	json_t *def = json_pack("{s:s,s:b,s:{}}", "name", name, "essential", true, "linuxParameters");
	json_t *td =
	    json_pack("{s:s,s:s,s:[o]}", "family", ecs, "networkMode", "awsvpc", "containerDefinitions", def);
	json_t *out = json_pack(
	    "{s:s,s:s,s:I,s:o,s:{s:s,s:{s:{s:b,s:b}},s:[],s:[]},s:[],s:[],s:[{s:s,s:s},{s:s,s:s}]}", "name",
	    name, "ecsName", ecs, "line", (json_int_t)sn->line, "taskDefinition", td, "service",
	    "serviceName", ecs, "deploymentConfiguration", "deploymentCircuitBreaker", "enable", true,
	    "rollback", false, "placementConstraints", "placementStrategy", "ports", "dependsOn", "tags",
	    "key", STACK_TAG_NAMESPACE, "value", c->o->stack, "key", STACK_TAG_SERVICE, "value", name);
	bool ok = true;
	if (!ident_valid(name, 200))
		ok = fail(c, sn, "service name '%s' must be letters, digits, '-' and '_' on berth", name);
	if (ok && !check_keys(c, sn, SERVICE_KEYS, ARRAY_SIZE(SERVICE_KEYS)))
		ok = false;
	if (sn->kind == YNODE_MAP) {
		ok &= map_image(c, sn, name, out, def);
		const struct ynode *n;
		json_t *w;
		if ((n = stack_ynode_get(sn, "command"))) {
			size_t a = push(c, "command", 0);
			if ((w = words(c, n)))
				json_object_set_new(def, "command", w);
			ok &= w != NULL;
			pop(c, a);
		}
		if ((n = stack_ynode_get(sn, "entrypoint"))) {
			size_t a = push(c, "entrypoint", 0);
			if ((w = words(c, n)))
				json_object_set_new(def, "entryPoint", w);
			ok &= w != NULL;
			pop(c, a);
		}
		ok &= map_environment(c, sn, def);
		ok &= map_ports(c, name, sn, def, json_object_get(out, "ports"));
		ok &= map_volumes(c, sn, td, def);
		if ((n = stack_ynode_get(sn, "healthcheck"))) {
			size_t a = push(c, "healthcheck", 0);
			ok &= map_healthcheck(c, n, def);
			pop(c, a);
		}
		ok &= map_misc(c, sn, def);
		stack_discovery(c, def);
		ok &= map_networks(c, sn);
		ok &= map_depends(c, sn, services, out);
		size_t a = push(c, "deploy", 0);
		ok &= map_deploy(c, stack_ynode_get(sn, "deploy"), out, td, def);
		pop(c, a);
	}
	/* the load balancer drains a stopping task for its stop grace period (Swarm's default 10 s) */
	json_t *stop = json_object_get(def, "stopTimeout");
	size_t pi;
	json_t *port;
	json_array_foreach (json_object_get(out, "ports"), pi, port)
		json_object_set_new(port, "deregistrationDelay",
				    json_integer(stop ? json_integer_value(stop) : 10));
	if (!json_object_get(def, "memory") && !json_object_get(def, "memoryReservation"))
		json_object_set_new(def, "memoryReservation", json_integer(STACK_DEFAULT_MEMORY_RESERVATION));
	if (!json_object_size(json_object_get(def, "linuxParameters")))
		json_object_del(def, "linuxParameters");
	if (json_object_get(out, "image"))
		json_array_append_new(
		    json_object_get(out, "tags"),
		    json_pack("{s:s,s:O}", "key", STACK_TAG_IMAGE, "value", json_object_get(out, "image")));
	pop(c, at2);
	pop(c, at);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	set_hash(out);
	return out;
}

/* ---- top level ---- */

static bool check_top_networks(struct ctx *c, const struct ynode *n)
{
	static const struct key_rule r[] = {
		{ "driver", K_OK, NULL },
		{ "name", K_WARN, "every task is on the cluster's network; the name is not used" },
		{ "external", K_WARN, "every task is on the cluster's network; external has no effect" },
		{ "attachable", K_OK, NULL },
		{ "labels", K_OK, NULL },
		{ "driver_opts", K_WARN, "the cluster network has its own options, ignoring" },
		{ "ipam", K_WARN, "task addresses come from each node's subnet, ignoring" },
		{ "internal", K_ERR, "the cluster network is not isolated per stack" },
		{ "enable_ipv6", K_ERR, "the cluster network is IPv4" },
	};
	bool ok = true;
	if (n->kind != YNODE_MAP)
		return fail(c, n, "expected a mapping of networks");
	for (size_t i = 0; i < n->n; i++) {
		size_t at = push(c, n->keys[i]->str, 0);
		const struct ynode *v = n->vals[i];
		if (!stack_ynode_is_null(v) && check_keys(c, v, r, ARRAY_SIZE(r))) {
			_cleanup_free_ char *d =
			    stack_ynode_get(v, "driver") ? sval(c, stack_ynode_get(v, "driver")) : NULL;
			if (d && !streq(d, "overlay") && !streq(d, "bridge"))
				ok = fail(c, stack_ynode_get(v, "driver"),
					  "unsupported network driver '%s' (overlay)", d);
		} else if (!stack_ynode_is_null(v)) {
			ok = false;
		}
		pop(c, at);
	}
	return ok;
}

static bool check_top_volumes(struct ctx *c, const struct ynode *n)
{
	static const struct key_rule r[] = {
		{ "driver", K_OK, NULL }, { "driver_opts", K_OK, NULL }, { "external", K_OK, NULL },
		{ "name", K_OK, NULL },   { "labels", K_OK, NULL },
	};
	bool ok = true;
	if (n->kind != YNODE_MAP)
		return fail(c, n, "expected a mapping of volumes");
	for (size_t i = 0; i < n->n; i++) {
		size_t at = push(c, n->keys[i]->str, 0);
		const struct ynode *v = n->vals[i];
		if (!stack_ynode_is_null(v) && check_keys(c, v, r, ARRAY_SIZE(r))) {
			_cleanup_free_ char *d =
			    stack_ynode_get(v, "driver") ? sval(c, stack_ynode_get(v, "driver")) : NULL;
			if (d && !streq(d, "local"))
				ok = fail(c, stack_ynode_get(v, "driver"),
					  "unsupported volume driver '%s' (local)", d);
		} else if (!stack_ynode_is_null(v)) {
			ok = false;
		}
		pop(c, at);
	}
	return ok;
}

/* Dependencies first (Kahn's algorithm, the file's order among equals); false on a cycle. */
static bool order_services(struct ctx *c, json_t *list, const struct ynode *services, json_t **ret)
{
	size_t n = json_array_size(list);
	bool *done = xcalloc(n ? n : 1, sizeof(bool));
	json_t *out = json_array();
	for (bool progress = true; progress;) {
		progress = false;
		for (size_t i = 0; i < n; i++) {
			json_t *s = json_array_get(list, i);
			if (done[i])
				continue;
			bool ready = true;
			size_t k;
			json_t *d;
			json_array_foreach (json_object_get(s, "dependsOn"), k, d)
				for (size_t j = 0; j < n; j++)
					if (!done[j] && streq(json_string_value(json_object_get(
								  json_array_get(list, j), "name")),
							      json_string_value(d)))
						ready = false;
			if (ready) {
				done[i] = progress = true;
				json_array_append(out, s);
				break; /* from the top again: the file's order among the ready ones */
			}
		}
	}
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++)
		if (!done[i]) {
			const char *name =
			    json_string_value(json_object_get(json_array_get(list, i), "name"));
			size_t at = push(c, "services", 0), at2 = push(c, name, 0),
			       at3 = push(c, "depends_on", 0);
			ok = fail(c, stack_ynode_get(stack_ynode_get(services, name), "depends_on"),
				  "dependency cycle through service '%s'", name);
			pop(c, at3), pop(c, at2), pop(c, at);
		}
	free(done);
	if (!ok) {
		json_decref(out);
		return false;
	}
	*ret = out;
	return true;
}

static const struct key_rule TOP_KEYS[] = {
	{ "version", K_OK, NULL },
	{ "name", K_OK, NULL },
	{ "services", K_OK, NULL },
	{ "networks", K_OK, NULL },
	{ "volumes", K_OK, NULL },
	{ "secrets", K_WARN, "secrets are not supported yet (placeholder): services run without them" },
	{ "configs", K_WARN, "configs are not supported yet (placeholder): services run without them" },
	{ "include", K_ERR, "one file per stack" },
};

static json_t *map_file(struct ctx *c, const struct ynode *root)
{
	if (!root)
		return fail(c, NULL, "the file is empty"), NULL;
	if (!check_keys(c, root, TOP_KEYS, ARRAY_SIZE(TOP_KEYS)))
		return NULL;
	const struct ynode *services = stack_ynode_get(root, "services");
	c->top_networks = stack_ynode_get(root, "networks");
	c->top_volumes = stack_ynode_get(root, "volumes");
	bool ok = true;
	if (c->top_networks) {
		size_t at = push(c, "networks", 0);
		ok &= check_top_networks(c, c->top_networks);
		pop(c, at);
	}
	if (c->top_volumes) {
		size_t at = push(c, "volumes", 0);
		ok &= check_top_volumes(c, c->top_volumes);
		pop(c, at);
	}
	if (!services || services->kind != YNODE_MAP || services->n == 0)
		return fail(c, services ? services : root, "'services' must map at least one service"), NULL;
	if (services->n > STACK_MAX_SERVICES)
		return fail(c, services, "more than %d services", STACK_MAX_SERVICES), NULL;
	_cleanup_json_ json_t *list = json_array();
	for (size_t i = 0; i < services->n; i++) {
		json_t *s = map_service(c, services->keys[i]->str, services->vals[i], services);
		if (s)
			json_array_append_new(list, s);
		ok &= s != NULL;
	}
	json_t *ordered = NULL;
	if (!ok || !order_services(c, list, services, &ordered))
		return NULL;
	_cleanup_free_ char *name =
	    stack_ynode_get(root, "name") ? sval(c, stack_ynode_get(root, "name")) : NULL;
	return json_pack("{s:s,s:s?,s:o}", "stack", c->o->stack, "name", name, "services", ordered);
}

int stack_compose_load(const char *text, size_t len, const struct compose_opts *o, json_t **ret,
		       struct berth_error **err)
{
	struct ytree *t = NULL;
	_cleanup_error_ struct berth_error *perr = NULL;
	int r = stack_ytree_parse(text, len, &t, &perr);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(perr);
		return berth_error_msg(err, -r, "%s:%s", o->file ? o->file : "compose file", m);
	}
	struct ctx c = { .o = o, .errors = STRBUF_INIT, .warnings = json_array(), .path = STRBUF_INIT };
	json_t *out = NULL;
	if (!o->stack || !stack_compose_stack_name_valid(o->stack))
		fail(&c, NULL, "invalid stack name '%s' (1-%d lowercase letters, digits, '-' and '_')",
		     o->stack ? o->stack : "", STACK_NAME_MAX);
	else
		out = map_file(&c, t->root);
	stack_ytree_free(t);
	if (c.nerr || !out) {
		if (c.nerr > MAX_ERRORS)
			strbuf_addf(&c.errors, "\n... and %zu more errors", c.nerr - MAX_ERRORS);
		r = berth_error_msg(err, EINVAL, "%s", c.errors.len ? c.errors.buf : "invalid compose file");
		json_decref(out);
		json_decref(c.warnings);
	} else {
		json_object_set_new(out, "warnings", c.warnings);
		*ret = out;
		r = 0;
	}
	strbuf_release(&c.errors);
	strbuf_release(&c.path);
	return r;
}
