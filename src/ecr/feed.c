/*
 * feed.c - an OSV (https://ossf.github.io/osv-schema/) vulnerability feed and
 * matching an image's inventory against it. Advisories are validated when
 * loaded (a file that is not OSV is refused with the field) and kept as
 * JSON; matching walks them per package.
 *
 * Ecosystems: "Debian[:N]" and "Ubuntu[:X.Y...]" match dpkg packages (by
 * source package, as Debian's advisories name them, then by binary package)
 * with dpkg's version order; "Alpine[:vX.Y]" matches apk packages (by origin,
 * then name) with apk's order. Ranges of type ECOSYSTEM are evaluated event
 * by event (introduced, fixed, last_affected, limit); "versions" lists match
 * exactly.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "ecr/ecr.h"
#include "ecr/internal.h"

#define FEED_FILE_MAX (64u << 20)

struct ecr_feed {
	json_t *advisories; /* array of validated OSV objects */
};

struct ecr_feed *ecr_feed_new(void)
{
	struct ecr_feed *f = xcalloc(1, sizeof(*f));
	f->advisories = json_array();
	return f;
}

struct ecr_feed *ecr_feed_free(struct ecr_feed *f)
{
	if (f) {
		json_decref(f->advisories);
		free(f);
	}
	return NULL;
}

size_t ecr_feed_count(const struct ecr_feed *f)
{
	return json_array_size(f->advisories);
}

static bool opt_string(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return !v || json_is_string(v);
}

static int check_affected(json_t *a, const char *id, size_t i, char **ret_msg)
{
	json_t *pkg = json_object_get(a, "package");
	if (!json_is_object(a) || !json_is_object(pkg) ||
	    !json_is_string(json_object_get(pkg, "ecosystem")) ||
	    !json_is_string(json_object_get(pkg, "name")))
		return ecr_fail(ret_msg, "%s: affected[%zu].package needs string ecosystem and name", id, i);
	json_t *ranges = json_object_get(a, "ranges"), *versions = json_object_get(a, "versions");
	if (ranges && !json_is_array(ranges))
		return ecr_fail(ret_msg, "%s: affected[%zu].ranges must be a list", id, i);
	if (versions && !json_is_array(versions))
		return ecr_fail(ret_msg, "%s: affected[%zu].versions must be a list", id, i);
	size_t j, k;
	json_t *r, *e;
	json_array_foreach (versions, j, e)
		if (!json_is_string(e))
			return ecr_fail(ret_msg, "%s: affected[%zu].versions[%zu] must be a string", id, i,
					j);
	json_array_foreach (ranges, j, r) {
		json_t *events = json_object_get(r, "events");
		if (!json_is_object(r) || !json_is_string(json_object_get(r, "type")) ||
		    !json_is_array(events))
			return ecr_fail(ret_msg, "%s: affected[%zu].ranges[%zu] needs a type and events", id,
					i, j);
		json_array_foreach (events, k, e) {
			const char *key;
			json_t *v;
			size_t n = 0;
			json_object_foreach (e, key, v) {
				if (!streq(key, "introduced") && !streq(key, "fixed") &&
				    !streq(key, "last_affected") && !streq(key, "limit"))
					return ecr_fail(ret_msg,
							"%s: affected[%zu].ranges[%zu].events[%zu]: unknown "
							"event '%s'",
							id, i, j, k, key);
				if (!json_is_string(v))
					return ecr_fail(
					    ret_msg,
					    "%s: affected[%zu].ranges[%zu].events[%zu].%s must be "
					    "a string",
					    id, i, j, k, key);
				n++;
			}
			if (!json_is_object(e) || n != 1)
				return ecr_fail(ret_msg,
						"%s: affected[%zu].ranges[%zu].events[%zu] must hold exactly "
						"one event",
						id, i, j, k);
		}
	}
	return 0;
}

static int check_advisory(json_t *a, char **ret_msg)
{
	if (!json_is_object(a))
		return ecr_fail(ret_msg, "an OSV advisory must be a JSON object");
	const char *id = json_string_value(json_object_get(a, "id"));
	if (!id || !*id || strlen(id) > 256)
		return ecr_fail(ret_msg, "an OSV advisory needs a string \"id\"");
	if (!opt_string(a, "summary") || !opt_string(a, "details") || !opt_string(a, "modified"))
		return ecr_fail(ret_msg, "%s: summary, details and modified must be strings", id);
	json_t *aff = json_object_get(a, "affected"), *sev = json_object_get(a, "severity");
	if (aff && !json_is_array(aff))
		return ecr_fail(ret_msg, "%s: affected must be a list", id);
	if (sev && !json_is_array(sev))
		return ecr_fail(ret_msg, "%s: severity must be a list", id);
	size_t i;
	json_t *e;
	json_array_foreach (aff, i, e) {
		int r = check_affected(e, id, i, ret_msg);
		if (r < 0)
			return r;
	}
	return 0;
}

int ecr_feed_add(struct ecr_feed *f, const char *buf, size_t len, char **ret_msg)
{
	*ret_msg = NULL;
	json_error_t jerr;
	json_t *doc = json_loadb(buf, len, 0, &jerr);
	if (!doc)
		return ecr_fail(ret_msg, "not valid JSON: line %d, column %d: %s", jerr.line, jerr.column,
				jerr.text);
	int r = 0;
	if (json_is_array(doc)) {
		size_t i;
		json_t *e;
		json_array_foreach (doc, i, e)
			if ((r = check_advisory(e, ret_msg)) < 0)
				break;
		if (r == 0)
			json_array_extend(f->advisories, doc);
	} else if ((r = check_advisory(doc, ret_msg)) == 0) {
		json_array_append(f->advisories, doc);
	}
	json_decref(doc);
	return r;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's *.json files. */
static char **json_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **v = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !endswith(de->d_name, ".json"))
			continue;
		v = xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = xstrdup(de->d_name);
		v[n] = NULL;
	}
	closedir(d);
	if (!v)
		v = xcalloc(1, sizeof(char *));
	qsort(v, n, sizeof(char *), cmp_name);
	return v;
}

int ecr_feed_load_dir(const char *dir, struct ecr_feed **ret, json_t **ret_skipped, struct berth_error **err)
{
	_cleanup_strv_ char **names = json_files(dir);
	if (!names)
		return berth_error_errno(err, "open vulnerability feed '%s'", dir);
	struct ecr_feed *f = ecr_feed_new();
	json_t *skipped = json_array();
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, *n);
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		_cleanup_free_ char *msg = NULL;
		if (fs_read_file_at(AT_FDCWD, path, FEED_FILE_MAX, &sb, NULL) < 0)
			msg = xstrdup("cannot read");
		else
			ecr_feed_add(f, sb.buf, sb.len, &msg);
		if (msg)
			json_array_append_new(skipped, json_sprintf("%s: %s", *n, msg));
	}
	if (ret_skipped)
		*ret_skipped = skipped;
	else
		json_decref(skipped);
	*ret = f;
	return 0;
}

char *ecr_feed_dir_stamp(const char *dir)
{
	_cleanup_strv_ char **names = json_files(dir);
	struct strbuf sb = STRBUF_INIT;
	for (char **n = names; n && *n; n++) {
		struct stat st;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, *n);
		if (stat(path, &st) == 0)
			strbuf_addf(&sb, "%s:%lld:%lld.%09ld;", *n, (long long)st.st_size,
				    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	}
	if (!names)
		strbuf_addstr(&sb, "(missing)");
	return strbuf_detach(&sb, NULL);
}

/* ---- matching ---- */

/* Does the OSV ecosystem ("Debian:12", "Alpine:v3.19", "Ubuntu:22.04:LTS") cover this package? */
static bool ecosystem_matches(const char *eco, const struct ecr_inventory *inv, const struct ecr_package *p)
{
	const char *colon = strchr(eco, ':');
	size_t base = colon ? (size_t)(colon - eco) : strlen(eco);
	const char *rel = colon ? colon + 1 : NULL;
	bool deb = base == 6 && !strncasecmp(eco, "Debian", 6),
	     ubu = base == 6 && !strncasecmp(eco, "Ubuntu", 6),
	     alp = base == 6 && !strncasecmp(eco, "Alpine", 6);
	if (p->kind == ECR_PKG_DPKG ? !(deb || ubu) : !alp)
		return false;
	const char *os = inv->os_id;
	if (os && strncasecmp(os, eco, base) != 0)
		return false;
	if (!rel || !inv->os_version_id)
		return true;
	const char *v = inv->os_version_id;
	if (alp) {
		/* "v3.19" against VERSION_ID "3.19.1" */
		if (*rel == 'v')
			rel++;
		size_t n = strlen(rel);
		return !strncmp(v, rel, n) && (v[n] == '\0' || v[n] == '.');
	}
	size_t n = strcspn(rel, ":");
	return !strncmp(v, rel, n) && (v[n] == '\0' || v[n] == '.');
}

static int vcmp(const struct ecr_package *p, const char *a, const char *b)
{
	return p->kind == ECR_PKG_DPKG ? ecr_dpkg_version_cmp(a, b) : ecr_apk_version_cmp(a, b);
}

/* Whether version is affected by one ECOSYSTEM range; *fixed = the fix that would apply. */
static bool range_affects(const struct ecr_package *p, json_t *events, const char *v, const char **fixed)
{
	bool affected = false;
	size_t i;
	json_t *e;
	json_array_foreach (events, i, e) {
		const char *s;
		if ((s = json_string_value(json_object_get(e, "introduced")))) {
			if (streq(s, "0") || vcmp(p, v, s) >= 0)
				affected = true;
		} else if ((s = json_string_value(json_object_get(e, "fixed")))) {
			if (vcmp(p, v, s) >= 0)
				affected = false;
			else if (affected && !*fixed)
				*fixed = s;
		} else if ((s = json_string_value(json_object_get(e, "last_affected")))) {
			if (vcmp(p, v, s) > 0)
				affected = false;
		} else if ((s = json_string_value(json_object_get(e, "limit")))) {
			if (vcmp(p, v, s) >= 0)
				affected = false;
		}
	}
	return affected;
}

static const char *normal_severity(const char *s)
{
	static const struct {
		const char *in, *out;
	} MAP[] = {
		{ "critical", "CRITICAL" },
		{ "high", "HIGH" },
		{ "important", "HIGH" },
		{ "medium", "MEDIUM" },
		{ "moderate", "MEDIUM" },
		{ "low", "LOW" },
		{ "negligible", "INFORMATIONAL" },
		{ "unimportant", "INFORMATIONAL" },
		{ "informational", "INFORMATIONAL" },
	};
	for (size_t i = 0; s && i < ARRAY_SIZE(MAP); i++)
		if (!strcasecmp(s, MAP[i].in))
			return MAP[i].out;
	return NULL;
}

/* Severity: the affected entry's, the advisory's database_specific, or a numeric CVSS score. */
static const char *severity_of(json_t *adv, json_t *aff)
{
	const char *s;
	json_t *srcs[] = { json_object_get(aff, "ecosystem_specific"),
			   json_object_get(aff, "database_specific"),
			   json_object_get(adv, "database_specific") };
	for (size_t i = 0; i < ARRAY_SIZE(srcs); i++)
		if ((s = normal_severity(json_string_value(json_object_get(srcs[i], "severity")))))
			return s;
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(adv, "severity"), i, e) {
		const char *score = json_string_value(json_object_get(e, "score"));
		char *end;
		double d = score ? strtod(score, &end) : -1;
		if (score && (s = normal_severity(score)))
			return s;
		if (score && end != score && !*end && d >= 0 && d <= 10)
			return d >= 9   ? "CRITICAL"
			       : d >= 7 ? "HIGH"
			       : d >= 4 ? "MEDIUM"
			       : d > 0  ? "LOW"
					: "INFORMATIONAL";
	}
	return "UNDEFINED";
}

static int severity_rank(const char *s)
{
	static const char *const ORDER[] = {
		"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"
	};
	for (size_t i = 0; i < ARRAY_SIZE(ORDER); i++)
		if (streq(s, ORDER[i]))
			return (int)i;
	return (int)ARRAY_SIZE(ORDER);
}

static int cmp_finding(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int r = severity_rank(json_string_value(json_object_get(x, "severity"))) -
		severity_rank(json_string_value(json_object_get(y, "severity")));
	if (r)
		return r;
	r = strcmp(json_string_value(json_object_get(x, "name")),
		   json_string_value(json_object_get(y, "name")));
	if (r)
		return r;
	return strcmp(json_string_value(json_object_get(x, "_pkg")),
		      json_string_value(json_object_get(y, "_pkg")));
}

static json_t *attr(const char *k, const char *v)
{
	return json_pack("{s:s,s:s}", "key", k, "value", v);
}

static bool affects(json_t *aff, const struct ecr_package *p, const char **fixed)
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(aff, "versions"), i, e)
		if (!vcmp(p, json_string_value(e), p->version))
			return true;
	json_array_foreach (json_object_get(aff, "ranges"), i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		if (streq(type, "ECOSYSTEM") &&
		    range_affects(p, json_object_get(e, "events"), p->version, fixed))
			return true;
		*fixed = NULL;
	}
	return false;
}

json_t *ecr_feed_match(const struct ecr_feed *f, const struct ecr_inventory *inv)
{
	json_t **found = NULL;
	size_t n = 0;
	size_t i, j;
	json_t *adv, *aff;
	json_array_foreach (f->advisories, i, adv) {
		json_array_foreach (json_object_get(adv, "affected"), j, aff) {
			json_t *pkg = json_object_get(aff, "package");
			const char *eco = json_string_value(json_object_get(pkg, "ecosystem"));
			const char *name = json_string_value(json_object_get(pkg, "name"));
			for (size_t k = 0; k < inv->n_pkgs; k++) {
				const struct ecr_package *p = &inv->pkgs[k];
				if (!streq(p->source ? p->source : p->name, name) && !streq(p->name, name))
					continue;
				if (!ecosystem_matches(eco, inv, p))
					continue;
				const char *fixed = NULL;
				if (!affects(aff, p, &fixed))
					continue;
				const char *id = json_string_value(json_object_get(adv, "id"));
				const char *desc = json_string_value(json_object_get(adv, "summary"));
				if (!desc)
					desc = json_string_value(json_object_get(adv, "details"));
				json_t *refs = json_object_get(adv, "references");
				const char *uri =
				    json_string_value(json_object_get(json_array_get(refs, 0), "url"));
				json_t *attrs = json_array();
				json_array_append_new(attrs, attr("package_name", p->name));
				json_array_append_new(attrs, attr("package_version", p->version));
				if (fixed)
					json_array_append_new(attrs, attr("fixed_version", fixed));
				json_array_append_new(
				    attrs, attr("package_manager", p->kind == ECR_PKG_DPKG ? "dpkg" : "apk"));
				json_t *fd =
				    json_pack("{s:s,s:s,s:o,s:s}", "name", id, "severity",
					      severity_of(adv, aff), "attributes", attrs, "_pkg", p->name);
				if (desc)
					json_object_set_new(fd, "description", json_string(desc));
				if (uri)
					json_object_set_new(fd, "uri", json_string(uri));
				found = xrealloc(found, (n + 1) * sizeof(json_t *));
				found[n++] = fd;
			}
		}
	}
	if (n)
		qsort(found, n, sizeof(json_t *), cmp_finding);
	json_t *out = json_array();
	/* one finding per (advisory, package): a package listed twice in the feed counts once */
	for (size_t k = 0; k < n; k++)
		if (k == 0 || cmp_finding(&found[k - 1], &found[k]))
			json_array_append(out, found[k]);
	json_t *e;
	json_array_foreach (out, i, e)
		json_object_del(e, "_pkg");
	for (size_t k = 0; k < n; k++)
		json_decref(found[k]);
	free(found);
	return out;
}
