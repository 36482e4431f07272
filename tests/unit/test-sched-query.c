/* test-sched-query.c - the ECS cluster query language: every subject, operator, error. */
#include "sched-fixture.h"
#include "sched/internal.h"

/*
 * Four nodes:
 *   n1: us-east-1a t2.micro stack=prod, agent 1.20.0, registered 2018-06-18T22:28:28Z,
 *       tasks service:web + service:db
 *   n2: us-east-1b m4.large (no stack), agent 1.9.1, registered 2017-01-01, disconnected
 *   n3: us-east-1c g2.2xlarge gpus=4, agent 1.20.1, registered 2019-01-01, tasks family:batch x2
 *   n4: us-east-1a t2.small, name-only attribute "special", agent 1.10.0, ec2 id i-0abc
 */
static struct sched_snapshot *fixture(void)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_attr a1[] = { { "ecs.availability-zone", "us-east-1a" },
				   { "ecs.instance-type", "t2.micro" },
				   { "stack", "prod" } };
	struct sched_attr a2[] = { { "ecs.availability-zone", "us-east-1b" },
				   { "ecs.instance-type", "m4.large" } };
	struct sched_attr a3[] = { { "ecs.availability-zone", "us-east-1c" },
				   { "ecs.instance-type", "g2.2xlarge" },
				   { "gpus", "4" } };
	struct sched_attr a4[] = { { "ecs.availability-zone", "us-east-1a" },
				   { "ecs.instance-type", "t2.small" },
				   { "special", NULL } };
	struct sched_node_spec nodes[] = {
		{ .id = "n1",
		  .cpu = 4096,
		  .memory = 8192,
		  .agent_connected = true,
		  .agent_version = "1.20.0",
		  .registered_at = 1529360908,
		  .attrs = a1,
		  .n_attrs = 3 },
		{ .id = "n2",
		  .cpu = 4096,
		  .memory = 8192,
		  .agent_connected = false,
		  .agent_version = "1.9.1",
		  .registered_at = 1483228800,
		  .attrs = a2,
		  .n_attrs = 2 },
		{ .id = "n3",
		  .cpu = 4096,
		  .memory = 8192,
		  .agent_connected = true,
		  .agent_version = "1.20.1",
		  .registered_at = 1546300800,
		  .attrs = a3,
		  .n_attrs = 3 },
		{ .id = "n4",
		  .ec2_instance_id = "i-0abc",
		  .cpu = 4096,
		  .memory = 8192,
		  .agent_connected = true,
		  .agent_version = "1.10.0",
		  .registered_at = 1546300800,
		  .attrs = a4,
		  .n_attrs = 3 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++)
		assert_int_equal(sched_node_put(s, &nodes[i], NULL), 0);
	fx_task(s, "w1", "n1", "service:web", 0, 0, 0);
	fx_task(s, "d1", "n1", "service:db", 0, 0, 0);
	fx_task(s, "b1", "n3", "family:batch", 0, 0, 0);
	fx_task(s, "b2", "n3", "family:batch", 0, 0, 0);
	return s;
}

/* Which of n1..n4 match, as "1010". */
static void matches(struct sched_snapshot *s, const char *expr, char out[5])
{
	struct sched_query *q = NULL;
	struct berth_error *e = NULL;
	int r = sched_query_parse(&s->in, expr, &q, &e);
	if (r < 0)
		fprintf(stderr, "parse '%s': %s\n", expr, e->msg);
	berth_error_free(e);
	assert_int_equal(r, 0);
	for (int i = 0; i < 4; i++) {
		char id[16];
		uint32_t slot;
		snprintf(id, sizeof(id), "n%d", i + 1);
		assert_true(sched_strmap_get(&s->node_ids, id, &slot));
		out[i] = sched_query_eval(s, q, &s->nodes[slot]) ? '1' : '0';
	}
	out[4] = 0;
	sched_query_free(q);
}

static const struct {
	const char *expr, *want;
} cases[] = {
	/* attribute comparisons */
	{ "attribute:ecs.instance-type == t2.micro", "1000" },
	{ "attribute:ecs.instance-type equals t2.small", "0001" },
	{ "attribute:ecs.instance-type != t2.micro", "0111" },
	{ "attribute:stack not_equals prod", "0111" }, /* nodes without the attribute are "not equal" */
	{ "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", "1101" },
	{ "attribute:ecs.availability-zone not_in [us-east-1a, 'us-east-1b']", "0010" },
	{ "attribute:ecs.availability-zone !in [us-east-1c]", "1101" },
	{ "attribute:ecs.instance-type =~ t2.*", "1001" },
	{ "attribute:ecs.instance-type matches g2.*", "0010" },
	{ "attribute:ecs.instance-type =~ 2", "0000" }, /* whole-value match, not a search */
	{ "attribute:ecs.instance-type !~ t2.*", "0110" },
	{ "attribute:ecs.instance-type =~ '(t2|m4)\\.(micro|large)'", "1100" },
	{ "attribute:ecs.instance-type =~ '[a-z][0-9]\\.[a-z]{4,5}'", "1101" }, /* bounded repeats are fine */
	{ "attribute:ecs.instance-type =~ '[+*]*t2.*'", "1001" },
	{ "attribute:stack exists", "1000" },
	{ "attribute:special exists", "0001" }, /* name-only attributes exist */
	{ "attribute:stack !exists", "0111" },
	{ "attribute:stack not_exists", "0111" },
	{ "attribute:gpus > 2", "0010" },
	{ "attribute:gpus >= 4", "0010" },
	{ "attribute:gpus < 4", "0000" },
	{ "attribute:gpus <= 4", "0010" },
	{ "attribute:gpus greater_than 10", "0000" }, /* numeric, not "4" > "10" as text */
	/* compound */
	{ "attribute:ecs.instance-type =~ t2.* and attribute:ecs.availability-zone != us-east-1d", "1001" },
	{ "attribute:ecs.instance-type =~ t2.* && attribute:stack exists", "1000" },
	{ "attribute:stack == prod or attribute:gpus exists", "1010" },
	{ "attribute:stack == prod || attribute:gpus exists", "1010" },
	{ "not(attribute:ecs.availability-zone == us-east-1a)", "0110" },
	{ "!(attribute:ecs.availability-zone == us-east-1a)", "0110" },
	{ "not not attribute:stack exists", "1000" },
	{ "attribute:stack == prod or attribute:gpus exists and attribute:ecs.availability-zone == "
	  "us-east-1a",
	  "1000" }, /* and binds tighter than or */
	{ "(attribute:stack == prod or attribute:gpus exists) and attribute:ecs.availability-zone == "
	  "us-east-1c",
	  "0010" },
	/* task:group */
	{ "task:group == service:web", "1000" },
	{ "task:group == family:batch", "0010" },
	{ "task:group != service:web", "0111" }, /* no task of the group */
	{ "not(task:group == service:db)", "0111" },
	{ "task:group in [service:db, family:batch]", "1010" },
	{ "task:group =~ service:.*", "1000" },
	{ "task:group !~ service:.*", "0111" },
	{ "task:group exists", "1010" },
	/* node fields */
	{ "instanceId == n2", "0100" },
	{ "ec2InstanceId == i-0abc", "0001" },
	{ "ec2InstanceId in [n1, n3]", "1010" }, /* defaults to the instance id */
	{ "ec2InstanceId =~ i-.*", "0001" },
	{ "runningTasksCount == 0", "0101" },
	{ "runningTasksCount > 1", "1010" },
	{ "runningTasksCount in [2]", "1010" },
	{ "runningTasksCount <= 1", "0101" },
	{ "registeredAt < 2018-06-18T22:28:28Z", "0100" },
	{ "registeredAt <= 2018-06-18T22:28:28+00:00", "1100" },
	{ "registeredAt >= 2018-06-19", "0011" },
	{ "registeredAt == 2018-06-19T00:28:28+02:00", "1000" }, /* offsets move the instant */
	{ "registeredAt > 2018-06-18T22:28:28", "0011" },
	{ "agentConnected == false", "0100" },
	{ "agentConnected != false", "1011" },
	{ "agentConnected in [true]", "1011" },
	{ "agentVersion < 1.10.0", "0100" }, /* 1.9.1 < 1.10.0 as versions */
	{ "agentVersion >= 1.20.0", "1010" },
	{ "agentVersion == 1.20.1", "0010" },
	/* spelling */
	{ "  attribute:stack==prod  ", "1000" },
	{ "attribute:ecs.availability-zone in [ \"us-east-1c\" ]", "0010" },
	{ "(((attribute:stack exists)))", "1000" },
};

static void test_query_table(void **state)
{
	struct sched_snapshot *s = fixture();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char got[5];
		matches(s, cases[i].expr, got);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("'%s': got %s, want %s", cases[i].expr, got, cases[i].want);
	}
	sched_snapshot_free(s);
}

static const struct {
	const char *expr, *msg;
} errors[] = {
	{ "", "position 1: empty expression" },
	{ "   ", "position 4: empty expression" },
	{ "attribute:ecs.instance-type",
	  "position 28: expected an operator after 'attribute:ecs.instance-type', "
	  "got end of expression" },
	{ "attribute:ecs.instance-type ]", "position 29: expected an operator" },
	{ "attribute: == x", "position 1: attribute name missing after 'attribute:'" },
	{ "color == red", "position 1: unknown subject 'color'" },
	{ "attribute:a == ", "position 16: expected a value, got end of expression" },
	{ "attribute:a in x", "position 16: expected '[' to open the list of values, got a value" },
	{ "attribute:a in [x y]", "position 19: expected ',' or ']' in the list of values, got a value" },
	{ "attribute:a in [x,", "position 19: expected a value, got end of expression" },
	{ "(attribute:a exists",
	  "position 20: expected ')' to close the '(' at position 1, got end of expression" },
	{ "attribute:a exists)", "position 19: expected 'and', 'or' or the end, got ')'" },
	{ "attribute:a exists and", "position 23: expected a subject" },
	{ "attribute:a == 'x", "position 16: unterminated '-quoted value" },
	{ "attribute:a =~ '('", "position 16: invalid regular expression '('" },
	{ "attribute:a =~ g2.++++",
	  "position 16: regular expression 'g2.++++' is too complex: a quantifier follows "
	  "a quantifier" },
	{ "attribute:a =~ 'x{2}*'", "position 16: regular expression 'x{2}*' is too complex" },
	{ "attribute:a =~ 'x{1,500}'",
	  "position 16: regular expression 'x{1,500}' is too complex: a repeat count "
	  "above 100" },
	{ "registeredAt =~ 2018", "position 14: operator 'matches' is not valid for 'registeredAt'" },
	{ "registeredAt > yesterday",
	  "position 16: expected a date like 2018-06-18T22:28:28Z, got 'yesterday'" },
	{ "registeredAt > 2018-13-01", "position 16: expected a date" },
	{ "runningTasksCount > many", "position 21: expected a task count, got 'many'" },
	{ "agentConnected == maybe", "position 19: expected true or false, got 'maybe'" },
	{ "agentVersion exists", "position 14: operator 'exists' is not valid for 'agentVersion'" },
	{ "attribute:a = b", "position 13: unexpected character '='" },
	{ "attribute:a == b & attribute:c exists", "position 18: unexpected character '&'" },
	{ "attribute:a ==", "position 15: expected a value" },
};

static void test_query_errors(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	for (size_t i = 0; i < ARRAY_SIZE(errors); i++) {
		struct sched_query *q = NULL;
		struct berth_error *e = NULL;
		int r = sched_query_parse(&s->in, errors[i].expr, &q, &e);
		assert_int_equal(r, -EINVAL);
		assert_null(q);
		if (!startswith(e->msg, errors[i].msg))
			fail_msg("'%s': got '%s', want '%s...'", errors[i].expr, e->msg, errors[i].msg);
		berth_error_free(e);
	}
	sched_snapshot_free(s);
}

static void test_query_limits(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_query *q = NULL;
	struct berth_error *e = NULL;
	char deep[400];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		deep[n++] = '(';
	deep[n++] = 'x';
	deep[n] = 0;
	assert_int_equal(sched_query_parse(&s->in, deep, &q, &e), -EINVAL);
	assert_non_null(strstr(e->msg, "nested more than 64 levels"));
	e = berth_error_free(e);
	char *longexpr = xmalloc(SCHED_MAX_EXPRESSION + 2);
	memset(longexpr, 'a', SCHED_MAX_EXPRESSION + 1);
	longexpr[SCHED_MAX_EXPRESSION + 1] = 0;
	assert_int_equal(sched_query_parse(&s->in, longexpr, &q, &e), -E2BIG);
	e = berth_error_free(e);
	free(longexpr);
	sched_snapshot_free(s);
}

static void test_dates_and_versions(void **state)
{
	int64_t t;
	assert_int_equal(sched_parse_date("1970-01-01", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(sched_parse_date("2018-06-18T22:28:28Z", &t), 0);
	assert_int_equal(t, 1529360908);
	assert_int_equal(sched_parse_date("2018-06-18T22:28:28-02:00", &t), 0);
	assert_int_equal(t, 1529360908 + 7200);
	assert_int_equal(sched_parse_date("2018-06-18T22:28", &t), -EINVAL);
	assert_int_equal(sched_parse_date("2018-06-18Tx", &t), -EINVAL);
	assert_true(sched_version_cmp("1.9.1", "1.10.0") < 0);
	assert_true(sched_version_cmp("v1.20.0", "1.20.0") == 0);
	assert_true(sched_version_cmp("1.20", "1.20.1") < 0);
	assert_true(sched_version_cmp("1.20.1-beta", "1.20.1") > 0);
}

/* memberOf with a malformed expression names the constraint and the position. */
static void test_member_of_error_in_request(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_constraint c[] = { { SCHED_DISTINCT_INSTANCE, NULL },
					{ SCHED_MEMBER_OF, "attribute:ecs.instance-type =~ t2.* and" } };
	struct sched_request r = { .cpu = 1, .constraints = c, .n_constraints = 2 };
	struct sched_prepared *p = NULL;
	struct berth_error *e = NULL;
	assert_int_equal(sched_prepare(s, &r, &p, &e), -EINVAL);
	_cleanup_free_ char *msg = berth_error_string(e);
	assert_string_equal(msg, "placementConstraints[1]: memberOf: position 40: expected a subject "
				 "(attribute:NAME, task:group, ...), got end of expression");
	berth_error_free(e);
	sched_snapshot_free(s);
}

/* A memoised regex result is per value, so a node that changes its value is re-evaluated. */
static void test_query_memo_follows_values(void **state)
{
	struct sched_snapshot *s = fixture();
	char got[5];
	struct sched_query *q = NULL;
	assert_int_equal(sched_query_parse(&s->in, "attribute:ecs.instance-type =~ t2.*", &q, NULL), 0);
	uint32_t slot;
	assert_true(sched_strmap_get(&s->node_ids, "n2", &slot));
	assert_false(sched_query_eval(s, q, &s->nodes[slot]));
	struct sched_attr a[] = { { "ecs.instance-type", "t2.nano" } };
	struct sched_node_spec spec = {
		.id = "n2", .cpu = 1, .memory = 1, .agent_connected = true, .attrs = a, .n_attrs = 1
	};
	assert_int_equal(sched_node_put(s, &spec, NULL), 0);
	assert_true(sched_query_eval(s, q, &s->nodes[slot]));
	sched_query_free(q);
	matches(s, "attribute:ecs.instance-type =~ t2.*", got);
	assert_string_equal(got, "1101");
	sched_snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_table),
		cmocka_unit_test(test_query_errors),
		cmocka_unit_test(test_query_limits),
		cmocka_unit_test(test_dates_and_versions),
		cmocka_unit_test(test_member_of_error_in_request),
		cmocka_unit_test(test_query_memo_follows_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
