/* test-agent-task.c - ECS container definitions to Docker configs, start order, bad input. */
#include "unit.h"
#include "agent/task.h"
#include "common/json.h"
#include "common/strbuf.h"

static json_t *ids, *vols;

static struct agent_task_ctx ctx_of(const char *mode)
{
	struct agent_task_ctx c = {
		.task_arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef",
		.task_id = "0123456789abcdef0123456789abcdef",
		.cluster = "prod",
		.cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
		.family = "web",
		.revision = 3,
		.network_mode = mode,
		.pause_id = "pause0123",
		.cgroup_parent = "berth-agent/task-0123",
		.volumes = vols,
		.container_ids = ids
	};
	return c;
}

static int setup(void **state)
{
	(void)state;
	ids = json_pack("{s:s}", "init", "abc123");
	vols =
	    json_pack("{s:{s:s},s:{s:s}}", "data", "Bind", "/srv/data", "cache", "Volume", "ecs-web-3-cache");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(ids);
	json_decref(vols);
	return 0;
}

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void test_full_definition_maps_like_the_ecs_agent(void **state)
{
	(void)state;
	_cleanup_json_ json_t *def = parse(
	    "{\"name\":\"app\",\"image\":\"busybox:1\",\"cpu\":1,\"memory\":128,\"memoryReservation\":64,"
	    "\"command\":[\"sh\",\"-c\",\"x\"],\"entryPoint\":[\"/bin/env\"],\"workingDirectory\":\"/w\","
	    "\"user\":\"1000\",\"environment\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"B\",\"value\":"
	    "\"2\"}],"
	    "\"portMappings\":[{\"containerPort\":80,\"hostPort\":0},{\"containerPort\":53,\"protocol\":"
	    "\"udp\"}],"
	    "\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"true\"],\"interval\":5,\"retries\":2},"
	    "\"mountPoints\":[{\"sourceVolume\":\"data\",\"containerPath\":\"/d\",\"readOnly\":true},"
	    "{\"sourceVolume\":\"cache\",\"containerPath\":\"/c\"}],"
	    "\"volumesFrom\":[{\"sourceContainer\":\"init\",\"readOnly\":true}],"
	    "\"ulimits\":[{\"name\":\"nofile\",\"softLimit\":100,\"hardLimit\":200}],"
	    "\"linuxParameters\":{\"capabilities\":{\"add\":[\"NET_ADMIN\"]},\"initProcessEnabled\":true,"
	    "\"sharedMemorySize\":64,\"tmpfs\":[{\"containerPath\":\"/"
	    "t\",\"size\":16,\"mountOptions\":[\"noexec\"]}]},"
	    "\"dockerLabels\":{\"team\":\"a\"},\"readonlyRootFilesystem\":true,\"stopTimeout\":7,"
	    "\"extraHosts\":[{\"hostname\":\"db\",\"ipAddress\":\"10.0.0.2\"}],"
	    "\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-group\":\"g\"}}}");
	_cleanup_json_ json_t *ov =
	    parse("{\"name\":\"app\",\"command\":[\"true\"],\"memory\":256,"
		  "\"environment\":[{\"name\":\"B\",\"value\":\"3\"},{\"name\":\"C\",\"value\":\"4\"}]}");
	struct agent_task_ctx c = ctx_of("bridge");
	json_t *cfg = NULL, *hc = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(agent_container_spec(&c, def, ov, &cfg, &hc, &err), 0);
	_cleanup_json_ json_t *want_cfg =
	    parse("{\"Image\":\"busybox:1\",\"WorkingDir\":\"/w\",\"User\":\"1000\",\"Cmd\":[\"true\"],"
		  "\"Entrypoint\":[\"/bin/env\"],\"StopTimeout\":7,\"Env\":[\"A=1\",\"B=3\",\"C=4\"],"
		  "\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}},"
		  "\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],\"Interval\":5000000000,\"Timeout\":"
		  "5000000000,"
		  "\"Retries\":2,\"StartPeriod\":0},"
		  "\"Labels\":{\"team\":\"a\",\"com.amazonaws.ecs.task-arn\":\"arn:aws:ecs:us-east-1:"
		  "123456789012:task/prod/0123456789abcdef0123456789abcdef\","
		  "\"com.amazonaws.ecs.container-name\":\"app\",\"com.amazonaws.ecs.cluster\":\"arn:aws:ecs:"
		  "us-east-1:123456789012:cluster/prod\","
		  "\"com.amazonaws.ecs.task-definition-family\":\"web\",\"com.amazonaws.ecs.task-definition-"
		  "version\":\"3\","
		  "\"io.berth.agent.task\":\"0123456789abcdef0123456789abcdef\"}}");
	_cleanup_json_ json_t *want_hc = parse(
	    "{\"CpuShares\":2,\"Memory\":268435456,\"MemoryReservation\":67108864,"
	    "\"PortBindings\":{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"\"}],\"53/"
	    "udp\":[{\"HostIp\":\"\",\"HostPort\":\"\"}]},"
	    "\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/srv/data\",\"Target\":\"/d\",\"ReadOnly\":true},"
	    "{\"Type\":\"volume\",\"Source\":\"ecs-web-3-cache\",\"Target\":\"/c\",\"ReadOnly\":false}],"
	    "\"VolumesFrom\":[\"abc123:ro\"],\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":100,\"Hard\":200}],"
	    "\"CapAdd\":[\"NET_ADMIN\"],\"Init\":true,\"ShmSize\":67108864,\"Tmpfs\":{\"/"
	    "t\":\"size=16m,noexec\"},"
	    "\"ReadonlyRootfs\":true,\"ExtraHosts\":[\"db:10.0.0.2\"],"
	    "\"LogConfig\":{\"Type\":\"json-file\",\"Config\":{}},\"NetworkMode\":\"bridge\","
	    "\"CgroupParent\":\"berth-agent/task-0123\",\"RestartPolicy\":{\"Name\":\"no\"}}");
	if (!json_equal(cfg, want_cfg) || !json_equal(hc, want_hc)) {
		char *a = json_dumps(cfg, JSON_SORT_KEYS), *b = json_dumps(hc, JSON_SORT_KEYS);
		fail_msg("config %s\nhostconfig %s", a, b);
	}
	json_decref(cfg);
	json_decref(hc);
}

static void test_awsvpc_joins_the_pause_namespace_and_host_ports_must_match(void **state)
{
	(void)state;
	struct agent_task_ctx c = ctx_of("awsvpc");
	_cleanup_json_ json_t *def =
	    parse("{\"name\":\"a\",\"image\":\"x\",\"portMappings\":[{\"containerPort\":80}]}");
	json_t *cfg = NULL, *hc = NULL;
	assert_int_equal(agent_container_spec(&c, def, NULL, &cfg, &hc, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "container:pause0123");
	assert_null(json_object_get(hc, "PortBindings"));
	json_decref(cfg), json_decref(hc);
	_cleanup_json_ json_t *bad = parse(
	    "{\"name\":\"a\",\"image\":\"x\",\"portMappings\":[{\"containerPort\":80,\"hostPort\":81}]}");
	struct berth_error *err = NULL;
	assert_int_equal(agent_container_spec(&c, bad, NULL, &cfg, &hc, &err), -EINVAL);
	assert_non_null(strstr(err->msg, "containerDefinitions[a].portMappings"));
	berth_error_free(err);
	c.pause_id = NULL;
	err = NULL;
	assert_int_equal(agent_container_spec(&c, def, NULL, &cfg, &hc, &err), -EINVAL);
	berth_error_free(err);
	_cleanup_free_ char *name = agent_container_name(&c, "a");
	assert_string_equal(name, "ecs-web-3-a-0123456789abcdef0123");
}

static void test_bad_fields_are_named(void **state)
{
	(void)state;
	static const struct {
		const char *def, *want;
	} cases[] = {
		{ "{\"image\":\"x\"}", "name" },
		{ "{\"name\":\"bad name\",\"image\":\"x\"}", "name" },
		{ "{\"name\":\"a\"}", "[a].image: required" },
		{ "{\"name\":\"a\",\"image\":5}", "[a].image: expected a string" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"cpu\":-1}", "[a].cpu" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"memory\":4}", "[a].memory: at least 6 MiB" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"memory\":\"1\"}", "[a].memory" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"portMappings\":[{\"containerPort\":0}]}",
		  "portMappings" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"portMappings\":[{\"containerPort\":80,\"protocol\":"
		  "\"sctp\"}]}",
		  "portMappings[0].protocol: must be tcp or udp" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"portMappings\":{}}", "portMappings: expected an array" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"environment\":[{\"value\":\"1\"}]}", "environment" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"command\":[1]}", "command" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"healthCheck\":{\"command\":[\"RUN\"]}}",
		  "healthCheck.command" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"healthCheck\":{\"command\":[\"CMD\",\"x\"],\"interval\":"
		  "1}}",
		  "interval" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"mountPoints\":[{\"sourceVolume\":\"nope\","
		  "\"containerPath\":\"/x\"}]}",
		  "unknown volume 'nope'" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"mountPoints\":[{\"sourceVolume\":\"data\","
		  "\"containerPath\":\"x\"}]}",
		  "absolute containerPath" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"volumesFrom\":[{\"sourceContainer\":\"zz\"}]}",
		  "volumesFrom" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"ulimits\":[{\"name\":\"nofile\"}]}", "ulimits" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"stopTimeout\":1000}", "stopTimeout" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"dockerLabels\":{\"k\":1}}", "dockerLabels" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"logConfiguration\":{}}", "logConfiguration" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"linuxParameters\":{\"tmpfs\":[{\"containerPath\":\"/"
		  "t\"}]}}",
		  "tmpfs" },
		{ "{\"name\":\"a\",\"image\":\"x\",\"extraHosts\":[{\"hostname\":\"h\"}]}", "extraHosts" },
	};
	struct agent_task_ctx c = ctx_of("bridge");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_json_ json_t *def = parse(cases[i].def);
		json_t *cfg = (json_t *)1, *hc = (json_t *)1;
		struct berth_error *err = NULL;
		assert_int_equal(agent_container_spec(&c, def, NULL, &cfg, &hc, &err), -EINVAL);
		assert_ptr_equal(cfg, (json_t *)1); /* outputs untouched on failure */
		if (!strstr(err->msg, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err->msg, cases[i].want);
		berth_error_free(err);
	}
	_cleanup_json_ json_t *def = parse("{\"name\":\"a\",\"image\":\"x\"}");
	json_t *cfg = NULL, *hc = NULL;
	c.network_mode = "nat";
	struct berth_error *err = NULL;
	assert_int_equal(agent_container_spec(&c, def, NULL, &cfg, &hc, &err), -EINVAL);
	assert_non_null(strstr(err->msg, "networkMode"));
	berth_error_free(err);
}

/* Start order as "a b c " in buf, or NULL on error. */
static const char *order_of(const char *defs, struct strbuf *buf, struct berth_error **err)
{
	_cleanup_json_ json_t *d = parse(defs);
	json_t *o = NULL;
	if (agent_task_order(d, &o, err) < 0)
		return NULL;
	strbuf_reset(buf);
	size_t i;
	json_t *v;
	json_array_foreach (o, i, v)
		strbuf_addf(buf, "%s ", json_string_value(v));
	json_decref(o);
	return buf->buf;
}

static void test_start_order_follows_depends_on(void **state)
{
	(void)state;
	_cleanup_strbuf_ struct strbuf buf = STRBUF_INIT;
	struct berth_error *err = NULL;
	assert_string_equal(
	    order_of("[{\"name\":\"a\",\"dependsOn\":[{\"containerName\":\"c\",\"condition\":\"HEALTHY\"}]},"
		     "{\"name\":\"b\"},{\"name\":\"c\",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":"
		     "\"COMPLETE\"}]}]",
		     &buf, &err),
	    "b c a ");
	static const char *const bad[] = {
		"[]",
		"[{\"name\":\"a\",\"dependsOn\":[{\"containerName\":\"a\",\"condition\":\"START\"}]}]",
		"[{\"name\":\"a\",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"START\"}]},"
		"{\"name\":\"b\",\"dependsOn\":[{\"containerName\":\"a\",\"condition\":\"START\"}]}]",
		"[{\"name\":\"a\",\"dependsOn\":[{\"containerName\":\"x\",\"condition\":\"START\"}]}]",
		"[{\"name\":\"a\",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"READY\"}]},{"
		"\"name\":\"b\"}]",
		"[{\"name\":\"a\"},{\"name\":\"a\"}]",
		"[{\"image\":\"x\"}]",
		"[{\"name\":\"a\",\"dependsOn\":{}}]",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err = NULL;
		if (order_of(bad[i], &buf, &err))
			fail_msg("case %zu accepted", i);
		assert_non_null(err);
		berth_error_free(err);
	}
	_cleanup_json_ json_t *ess = parse("[{\"essential\":false},{},{\"essential\":true}]");
	assert_false(agent_container_essential(json_array_get(ess, 0)));
	assert_true(agent_container_essential(json_array_get(ess, 1)));
	assert_true(agent_container_essential(json_array_get(ess, 2)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_definition_maps_like_the_ecs_agent),
		cmocka_unit_test(test_awsvpc_joins_the_pause_namespace_and_host_ports_must_match),
		cmocka_unit_test(test_bad_fields_are_named),
		cmocka_unit_test(test_start_order_follows_depends_on),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
