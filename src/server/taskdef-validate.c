/*
 * taskdef-validate.c - RegisterTaskDefinition input checks (see taskdef.h).
 *
 * ECS reports a JSON value of the wrong type as SerializationException and
 * every semantic problem as ClientException; messages here always name the
 * field by its path so a user finds it in a long definition.
 */
#include <stdarg.h>

#include "common/strbuf.h"
#include "server/taskdef.h"

static int fail(struct taskdef_error *e, const char *type, const char *fmt, ...) _printf_(3, 4);
static int fail(struct taskdef_error *e, const char *type, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	e->type = type;
	e->msg = strbuf_detach(&sb, NULL);
	return -EINVAL;
}

#define CLIENT(...) fail(e, "ClientException", __VA_ARGS__)
#define SERIAL(...) fail(e, "SerializationException", __VA_ARGS__)

static bool ident_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* Type check of an optional member: 0 absent, 1 present and right, -EINVAL wrong. */
static int member(json_t *o, const char *key, json_type t, const char *path, json_t **ret,
		  struct taskdef_error *e)
{
	json_t *v = json_object_get(o, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_typeof(v) != t && !(t == JSON_TRUE && json_is_boolean(v)))
		return SERIAL("'%s%s': expected %s", path, key,
			      t == JSON_STRING    ? "a string"
			      : t == JSON_INTEGER ? "an integer"
			      : t == JSON_ARRAY   ? "a list"
			      : t == JSON_OBJECT  ? "an object"
						  : "a boolean");
	*ret = v;
	return 1;
}

static int int_member(json_t *o, const char *key, const char *path, int64_t min, int64_t max, int64_t *ret,
		      struct taskdef_error *e)
{
	json_t *v;
	int r = member(o, key, JSON_INTEGER, path, &v, e);
	if (r <= 0)
		return r;
	int64_t x = json_integer_value(v);
	if (x < min || x > max)
		return CLIENT("Invalid '%s%s': %lld is out of range (%lld to %lld).", path, key, (long long)x,
			      (long long)min, (long long)max);
	*ret = x;
	return 1;
}

static int strv_member(json_t *o, const char *key, const char *path, struct taskdef_error *e)
{
	json_t *v, *x;
	size_t i;
	int r = member(o, key, JSON_ARRAY, path, &v, e);
	if (r <= 0)
		return r;
	json_array_foreach (v, i, x)
		if (!json_is_string(x))
			return SERIAL("'%s%s[%zu]': expected a string", path, key, i);
	return 0;
}

/* "256", "1 vCPU", "0.5 vcpu" -> units; "512", "1 GB", "2GB" -> MiB. -1 when malformed. */
static int64_t parse_quantity(const char *s, bool cpu)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || v > 1e9)
		return -1;
	while (*end == ' ')
		end++;
	if (!*end)
		return v == (double)(int64_t)v ? (int64_t)v : -1;
	if (cpu && !strcasecmp(end, "vcpu"))
		return (int64_t)(v * 1024);
	if (!cpu && !strcasecmp(end, "gb"))
		return (int64_t)(v * 1024);
	return -1;
}

static int check_ports(json_t *c, const char *path, const char *mode, json_t *seen, struct taskdef_error *e)
{
	json_t *pm, *p;
	size_t i;
	int r = member(c, "portMappings", JSON_ARRAY, path, &pm, e);
	if (r <= 0)
		return r;
	json_array_foreach (pm, i, p) {
		char pp[128];
		snprintf(pp, sizeof(pp), "%sportMappings[%zu].", path, i);
		if (!json_is_object(p))
			return SERIAL("'%.*s': expected an object", (int)strlen(pp) - 1, pp);
		int64_t cport = 0, hport = 0;
		json_t *proto;
		if ((r = int_member(p, "containerPort", pp, 1, 65535, &cport, e)) < 0 ||
		    (r = int_member(p, "hostPort", pp, 0, 65535, &hport, e)) < 0 ||
		    member(p, "protocol", JSON_STRING, pp, &proto, e) < 0)
			return -EINVAL;
		if (cport == 0)
			return CLIENT("Invalid '%scontainerPort': required, 1 to 65535.", pp);
		const char *pr = proto ? json_string_value(proto) : "tcp";
		if (!streq(pr, "tcp") && !streq(pr, "udp"))
			return CLIENT("Invalid '%sprotocol': '%s' (expected tcp or udp).", pp, pr);
		if ((streq(mode, "awsvpc") || streq(mode, "host")) && hport && hport != cport)
			return CLIENT(
			    "Invalid '%shostPort': in %s network mode hostPort must equal containerPort "
			    "(%lld).",
			    pp, mode, (long long)cport);
		if (streq(mode, "awsvpc") || streq(mode, "host"))
			hport = cport;
		if (hport) {
			char k[32];
			snprintf(k, sizeof(k), "%lld/%s", (long long)hport, pr);
			if (json_object_get(seen, k))
				return CLIENT("Invalid '%shostPort': host port %s is used twice in the task.",
					      pp, k);
			json_object_set_new(seen, k, json_true());
		}
	}
	return 0;
}

static int check_env(json_t *c, const char *path, struct taskdef_error *e)
{
	json_t *env, *x;
	size_t i;
	int r = member(c, "environment", JSON_ARRAY, path, &env, e);
	if (r <= 0)
		return r;
	json_array_foreach (env, i, x) {
		if (!json_is_object(x) || !json_is_string(json_object_get(x, "name")) ||
		    (json_object_get(x, "value") && !json_is_string(json_object_get(x, "value"))))
			return SERIAL("'%senvironment[%zu]': expected {\"name\": string, \"value\": string}",
				      path, i);
	}
	return 0;
}

/* ulimits: softLimit and hardLimit required, soft at most hard (names: the model's enum, ecs-shape.c). */
static int check_ulimits(json_t *c, const char *path, struct taskdef_error *e)
{
	json_t *ul, *u;
	size_t i;
	int r = member(c, "ulimits", JSON_ARRAY, path, &ul, e);
	if (r <= 0)
		return r;
	json_array_foreach (ul, i, u) {
		json_t *soft = json_object_get(u, "softLimit"), *hard = json_object_get(u, "hardLimit");
		if (!json_is_object(u) || !json_is_string(json_object_get(u, "name")) ||
		    !json_is_integer(soft) || !json_is_integer(hard))
			return CLIENT("Invalid '%sulimits[%zu]': name, softLimit and hardLimit are required.",
				      path, i);
		if (json_integer_value(soft) < 0 || json_integer_value(soft) > json_integer_value(hard))
			return CLIENT("Invalid '%sulimits[%zu]': softLimit %lld is more than hardLimit %lld.",
				      path, i, (long long)json_integer_value(soft),
				      (long long)json_integer_value(hard));
	}
	return 0;
}

/*
 * healthCheck: ECS's ranges (botocore's HealthCheck shape: interval 5-300 s,
 * timeout 2-60 s, retries 1-10, startPeriod 0-300 s) and a command starting
 * with CMD, CMD-SHELL or NONE. The agent refuses the same values at start, so
 * accepting them here would only register a definition no task can run.
 */
static int check_health(json_t *c, const char *path, struct taskdef_error *e)
{
	json_t *h, *cmd;
	int r = member(c, "healthCheck", JSON_OBJECT, path, &h, e);
	if (r <= 0)
		return r;
	char hp[96];
	snprintf(hp, sizeof(hp), "%shealthCheck.", path);
	static const struct {
		const char *key;
		int64_t min, max;
	} f[] = {
		{ "interval", 5, 300 }, { "timeout", 2, 60 }, { "retries", 1, 10 }, { "startPeriod", 0, 300 }
	};
	int64_t v;
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (int_member(h, f[i].key, hp, f[i].min, f[i].max, &v, e) < 0)
			return -EINVAL;
	if (strv_member(h, "command", hp, e) < 0 || member(h, "command", JSON_ARRAY, hp, &cmd, e) < 0)
		return -EINVAL;
	const char *kind = json_string_value(json_array_get(cmd, 0));
	if (!kind || (!streq(kind, "CMD") && !streq(kind, "CMD-SHELL") && !streq(kind, "NONE")))
		return CLIENT("Invalid '%scommand': required, starting with CMD, CMD-SHELL or NONE.", hp);
	if (!streq(kind, "NONE") && json_array_size(cmd) < 2)
		return CLIENT("Invalid '%scommand': %s needs a command after it.", hp, kind);
	return 0;
}

static int check_container(json_t *c, size_t idx, const char *mode, json_t *names, json_t *ports,
			   json_t *volumes, struct taskdef_error *e)
{
	char path[64];
	snprintf(path, sizeof(path), "containerDefinitions[%zu].", idx);
	if (!json_is_object(c))
		return SERIAL("'containerDefinitions[%zu]': expected an object", idx);
	json_t *name, *image, *ess, *mps, *x;
	int64_t cpu = 0, mem = 0, res = 0;
	if (member(c, "name", JSON_STRING, path, &name, e) < 0 ||
	    member(c, "image", JSON_STRING, path, &image, e) < 0 ||
	    member(c, "essential", JSON_TRUE, path, &ess, e) < 0 ||
	    int_member(c, "cpu", path, 0, TASKDEF_MAX_CPU, &cpu, e) < 0 ||
	    int_member(c, "memory", path, 0, TASKDEF_MAX_MEMORY, &mem, e) < 0 ||
	    int_member(c, "memoryReservation", path, 0, TASKDEF_MAX_MEMORY, &res, e) < 0 ||
	    strv_member(c, "command", path, e) < 0 || strv_member(c, "entryPoint", path, e) < 0 ||
	    check_env(c, path, e) < 0 || check_health(c, path, e) < 0)
		return -EINVAL;
	if (!name || !ident_valid(json_string_value(name)))
		return CLIENT(
		    "Invalid '%sname': required, up to 255 letters, numbers, hyphens and underscores.", path);
	const char *n = json_string_value(name);
	if (json_object_get(names, n))
		return CLIENT("Invalid '%sname': duplicate container name '%s'.", path, n);
	json_object_set_new(names, n, json_integer((json_int_t)idx));
	if (!image || !*json_string_value(image) || strlen(json_string_value(image)) > 4096)
		return CLIENT("Invalid '%simage': container '%s' needs an image.", path, n);
	if (json_object_get(c, "memory") && mem < TASKDEF_MIN_MEMORY)
		return CLIENT("Invalid '%smemory': container '%s' needs at least %d MiB.", path, n,
			      TASKDEF_MIN_MEMORY);
	if (json_object_get(c, "memoryReservation") && res < TASKDEF_MIN_MEMORY)
		return CLIENT("Invalid '%smemoryReservation': container '%s' needs at least %d MiB.", path, n,
			      TASKDEF_MIN_MEMORY);
	if (mem && res && res > mem)
		return CLIENT("Invalid '%smemoryReservation': %lld MiB is more than 'memory' (%lld MiB).",
			      path, (long long)res, (long long)mem);
	if (check_ports(c, path, mode, ports, e) < 0 || check_ulimits(c, path, e) < 0)
		return -EINVAL;
	int64_t stop = 0;
	if (int_member(c, "stopTimeout", path, 0, INT32_MAX, &stop, e) < 0)
		return -EINVAL;
	if (!ess)
		json_object_set_new(c, "essential", json_true());
	size_t i;
	if (member(c, "mountPoints", JSON_ARRAY, path, &mps, e) < 0)
		return -EINVAL;
	json_array_foreach (mps, i, x) {
		const char *sv = json_string_value(json_object_get(x, "sourceVolume"));
		if (!sv || !json_is_string(json_object_get(x, "containerPath")))
			return CLIENT(
			    "Invalid '%smountPoints[%zu]': sourceVolume and containerPath are required.",
			    path, i);
		if (!json_object_get(volumes, sv))
			return CLIENT("Invalid '%smountPoints[%zu].sourceVolume': no volume named '%s'.",
				      path, i, sv);
	}
	return 0;
}

/* volumesFrom and links name containers of the same definition (links: bridge mode only, "name[:alias]"). */
static int check_refs(json_t *defs, json_t *names, const char *mode, struct taskdef_error *e)
{
	size_t i, k;
	json_t *c, *x;
	json_array_foreach (defs, i, c) {
		json_array_foreach (json_object_get(c, "volumesFrom"), k, x) {
			const char *src = json_string_value(json_object_get(x, "sourceContainer"));
			if (!src || !json_object_get(names, src))
				return CLIENT(
				    "Invalid 'containerDefinitions[%zu].volumesFrom[%zu].sourceContainer': "
				    "no container named '%s' in the task definition.",
				    i, k, src ? src : "");
		}
		json_t *links = json_object_get(c, "links");
		if (json_array_size(links) && !streq(mode, "bridge"))
			return CLIENT(
			    "Invalid 'containerDefinitions[%zu].links': links are only supported in "
			    "bridge network mode.",
			    i);
		json_array_foreach (links, k, x) {
			const char *l = json_string_value(x);
			size_t n = strcspn(l, ":");
			_cleanup_free_ char *target = xstrndup(l, n);
			if (!json_object_get(names, target))
				return CLIENT(
				    "Invalid 'containerDefinitions[%zu].links[%zu]': no container named "
				    "'%s' in the task definition.",
				    i, k, target);
		}
	}
	return 0;
}

static const char *const CONDITIONS[] = { "START", "COMPLETE", "SUCCESS", "HEALTHY" };

/* dependsOn: known containers, valid conditions, HEALTHY only on a container with a healthCheck, no cycle. */
static int check_depends(json_t *defs, json_t *names, struct taskdef_error *e)
{
	size_t n = json_array_size(defs), i, k;
	json_t *c, *d;
	bool *edge = xcalloc(n > 0 ? n * n : 1, sizeof(bool));
	int r = 0;
	json_array_foreach (defs, i, c) {
		char path[64];
		snprintf(path, sizeof(path), "containerDefinitions[%zu].", i);
		json_t *deps;
		if ((r = member(c, "dependsOn", JSON_ARRAY, path, &deps, e)) < 0)
			break;
		r = 0;
		json_array_foreach (deps, k, d) {
			const char *target = json_string_value(json_object_get(d, "containerName"));
			const char *cond = json_string_value(json_object_get(d, "condition"));
			json_t *ti = target ? json_object_get(names, target) : NULL;
			bool ok_cond = false;
			for (size_t j = 0; cond && j < ARRAY_SIZE(CONDITIONS); j++)
				ok_cond |= streq(cond, CONDITIONS[j]);
			if (!ti) {
				r = CLIENT("Invalid '%sdependsOn[%zu].containerName': no container named "
					   "'%s' in the "
					   "task definition.",
					   path, k, target ? target : "");
			} else if (!ok_cond) {
				r = CLIENT(
				    "Invalid '%sdependsOn[%zu].condition': '%s' (expected START, COMPLETE, "
				    "SUCCESS or HEALTHY).",
				    path, k, cond ? cond : "");
			} else if ((size_t)json_integer_value(ti) == i) {
				r = CLIENT("Invalid '%sdependsOn[%zu]': a container cannot depend on itself.",
					   path, k);
			} else if (streq(cond, "HEALTHY") &&
				   !json_object_get(json_array_get(defs, (size_t)json_integer_value(ti)),
						    "healthCheck")) {
				r = CLIENT(
				    "Invalid '%sdependsOn[%zu]': condition HEALTHY needs a healthCheck on "
				    "container '%s'.",
				    path, k, target);
			}
			if (r < 0)
				break;
			edge[i * n + (size_t)json_integer_value(ti)] = true;
		}
		if (r < 0)
			break;
	}
	/* cycle: Kahn's algorithm over "i depends on j" */
	if (r == 0) {
		int *indeg = xcalloc(n ? n : 1, sizeof(int));
		bool *done = xcalloc(n ? n : 1, sizeof(bool));
		for (i = 0; i < n; i++)
			for (k = 0; k < n; k++)
				indeg[i] += edge[i * n + k];
		size_t removed = 0;
		for (bool progress = true; progress;) {
			progress = false;
			for (i = 0; i < n; i++) {
				if (done[i] || indeg[i])
					continue;
				done[i] = progress = true;
				removed++;
				for (k = 0; k < n; k++)
					if (edge[k * n + i])
						indeg[k]--;
			}
		}
		for (i = 0; i < n && removed < n; i++)
			if (!done[i]) {
				r = CLIENT(
				    "Invalid 'containerDefinitions[%zu].dependsOn': dependency cycle through "
				    "container '%s'.",
				    i, json_string_value(json_object_get(json_array_get(defs, i), "name")));
				break;
			}
		free(indeg);
		free(done);
	}
	free(edge);
	return r;
}

static int check_volumes(json_t *in, json_t *names, struct taskdef_error *e)
{
	json_t *vols, *v;
	size_t i;
	int r = member(in, "volumes", JSON_ARRAY, "", &vols, e);
	if (r <= 0)
		return r;
	json_array_foreach (vols, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		if (!json_is_object(v))
			return SERIAL("'volumes[%zu]': expected an object", i);
		if (!n || !ident_valid(n))
			return CLIENT("Invalid 'volumes[%zu].name': required, letters, numbers, hyphens and "
				      "underscores.",
				      i);
		if (json_object_get(names, n))
			return CLIENT("Invalid 'volumes[%zu].name': duplicate volume name '%s'.", i, n);
		json_object_set_new(names, n, json_true());
	}
	return 0;
}

/* A task definition's placementConstraints: memberOf with an expression only (ECS: distinctInstance is
 * a RunTask / service constraint), at most 10. */
static int check_task_constraints(json_t *in, struct taskdef_error *e)
{
	json_t *pcs, *pc;
	size_t i;
	int r = member(in, "placementConstraints", JSON_ARRAY, "", &pcs, e);
	if (r <= 0)
		return r;
	if (json_array_size(pcs) > 10)
		return CLIENT("Invalid 'placementConstraints': at most 10 constraints.");
	json_array_foreach (pcs, i, pc) {
		const char *t = json_string_value(json_object_get(pc, "type"));
		const char *x = json_string_value(json_object_get(pc, "expression"));
		if (!streq_ptr(t, "memberOf") || !x || !*x)
			return CLIENT("Invalid 'placementConstraints[%zu]': a task definition takes memberOf "
				      "constraints with an expression only.",
				      i);
	}
	return 0;
}

static int task_quantity(json_t *in, const char *key, bool cpu, int64_t *ret, json_t *out,
			 struct taskdef_error *e)
{
	json_t *v;
	int r = member(in, key, JSON_STRING, "", &v, e);
	if (r <= 0)
		return r;
	int64_t q = parse_quantity(json_string_value(v), cpu);
	int64_t lo = cpu ? 128 : TASKDEF_MIN_MEMORY, hi = cpu ? TASKDEF_MAX_CPU : TASKDEF_MAX_MEMORY;
	if (q < lo || q > hi)
		return CLIENT("Invalid '%s': '%s' (expected %s between %lld and %lld).", key,
			      json_string_value(v), cpu ? "CPU units or 'N vCPU'" : "MiB or 'N GB'",
			      (long long)lo, (long long)hi);
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", (long long)q);
	json_object_set_new(out, key, json_string(buf));
	*ret = q;
	return 0;
}

/* Container sums against the task's cpu/memory, and memory required somewhere. */
static int check_totals(json_t *defs, int64_t task_cpu, int64_t task_mem, struct taskdef_error *e)
{
	int64_t cpu = 0, mem = 0;
	size_t i;
	json_t *c;
	bool essential = false;
	json_array_foreach (defs, i, c) {
		int64_t m = json_integer_value(json_object_get(c, "memory"));
		int64_t r = json_integer_value(json_object_get(c, "memoryReservation"));
		if (!m && !r && !task_mem)
			return CLIENT("Invalid setting for container '%s'. At least one of 'memory' or "
				      "'memoryReservation' must be specified.",
				      json_string_value(json_object_get(c, "name")));
		cpu += json_integer_value(json_object_get(c, "cpu"));
		mem += r ? r : m;
		essential |= json_is_true(json_object_get(c, "essential"));
	}
	if (!essential)
		return CLIENT("Invalid 'containerDefinitions': at least one container must be essential.");
	if (task_cpu && cpu > task_cpu)
		return CLIENT(
		    "Invalid 'containerDefinitions[].cpu': containers use %lld CPU units, more than "
		    "the task's 'cpu' (%lld).",
		    (long long)cpu, (long long)task_cpu);
	if (task_mem && mem > task_mem)
		return CLIENT(
		    "Invalid 'containerDefinitions[].memory': containers reserve %lld MiB, more than "
		    "the task's 'memory' (%lld MiB).",
		    (long long)mem, (long long)task_mem);
	if (!task_mem && mem > TASKDEF_MAX_MEMORY)
		return CLIENT("Invalid 'containerDefinitions[].memory': %lld MiB in total is more than any "
			      "container instance can hold.",
			      (long long)mem);
	return 0;
}

static const char *const COPY_KEYS[] = { "taskRoleArn", "executionRoleArn",     "pidMode",
					 "ipcMode",     "placementConstraints", "requiresCompatibilities" };

int server_taskdef_validate(json_t *in, json_t **ret, struct taskdef_error *e)
{
	*e = (struct taskdef_error){ 0 };
	json_t *family, *defs, *mode;
	if (member(in, "family", JSON_STRING, "", &family, e) < 0 ||
	    member(in, "containerDefinitions", JSON_ARRAY, "", &defs, e) < 0 ||
	    member(in, "networkMode", JSON_STRING, "", &mode, e) < 0)
		return -EINVAL;
	if (!family || !ident_valid(json_string_value(family)))
		return CLIENT(
		    "Invalid 'family': required, up to 255 letters, numbers, hyphens and underscores.");
	size_t n = json_array_size(defs);
	if (n == 0 || n > TASKDEF_MAX_CONTAINERS)
		return CLIENT("Invalid 'containerDefinitions': between 1 and %d containers required.",
			      TASKDEF_MAX_CONTAINERS);
	const char *m = mode ? json_string_value(mode) : "bridge";
	if (!streq(m, "bridge") && !streq(m, "host") && !streq(m, "awsvpc") && !streq(m, "none"))
		return CLIENT("Invalid 'networkMode': '%s' (expected bridge, host, awsvpc or none).", m);
	json_t *out = json_pack("{s:O,s:s}", "family", family, "networkMode", m);
	json_t *copy = json_deep_copy(defs), *names = json_object(), *ports = json_object(),
	       *volnames = json_object();
	int64_t task_cpu = 0, task_mem = 0;
	int r = check_volumes(in, volnames, e);
	size_t i;
	json_t *c;
	if (r == 0)
		json_array_foreach (copy, i, c)
			if ((r = check_container(c, i, m, names, ports, volnames, e)) < 0)
				break;
	if (r == 0)
		r = check_depends(copy, names, e);
	if (r == 0)
		r = check_refs(copy, names, m, e);
	if (r == 0)
		r = check_task_constraints(in, e);
	if (r == 0 && (task_quantity(in, "cpu", true, &task_cpu, out, e) < 0 ||
		       task_quantity(in, "memory", false, &task_mem, out, e) < 0))
		r = -EINVAL;
	if (r == 0)
		r = check_totals(copy, task_cpu, task_mem, e);
	json_decref(names);
	json_decref(ports);
	json_decref(volnames);
	if (r < 0) {
		json_decref(copy);
		json_decref(out);
		return r;
	}
	_cleanup_free_ char *text = json_dumps(in, JSON_COMPACT);
	if (text && strlen(text) > TASKDEF_MAX_BYTES) {
		json_decref(copy);
		json_decref(out);
		return CLIENT("Invalid task definition: %zu bytes, more than ECS's limit of %d.",
			      strlen(text), TASKDEF_MAX_BYTES);
	}
	json_object_set_new(out, "containerDefinitions", copy);
	json_t *vols = json_object_get(in, "volumes");
	json_object_set_new(out, "volumes", vols ? json_deep_copy(vols) : json_array());
	for (i = 0; i < ARRAY_SIZE(COPY_KEYS); i++)
		if (json_object_get(in, COPY_KEYS[i]))
			json_object_set_new(out, COPY_KEYS[i],
					    json_deep_copy(json_object_get(in, COPY_KEYS[i])));
	if (!json_object_get(out, "placementConstraints"))
		json_object_set_new(out, "placementConstraints", json_array());
	*ret = out;
	return 0;
}

static int64_t sum_containers(json_t *td, const char *key, const char *alt)
{
	int64_t s = 0;
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, c) {
		int64_t v = alt ? json_integer_value(json_object_get(c, alt)) : 0;
		s += v ? v : json_integer_value(json_object_get(c, key));
	}
	return s;
}

int64_t server_taskdef_cpu(json_t *td)
{
	const char *v = json_string_value(json_object_get(td, "cpu"));
	return v ? strtoll(v, NULL, 10) : sum_containers(td, "cpu", NULL);
}

int64_t server_taskdef_memory(json_t *td)
{
	const char *v = json_string_value(json_object_get(td, "memory"));
	return v ? strtoll(v, NULL, 10) : sum_containers(td, "memory", "memoryReservation");
}
