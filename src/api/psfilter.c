/*
 * psfilter.c - `docker ps` filters (GET /containers/json?filters=) as dockerd
 * applies them: its keys (others: "Invalid filter 'k'"), its values checked
 * (status, health, exited, before/since naming a container), name and id as
 * unanchored regular expressions, ancestor through the image store, network,
 * volume, publish (host) and expose (container) ports in use, is-task and
 * isolation.
 */
#include <time.h>

#include "api/filters.h"
#include "api/routes.h"
#include "common/json.h"
#include "common/strv.h"
#include "common/util.h"
#include "image/image.h"

static const char *const ps_keys[] = { "ancestor", "before", "exited", "health",  "id",      "isolation",
				       "is-task",  "label",  "name",   "network", "publish", "since",
				       "status",   "volume", "expose", NULL };

struct api_ps_filter {
	json_t *filters;
	char **ancestor_ids; /* the ancestor values resolved to image IDs (unknown ones left out) */
	struct timespec before, since;
	bool has_before, has_since;
};

static bool in_list(const char *v, const char *const *list)
{
	for (; *list; list++)
		if (streq(v, *list))
			return true;
	return false;
}

static struct timespec created_of(const struct engine_container_info *i)
{
	struct timespec ts = { 0 };
	if (i->created)
		util_parse_rfc3339(i->created, &ts);
	return ts;
}

static int ts_cmp(struct timespec a, struct timespec b)
{
	return a.tv_sec != b.tv_sec ? (a.tv_sec < b.tv_sec ? -1 : 1)
				    : (a.tv_nsec != b.tv_nsec ? (a.tv_nsec < b.tv_nsec ? -1 : 1) : 0);
}

/* before=/since= NAME|ID: that container's creation time; 404 as dockerd when there is none. */
static int ref_created(struct engine_container_info *const *list, size_t n, const char *ref,
		       struct timespec *ret, struct berth_error **err)
{
	const char *r = ref[0] == '/' ? ref + 1 : ref;
	for (size_t k = 0; k < n; k++)
		if (streq(list[k]->name, r) || streq(list[k]->id, r)) {
			*ret = created_of(list[k]);
			return 0;
		}
	for (size_t k = 0; k < n; k++)
		if (*r && startswith(list[k]->id, r)) {
			*ret = created_of(list[k]);
			return 0;
		}
	return berth_error_msg(err, ENOENT, "no such container %s", ref);
}

/* An image's layers (its config's rootfs.diff_ids, new ref), NULL when it has none. */
static json_t *diff_ids_of(struct image_store *images, const char *id)
{
	_cleanup_json_ json_t *cfg = NULL;
	if (image_get_config(images, id, &cfg, NULL) < 0)
		return NULL;
	json_t *d = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	return json_array_size(d) ? json_incref(d) : NULL;
}

/* Bound on a parent chain's walk (a build makes one image per step). */
#define PS_MAX_PARENT_DEPTH 512

/* Whether an image on id's recorded parent chain (docker's Parent) is one of ids[0..n). */
static bool parent_chain_has(struct image_store *images, const char *id, char *const *ids, size_t n)
{
	_cleanup_free_ char *cur = xstrdup(id);
	for (int depth = 0; depth < PS_MAX_PARENT_DEPTH; depth++) {
		_cleanup_json_ json_t *j = NULL;
		if (image_inspect(images, cur, &j, NULL) < 0)
			return false;
		const char *parent = json_string_value(json_object_get(j, "Parent"));
		if (!parent || !*parent)
			return false;
		for (size_t a = 0; a < n; a++)
			if (streq(parent, ids[a]))
				return true;
		free(cur);
		cur = xstrdup(parent);
	}
	return false;
}

/* layers begin with all of prefix and have more (the same layers alone are another image's
 * config on them, not a child of it) */
static bool layers_start_with(const json_t *layers, const json_t *prefix)
{
	if (json_array_size(prefix) >= json_array_size(layers))
		return false;
	for (size_t k = 0; k < json_array_size(prefix); k++)
		if (!json_equal(json_array_get(layers, k), json_array_get(prefix, k)))
			return false;
	return true;
}

/*
 * dockerd's ancestor filter also matches the images built from an ancestor (its children, theirs,
 * ...: moby walks the image store's parent links). Here: the listed containers' images with an
 * ancestor on their recorded parent chain (builds and commits record it), or whose layers start
 * with all of an ancestor's and add more (an image built FROM it elsewhere, then pulled or
 * loaded) join ancestor_ids.
 */
static void add_descendants(struct api_ps_filter *f, struct image_store *images,
			    struct engine_container_info *const *list, size_t n)
{
	size_t n_anc = strv_length(f->ancestor_ids);
	if (!images || !n_anc)
		return;
	json_t **anc = xcalloc(n_anc, sizeof(*anc));
	for (size_t a = 0; a < n_anc; a++)
		anc[a] = diff_ids_of(images, f->ancestor_ids[a]);
	_cleanup_strv_ char **seen = NULL;
	for (size_t k = 0; k < n; k++) {
		const char *id = list[k]->image_id;
		if (!id || strv_contains(seen, id) || strv_contains(f->ancestor_ids, id))
			continue;
		strv_add(&seen, id);
		_cleanup_json_ json_t *layers = diff_ids_of(images, id);
		bool hit = false;
		for (size_t a = 0; layers && a < n_anc && !hit; a++)
			hit = anc[a] && layers_start_with(layers, anc[a]);
		if (hit || parent_chain_has(images, id, f->ancestor_ids, n_anc))
			strv_add(&f->ancestor_ids, id);
	}
	for (size_t a = 0; a < n_anc; a++)
		json_decref(anc[a]);
	free(anc);
}

void api_ps_filter_free(struct api_ps_filter *f)
{
	if (!f)
		return;
	json_decref(f->filters);
	strv_free(f->ancestor_ids);
	free(f);
}

int api_ps_filter_new(const char *q, struct image_store *images, struct engine_container_info *const *list,
		      size_t n, struct api_ps_filter **ret, struct berth_error **err)
{
	*ret = NULL;
	json_t *j = NULL;
	int r = api_filters_parse(q, ps_keys, &j, err);
	if (r < 0)
		return r;
	if (!j)
		return 0;
	struct api_ps_filter *f = xcalloc(1, sizeof(*f));
	f->filters = j;
	static const char *const states[] = { "created", "restarting", "running", "removing",
					      "paused",  "exited",     "dead",    NULL };
	static const char *const healths[] = { "starting", "healthy", "unhealthy", "none", NULL };
	_cleanup_strv_ char **status = api_filter_values(j, "status");
	_cleanup_strv_ char **health = api_filter_values(j, "health");
	_cleanup_strv_ char **exited = api_filter_values(j, "exited");
	_cleanup_strv_ char **ancestor = api_filter_values(j, "ancestor");
	_cleanup_strv_ char **before = api_filter_values(j, "before");
	_cleanup_strv_ char **since = api_filter_values(j, "since");
	for (char **v = status; v && *v; v++)
		if (!in_list(*v, states)) {
			r = berth_error_msg(err, EINVAL, "Invalid filter 'status=%s'", *v);
			goto fail;
		}
	for (char **v = health; v && *v; v++)
		if (!in_list(*v, healths)) {
			r = berth_error_msg(err, EINVAL, "Unrecognised filter value for health: %s", *v);
			goto fail;
		}
	for (char **v = exited; v && *v; v++) {
		int64_t code;
		if (util_parse_int64(*v, &code) < 0) {
			r = berth_error_msg(err, EINVAL, "strconv.Atoi: parsing \"%s\": invalid syntax", *v);
			goto fail;
		}
	}
	for (char **v = ancestor; v && *v; v++) {
		char *id = NULL;
		if (images && image_resolve(images, *v, &id, NULL) >= 0 && id)
			strv_add(&f->ancestor_ids, id);
		free(id);
	}
	add_descendants(f, images, list, n);
	if (before && before[0]) {
		if ((r = ref_created(list, n, before[0], &f->before, err)) < 0)
			goto fail;
		f->has_before = true;
	}
	if (since && since[0]) {
		if ((r = ref_created(list, n, since[0], &f->since, err)) < 0)
			goto fail;
		f->has_since = true;
	}
	*ret = f;
	return 0;
fail:
	api_ps_filter_free(f);
	return r;
}

static bool value_in(char **vals, const char *s)
{
	for (char **v = vals; s && v && *v; v++)
		if (streq(*v, s))
			return true;
	return false;
}

/* "80", "80/udp", "8000-8080/tcp": does port key "P/proto" of a container fall in it? */
static bool port_match(const char *filter, const char *key)
{
	unsigned lo, hi, p;
	char fproto[16] = "tcp", kproto[16] = "tcp";
	int nf = sscanf(filter, "%u-%u/%15s", &lo, &hi, fproto);
	if (nf < 2) {
		if (sscanf(filter, "%u/%15s", &lo, fproto) < 1)
			return false;
		hi = lo;
	}
	if (sscanf(key, "%u/%15s", &p, kproto) < 1)
		return false;
	return streq(fproto, kproto) && p >= lo && p <= hi;
}

/* Any of the summary's Ports whose `which` port (PublicPort, PrivatePort) with its Type is in vals? */
static bool ports_match(char **vals, const json_t *ports, const char *which)
{
	size_t i;
	json_t *p;
	json_array_foreach (ports, i, p) {
		json_int_t n = json_integer_value(json_object_get(p, which));
		const char *type = json_string_value(json_object_get(p, "Type"));
		if (n <= 0)
			continue;
		_cleanup_free_ char *key = xasprintf("%lld/%s", (long long)n, type ? type : "tcp");
		for (char **f = vals; f && *f; f++)
			if (port_match(*f, key))
				return true;
	}
	return false;
}

bool api_ps_filter_match(const struct api_ps_filter *f, const struct engine_container_info *i,
			 const json_t *summary)
{
	if (!f)
		return true;
	const json_t *j = f->filters;
	/* status, label, exited as before; name, id and ancestor dockerd's way below */
	_cleanup_json_ json_t *basic = json_deep_copy(j);
	json_object_del(basic, "name");
	json_object_del(basic, "id");
	json_object_del(basic, "ancestor");
	if (!api_container_filter(i, basic))
		return false;
	_cleanup_strv_ char **name = api_filter_values(j, "name");
	_cleanup_free_ char *slashed = xasprintf("/%s", i->name);
	if (name && !api_filter_match(name, i->name) && !api_filter_match(name, slashed))
		return false;
	_cleanup_strv_ char **id = api_filter_values(j, "id");
	if (id && !api_filter_match(id, i->id))
		return false;
	_cleanup_strv_ char **ancestor = api_filter_values(j, "ancestor");
	if (ancestor && !value_in(f->ancestor_ids, i->image_id) && !value_in(ancestor, i->image))
		return false;
	_cleanup_strv_ char **health = api_filter_values(j, "health");
	if (health && !value_in(health, i->health ? i->health : "none"))
		return false;
	_cleanup_strv_ char **isolation = api_filter_values(j, "isolation");
	const char *iso = json_string_value(json_object_get(i->hostconfig, "Isolation"));
	if (isolation && !value_in(isolation, iso && *iso ? iso : "default"))
		return false;
	_cleanup_strv_ char **task = api_filter_values(j, "is-task");
	if (task && (value_in(task, "true") || value_in(task, "1")))
		return false; /* no swarm tasks here */
	struct timespec created = created_of(i);
	if (f->has_before && ts_cmp(created, f->before) >= 0)
		return false;
	if (f->has_since && ts_cmp(created, f->since) <= 0)
		return false;
	_cleanup_strv_ char **network = api_filter_values(j, "network");
	if (network) {
		bool any = false;
		const char *k;
		json_t *v;
		json_object_foreach (json_object_get(json_object_get(summary, "NetworkSettings"), "Networks"),
				     k, v)
			any = any || value_in(network, k) ||
			      value_in(network, json_string_value(json_object_get(v, "NetworkID")));
		if (!any)
			return false;
	}
	_cleanup_strv_ char **volume = api_filter_values(j, "volume");
	if (volume) {
		bool any = false;
		size_t k;
		json_t *m;
		json_array_foreach (json_object_get(summary, "Mounts"), k, m)
			any = any || value_in(volume, json_string_value(json_object_get(m, "Name"))) ||
			      value_in(volume, json_string_value(json_object_get(m, "Source"))) ||
			      value_in(volume, json_string_value(json_object_get(m, "Destination")));
		if (!any)
			return false;
	}
	/* dockerd: publish= a host port, expose= a container port, of the ports in use (summary Ports) */
	_cleanup_strv_ char **publish = api_filter_values(j, "publish");
	_cleanup_strv_ char **expose = api_filter_values(j, "expose");
	json_t *ports = json_object_get(summary, "Ports");
	if ((publish || expose) && !(publish && ports_match(publish, ports, "PublicPort")) &&
	    !(expose && ports_match(expose, ports, "PrivatePort")))
		return false;
	return true;
}

bool api_ps_filter_has(const struct api_ps_filter *f, const char *key)
{
	return f && json_object_get(f->filters, key) != NULL;
}
