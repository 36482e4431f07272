/*
 * cliutil.c - helpers of the image/volume/system verbs: usage, requests
 * with an expected status, docker's filter encoding, registry credentials
 * for X-Registry-Auth.
 */

#include "cli/verbs.h"
#include "common/base64.h"
#include "common/json.h"
#include "image/image.h"

#define DOCKER_CONFIG_MAX (1u << 20)

int cli_usage(const char *text, bool help)
{
	size_t n = strlen(text);
	fprintf(help ? stdout : stderr, "Usage: berth %s%s", text, n && text[n - 1] == '\n' ? "" : "\n");
	if (!help)
		fprintf(stderr, "\nRun 'berth --help' for more information\n");
	return help ? 0 : CLI_EXIT_DAEMON;
}

long cli_expect(struct cli *cli, const char *method, const json_t *body, json_t **ret, long want,
		const char *path)
{
	json_t *resp = NULL;
	long st = cli_call(cli, method, body, &resp, "%s", path);
	if (st != want) {
		if (st > 0)
			cli_print_daemon_error(resp, st);
		json_decref(resp);
		return -1;
	}
	if (ret)
		*ret = resp;
	else
		json_decref(resp);
	return st;
}

void cli_filter_add(json_t *filters, const char *kv)
{
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *k = eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
	json_t *o = json_object_get(filters, k);
	if (!json_is_object(o))
		json_object_set_new(filters, k, o = json_object());
	json_object_set_new(o, eq ? eq + 1 : "", json_true());
}

char *cli_filters_query(const json_t *filters)
{
	if (!json_object_size(filters))
		return xstrdup("");
	_cleanup_free_ char *s = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *e = cli_escape(s);
	return xasprintf("?filters=%s", e);
}

int cli_prune_post(struct cli *cli, const char *what, const json_t *filters, const char *key,
		   const char *heading, bool reclaimed)
{
	_cleanup_free_ char *q = cli_filters_query(filters);
	_cleanup_free_ char *path = xasprintf("/v1.41/%s/prune%s", what, q);
	_cleanup_json_ json_t *resp = NULL;
	if (cli_expect(cli, "POST", NULL, &resp, 200, path) < 0)
		return 1;
	json_t *del = json_object_get(resp, key);
	if (json_array_size(del))
		printf("Deleted %s:\n", heading);
	size_t i;
	json_t *d;
	json_array_foreach (del, i, d) {
		if (!json_is_object(d)) {
			printf("%s\n", json_string_value(d));
			continue;
		}
		const char *u = json_string_value(json_object_get(d, "Untagged"));
		const char *x = json_string_value(json_object_get(d, "Deleted"));
		printf(u ? "untagged: %s\n" : "deleted: %s\n", u ? u : x ? x : "");
	}
	if (!reclaimed)
		return 0;
	if (json_array_size(del))
		printf("\n");
	_cleanup_free_ char *sz =
	    cli_human_size((double)json_integer_value(json_object_get(resp, "SpaceReclaimed")));
	printf("Total reclaimed space: %s\n", sz);
	return 0;
}

bool cli_confirm(const char *prompt)
{
	fprintf(stderr, "%s [y/N] ", prompt);
	fflush(stderr);
	char buf[16] = "";
	if (!fgets(buf, sizeof(buf), stdin))
		return false;
	return !strcasecmp(buf, "y\n") || !strcasecmp(buf, "yes\n") || !strcasecmp(buf, "y") ||
	       !strcasecmp(buf, "yes");
}

void cli_emit_row(const char *format, const json_t *obj, json_t *rows, const char *const *keys, size_t n)
{
	if (format) {
		_cleanup_free_ char *line = cli_format(format, obj);
		printf("%s\n", line);
		return;
	}
	json_t *row = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(obj, keys[i]);
		json_array_append_new(row, json_is_string(v) ? json_copy(v) : json_string(""));
	}
	json_array_append_new(rows, row);
}

char *cli_ref_host(const char *ref)
{
	_cleanup_image_ref_ struct image_ref *r = NULL;
	if (image_ref_parse(ref, IMAGE_REF_DEFAULT, &r, NULL) < 0)
		return NULL;
	return xstrdup(r->domain);
}

/* user:pass of auths[host] (several spellings of the key), NULL when absent. */
static char *config_auth(const json_t *auths, const char *host)
{
	bool hub = streq(host, "docker.io");
	_cleanup_free_ char *https = xasprintf("https://%s", host), *http = xasprintf("http://%s", host);
	const char *keys[] = { hub ? "https://index.docker.io/v1/" : host, https, http };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const json_t *e = json_object_get(auths, keys[i]);
		const char *a = json_string_value(json_object_get(e, "auth"));
		if (a && *a) {
			_cleanup_free_ void *raw = NULL;
			size_t len;
			if (base64_decode(a, &raw, &len) < 0)
				continue;
			return xstrndup(raw, len);
		}
		const char *u = json_string_value(json_object_get(e, "username"));
		const char *p = json_string_value(json_object_get(e, "password"));
		if (u && p)
			return xasprintf("%s:%s", u, p);
	}
	return NULL;
}

char *cli_registry_auth_header(const char *host)
{
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	_cleanup_free_ char *path = dir ? xasprintf("%s/config.json", dir)
					: xasprintf("%s/.docker/config.json", home ? home : "/root");
	_cleanup_json_ json_t *doc = NULL;
	_cleanup_free_ char *up = NULL;
	if (host && access(path, R_OK) == 0 && json_load_path(path, DOCKER_CONFIG_MAX, &doc, NULL) == 0)
		up = config_auth(json_object_get(doc, "auths"), host);
	char *colon = up ? strchr(up, ':') : NULL;
	if (colon)
		*colon = '\0';
	return cli_registry_auth_header_for(colon ? up : NULL, colon ? colon + 1 : NULL, host);
}

char *cli_registry_auth_header_for(const char *user, const char *password, const char *host)
{
	_cleanup_json_ json_t *auth = json_object();
	if (user && password) {
		json_object_set_new(auth, "username", json_string(user));
		json_object_set_new(auth, "password", json_string(password));
		json_object_set_new(auth, "serveraddress", json_string(host));
	}
	_cleanup_free_ char *txt = json_dumps(auth, JSON_COMPACT);
	_cleanup_free_ char *enc = base64url_encode(txt, strlen(txt), true);
	explicit_bzero(txt, strlen(txt));
	return xasprintf("X-Registry-Auth: %s", enc);
}
