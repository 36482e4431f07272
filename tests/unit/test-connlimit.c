/* test-connlimit.c - slow-client deadlines (common/connlimit.h). */
#include "unit.h"
#include "common/connlimit.h"

static const struct conn_limits L = { .header_timeout_s = 30, .body_min_rate = 1024 };

static void test_headers_have_a_deadline(void **state)
{
	(void)state;
	assert_false(connlimit_overdue(&L, CONN_PHASE_HEAD, 0, 0, 0));
	assert_false(connlimit_overdue(&L, CONN_PHASE_HEAD, 30000, 0, 0));
	assert_true(connlimit_overdue(&L, CONN_PHASE_HEAD, 30001, 0, 0));
	/* bytes do not buy time while headers trickle in (1 byte a second) */
	assert_true(connlimit_overdue(&L, CONN_PHASE_HEAD, 31000, 0, 31));
}

static void test_body_needs_a_minimum_rate_after_the_grace(void **state)
{
	(void)state;
	/* within the grace anything goes */
	assert_false(connlimit_overdue(&L, CONN_PHASE_BODY, 29000, 0, 0));
	/* 1 byte a second: overdue once the grace has passed */
	assert_true(connlimit_overdue(&L, CONN_PHASE_BODY, 31000, 0, 31));
	/* exactly the rate is fine, a little less is not */
	assert_false(connlimit_overdue(&L, CONN_PHASE_BODY, 40000, 0, 40 * 1024));
	assert_true(connlimit_overdue(&L, CONN_PHASE_BODY, 40000, 0, 40 * 1024 - 1));
	/* time the server held the body back does not count against the client */
	assert_false(connlimit_overdue(&L, CONN_PHASE_BODY, 100000, 70000, 30));
	assert_true(connlimit_overdue(&L, CONN_PHASE_BODY, 100000, 60000, 30));
	/* a fast 2 GB upload after an hour */
	assert_false(connlimit_overdue(&L, CONN_PHASE_BODY, 3600000, 0, 2ull << 30));
}

static void test_busy_connections_are_never_overdue(void **state)
{
	(void)state;
	assert_false(connlimit_overdue(&L, CONN_PHASE_BUSY, INT64_MAX / 2, 0, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_have_a_deadline),
		cmocka_unit_test(test_body_needs_a_minimum_rate_after_the_grace),
		cmocka_unit_test(test_busy_connections_are_never_overdue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
