/*
 * test-stack-compose.c - compose files to cluster objects (stack/compose.h,
 * stack/ytree.h): the mapping table of docs/stack.md, located errors and
 * warnings, interpolation, anchors, dependency order.
 */
#include "unit.h"

#include "common/json.h"
#include "common/strbuf.h"
#include "stack/compose.h"
#include "stack/ytree.h"

static const char *test_env(const char *name, void *ctx)
{
	(void)ctx;
	if (streq(name, "TAG"))
		return "1.36";
	if (streq(name, "EMPTY"))
		return "";
	return NULL;
}

static json_t *load(const char *yaml)
{
	struct compose_opts o = { .stack = "st", .file = "stack.yml", .getenv = test_env };
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (stack_compose_load(yaml, strlen(yaml), &o, &out, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("refused: %s", m);
	}
	return out;
}

/* The error message of a refused file. */
static char *refused(const char *yaml)
{
	struct compose_opts o = { .stack = "st", .file = "stack.yml", .getenv = test_env };
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (stack_compose_load(yaml, strlen(yaml), &o, &out, &err) == 0) {
		json_decref(out);
		fail_msg("accepted: %s", yaml);
	}
	return berth_error_string(err);
}

static json_t *service(json_t *out, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach (json_object_get(out, "services"), i, s)
		if (streq(json_string_value(json_object_get(s, "name")), name))
			return s;
	fail_msg("no service %s", name);
	return NULL;
}

static void assert_json(const json_t *got, const char *want_json)
{
	_cleanup_json_ json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
	assert_non_null(want);
	if (!json_equal((json_t *)got, want)) {
		_cleanup_free_ char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
		fail_msg("got %s, want %s", s, want_json);
	}
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

static const char *FULL =
    "version: '3.8'\n"
    "x-common: &common\n"
    "  environment:\n"
    "    LOG: debug\n"
    "services:\n"
    "  web:\n"
    "    image: busybox:${TAG}\n"
    "    command: httpd -f -p 80 -h /www\n"
    "    <<: *common\n"
    "    ports: ['8080:80', {target: 81}]\n"
    "    volumes: ['data:/data:ro', '/srv:/srv', {type: tmpfs, target: /tmp, tmpfs: {size: 8M}}]\n"
    "    healthcheck:\n"
    "      test: wget -q -O- localhost\n"
    "      interval: 2s\n"
    "      retries: 2\n"
    "    depends_on: [cache]\n"
    "    deploy:\n"
    "      replicas: 3\n"
    "      resources: {limits: {cpus: '0.5', memory: 128M}, reservations: {memory: 32M}}\n"
    "      placement:\n"
    "        constraints: ['node.labels.zone == a']\n"
    "        preferences: [{spread: node.labels.rack}]\n"
    "      update_config: {parallelism: 1, order: start-first, failure_action: rollback}\n"
    "  cache:\n"
    "    image: busybox\n"
    "    environment: [A=1, B]\n"
    "    deploy: {mode: global}\n"
    "  migrate:\n"
    "    image: busybox\n"
    "    entrypoint: [sh, -c]\n"
    "    command: ['echo done']\n"
    "    deploy: {restart_policy: {condition: none}}\n"
    "volumes:\n"
    "  data:\n";

static void test_mapping(void **state)
{
	(void)state;
	_cleanup_json_ json_t *out = load(FULL);
	/* dependencies first */
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(json_object_get(out, "services"), 0), "name")),
	    "cache");
	json_t *web = service(out, "web");
	assert_string_equal(json_string_value(json_object_get(web, "ecsName")), "st_web");
	json_t *td = json_object_get(web, "taskDefinition");
	assert_json(json_object_get(td, "family"), "\"st_web\"");
	assert_json(json_object_get(td, "networkMode"), "\"awsvpc\"");
	assert_json(json_object_get(td, "cpu"), "\"512\"");
	json_t *def = json_array_get(json_object_get(td, "containerDefinitions"), 0);
	assert_json(json_object_get(def, "image"), "\"busybox:1.36\"");
	assert_json(json_object_get(def, "command"), "[\"httpd\",\"-f\",\"-p\",\"80\",\"-h\",\"/www\"]");
	assert_json(json_object_get(def, "environment"), "[{\"name\":\"LOG\",\"value\":\"debug\"}]");
	assert_json(
	    json_object_get(def, "portMappings"),
	    "[{\"containerPort\":80,\"protocol\":\"tcp\"},{\"containerPort\":81,\"protocol\":\"tcp\"}]");
	assert_json(json_object_get(def, "dockerLabels"), "{\"com.docker.stack.namespace\":\"st\"}");
	assert_json(json_object_get(def, "dnsSearchDomains"), "[\"st\"]");
	assert_json(json_object_get(def, "memory"), "128");
	assert_json(json_object_get(def, "memoryReservation"), "32");
	assert_json(json_object_get(def, "healthCheck"),
		    "{\"command\":[\"CMD-SHELL\",\"wget -q -O- localhost\"],\"retries\":2,\"interval\":5,"
		    "\"timeout\":30,\"startPeriod\":0}");
	assert_json(json_object_get(def, "mountPoints"),
		    "[{\"sourceVolume\":\"st_data\",\"containerPath\":\"/data\",\"readOnly\":true},"
		    "{\"sourceVolume\":\"bind-0\",\"containerPath\":\"/srv\",\"readOnly\":false}]");
	assert_json(json_object_get(json_object_get(def, "linuxParameters"), "tmpfs"),
		    "[{\"containerPath\":\"/tmp\",\"size\":8}]");
	assert_json(json_object_get(td, "volumes"),
		    "[{\"name\":\"st_data\",\"dockerVolumeConfiguration\":{\"scope\":\"shared\","
		    "\"autoprovision\":true,"
		    "\"driver\":\"local\"}},{\"name\":\"bind-0\",\"host\":{\"sourcePath\":\"/srv\"}}]");
	json_t *svc = json_object_get(web, "service");
	assert_json(
	    svc,
	    "{\"serviceName\":\"st_web\",\"schedulingStrategy\":\"REPLICA\",\"desiredCount\":3,"
	    "\"deploymentConfiguration\":{\"deploymentCircuitBreaker\":{\"enable\":true,\"rollback\":true},"
	    "\"minimumHealthyPercent\":100,\"maximumPercent\":134},"
	    "\"placementConstraints\":[{\"type\":\"memberOf\",\"expression\":\"attribute:zone == a\"}],"
	    "\"placementStrategy\":[{\"type\":\"spread\",\"field\":\"attribute:rack\"}]}");
	assert_json(
	    json_object_get(web, "ports"),
	    "[{\"published\":8080,\"target\":80,\"protocol\":\"tcp\",\"lb\":\"st-web-8080\",\"line\":10,"
	    "\"deregistrationDelay\":10}]");
	assert_json(json_object_get(web, "dependsOn"), "[\"cache\"]");
	assert_int_equal(strlen(json_string_value(json_object_get(web, "hash"))), 64);

	json_t *cache = service(out, "cache");
	assert_json(json_object_get(json_object_get(cache, "service"), "schedulingStrategy"), "\"DAEMON\"");
	assert_null(json_object_get(json_object_get(cache, "service"), "desiredCount"));
	json_t *cdef = json_array_get(
	    json_object_get(json_object_get(cache, "taskDefinition"), "containerDefinitions"), 0);
	assert_json(json_object_get(cdef, "environment"), "[{\"name\":\"A\",\"value\":\"1\"}]"); /* B unset */
	assert_json(json_object_get(cdef, "memoryReservation"), "64");

	json_t *mig = service(out, "migrate");
	assert_json(json_object_get(mig, "kind"), "\"job\"");
	json_t *mdef = json_array_get(
	    json_object_get(json_object_get(mig, "taskDefinition"), "containerDefinitions"), 0);
	assert_json(json_object_get(mdef, "entryPoint"), "[\"sh\",\"-c\"]");
	assert_json(json_object_get(mdef, "command"), "[\"echo done\"]");
	/* the start-first clamp to ECS's healthcheck range warned with a location */
	_cleanup_free_ char *w = json_dumps(json_object_get(out, "warnings"), JSON_COMPACT);
	assert_contains(w, "stack.yml:14:17: services.web.healthcheck.interval: 2 s is outside");
}

static void test_hash_stable(void **state)
{
	(void)state;
	_cleanup_json_ json_t *a = load(FULL), *b = load(FULL);
	assert_true(json_equal(a, b));
	/* a change of one service changes its hash only */
	_cleanup_free_ char *changed = xstrdup(FULL);
	char *p = strstr(changed, "replicas: 3");
	p[10] = '4';
	_cleanup_json_ json_t *c = load(changed);
	assert_string_equal(json_string_value(json_object_get(service(a, "web"), "hash")),
			    json_string_value(json_object_get(service(c, "web"), "hash")));
	assert_json(json_object_get(json_object_get(service(c, "web"), "service"), "desiredCount"), "4");
	_cleanup_free_ char *img = xstrdup(FULL);
	p = strstr(img, "image: busybox\n    environment");
	memcpy(p, "image: busyboy", 14);
	_cleanup_json_ json_t *d = load(img);
	assert_string_not_equal(json_string_value(json_object_get(service(a, "cache"), "hash")),
				json_string_value(json_object_get(service(d, "cache"), "hash")));
	assert_string_equal(json_string_value(json_object_get(service(a, "web"), "hash")),
			    json_string_value(json_object_get(service(d, "web"), "hash")));
}

static void test_build(void **state)
{
	(void)state;
	_cleanup_json_ json_t *out = load("services:\n  web:\n    build:\n      context: ./app\n"
					  "      dockerfile: D.web\n      target: prod\n"
					  "      args: [A=1, TAG, NOPE]\n      labels: {x: y}\n"
					  "      cache_from: [c:1]\n");
	json_t *web = service(out, "web");
	assert_null(json_object_get(web, "image"));
	/* an arg without a value takes the environment's, or is left out */
	assert_json(json_object_get(web, "build"),
		    "{\"context\":\"./app\",\"dockerfile\":\"D.web\",\"target\":\"prod\","
		    "\"cacheFrom\":[\"c:1\"],\"args\":{\"A\":\"1\",\"TAG\":\"1.36\"},"
		    "\"labels\":{\"x\":\"y\"},\"line\":4}");
	/* the image apply built: task definition, tag and hash follow */
	_cleanup_free_ char *h0 = xstrdup(json_string_value(json_object_get(web, "hash")));
	assert_int_equal(stack_compose_set_image(web, "reg:5000/st/web:build-0123456789ab"), 0);
	assert_json(json_object_get(json_array_get(json_object_get(json_object_get(web, "taskDefinition"),
								   "containerDefinitions"),
						   0),
				    "image"),
		    "\"reg:5000/st/web:build-0123456789ab\"");
	assert_string_not_equal(h0, json_string_value(json_object_get(web, "hash")));
	_cleanup_free_ char *h1 = xstrdup(json_string_value(json_object_get(web, "hash")));
	assert_int_equal(stack_compose_set_image(web, "reg:5000/st/web:build-0123456789ab"), 0);
	assert_string_equal(h1, json_string_value(json_object_get(web, "hash")));
	size_t n = 0, i;
	json_t *t;
	json_array_foreach (json_object_get(web, "tags"), i, t)
		n += streq(json_string_value(json_object_get(t, "key")), STACK_TAG_IMAGE);
	assert_int_equal(n, 1);
	_cleanup_json_ json_t *bad = json_object();
	assert_int_equal(stack_compose_set_image(bad, "x"), -EINVAL);
}

static void test_errors_located(void **state)
{
	(void)state;
	struct {
		const char *yaml, *want;
	} cases[] = {
		{ "services:\n  web:\n    image: x\n    bogus: 1\n",
		  "stack.yml:4:5: services.web.bogus: unknown key 'bogus'" },
		{ "services:\n  web:\n    image: x\n    ports: ['80:abc']\n",
		  "stack.yml:4:13: services.web.ports[0]: invalid port '80:abc'" },
		{ "services:\n  web:\n    image: x\n    ports: ['70000:80']\n", "invalid port '70000:80'" },
		{ "services:\n  web:\n    image: [x\n", "stack.yml:4:1: " },
		{ "services:\n  web:\n    image: x\n    network_mode: host\n",
		  "stack.yml:4:5: services.web.network_mode: 'network_mode' is not supported on berth" },
		{ "services:\n  web:\n    image: x\n    depends_on: [db]\n", "service 'db' is not defined" },
		{ "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: "
		  "[a]\n",
		  "dependency cycle" },
		{ "services:\n  web:\n    image: x\n    volumes: ['./data:/data']\n", "must be absolute" },
		{ "services:\n  web:\n    image: x\n    volumes: ['data:/data']\n",
		  "volume 'data' is not declared in the top-level 'volumes'" },
		{ "services:\n  web:\n    image: ${NOPE:?set it}\n",
		  "required variable 'NOPE' is missing a value: set it" },
		{ "services:\n  web:\n    image: x\n    deploy: {mode: global, replicas: 2}\n",
		  "with mode global" },
		{ "services:\n  web:\n    image: x\n    deploy: {placement: {constraints: "
		  "[node.role==manager]}}\n",
		  "unsupported constraint 'node.role'" },
		{ "services:\n  web:\n    image: x\n    deploy: {placement: {constraints: ['node.labels.a "
		  "b==x']}}\n",
		  "invalid node label 'a b'" },
		{ "services:\n  web:\n    image: x\n    deploy: {placement: {preferences: [{spread: "
		  "node.labels.a b}]}}\n",
		  "unsupported preference" },
		{ "services:\n  web:\n    image: x\n    ports: ['1:1', '2:2', '3:3', '4:4', '5:5', '6:6']\n",
		  "6 published ports: an ECS service takes at most 5 load balancers" },
		{ "services:\n  web:\n    build: .\n",
		  NULL }, /* build without image is accepted here (apply checks) */
		{ "services:\n  web:\n    command: x\n", "service 'web' needs an 'image'" },
		{ "services:\n  web:\n    build: {context: ., args: 3}\n",
		  "stack.yml:3:31: services.web.build.args: expected a list or a mapping" },
		{ "services:\n  web:\n    build: {context: ., bogus: 1}\n", "services.web.build.bogus" },
		{ "services:\n  web:\n    build: {dockerfile: [a]}\n", "services.web.build.dockerfile" },
		{ "services: {}\n", "'services' must map at least one service" },
		{ "", "the file is empty" },
		{ "a: &a [1]\nb: *a\nservices: {}\n", "unknown key 'a'" },
		{ "services:\n  web:\n    image: x\n    ports: ['8080:80/udp']\n", "a published udp port" },
		{ "services:\n  web:\n    image: x\n    ports: [{target: 80, mode: host, published: 80}]\n",
		  "mode 'host' is not supported" },
		{ "services:\n  web:\n    image: x\n  web:\n    image: y\n",
		  "stack.yml:4:3: duplicate key 'web'" },
		{ "services:\n  web.x:\n    image: x\n", "service name 'web.x'" },
		{ "services:\n  web:\n    image: x\n    healthcheck: {test: [BOGUS, x]}\n",
		  "expected [\"CMD\"" },
		{ "services:\n  web:\n    image: x\n    deploy: {resources: {limits: {memory: lots}}}\n",
		  "invalid size 'lots'" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (!cases[i].want) {
			json_decref(load(cases[i].yaml));
			continue;
		}
		_cleanup_free_ char *m = refused(cases[i].yaml);
		assert_contains(m, cases[i].want);
	}
	/* several errors at once, one per line */
	_cleanup_free_ char *m =
	    refused("services:\n  a:\n    image: x\n    foo: 1\n  b:\n    image: x\n    bar: 2\n");
	assert_contains(m, "stack.yml:4:5: services.a.foo");
	assert_contains(m, "\nstack.yml:7:5: services.b.bar");
}

static void test_warnings(void **state)
{
	(void)state;
	/* (tmpfs as one string: a leak found by fuzz-stack-compose) */
	_cleanup_json_ json_t *out = load("services:\n  web:\n    image: x\n    secrets: [pw]\n    build: .\n"
					  "    tmpfs: /run\n"
					  "    deploy: {restart_policy: {condition: on-failure, delay: 5s}}\n"
					  "secrets:\n  pw: {file: ./pw}\n");
	_cleanup_free_ char *w = json_dumps(json_object_get(out, "warnings"), JSON_COMPACT);
	assert_contains(w, "stack.yml:4:5: services.web.secrets: secrets are not supported yet");
	assert_contains(w, "stack.yml:8:1: secrets: secrets are not supported yet");
	assert_contains(w, "ignoring build");
	assert_contains(w, "on-failure behaves as any");
	assert_contains(w, "restart_policy.delay");
}

static void test_interpolation_and_names(void **state)
{
	(void)state;
	_cleanup_json_ json_t *out =
	    load("services:\n  web:\n    image: \"b:${UNSET:-d}-${EMPTY-e}-$$HOME-${TAG}\"\n");
	json_t *def = json_array_get(
	    json_object_get(json_object_get(service(out, "web"), "taskDefinition"), "containerDefinitions"),
	    0);
	assert_json(json_object_get(def, "image"), "\"b:d--$HOME-1.36\"");
	assert_true(stack_compose_stack_name_valid("my-stack_1"));
	assert_false(stack_compose_stack_name_valid("My"));
	assert_false(stack_compose_stack_name_valid("-x"));
	assert_false(stack_compose_stack_name_valid(""));
	_cleanup_free_ char *d = stack_compose_default_stack_name("/home/u/My App.v2/");
	assert_string_equal(d, "myappv2");
	_cleanup_free_ char *l1 = stack_compose_lb_name("st", "web_x", 8080);
	assert_string_equal(l1, "st-web-x-8080");
	_cleanup_free_ char *l2 = stack_compose_lb_name("a-very-long-stack-name", "and-a-long-service", 8080);
	assert_int_equal(strlen(l2), 32);
	assert_true(startswith(l2, "a-very-long-stack-name-"));
}

static void test_ytree_refusals(void **state)
{
	(void)state;
	struct ytree *t = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	/* an alias bomb is refused before it is expanded */
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		strbuf_addf(&sb, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
			    i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	assert_int_equal(stack_ytree_parse(sb.buf, sb.len, &t, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_contains(m, "too large after alias expansion");
	err = berth_error_free(err);
	assert_int_equal(stack_ytree_parse("a: *nope\n", 9, &t, &err), -EINVAL);
	err = berth_error_free(err);
	assert_int_equal(stack_ytree_parse("a: 1\n---\nb: 2\n", 14, &t, &err), -EINVAL);
	err = berth_error_free(err);
	assert_int_equal(stack_ytree_parse("[1]: x\n", 7, &t, &err), -EINVAL);
	err = berth_error_free(err);
	/* merge keys: explicit keys win, lists of maps merge in order */
	const char *y = "b: &b {x: 1, y: 2}\nc: &c {z: 3, x: 9}\nd:\n  <<: [*b, *c]\n  y: 5\n";
	assert_int_equal(stack_ytree_parse(y, strlen(y), &t, &err), 0);
	struct ynode *d = stack_ynode_get(t->root, "d");
	assert_string_equal(stack_ynode_get(d, "x")->str, "1");
	assert_string_equal(stack_ynode_get(d, "y")->str, "5");
	assert_string_equal(stack_ynode_get(d, "z")->str, "3");
	assert_int_equal(stack_ynode_get(d, "y")->line, 5);
	t = stack_ytree_free(t);
	assert_int_equal(stack_ytree_parse("", 0, &t, &err), 0);
	assert_null(t->root);
	t = stack_ytree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping),        cmocka_unit_test(test_hash_stable),
		cmocka_unit_test(test_build),          cmocka_unit_test(test_errors_located),
		cmocka_unit_test(test_warnings),       cmocka_unit_test(test_interpolation_and_names),
		cmocka_unit_test(test_ytree_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
