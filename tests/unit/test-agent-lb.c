/*
 * test-agent-lb.c - the pure half of the agent's load balancer (lb-plan.c):
 * the dataplane answer as backends, slot assignment and the runtime API
 * commands a change needs, HAProxy configuration rendering and the
 * resolver's records file.
 */
#include "unit.h"

#include "agent/lb.h"
#include "common/json.h"
#include "common/strbuf.h"

static json_t *answer(void)
{
	return json_pack("[{s:s,s:i,s:s,s:s,s:i,s:i,s:i,s:[]},{s:s,s:i,s:s,s:{s:s,s:s},s:[]},"
			 "{s:s,s:i,s:s},{s:s,s:i,s:s},{s:s,s:i,s:s,s:s}]",
			 "name", "web", "port", 8080, "protocol", "HTTP", "healthCheckPath", "/healthz",
			 "healthCheckIntervalSeconds", 1, "healthyThresholdCount", 2,
			 "unhealthyThresholdCount", 3, "targets", /* */ "name", "db", "port", 5432,
			 "protocol", "TCP", "tls", "certificate", "CERT\n", "privateKey", "KEY\n", "targets",
			 /* invalid ones: */ "name", "bad name", "port", 1, "protocol", "TCP", "name", "x",
			 "port", 70000, "protocol", "TCP", "name", "y", "port", 80, "protocol", "UDP",
			 "healthCheckPath", "/");
}

static void test_set_from_answer(void **state)
{
	(void)state;
	_cleanup_json_ json_t *a = answer();
	struct lb_set s;
	size_t skipped = 0;
	agent_lb_set_from_answer(a, &s, &skipped);
	assert_int_equal(s.n, 2);
	assert_int_equal(skipped, 3);
	assert_string_equal(s.v[0].name, "web");
	assert_true(s.v[0].http);
	assert_string_equal(s.v[0].health_path, "/healthz");
	assert_int_equal(s.v[0].interval, 1);
	assert_int_equal(s.v[0].fall, 3);
	assert_null(s.v[0].tls_pem);
	assert_false(s.v[1].http);
	assert_null(s.v[1].health_path);
	assert_string_equal(s.v[1].tls_pem, "CERT\nKEY\n");
	struct lb_set t;
	agent_lb_set_from_answer(a, &t, NULL);
	assert_false(agent_lb_backend_listener_changed(&s.v[0], &t.v[0]));
	t.v[0].port = 8081;
	assert_true(agent_lb_backend_listener_changed(&s.v[0], &t.v[0]));
	agent_lb_set_done(&s);
	agent_lb_set_done(&t);
}

static json_t *targets(const char *spec)
{
	/* "id:ip:port:state,..." */
	json_t *out = json_array();
	_cleanup_free_ char *copy = xstrdup(spec);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char id[32], ip[32], st[16];
		int port;
		assert_int_equal(sscanf(t, "%31[^:]:%31[^:]:%d:%15s", id, ip, &port, st), 4);
		json_array_append_new(
		    out, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "address", ip, "port", port, "state", st));
	}
	return out;
}

static void test_plan_keeps_slots_and_emits_runtime_commands(void **state)
{
	(void)state;
	struct lb_backend b = { .name = xstrdup("web") };
	agent_lb_backend_grow(&b, 1);
	assert_int_equal(b.n_slots, LB_MIN_SLOTS);
	struct strbuf cmds = STRBUF_INIT;
	_cleanup_json_ json_t *t1 = targets("a:10.0.0.1:80:healthy,b:10.0.0.2:80:healthy,x:bad:80:healthy,"
					    "c:10.0.0.3:80:initial");
	assert_true(agent_lb_plan(&b, t1, &cmds));
	assert_string_equal(cmds.buf, "set server be_web/s1 addr 10.0.0.1 port 80\n"
				      "set server be_web/s1 state ready\n"
				      "set server be_web/s2 addr 10.0.0.2 port 80\n"
				      "set server be_web/s2 state ready\n");
	/* the same answer again: nothing to do */
	strbuf_reset(&cmds);
	assert_true(agent_lb_plan(&b, t1, &cmds));
	assert_int_equal(cmds.len, 0);
	/* a drains, b leaves, d arrives (takes b's slot: the lowest free one) */
	_cleanup_json_ json_t *t2 = targets("d:10.0.0.4:8080:healthy,a:10.0.0.1:80:draining");
	assert_true(agent_lb_plan(&b, t2, &cmds));
	assert_string_equal(cmds.buf, "set server be_web/s1 state drain\n"
				      "set server be_web/s2 state maint\n"
				      "set server be_web/s2 addr 10.0.0.4 port 8080\n"
				      "set server be_web/s2 state ready\n");
	assert_string_equal(b.slots[1].id, "d");
	assert_int_equal(b.slots[0].st, LB_SLOT_DRAIN);
	/* more targets than slots: refused, nothing changed; growing makes room */
	_cleanup_strbuf_ struct strbuf many = STRBUF_INIT;
	for (int i = 0; i < LB_MIN_SLOTS + 1; i++)
		strbuf_addf(&many, "%st%d:10.0.1.%d:80:healthy", i ? "," : "", i, i + 1);
	_cleanup_json_ json_t *t3 = targets(many.buf);
	strbuf_reset(&cmds);
	assert_false(agent_lb_plan(&b, t3, &cmds));
	assert_int_equal(cmds.len, 0);
	assert_string_equal(b.slots[1].id, "d");
	agent_lb_backend_grow(&b, json_array_size(t3));
	assert_int_equal(b.n_slots, 2 * LB_MIN_SLOTS);
	assert_true(agent_lb_plan(&b, t3, NULL));
	strbuf_release(&cmds);
	struct lb_set s = { xcalloc(1, sizeof(b)), 1 };
	s.v[0] = b;
	agent_lb_set_done(&s);
}

static void test_render_config(void **state)
{
	(void)state;
	_cleanup_json_ json_t *a = answer();
	struct lb_set s;
	agent_lb_set_from_answer(a, &s, NULL);
	agent_lb_backend_grow(&s.v[0], 0);
	_cleanup_json_ json_t *t = targets("a:10.0.0.1:80:healthy,b:10.0.0.2:80:draining");
	assert_true(agent_lb_plan(&s.v[0], t, NULL));
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	agent_lb_render_config(&s, "/run/x/lb", &out);
	const char *want[] = {
		"    master-worker\n",
		"    stats socket /run/x/lb/admin.sock mode 600 level admin expose-fd listeners\n"
		"    server-state-file /run/x/lb/server-state\n",
		"    load-server-state-from-file global\n",
		"frontend fe_web\n    mode http\n    bind :8080\n    default_backend be_web\n",
		"backend be_web\n    mode http\n    balance roundrobin\n    option httpchk GET /healthz\n",
		/* idempotent requests whose server died or answered nothing go to another one */
		"    retry-on conn-failure empty-response junk-response\n"
		"    http-request disable-l7-retry unless METH_GET || METH_OPTIONS\n",
		"    default-server check inter 1s rise 2 fall 3\n",
		"    server s1 10.0.0.1:80\n    server s2 10.0.0.2:80 disabled\n    server s3 127.0.0.1:1 "
		"disabled\n",
		"    server s16 127.0.0.1:1 disabled\n",
		"frontend fe_db\n    mode tcp\n    bind :5432 ssl crt /run/x/lb/certs/db.pem\n",
		"backend be_db\n    mode tcp\n    balance roundrobin\n    default-server check inter 5s rise "
		"2 fall 2\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		if (!strstr(out.buf, want[i]))
			fail_msg("missing %s in:\n%s", want[i], out.buf);
	assert_null(strstr(out.buf, "httpchk GET /\n")); /* tcp: connect checks only */
	assert_null(strstr(strstr(out.buf, "backend be_db"), "retry-on"));
	agent_lb_set_done(&s);
}

static void test_render_records(void **state)
{
	(void)state;
	_cleanup_json_ json_t *d = json_pack("{s:s,s:{s:[s,s],s:[s]}}", "domain", "prod.local", "names",
					     "web", "10.0.0.1", "10.0.0.2", "api", "10.0.0.3");
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	agent_lb_render_records(d, &out);
	assert_string_equal(out.buf, "api 10.0.0.3\napi.prod.local 10.0.0.3\n"
				     "web 10.0.0.1 10.0.0.2\nweb.prod.local 10.0.0.1 10.0.0.2\n");
	strbuf_reset(&out);
	agent_lb_render_records(NULL, &out);
	assert_int_equal(out.len, 0);
}

static void test_parse_stat(void **state)
{
	(void)state;
	const char *csv = "# pxname,svname,qcur,stot,bin,req_tot,status\n"
			  "fe_web,FRONTEND,,42,100,40,OPEN\n"
			  "be_web,BACKEND,0,40,100,,UP\n"
			  "be_web,s1,0,20,50,,UP\n"
			  "fe_db,FRONTEND,,7,10,,OPEN\n"
			  "fe_,FRONTEND,,1,1,,OPEN\n"
			  "fe_bad,FRONTEND,,x,1,,OPEN\n"
			  "fe_short,FRONTEND\n";
	json_t *j = agent_lb_parse_stat(csv);
	assert_int_equal(json_object_size(j), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "web")), 40); /* HTTP: requests */
	assert_int_equal(json_integer_value(json_object_get(j, "db")), 7);   /* TCP: sessions */
	json_decref(j);
	j = agent_lb_parse_stat("Unknown command\n");
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
	j = agent_lb_parse_stat("# svname,stot\nfe_x,FRONTEND\n"); /* no pxname column */
	assert_int_equal(json_object_size(j), 0);
	json_decref(j);
}

/* HAProxy's per-server status -> ELB's target health, named through the slot map. */
static void test_parse_health(void **state)
{
	(void)state;
	struct lb_set set = { 0 };
	_cleanup_json_ json_t *a = json_pack(
	    "[{s:s,s:i,s:s,s:[{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s},"
	    "{s:s,s:s,s:i,s:s}]}]",
	    "name", "web", "port", 8080, "protocol", "HTTP", "targets", "id", "t1", "address", "10.0.0.1",
	    "port", 80, "state", "healthy", "id", "t2", "address", "10.0.0.2", "port", 80, "state", "healthy",
	    "id", "t3", "address", "10.0.0.3", "port", 80, "state", "healthy", "id", "t4", "address",
	    "10.0.0.4", "port", 80, "state", "draining", "id", "t5", "address", "10.0.0.5", "port", 80,
	    "state", "healthy");
	agent_lb_set_from_answer(a, &set, NULL);
	agent_lb_backend_grow(&set.v[0], 5);
	assert_true(agent_lb_plan(&set.v[0], json_object_get(json_array_get(a, 0), "targets"), NULL));
	_cleanup_json_ json_t *slots = agent_lb_slot_map(&set);
	assert_int_equal(json_object_size(slots), 5);
	assert_string_equal(json_string_value(json_object_get(json_object_get(slots, "be_web/s2"), "addr")),
			    "10.0.0.2:80");
	const char *csv = "# pxname,svname,qcur,status,check_status,check_code,addr\n"
			  "fe_web,FRONTEND,,OPEN,,,\n"
			  "be_web,s1,0,UP,L7OK,200,10.0.0.1:80\n"
			  "be_web,s2,0,DOWN,L7STS,404,10.0.0.2:80\n"
			  "be_web,s3,0,DOWN,L4TOUT,,10.0.0.3:80\n"
			  "be_web,s4,0,DRAIN,L7OK,200,10.0.0.4:80\n"
			  "be_web,s5,0,DOWN,INI,,10.0.0.99:80\n" /* the slot moved since: not t5's */
			  "be_web,s6,0,MAINT,,,127.0.0.1:1\n"
			  "be_web,BACKEND,0,UP,,,\n";
	_cleanup_json_ json_t *h = agent_lb_parse_health(csv, slots);
	json_t *web = json_object_get(h, "web");
	assert_int_equal(json_object_size(web), 4);
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t1"), "state")),
			    "healthy");
	json_t *t2 = json_object_get(web, "t2");
	assert_string_equal(json_string_value(json_object_get(t2, "state")), "unhealthy");
	assert_string_equal(json_string_value(json_object_get(t2, "reason")), "Target.ResponseCodeMismatch");
	assert_string_equal(json_string_value(json_object_get(t2, "description")),
			    "Health checks failed with these codes: [404]");
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t3"), "reason")),
			    "Target.Timeout");
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t4"), "state")),
			    "draining");
	assert_null(json_object_get(web, "t5"));
	/* a fresh server before its first check is initial; HAProxy not answering: every LB, no targets */
	json_decref(h);
	h = agent_lb_parse_health("# pxname,svname,status,check_status\nbe_web,s5,DOWN,\n", slots);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(json_object_get(h, "web"), "t5"), "state")),
	    "initial");
	json_decref(h);
	/* a check in progress: HAProxy prefixes the last result with "* " (its 404 still counts) */
	h = agent_lb_parse_health(
	    "# pxname,svname,status,check_status,check_code\nbe_web,s2,DOWN,* L7STS,404\n"
	    "be_web,s1,UP,* L7OK,200\nbe_web,s5,DOWN,* INI,\n",
	    slots);
	web = json_object_get(h, "web");
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t2"), "reason")),
			    "Target.ResponseCodeMismatch");
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t2"), "description")),
			    "Health checks failed with these codes: [404]");
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t1"), "state")),
			    "healthy");
	assert_string_equal(json_string_value(json_object_get(json_object_get(web, "t5"), "state")),
			    "initial");
	json_decref(h);
	h = agent_lb_parse_health("Unknown command\n", slots);
	assert_int_equal(json_object_size(json_object_get(h, "web")), 0);
	assert_non_null(json_object_get(h, "web"));
	agent_lb_set_done(&set);
}

static void test_runtime_answers(void **state)
{
	(void)state;
	assert_true(agent_lb_runtime_answer_ok(""));
	assert_true(agent_lb_runtime_answer_ok("\n\n"));
	assert_true(agent_lb_runtime_answer_ok(
	    "IP changed from '127.0.0.1' to '10.0.0.2', port changed from '1' to '80' "
	    "by 'stats socket command'\n\n"));
	assert_true(agent_lb_runtime_answer_ok(
	    "no need to change the addr, port changed from '1' to '80' by 'stats socket "
	    "command'\n\n"));
	assert_false(agent_lb_runtime_answer_ok("No such server.\n\n"));
	assert_false(agent_lb_runtime_answer_ok("\nUnknown command\n"));
}

static void test_runtime_line(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	agent_lb_runtime_line(
	    "set server be_web/s1 addr 10.0.0.1 port 80\nset server be_web/s1 state ready\n", &sb);
	assert_string_equal(sb.buf,
			    "set server be_web/s1 addr 10.0.0.1 port 80;set server be_web/s1 state ready\n");
	strbuf_reset(&sb);
	agent_lb_runtime_line("show stat", &sb);
	assert_string_equal(sb.buf, "show stat\n");
	strbuf_reset(&sb);
	agent_lb_runtime_line("show info\n\n;", &sb);
	assert_string_equal(sb.buf, "show info\n");
	strbuf_release(&sb);
}

/* A reload keeps the checks' verdicts: up servers move with their address to the new slot. */
static void test_server_state(void **state)
{
	(void)state;
	struct lb_set set = { 0 };
	_cleanup_json_ json_t *a =
	    json_pack("[{s:s,s:i,s:s,s:[{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s}]}]", "name",
		      "web", "port", 8080, "protocol", "HTTP", "targets", "id", "t1", "address", "10.0.0.1",
		      "port", 80, "state", "healthy", "id", "t2", "address", "10.0.0.2", "port", 80, "state",
		      "healthy", "id", "t3", "address", "10.0.0.3", "port", 80, "state", "draining");
	agent_lb_set_from_answer(a, &set, NULL);
	agent_lb_backend_grow(&set.v[0], 3);
	assert_true(agent_lb_plan(&set.v[0], json_object_get(json_array_get(a, 0), "targets"), NULL));
	const char *shown =
	    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
	    "srv_iweight "
	    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
	    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
	    "srv_check_port "
	    "srv_check_addr srv_agent_addr srv_agent_port\n"
	    /* 10.0.0.2 was in s5 of the old worker, up: it moves to s2 */
	    "3 be_web 5 s5 10.0.0.2 2 0 1 1 28 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n"
	    /* 10.0.0.1 was down: left to the checks */
	    "3 be_web 1 s1 10.0.0.1 0 0 1 1 28 15 3 0 6 0 0 0 - 80 - 0 0 - - 0\n"
	    /* 10.0.0.3 is draining now: not carried */
	    "3 be_web 3 s3 10.0.0.3 2 0 1 1 28 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n"
	    /* gone target, another port, another backend, a short line */
	    "3 be_web 4 s4 10.0.0.9 2 0 1 1 28 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n"
	    "3 be_web 6 s6 10.0.0.1 2 0 1 1 28 15 3 3 6 0 0 0 - 81 - 0 0 - - 0\n"
	    "4 be_db 1 s1 10.0.0.1 2 0 1 1 28 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n"
	    "3 be_web 2\n\n";
	char *st = agent_lb_server_state(shown, &set);
	const char *want =
	    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
	    "srv_iweight "
	    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
	    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
	    "srv_check_port "
	    "srv_check_addr srv_agent_addr srv_agent_port\n"
	    "3 be_web 2 s2 10.0.0.2 2 0 1 1 28 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n";
	assert_string_equal(st, want);
	free(st);
	/* nothing running (or no answer): every ready target starts up, with full health (rise + fall - 1) */
	const char *fresh = "0 be_web 1 s1 10.0.0.1 2 0 1 1 0 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n"
			    "0 be_web 2 s2 10.0.0.2 2 0 1 1 0 15 3 3 6 0 0 0 - 80 - 0 0 - - 0\n";
	st = agent_lb_server_state(NULL, &set);
	assert_non_null(strstr(st, fresh));
	assert_null(strstr(st, "10.0.0.3")); /* draining: from the configuration (disabled) */
	free(st);
	st = agent_lb_server_state("Unknown command\n", &set);
	assert_non_null(strstr(st, fresh));
	free(st);
	agent_lb_set_done(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_parse_health),
		cmocka_unit_test(test_runtime_answers),
		cmocka_unit_test(test_runtime_line),
		cmocka_unit_test(test_server_state),
		cmocka_unit_test(test_set_from_answer),
		cmocka_unit_test(test_plan_keeps_slots_and_emits_runtime_commands),
		cmocka_unit_test(test_render_config),
		cmocka_unit_test(test_render_records),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
