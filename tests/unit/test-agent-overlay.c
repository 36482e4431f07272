/*
 * test-agent-overlay.c - the pure parts of the agent's overlay: the entries
 * peers want, parsing what the kernel has (iproute2 JSON), the plan between
 * the two (peer joins, leaves, moves; a restarted agent's leftovers), and the
 * commands of each operation.
 */
#include "unit.h"

#include "agent/overlay.h"
#include "common/json.h"
#include "common/strbuf.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

#define PEER(id, addr, subnet, mac)                                                                        \
	"{\"nodeId\":\"" id "\",\"address\":\"" addr "\",\"taskSubnet\":\"" subnet "\",\"vtepMac\":\"" mac \
	"\"}"

static const struct overlay_entry *find(const struct overlay_state *s, enum overlay_kind k, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == k && streq(s->v[i].key, key))
			return &s->v[i];
	return NULL;
}

static void test_desired(void **state)
{
	(void)state;
	_cleanup_json_ json_t *peers =
	    parse("[" PEER("b", "192.168.77.12", "10.42.2.0/24", "02:AA:bb:cc:dd:ee") ","
		  /* overlaps our own subnet: skipped, it would shadow the bridge's route */
		  PEER("evil", "192.168.77.13", "10.42.1.0/25", "02:00:00:00:00:01") "," PEER(
		      "badmac", "192.168.77.14", "10.42.4.0/24",
		      "zz") "," PEER("badaddr", "host.example", "10.42.5.0/24",
				     "02:00:00:00:00:02") ","
							  "{\"nodeId\":\"nosubnet\",\"address\":\"192.168.77."
							  "15\",\"vtepMac\":\"02:00:00:00:00:03\"}]");
	struct overlay_state s;
	size_t skipped = 0;
	agent_overlay_desired(peers, "10.42.1.0/24", &s, &skipped);
	assert_int_equal(skipped, 4);
	assert_int_equal(s.n, 3);
	const struct overlay_entry *e = find(&s, OVERLAY_ROUTE, "10.42.2.0/24");
	assert_non_null(e);
	assert_string_equal(e->value, "10.42.2.0");
	e = find(&s, OVERLAY_NEIGH, "10.42.2.0");
	assert_non_null(e);
	assert_string_equal(e->value, "02:aa:bb:cc:dd:ee"); /* normalised: the kernel prints lowercase */
	e = find(&s, OVERLAY_FDB, "02:aa:bb:cc:dd:ee");
	assert_non_null(e);
	assert_string_equal(e->value, "192.168.77.12");
	agent_overlay_state_done(&s);
}

/* What `ip -j route/neigh` and `bridge -j fdb` print for a device with one peer, plus noise. */
static const char *ROUTES = "[{\"dst\":\"10.42.2.0/24\",\"gateway\":\"10.42.2.0\",\"flags\":[\"onlink\"]},"
			    "{\"dst\":\"10.42.9.0/24\",\"protocol\":\"kernel\",\"scope\":\"link\","
			    "\"prefsrc\":\"10.42.9.1\",\"flags\":[]},"
			    "{\"dst\":\"10.42.3.0\",\"gateway\":\"10.42.3.0\",\"flags\":[\"onlink\"]}]";
static const char *NEIGHS =
    "[{\"dst\":\"10.42.2.0\",\"lladdr\":\"02:aa:bb:cc:dd:ee\",\"state\":[\"PERMANENT\"]},"
    "{\"dst\":\"10.42.7.0\",\"state\":[\"FAILED\"]}]";
static const char *FDBS = "[{\"mac\":\"02:aa:bb:cc:dd:ee\",\"dst\":\"192.168.77.12\",\"flags\":[\"self\"],"
			  "\"state\":\"permanent\"},"
			  "{\"mac\":\"00:00:00:00:00:00\",\"dst\":\"192.168.77.99\",\"flags\":[\"self\"]},"
			  "{\"mac\":\"02:11:11:11:11:11\",\"flags\":[\"self\"],\"state\":\"permanent\"}]";

static void test_parse_kernel(void **state)
{
	(void)state;
	struct overlay_state s;
	agent_overlay_parse_kernel(ROUTES, NEIGHS, FDBS, &s);
	assert_int_equal(s.n, 4);
	assert_non_null(find(&s, OVERLAY_ROUTE, "10.42.2.0/24"));
	assert_non_null(find(&s, OVERLAY_ROUTE, "10.42.3.0/32")); /* a host route prints without /32 */
	assert_null(find(&s, OVERLAY_ROUTE, "10.42.9.0/24"));     /* the kernel's own */
	assert_non_null(find(&s, OVERLAY_NEIGH, "10.42.2.0"));
	assert_null(find(&s, OVERLAY_NEIGH, "10.42.7.0"));
	assert_non_null(find(&s, OVERLAY_FDB, "02:aa:bb:cc:dd:ee"));
	agent_overlay_state_done(&s);
	agent_overlay_parse_kernel(NULL, "not json", "{}", &s);
	assert_int_equal(s.n, 0);
	agent_overlay_state_done(&s);
}

static char *render(const struct overlay_op *ops, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		_cleanup_strv_ char **argv = agent_overlay_op_argv(&ops[i], "vx");
		for (size_t k = 0; argv[k]; k++)
			strbuf_addf(&sb, "%s%s", k ? " " : "", argv[k]);
		strbuf_addch(&sb, '\n');
	}
	return strbuf_detach(&sb, NULL);
}

static char *plan_text(const char *peers_json, const char *routes, const char *neighs, const char *fdbs)
{
	_cleanup_json_ json_t *peers = parse(peers_json);
	struct overlay_state want, cur;
	agent_overlay_desired(peers, "10.42.1.0/24", &want, NULL);
	agent_overlay_parse_kernel(routes, neighs, fdbs, &cur);
	struct overlay_op *ops = NULL;
	size_t n = 0;
	agent_overlay_plan(&cur, &want, &ops, &n);
	char *text = render(ops, n);
	free(ops);
	agent_overlay_state_done(&want);
	agent_overlay_state_done(&cur);
	return text;
}

static void test_plan_join(void **state)
{
	(void)state;
	_cleanup_free_ char *t = plan_text(
	    "[" PEER("b", "192.168.77.12", "10.42.2.0/24", "02:aa:bb:cc:dd:ee") "]", "[]", "[]", "[]");
	assert_string_equal(t,
			    "bridge fdb replace 02:aa:bb:cc:dd:ee dev vx dst 192.168.77.12 self permanent\n"
			    "ip neigh replace 10.42.2.0 lladdr 02:aa:bb:cc:dd:ee dev vx nud permanent\n"
			    "ip route replace 10.42.2.0/24 via 10.42.2.0 dev vx onlink\n");
}

static void test_plan_steady_state_is_empty(void **state)
{
	(void)state;
	_cleanup_free_ char *t =
	    plan_text("[" PEER("b", "192.168.77.12", "10.42.2.0/24", "02:aa:bb:cc:dd:ee") "]",
		      "[{\"dst\":\"10.42.2.0/24\",\"gateway\":\"10.42.2.0\"}]", NEIGHS,
		      "[{\"mac\":\"02:aa:bb:cc:dd:ee\",\"dst\":\"192.168.77.12\"}]");
	assert_string_equal(t, "");
}

static void test_plan_leave_removes_everything_routes_first(void **state)
{
	(void)state;
	_cleanup_free_ char *t = plan_text("[]", ROUTES, NEIGHS, FDBS);
	assert_string_equal(t, "ip route del 10.42.2.0/24 dev vx\n"
			       "ip route del 10.42.3.0/32 dev vx\n"
			       "ip neigh del 10.42.2.0 dev vx\n"
			       "bridge fdb del 02:aa:bb:cc:dd:ee dev vx dst 192.168.77.12 self\n");
}

static void test_plan_peer_moves_underlay_address(void **state)
{
	(void)state;
	/* same node, new host address (re-registered elsewhere): only the fdb entry changes */
	_cleanup_free_ char *t =
	    plan_text("[" PEER("b", "192.168.77.20", "10.42.2.0/24", "02:aa:bb:cc:dd:ee") "]",
		      "[{\"dst\":\"10.42.2.0/24\",\"gateway\":\"10.42.2.0\"}]", NEIGHS,
		      "[{\"mac\":\"02:aa:bb:cc:dd:ee\",\"dst\":\"192.168.77.12\"}]");
	assert_string_equal(t,
			    "bridge fdb replace 02:aa:bb:cc:dd:ee dev vx dst 192.168.77.20 self permanent\n");
}

static void test_plan_one_leaves_one_joins(void **state)
{
	(void)state;
	_cleanup_free_ char *t =
	    plan_text("[" PEER("c", "192.168.77.13", "10.42.3.0/24", "02:cc:cc:cc:cc:cc") "]",
		      "[{\"dst\":\"10.42.2.0/24\",\"gateway\":\"10.42.2.0\"}]", NEIGHS,
		      "[{\"mac\":\"02:aa:bb:cc:dd:ee\",\"dst\":\"192.168.77.12\"}]");
	assert_string_equal(t,
			    "ip route del 10.42.2.0/24 dev vx\n"
			    "ip neigh del 10.42.2.0 dev vx\n"
			    "bridge fdb del 02:aa:bb:cc:dd:ee dev vx dst 192.168.77.12 self\n"
			    "bridge fdb replace 02:cc:cc:cc:cc:cc dev vx dst 192.168.77.13 self permanent\n"
			    "ip neigh replace 10.42.3.0 lladdr 02:cc:cc:cc:cc:cc dev vx nud permanent\n"
			    "ip route replace 10.42.3.0/24 via 10.42.3.0 dev vx onlink\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desired),
		cmocka_unit_test(test_parse_kernel),
		cmocka_unit_test(test_plan_join),
		cmocka_unit_test(test_plan_steady_state_is_empty),
		cmocka_unit_test(test_plan_leave_removes_everything_routes_first),
		cmocka_unit_test(test_plan_peer_moves_underlay_address),
		cmocka_unit_test(test_plan_one_leaves_one_joins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
