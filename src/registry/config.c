/*
 * config.c - YAML configuration via libyaml's document API. The document is
 * small, so we load it whole and walk nodes by key; unknown keys are errors
 * (a typo must not silently disable auth).
 */
#include "registry/config.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <yaml.h>

#include "common/fs.h"
#include "common/util.h"

#define CONFIG_MAX_SIZE (1u << 20)

void registry_config_init(struct registry_config *c)
{
	*c = (struct registry_config){ 0 };
	const char *root = getenv("BERTH_ROOT");
	c->root = root && *root ? xasprintf("%s/registry", root) : xstrdup("/var/lib/berth/registry");
	c->host = xstrdup("127.0.0.1");
	c->port = 5000;
	c->threads = 0; /* the server's default worker count (server.c) */
	c->max_connections = 4096;
	c->timeout_s = 60;
	c->body_min_rate = 1024;
	c->access_log = true;
	c->delete_enabled = true;
	c->fsync = true;
	c->upload_expiry_s = 24 * 3600;
	c->manifest_max = 4 << 20;
	c->blob_max = INT64_C(100) << 30;
	c->gc_grace_s = 3600;
	c->shutdown_timeout_s = 30;
	c->token_issuer = xstrdup("berth-registry");
	c->token_service = xstrdup("berth-registry");
	c->token_ttl_s = 300;
	c->proxy_tag_ttl_s = 300;
}

void registry_config_done(struct registry_config *c)
{
	free(c->root);
	free(c->host);
	free(c->port_file);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->htpasswd);
	free(c->token_key);
	free(c->token_issuer);
	free(c->token_service);
	free(c->token_realm);
	for (size_t i = 0; i < c->n_acl; i++) {
		free(c->acl[i].user);
		free(c->acl[i].repository);
	}
	free(c->acl);
	for (size_t i = 0; i < c->n_rules; i++) {
		free(c->rules[i].pattern);
		free(c->rules[i].keep_tags_pattern);
	}
	free(c->rules);
	free(c->proxy_url);
	free(c->proxy_user);
	free(c->proxy_password);
	*c = (struct registry_config){ 0 };
}

int registry_parse_actions(const char *s, unsigned *ret)
{
	unsigned a = 0;
	const char *p = s;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == 4 && !strncmp(p, "pull", 4))
			a |= REGISTRY_PULL;
		else if (n == 4 && !strncmp(p, "push", 4))
			a |= REGISTRY_PUSH;
		else if (n == 6 && !strncmp(p, "delete", 6))
			a |= REGISTRY_DELETE;
		else if (n == 1 && *p == '*')
			a |= REGISTRY_ALL;
		else if (n != 0)
			return -EINVAL;
		p += n;
		if (*p == ',')
			p++;
	}
	*ret = a;
	return 0;
}

const struct registry_repo_rule *registry_config_rule(const struct registry_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_rules; i++)
		if (fnmatch(c->rules[i].pattern, name, 0) == 0)
			return &c->rules[i];
	return NULL;
}

int registry_parse_addr(const char *s, char **ret_host, uint16_t *ret_port)
{
	const char *colon = strrchr(s, ':');
	const char *ports = colon ? colon + 1 : s;
	uint64_t port;
	if (util_parse_uint64(ports, &port) < 0 || port > 65535)
		return -EINVAL;
	char *host;
	if (!colon || colon == s)
		host = xstrdup("127.0.0.1");
	else if (s[0] == '[' && colon[-1] == ']')
		host = xstrndup(s + 1, (size_t)(colon - s - 2));
	else
		host = xstrndup(s, (size_t)(colon - s));
	*ret_host = host;
	*ret_port = (uint16_t)port;
	return 0;
}

/* ---- YAML walking ---- */

struct ywalk {
	yaml_document_t *doc;
	struct registry_config *c;
	struct berth_error **err;
};

static int yerr(struct ywalk *w, const yaml_node_t *n, const char *key, const char *what)
{
	return berth_error_msg(w->err, EINVAL, "config '%s' (line %zu): %s", key, n->start_mark.line + 1,
			       what);
}

static int yscalar(struct ywalk *w, const yaml_node_t *n, const char *key, const char **ret)
{
	*ret = "";
	if (n->type != YAML_SCALAR_NODE)
		return yerr(w, n, key, "expected a scalar");
	*ret = (const char *)n->data.scalar.value;
	return 0;
}

static int ystr(struct ywalk *w, const yaml_node_t *n, const char *key, char **dst)
{
	const char *s;
	int r = yscalar(w, n, key, &s);
	if (r < 0)
		return r;
	free(*dst);
	*dst = *s ? xstrdup(s) : NULL;
	return 0;
}

/* Like ystr() for settings that have no "unset" state: an empty value is an error. */
static int ystr_nonempty(struct ywalk *w, const yaml_node_t *n, const char *key, char **dst)
{
	const char *s;
	int r = yscalar(w, n, key, &s);
	if (r < 0)
		return r;
	if (!*s)
		return yerr(w, n, key, "must not be empty");
	free(*dst);
	*dst = xstrdup(s);
	return 0;
}

static int ybool(struct ywalk *w, const yaml_node_t *n, const char *key, bool *dst)
{
	const char *s;
	int r = yscalar(w, n, key, &s);
	if (r < 0)
		return r;
	if (streq(s, "true") || streq(s, "yes") || streq(s, "on"))
		*dst = true;
	else if (streq(s, "false") || streq(s, "no") || streq(s, "off"))
		*dst = false;
	else
		return yerr(w, n, key, "expected true or false");
	return 0;
}

static int yint(struct ywalk *w, const yaml_node_t *n, const char *key, int64_t min, int64_t max,
		int64_t *dst)
{
	const char *s;
	int64_t v;
	int r = yscalar(w, n, key, &s);
	if (r < 0)
		return r;
	if (util_parse_int64(s, &v) < 0 || v < min || v > max)
		return yerr(w, n, key, "expected an integer in range");
	*dst = v;
	return 0;
}

static int ydur(struct ywalk *w, const yaml_node_t *n, const char *key, int64_t *dst_s)
{
	const char *s;
	int64_t ns;
	int r = yscalar(w, n, key, &s);
	if (r < 0)
		return r;
	if (util_parse_duration_ns(s, &ns) < 0 || ns < 0)
		return yerr(w, n, key, "expected a duration like 30s, 5m or 24h");
	*dst_s = ns / 1000000000;
	return 0;
}

static int ybytes(struct ywalk *w, const yaml_node_t *n, const char *key, int64_t *dst)
{
	const char *s;
	int64_t v;
	int r = yscalar(w, n, key, &s);
	if (r < 0)
		return r;
	if (util_parse_bytes(s, &v) < 0 || v <= 0)
		return yerr(w, n, key, "expected a size like 4m");
	*dst = v;
	return 0;
}

typedef int (*ymap_fn)(struct ywalk *w, const char *key, yaml_node_t *val, void *ud);

static int ymap(struct ywalk *w, yaml_node_t *n, const char *what, ymap_fn fn, void *ud)
{
	if (n->type != YAML_MAPPING_NODE)
		return yerr(w, n, what, "expected a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return yerr(w, n, what, "expected scalar keys");
		int r = fn(w, (const char *)k->data.scalar.value, v, ud);
		if (r < 0)
			return r;
	}
	return 0;
}

#define YUNKNOWN(w, v, key) yerr(w, v, key, "unknown key")

static int y_tls(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	if (streq(key, "certificate"))
		return ystr(w, v, key, &w->c->tls_cert);
	if (streq(key, "key"))
		return ystr(w, v, key, &w->c->tls_key);
	return YUNKNOWN(w, v, key);
}

static int y_http(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_config *c = w->c;
	int64_t i;
	int r;
	if (streq(key, "addr")) {
		const char *s;
		if ((r = yscalar(w, v, key, &s)) < 0)
			return r;
		free(c->host);
		c->host = NULL;
		if (registry_parse_addr(s, &c->host, &c->port) < 0)
			return yerr(w, v, key, "expected host:port");
		return 0;
	}
	if (streq(key, "tls"))
		return ymap(w, v, key, y_tls, NULL);
	if (streq(key, "threads")) {
		if ((r = yint(w, v, key, 1, 4096, &i)) < 0)
			return r;
		c->threads = (unsigned)i;
		return 0;
	}
	if (streq(key, "max_connections")) {
		if ((r = yint(w, v, key, 1, 1000000, &i)) < 0)
			return r;
		c->max_connections = (unsigned)i;
		return 0;
	}
	if (streq(key, "timeout")) {
		if ((r = ydur(w, v, key, &i)) < 0)
			return r;
		c->timeout_s = (unsigned)MAX(1, MIN(i, 86400));
		return 0;
	}
	if (streq(key, "body_min_rate")) {
		if ((r = yint(w, v, key, 0, INT64_C(1) << 30, &i)) < 0)
			return r;
		c->body_min_rate = (unsigned)i;
		return 0;
	}
	if (streq(key, "shutdown_timeout")) {
		if ((r = ydur(w, v, key, &i)) < 0)
			return r;
		c->shutdown_timeout_s = (unsigned)MIN(i, 86400);
		return 0;
	}
	if (streq(key, "access_log"))
		return ybool(w, v, key, &c->access_log);
	if (streq(key, "thread_per_connection")) /* obsolete: every request runs on a worker thread */
		return ybool(w, v, key, &c->thread_per_connection);
	return YUNKNOWN(w, v, key);
}

static int y_storage(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_config *c = w->c;
	if (streq(key, "root"))
		return ystr_nonempty(w, v, key, &c->root);
	if (streq(key, "delete"))
		return ybool(w, v, key, &c->delete_enabled);
	if (streq(key, "fsync"))
		return ybool(w, v, key, &c->fsync);
	if (streq(key, "upload_expiry"))
		return ydur(w, v, key, &c->upload_expiry_s);
	if (streq(key, "gc_grace"))
		return ydur(w, v, key, &c->gc_grace_s);
	if (streq(key, "manifest_max_size"))
		return ybytes(w, v, key, &c->manifest_max);
	if (streq(key, "blob_max_size"))
		return ybytes(w, v, key, &c->blob_max);
	return YUNKNOWN(w, v, key);
}

static int y_token(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_config *c = w->c;
	if (streq(key, "enabled"))
		return ybool(w, v, key, &c->token_enabled);
	if (streq(key, "key"))
		return ystr(w, v, key, &c->token_key);
	if (streq(key, "issuer"))
		return ystr_nonempty(w, v, key, &c->token_issuer);
	if (streq(key, "service"))
		return ystr_nonempty(w, v, key, &c->token_service);
	if (streq(key, "realm"))
		return ystr(w, v, key, &c->token_realm);
	if (streq(key, "expiration"))
		return ydur(w, v, key, &c->token_ttl_s);
	return YUNKNOWN(w, v, key);
}

static int y_acl_entry(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_acl *a = ud;
	if (streq(key, "user"))
		return ystr_nonempty(w, v, key, &a->user);
	if (streq(key, "repository"))
		return ystr_nonempty(w, v, key, &a->repository);
	if (streq(key, "actions")) {
		if (v->type == YAML_SCALAR_NODE) {
			if (registry_parse_actions((const char *)v->data.scalar.value, &a->actions) < 0)
				return yerr(w, v, key, "expected pull, push, delete or *");
			return 0;
		}
		if (v->type != YAML_SEQUENCE_NODE)
			return yerr(w, v, key, "expected a list of actions");
		a->actions = 0;
		for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
		     it++) {
			yaml_node_t *e = yaml_document_get_node(w->doc, *it);
			unsigned x;
			if (!e || e->type != YAML_SCALAR_NODE ||
			    registry_parse_actions((const char *)e->data.scalar.value, &x) < 0)
				return yerr(w, v, key, "expected pull, push, delete or *");
			a->actions |= x;
		}
		return 0;
	}
	return YUNKNOWN(w, v, key);
}

static int y_acl(struct ywalk *w, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return yerr(w, v, "auth.access", "expected a list");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(w->doc, *it);
		struct registry_config *c = w->c;
		c->acl = xrealloc(c->acl, (c->n_acl + 1) * sizeof(*c->acl));
		struct registry_acl *a = &c->acl[c->n_acl++];
		*a = (struct registry_acl){ 0 };
		int r = e ? ymap(w, e, "auth.access", y_acl_entry, a) : -EINVAL;
		if (r < 0)
			return r;
		if (!a->user)
			a->user = xstrdup("*");
		if (!a->repository)
			a->repository = xstrdup("*");
	}
	return 0;
}

static int y_auth(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	if (streq(key, "htpasswd"))
		return ystr(w, v, key, &w->c->htpasswd);
	if (streq(key, "token"))
		return ymap(w, v, key, y_token, NULL);
	if (streq(key, "access"))
		return y_acl(w, v);
	return YUNKNOWN(w, v, key);
}

static int y_keep(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_repo_rule *r = ud;
	if (streq(key, "pattern"))
		return ystr(w, v, key, &r->keep_tags_pattern);
	if (streq(key, "count"))
		return yint(w, v, key, 0, 1000000, &r->keep_tags_count);
	return YUNKNOWN(w, v, key);
}

static int y_lifecycle(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_repo_rule *r = ud;
	if (streq(key, "expire_untagged_days"))
		return yint(w, v, key, 0, 100000, &r->expire_untagged_days);
	if (streq(key, "keep_tags"))
		return ymap(w, v, key, y_keep, r);
	return YUNKNOWN(w, v, key);
}

static int y_rule(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	struct registry_repo_rule *r = ud;
	if (streq(key, "name"))
		return ystr_nonempty(w, v, key, &r->pattern);
	if (streq(key, "public"))
		return ybool(w, v, key, &r->public_pull);
	if (streq(key, "immutable_tags"))
		return ybool(w, v, key, &r->immutable_tags);
	if (streq(key, "lifecycle"))
		return ymap(w, v, key, y_lifecycle, r);
	return YUNKNOWN(w, v, key);
}

static int y_rules(struct ywalk *w, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return yerr(w, v, "repositories", "expected a list");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(w->doc, *it);
		struct registry_config *c = w->c;
		c->rules = xrealloc(c->rules, (c->n_rules + 1) * sizeof(*c->rules));
		struct registry_repo_rule *r = &c->rules[c->n_rules++];
		*r = (struct registry_repo_rule){ .expire_untagged_days = -1, .keep_tags_count = -1 };
		int ret = e ? ymap(w, e, "repositories", y_rule, r) : -EINVAL;
		if (ret < 0)
			return ret;
		if (!r->pattern)
			return yerr(w, e, "repositories", "every entry needs a name pattern");
	}
	return 0;
}

static int y_proxy(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	if (streq(key, "remoteurl"))
		return ystr(w, v, key, &w->c->proxy_url);
	if (streq(key, "username"))
		return ystr(w, v, key, &w->c->proxy_user);
	if (streq(key, "password"))
		return ystr(w, v, key, &w->c->proxy_password);
	if (streq(key, "tag_ttl"))
		return ydur(w, v, key, &w->c->proxy_tag_ttl_s);
	return YUNKNOWN(w, v, key);
}

static int y_top(struct ywalk *w, const char *key, yaml_node_t *v, void *ud)
{
	if (streq(key, "version"))
		return 0;
	if (streq(key, "http"))
		return ymap(w, v, key, y_http, NULL);
	if (streq(key, "storage"))
		return ymap(w, v, key, y_storage, NULL);
	if (streq(key, "auth"))
		return ymap(w, v, key, y_auth, NULL);
	if (streq(key, "repositories"))
		return y_rules(w, v);
	if (streq(key, "proxy"))
		return ymap(w, v, key, y_proxy, NULL);
	return YUNKNOWN(w, v, key);
}

static void yaml_document_deletep(yaml_document_t **d)
{
	if (*d)
		yaml_document_delete(*d);
}

int registry_config_parse(struct registry_config *c, const char *buf, size_t len, struct berth_error **err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return berth_error_set(err, ENOMEM, "initialize yaml parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	int ok = yaml_parser_load(&parser, &doc);
	if (!ok) {
		int r = berth_error_msg(err, EINVAL, "parse config: %s at line %zu",
					parser.problem ? parser.problem : "syntax error",
					parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		return r;
	}
	yaml_parser_delete(&parser);
	_cleanup_(yaml_document_deletep) yaml_document_t *d = &doc;
	yaml_node_t *root = yaml_document_get_root_node(d);
	if (!root)
		return 0; /* empty file */
	struct ywalk w = { .doc = d, .c = c, .err = err };
	return ymap(&w, root, "config", y_top, NULL);
}

int registry_config_load(struct registry_config *c, const char *path, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, path, CONFIG_MAX_SIZE, &sb, err);
	if (r < 0)
		return berth_error_wrap(err, r, "load config '%s'", path);
	r = registry_config_parse(c, sb.buf, sb.len, err);
	if (r < 0)
		return berth_error_wrap(err, r, "load config '%s'", path);
	return 0;
}
