/*
 * test-stack-plan.c - desired vs current stack objects (stack/plan.h):
 * create everything, nothing to do, one changed service, prune, conflicts.
 */
#include "unit.h"

#include "common/json.h"
#include "stack/compose.h"
#include "stack/plan.h"

static const char *FILE1 = "services:\n"
			   "  web:\n"
			   "    image: busybox\n"
			   "    ports: ['8080:80']\n"
			   "    depends_on: [cache]\n"
			   "  cache:\n"
			   "    image: busybox\n"
			   "  job:\n"
			   "    image: busybox\n"
			   "    deploy: {restart_policy: {condition: none}}\n";

static json_t *load(const char *yaml)
{
	struct compose_opts o = { .stack = "st", .file = "stack.yml" };
	json_t *out = NULL;
	assert_int_equal(stack_compose_load(yaml, strlen(yaml), &o, &out, NULL), 0);
	return out;
}

static json_t *plan(const json_t *desired, const json_t *current, bool prune)
{
	struct stack_plan_opts o = { .prune = prune, .cluster = "default" };
	json_t *p = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (stack_plan(desired, current, &o, &p, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("plan failed: %s", m);
	}
	return p;
}

static const char *step(const json_t *p, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(p, "steps"), i), key));
}

/* The current state a cluster would report after applying desired (what the CLI gathers). */
static json_t *applied(const json_t *desired)
{
	json_t *cur = json_pack("{s:{},s:{},s:[]}", "services", "jobs", "loadBalancers");
	size_t i;
	json_t *s;
	json_array_foreach (json_object_get(desired, "services"), i, s) {
		const char *ecs = json_string_value(json_object_get(s, "ecsName"));
		json_t *tags =
		    json_pack("[{s:s,s:O}]", "key", STACK_TAG_HASH, "value", json_object_get(s, "hash"));
		json_t *td = json_deep_copy(json_object_get(s, "taskDefinition"));
		json_object_set_new(td, "taskDefinitionArn", json_sprintf("arn:td/%s:1", ecs));
		json_t *entry = json_pack("{s:o,s:o}", "taskDefinition", td, "tags", tags);
		if (streq(json_string_value(json_object_get(s, "kind")), "job")) {
			json_object_set_new(json_object_get(cur, "jobs"), ecs, entry);
			continue;
		}
		json_t *svc = json_deep_copy(json_object_get(s, "service"));
		json_object_set_new(svc, "taskDefinition", json_sprintf("arn:td/%s:1", ecs));
		json_t *lbs = json_array();
		size_t k;
		json_t *port;
		json_array_foreach (json_object_get(s, "ports"), k, port) {
			json_t *tg =
			    json_sprintf("arn:tg/%s", json_string_value(json_object_get(port, "lb")));
			json_array_append_new(json_object_get(cur, "loadBalancers"),
					      json_pack("{s:O,s:O,s:s,s:O}", "loadBalancerName",
							json_object_get(port, "lb"), "port",
							json_object_get(port, "published"), "cluster",
							"default", "targetGroupArn", tg));
			json_array_append_new(lbs,
					      json_pack("{s:O,s:O,s:O}", "targetGroupArn", tg,
							"containerName", json_object_get(s, "name"),
							"containerPort", json_object_get(port, "target")));
			json_decref(tg);
		}
		json_object_set_new(svc, "loadBalancers", lbs);
		/* server-side defaults a describe adds: not changes */
		json_object_set_new(svc, "status", json_string("ACTIVE"));
		json_object_set_new(entry, "service", svc);
		json_object_set_new(json_object_get(cur, "services"), ecs, entry);
	}
	return cur;
}

static void test_create_all(void **state)
{
	(void)state;
	_cleanup_json_ json_t *d = load(FILE1),
			      *cur = json_pack("{s:{},s:{},s:[]}", "services", "jobs", "loadBalancers");
	_cleanup_json_ json_t *p = plan(d, cur, false);
	/* task definitions, the load balancer, services (cache before web), the job */
	const char *want[][3] = { { "create", "taskdef", "st_cache" }, { "create", "taskdef", "st_web" },
				  { "create", "taskdef", "st_job" },   { "create", "lb", "st-web-8080" },
				  { "create", "service", "st_cache" }, { "create", "service", "st_web" },
				  { "run", "job", "st_job" } };
	assert_int_equal(stack_plan_changes(p), ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_string_equal(step(p, i, "op"), want[i][0]);
		assert_string_equal(step(p, i, "kind"), want[i][1]);
		assert_string_equal(step(p, i, "name"), want[i][2]);
	}
	/* the service refers to its load balancer by name until it exists */
	json_t *web = json_array_get(json_object_get(p, "steps"), 5);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(json_object_get(web, "request"), "loadBalancers"), 0),
		"targetGroupArn")),
	    "st-web-8080");
}

static void test_no_changes_then_one(void **state)
{
	(void)state;
	_cleanup_json_ json_t *d = load(FILE1);
	_cleanup_json_ json_t *cur = applied(d);
	_cleanup_json_ json_t *p = plan(d, cur, true);
	assert_int_equal(stack_plan_changes(p), 0);
	/* an image change of web: a new revision and an update of web only */
	_cleanup_json_ json_t *d2 = load("services:\n  web:\n    image: busybox:2\n    ports: ['8080:80']\n"
					 "    depends_on: [cache]\n  cache:\n    image: busybox\n"
					 "    deploy: {replicas: 2}\n  job:\n    image: busybox\n"
					 "    deploy: {restart_policy: {condition: none}}\n");
	_cleanup_json_ json_t *p2 = plan(d2, cur, true);
	assert_int_equal(stack_plan_changes(p2), 3);
	assert_string_equal(step(p2, 0, "kind"), "taskdef");
	assert_string_equal(step(p2, 0, "name"), "st_web");
	assert_string_equal(step(p2, 1, "name"), "st_cache");
	assert_string_equal(step(p2, 1, "op"), "update");
	assert_string_equal(step(p2, 2, "name"), "st_web");
	json_t *changes = json_object_get(json_array_get(json_object_get(p2, "steps"), 0), "changes");
	assert_string_equal(json_string_value(json_object_get(json_array_get(changes, 0), "field")),
			    "containerDefinitions[0].image");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	stack_plan_print(p2, f);
	fclose(f);
	assert_non_null(strstr(
	    buf, "~ taskdef  st_web\n    containerDefinitions[0].image: \"busybox\" -> \"busybox:2\"\n"));
	assert_non_null(strstr(buf, "~ service  st_cache\n    desiredCount: 1 -> 2\n"));
	free(buf);
}

static void test_prune_and_conflicts(void **state)
{
	(void)state;
	_cleanup_json_ json_t *d = load(FILE1);
	_cleanup_json_ json_t *cur = applied(d);
	_cleanup_json_ json_t *d2 = load("services:\n  cache:\n    image: busybox\n");
	_cleanup_json_ json_t *p = plan(d2, cur, false);
	assert_int_equal(stack_plan_changes(p), 0);
	assert_int_equal(json_array_size(json_object_get(p, "warnings")), 2);
	_cleanup_json_ json_t *p2 = plan(d2, cur, true);
	assert_int_equal(stack_plan_changes(p2), 3);
	assert_string_equal(step(p2, 0, "op"), "delete");
	assert_string_equal(step(p2, 0, "name"), "st_web");
	assert_string_equal(step(p2, 1, "kind"), "job");
	assert_string_equal(step(p2, 2, "kind"), "lb");
	assert_string_equal(step(p2, 2, "after"), "st_web");
	/* another load balancer listens on the port: refused before anything changes */
	_cleanup_json_ json_t *other = json_pack("{s:{},s:{},s:[{s:s,s:i,s:s,s:s}]}", "services", "jobs",
						 "loadBalancers", "loadBalancerName", "theirs", "port", 8080,
						 "cluster", "default", "targetGroupArn", "arn:tg/theirs");
	struct stack_plan_opts o = { .cluster = "default" };
	json_t *x = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(stack_plan(d, other, &o, &x, &err), -EEXIST);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(
	    strstr(m, "line 4: service 'web' publishes port 8080, the listener of load balancer 'theirs'"));
	/* a mode change is refused */
	_cleanup_json_ json_t *g =
	    load("services:\n  cache:\n    image: busybox\n    deploy: {mode: global}\n");
	err = berth_error_free(err);
	assert_int_equal(stack_plan(g, cur, &o, &x, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_all),
		cmocka_unit_test(test_no_changes_then_one),
		cmocka_unit_test(test_prune_and_conflicts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
