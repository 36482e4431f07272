/*
 * container.c - the container table, persistence shape, create, lookup,
 * snapshots for front ends, rename and remove.
 */
#include <ctype.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/state.h"

struct container *engine_container_ref(struct container *c)
{
	c->refs++;
	return c;
}

/* Call with e->lock held (refs are guarded by it). */
void engine_container_unref(struct container *c)
{
	if (!c || --c->refs > 0)
		return;
	pthread_mutex_destroy(&c->op_lock);
	free(c->id);
	free(c->name);
	free(c->image);
	free(c->image_id);
	free(c->created);
	json_decref(c->config);
	json_decref(c->hostconfig);
	json_decref(c->mounts);
	free(c->started_at);
	free(c->finished_at);
	free(c->error);
	free(c->rootfs);
	free(c->health);
	json_decref(c->health_log);
	json_decref(c->rt_used);
	safe_close(c->pidfd);
	safe_close(c->shim_pidfd);
	safe_close(c->exit_fd);
	free(c);
}

static struct container *container_new(void)
{
	struct container *c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	pthread_mutex_init(&c->op_lock, NULL);
	c->pidfd = c->shim_pidfd = c->exit_fd = -1;
	return c;
}

char *engine_container_dir(const struct engine *e, const char *id)
{
	return xasprintf("%s/containers/%s", e->root, id);
}

/* Short: unix socket paths below it must fit in sun_path (108 bytes). */
char *engine_container_exec_dir(const struct engine *e, const char *id)
{
	return xasprintf("%s/c/%.24s", e->exec_root, id);
}

#define SET_STR(obj, key, val) json_object_set_new(obj, key, (val) ? json_string(val) : json_null())

json_t *engine_container_to_json(const struct container *c)
{
	json_t *j = json_object();
	SET_STR(j, "id", c->id);
	SET_STR(j, "name", c->name);
	SET_STR(j, "image", c->image);
	SET_STR(j, "image_id", c->image_id);
	SET_STR(j, "created", c->created);
	json_object_set(j, "config", c->config);
	json_object_set(j, "hostconfig", c->hostconfig);
	SET_STR(j, "state", engine_state_name(c->state));
	json_object_set_new(j, "pid", json_integer(c->pid));
	json_object_set_new(j, "shim_pid", json_integer(c->shim_pid));
	json_object_set_new(j, "exit_code", json_integer(c->exit_code));
	json_object_set_new(j, "oom_killed", json_boolean(c->oom_killed));
	json_object_set_new(j, "manual_stop", json_boolean(c->manual_stop));
	json_object_set_new(j, "has_started", json_boolean(c->has_started));
	SET_STR(j, "started_at", c->started_at);
	SET_STR(j, "finished_at", c->finished_at);
	SET_STR(j, "error", c->error);
	json_object_set_new(j, "restart_count", json_integer(c->restart_count));
	SET_STR(j, "rootfs", c->rootfs);
	SET_STR(j, "health", c->health);
	json_object_set_new(j, "health_streak", json_integer(c->health_streak));
	if (c->health_log)
		json_object_set(j, "health_log", c->health_log);
	if (c->mounts)
		json_object_set(j, "mounts", c->mounts);
	return j;
}

static char *dup_str(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? xstrdup(s) : NULL;
}

struct container *engine_container_from_json(const json_t *j)
{
	struct container *c = container_new();
	c->id = dup_str(j, "id");
	c->name = dup_str(j, "name");
	if (!c->id || !c->name || strlen(c->id) != 64) {
		c->refs = 1;
		free(c->id);
		free(c->name);
		c->id = c->name = NULL;
		pthread_mutex_destroy(&c->op_lock);
		free(c);
		return NULL;
	}
	c->image = dup_str(j, "image");
	c->image_id = dup_str(j, "image_id");
	c->created = dup_str(j, "created");
	c->config = json_incref(json_object_get(j, "config"));
	c->hostconfig = json_incref(json_object_get(j, "hostconfig"));
	if (!c->config)
		c->config = json_object();
	if (!c->hostconfig)
		c->hostconfig = json_object();
	c->state = engine_state_parse(json_string_value(json_object_get(j, "state")));
	c->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	c->shim_pid = (pid_t)json_integer_value(json_object_get(j, "shim_pid"));
	c->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
	c->oom_killed = json_is_true(json_object_get(j, "oom_killed"));
	c->manual_stop = json_is_true(json_object_get(j, "manual_stop"));
	c->has_started = json_is_true(json_object_get(j, "has_started"));
	c->started_at = dup_str(j, "started_at");
	c->finished_at = dup_str(j, "finished_at");
	c->error = dup_str(j, "error");
	c->restart_count = (int)json_integer_value(json_object_get(j, "restart_count"));
	c->rootfs = dup_str(j, "rootfs");
	c->health = dup_str(j, "health");
	c->health_streak = (int)json_integer_value(json_object_get(j, "health_streak"));
	c->health_log = json_incref(json_object_get(j, "health_log"));
	c->mounts = json_incref(json_object_get(j, "mounts"));
	return c;
}

void engine_container_table_add(struct engine *e, struct container *c)
{
	e->cs = xrealloc(e->cs, (e->n_cs + 1) * sizeof(*e->cs));
	c->engine = e;
	e->cs[e->n_cs++] = c;
}

void engine_container_table_remove(struct engine *e, struct container *c)
{
	for (size_t i = 0; i < e->n_cs; i++)
		if (e->cs[i] == c) {
			memmove(&e->cs[i], &e->cs[i + 1], (e->n_cs - i - 1) * sizeof(*e->cs));
			e->n_cs--;
			engine_container_unref(c);
			return;
		}
}

int engine_container_find_locked(struct engine *e, const char *ref, struct container **ret,
				 struct berth_error **err)
{
	if (!ref || !*ref)
		return berth_error_msg(err, ENOENT, "No such container: %s", ref ? ref : "");
	const char *name = ref[0] == '/' ? ref + 1 : ref;
	struct container *hit = NULL;
	size_t n = strlen(ref);
	bool ambiguous = false;
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		if (streq(c->id, ref) || streq(c->name, name)) {
			*ret = engine_container_ref(c);
			return 0;
		}
		if (n <= 64 && !strncmp(c->id, ref, n)) {
			ambiguous = hit != NULL;
			hit = c;
		}
	}
	if (hit && !ambiguous) {
		*ret = engine_container_ref(hit);
		return 0;
	}
	if (ambiguous)
		return berth_error_msg(err, ENOTUNIQ, "multiple containers found with provided prefix: %s",
				       ref);
	return berth_error_msg(err, ENOENT, "No such container: %s", ref);
}

int engine_container_find(struct engine *e, const char *ref, struct container **ret, struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	int r = engine_container_find_locked(e, ref, ret, err);
	pthread_mutex_unlock(&e->lock);
	return r;
}

void engine_container_event(struct engine *e, const struct container *c, const char *action, json_t *extra)
{
	json_t *attrs = extra ? extra : json_object();
	json_object_set_new(attrs, "name", json_string(c->name));
	json_object_set_new(attrs, "image", json_string(c->image ? c->image : ""));
	json_t *labels = json_object_get(c->config, "Labels");
	const char *k;
	json_t *v;
	json_object_foreach (labels, k, v)
		if (json_is_string(v) && !json_object_get(attrs, k))
			json_object_set(attrs, k, v);
	engine_store_event(e, "container", action, c->id, attrs);
	json_decref(attrs);
}

int engine_container_save(struct engine *e, struct container *c, struct berth_error **err)
{
	_cleanup_error_ struct berth_error *own = NULL;
	int r = engine_store_save(e, c, &own);
	if (r >= 0) {
		if (c->dirty)
			log_fields(LOG_LEVEL_INFO, "container record saved after an earlier failure", "id",
				   c->id, NULL);
		c->dirty = false;
		return 0;
	}
	if (!c->dirty) {
		_cleanup_free_ char *m = berth_error_string(own);
		log_fields(LOG_LEVEL_WARN, "saving a container record failed, retrying every second", "id",
			   c->id, "error", m, NULL);
		c->dirty = true;
		engine_monitor_wake(e);
	}
	if (err) {
		berth_error_free(*err);
		*err = TAKE_PTR(own);
	}
	return r;
}

bool engine_container_save_dirty(struct engine *e)
{
	bool left = false;
	for (size_t i = 0; i < e->n_cs; i++)
		if (e->cs[i]->dirty && !e->cs[i]->removed)
			left |= engine_container_save(e, e->cs[i], NULL) < 0;
	return left;
}

int engine_container_set_state(struct engine *e, struct container *c, enum engine_state s)
{
	c->state = s;
	int r = engine_container_save(e, c, NULL);
	pthread_cond_broadcast(&e->cond);
	return r;
}

/* ---- snapshots for front ends ---- */

static struct engine_container_info *info_of(struct engine *e, const struct container *c)
{
	struct engine_container_info *i = xcalloc(1, sizeof(*i));
	i->id = xstrdup(c->id);
	i->name = xstrdup(c->name);
	i->image = xstrdup(c->image ? c->image : "");
	i->image_id = xstrdup(c->image_id ? c->image_id : "");
	i->created = xstrdup(c->created ? c->created : "");
	i->config = json_deep_copy(c->config);
	i->hostconfig = json_deep_copy(c->hostconfig);
	i->mounts = engine_mounts_public(c->mounts);
	i->state = c->state;
	i->oom_killed = c->oom_killed;
	i->pid = c->pid;
	i->exit_code = c->exit_code;
	i->started_at = xstrdup(c->started_at ? c->started_at : "0001-01-01T00:00:00Z");
	i->finished_at = xstrdup(c->finished_at ? c->finished_at : "0001-01-01T00:00:00Z");
	i->error = xstrdup(c->error ? c->error : "");
	i->restart_count = c->restart_count;
	i->health = c->health ? xstrdup(c->health) : NULL;
	i->health_failing_streak = c->health_streak;
	i->health_log = c->health_log ? json_deep_copy(c->health_log) : json_array();
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	i->log_path = xasprintf("%s/%s-json.log", dir, c->id);
	i->rootfs = c->rootfs ? xstrdup(c->rootfs) : NULL;
	i->resolv_conf_path = xasprintf("%s/resolv.conf", dir);
	i->hostname_path = xasprintf("%s/hostname", dir);
	i->hosts_path = xasprintf("%s/hosts", dir);
	size_t n = 0;
	for (struct exec_instance *x = e->execs; x; x = x->next)
		n += streq(x->container_id, c->id);
	i->exec_ids = xcalloc(n + 1, sizeof(char *));
	n = 0;
	for (struct exec_instance *x = e->execs; x; x = x->next)
		if (streq(x->container_id, c->id))
			i->exec_ids[n++] = xstrdup(x->id);
	return i;
}

struct engine_container_info *engine_container_info_free(struct engine_container_info *i)
{
	if (!i)
		return NULL;
	free(i->id);
	free(i->name);
	free(i->image);
	free(i->image_id);
	free(i->created);
	json_decref(i->config);
	json_decref(i->hostconfig);
	json_decref(i->mounts);
	free(i->started_at);
	free(i->finished_at);
	free(i->error);
	free(i->health);
	json_decref(i->health_log);
	free(i->log_path);
	free(i->rootfs);
	free(i->resolv_conf_path);
	free(i->hostname_path);
	free(i->hosts_path);
	strv_free(i->exec_ids);
	free(i);
	return NULL;
}

int engine_container_inspect(struct engine *e, const char *ref, struct engine_container_info **ret,
			     struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	struct container *c;
	int r = engine_container_find_locked(e, ref, &c, err);
	if (r >= 0) {
		*ret = info_of(e, c);
		engine_container_unref(c);
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

static int cmp_created_desc(const void *a, const void *b)
{
	const struct engine_container_info *x = *(void *const *)a, *y = *(void *const *)b;
	return strcmp(y->created, x->created);
}

int engine_container_list(struct engine *e, bool all, struct engine_container_info ***ret, size_t *ret_n,
			  struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	struct engine_container_info **list = xcalloc(e->n_cs + 1, sizeof(*list));
	size_t n = 0;
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		if (all || c->state == ENGINE_RUNNING || c->state == ENGINE_PAUSED ||
		    c->state == ENGINE_RESTARTING)
			list[n++] = info_of(e, c);
	}
	pthread_mutex_unlock(&e->lock);
	qsort(list, n, sizeof(*list), cmp_created_desc);
	*ret = list;
	*ret_n = n;
	return 0;
}

void engine_container_info_list_free(struct engine_container_info **list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		engine_container_info_free(list[i]);
	free(list);
}

/* Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
static bool name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len < 2 || len > 255 || !isalnum((unsigned char)n[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("_.-", n[i]))
			return false;
	return true;
}

/* The container holding name, or NULL. */
static struct container *name_holder(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_cs; i++)
		if (streq(e->cs[i]->name, name))
			return e->cs[i];
	return NULL;
}

static bool name_taken(struct engine *e, const char *name)
{
	return name_holder(e, name) != NULL;
}

/* dockerd's conflict, naming the holder (prefix: rename's "Error when allocating new name: "). */
static int name_conflict(struct engine *e, const char *prefix, const char *name, struct berth_error **err)
{
	return berth_error_msg(
	    err, EEXIST,
	    "%sConflict. The container name \"/%s\" is already in use by container \"%s\". You "
	    "have to remove (or rename) that container to be able to reuse that name.",
	    prefix, name, name_holder(e, name)->id);
}

static char *random_name(struct engine *e)
{
	static const char *const adj[] = { "brave",  "calm",  "eager", "fancy", "gentle", "happy",  "jolly",
					   "keen",   "lucid", "merry", "nifty", "proud",  "quirky", "sharp",
					   "tender", "vivid", "witty", "zen",   "bold",   "cool" };
	static const char *const who[] = { "turing",    "hopper",   "lovelace", "ritchie", "thompson",
					   "knuth",     "dijkstra", "hamilton", "liskov",  "torvalds",
					   "kernighan", "pike",     "wirth",    "backus",  "mccarthy",
					   "lamport",   "shannon",  "noether" };
	for (int attempt = 0;; attempt++) {
		_cleanup_free_ char *r = util_random_hex(4);
		unsigned v = (unsigned)strtoul(r, NULL, 16);
		char *n = attempt < 10
			      ? xasprintf("%s_%s", adj[v % ARRAY_SIZE(adj)], who[(v >> 8) % ARRAY_SIZE(who)])
			      : xasprintf("%s_%s%u", adj[v % ARRAY_SIZE(adj)],
					  who[(v >> 8) % ARRAY_SIZE(who)], v % 100);
		if (!name_taken(e, n))
			return n;
		free(n);
	}
}

int engine_container_rename(struct engine *e, const char *ref, const char *name, struct berth_error **err)
{
	const char *n = name && name[0] == '/' ? name + 1 : name;
	pthread_mutex_lock(&e->lock);
	struct container *c;
	/* as dockerd: the container first (404), then the new name */
	int r = engine_container_find_locked(e, ref, &c, err);
	if (r >= 0) {
		if (!n || !name_valid(n)) {
			r = berth_error_msg(
			    err, EINVAL,
			    "Error when allocating new name: Invalid container name (/%s), only "
			    "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
			    n ? n : "");
		} else if (streq(c->name, n)) {
			r = berth_error_msg(err, EINVAL,
					    "Renaming a container with the same name as its current "
					    "name");
		} else if (name_taken(e, n)) {
			r = name_conflict(e, "Error when allocating new name: ", n, err);
		} else {
			char *old = c->name;
			c->name = xstrdup(n);
			if ((r = engine_store_save(e, c, err)) <
			    0) { /* nothing else changed: the rename fails */
				free(c->name);
				c->name = old;
			} else {
				engine_container_event(e, c, "rename", json_pack("{s:s}", "oldName", old));
				free(old);
			}
		}
		engine_container_unref(c);
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

int engine_container_register(struct engine *e, struct container *c, const char *name,
			      struct berth_error **err)
{
	const char *n = name && name[0] == '/' ? name + 1 : name;
	if (n && *n && !name_valid(n))
		return berth_error_msg(err, EINVAL,
				       "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
				       "allowed",
				       name);
	pthread_mutex_lock(&e->lock);
	if (e->n_cs >= ENGINE_MAX_CONTAINERS) {
		pthread_mutex_unlock(&e->lock);
		return berth_error_msg(err, ENOSPC, "too many containers (limit %d)", ENGINE_MAX_CONTAINERS);
	}
	if (n && *n && name_taken(e, n)) {
		int r = name_conflict(e, "", n, err);
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	c->name = n && *n ? xstrdup(n) : random_name(e);
	int r = engine_store_save(e, c, err);
	if (r < 0) {
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	engine_container_table_add(e, engine_container_ref(c));
	engine_container_event(e, c, "create", NULL);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

struct container *engine_container_alloc(void)
{
	return container_new();
}
