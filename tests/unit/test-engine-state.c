/*
 * test-engine-state.c - the container state machine's rules (engine/state.h): every
 * operation in every state with dockerd's errors, where an exit leads under each restart
 * policy, the restart back-off, and the persisted state names.
 */
#include "unit.h"

#include "common/json.h"
#include "engine/state.h"

#define ID       "0123456789ab"
#define N_STATES (ENGINE_DEAD + 1)

static int admit(enum engine_op op, enum engine_state s, bool force, char **ret_msg)
{
	struct berth_error *err = NULL;
	int r = engine_state_admit(op, s, force, ID, &err);
	if (ret_msg)
		*ret_msg = err ? berth_error_string(err) : NULL;
	berth_error_free(err);
	return r;
}

/* Expected result per op and state, in enum order: created running paused restarting removing exited dead. */
static const struct {
	enum engine_op op;
	int want[N_STATES];
} table[] = {
	{ ENGINE_OP_START, { 0, -EALREADY, -EBUSY, -EALREADY, -EBUSY, 0, -EBUSY } },
	{ ENGINE_OP_PAUSE, { -ENOTCONN, 0, -EALREADY, -ENOTCONN, -ENOTCONN, -ENOTCONN, -ENOTCONN } },
	{ ENGINE_OP_UNPAUSE, { -ENOTCONN, -ENOTCONN, 0, -ENOTCONN, -ENOTCONN, -ENOTCONN, -ENOTCONN } },
	{ ENGINE_OP_KILL, { -ENOTCONN, 0, 0, -ENOTCONN, -ENOTCONN, -ENOTCONN, -ENOTCONN } },
	{ ENGINE_OP_EXEC, { -EBUSY, 0, -EBUSY, -EBUSY, -EBUSY, -EBUSY, -EBUSY } },
	{ ENGINE_OP_REMOVE, { 0, -EBUSY, -EBUSY, -EBUSY, 0, 0, 0 } },
};

static void test_every_op_in_every_state(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		for (int s = 0; s < N_STATES; s++) {
			_cleanup_free_ char *msg = NULL;
			int r = admit(table[i].op, (enum engine_state)s, false, &msg);
			if (r != table[i].want[s])
				fail_msg("op %d in state %s: got %d, want %d", (int)table[i].op,
					 engine_state_name((enum engine_state)s), r, table[i].want[s]);
			/* a refusal always says why; an admission leaves err untouched */
			assert_true(r < 0 ? msg != NULL : msg == NULL);
		}
}

static void test_refusals_carry_dockerds_messages(void **state)
{
	static const struct {
		enum engine_op op;
		enum engine_state s;
		const char *msg;
	} cases[] = {
		{ ENGINE_OP_START, ENGINE_RUNNING, "container already started" },
		{ ENGINE_OP_START, ENGINE_PAUSED, "cannot start a paused container, try unpause instead" },
		{ ENGINE_OP_START, ENGINE_DEAD, "container is marked for removal and cannot be started" },
		{ ENGINE_OP_PAUSE, ENGINE_EXITED, "Container " ID " is not running" },
		{ ENGINE_OP_PAUSE, ENGINE_PAUSED, "Container " ID " is already paused" },
		{ ENGINE_OP_UNPAUSE, ENGINE_RUNNING, "Container " ID " is not paused" },
		{ ENGINE_OP_KILL, ENGINE_CREATED, "Container " ID " is not running" },
		{ ENGINE_OP_EXEC, ENGINE_PAUSED,
		  "Container " ID " is paused, unpause the container before exec" },
		{ ENGINE_OP_EXEC, ENGINE_RESTARTING, "Container " ID " is not running" },
		{ ENGINE_OP_REMOVE, ENGINE_RUNNING,
		  "You cannot remove a running container " ID
		  ". Stop the container before attempting removal or force remove" },
		{ ENGINE_OP_REMOVE, ENGINE_RESTARTING,
		  "You cannot remove a restarting container " ID
		  ". Stop the container before attempting removal or force remove" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *msg = NULL;
		assert_true(admit(cases[i].op, cases[i].s, false, &msg) < 0);
		assert_string_equal(msg, cases[i].msg);
	}
	/* a NULL err is allowed */
	assert_int_equal(engine_state_admit(ENGINE_OP_KILL, ENGINE_EXITED, false, ID, NULL), -ENOTCONN);
	/* an unknown operation is refused, not admitted */
	assert_int_equal(admit((enum engine_op)99, ENGINE_RUNNING, false, NULL), -EINVAL);
}

static void test_forced_remove_admits_every_state(void **state)
{
	for (int s = 0; s < N_STATES; s++)
		assert_int_equal(admit(ENGINE_OP_REMOVE, (enum engine_state)s, true, NULL), 0);
	/* force only matters to remove */
	assert_int_equal(admit(ENGINE_OP_START, ENGINE_RUNNING, true, NULL), -EALREADY);
}

static void test_live_states(void **state)
{
	for (int s = 0; s < N_STATES; s++)
		assert_int_equal(engine_state_live((enum engine_state)s),
				 s == ENGINE_RUNNING || s == ENGINE_PAUSED);
}

static bool wanted(const char *policy, int code, int count, bool manual, bool removed)
{
	_cleanup_json_ json_t *p = policy ? json_loads(policy, 0, NULL) : NULL;
	assert_true(!policy || p);
	return engine_restart_wanted(p, code, count, manual, removed);
}

static void test_restart_policy_after_exit(void **state)
{
	/* no policy, "no", or one berth does not know: the exit is final */
	assert_false(wanted(NULL, 1, 0, false, false));
	assert_false(wanted("{}", 1, 0, false, false));
	assert_false(wanted("{\"Name\":\"\"}", 1, 0, false, false));
	assert_false(wanted("{\"Name\":\"no\"}", 1, 0, false, false));
	assert_false(wanted("{\"Name\":\"sometimes\"}", 1, 0, false, false));
	assert_false(wanted("{\"Name\":42}", 1, 0, false, false));
	/* always and unless-stopped restart on any code, however often */
	const char *always[] = { "{\"Name\":\"always\"}", "{\"Name\":\"unless-stopped\"}" };
	for (size_t i = 0; i < ARRAY_SIZE(always); i++) {
		assert_true(wanted(always[i], 0, 0, false, false));
		assert_true(wanted(always[i], 137, 1000, false, false));
		/* ...but never after docker stop/kill or during a removal */
		assert_false(wanted(always[i], 0, 0, true, false));
		assert_false(wanted(always[i], 1, 0, false, true));
	}
	/* on-failure: non-zero codes only, up to MaximumRetryCount (0 or less: no limit) */
	assert_false(wanted("{\"Name\":\"on-failure\"}", 0, 0, false, false));
	assert_true(wanted("{\"Name\":\"on-failure\"}", 1, 500, false, false));
	assert_true(wanted("{\"Name\":\"on-failure\",\"MaximumRetryCount\":-1}", 1, 500, false, false));
	const char *three = "{\"Name\":\"on-failure\",\"MaximumRetryCount\":3}";
	assert_true(wanted(three, 2, 0, false, false));
	assert_true(wanted(three, 2, 2, false, false));
	assert_false(wanted(three, 2, 3, false, false));
	assert_false(wanted(three, 2, 4, false, false));
	assert_false(wanted(three, 2, 0, true, false));
}

static void test_restart_backoff(void **state)
{
	/* first restart, then doubling while runs stay short */
	int64_t b = engine_restart_backoff(0, 0);
	assert_int_equal(b, RESTART_BACKOFF_MIN_MS);
	b = engine_restart_backoff(b, 50);
	assert_int_equal(b, 2 * RESTART_BACKOFF_MIN_MS);
	b = engine_restart_backoff(b, RESTART_RESET_AFTER_MS - 1);
	assert_int_equal(b, 4 * RESTART_BACKOFF_MIN_MS);
	/* capped */
	for (int i = 0; i < 40; i++)
		b = engine_restart_backoff(b, 0);
	assert_int_equal(b, RESTART_BACKOFF_MAX_MS);
	/* a run long enough resets it, as dockerd's 10 s rule */
	assert_int_equal(engine_restart_backoff(b, RESTART_RESET_AFTER_MS), RESTART_BACKOFF_MIN_MS);
	/* a negative run (clock stepped back, no start time) does not reset or overflow */
	assert_int_equal(engine_restart_backoff(800, -5000), 1600);
	assert_int_equal(engine_restart_backoff(-1, 0), RESTART_BACKOFF_MIN_MS);
}

static void test_state_names_roundtrip(void **state)
{
	static const char *const names[] = { "created",  "running", "paused", "restarting",
					     "removing", "exited",  "dead" };
	for (int s = 0; s < N_STATES; s++) {
		assert_string_equal(engine_state_name((enum engine_state)s), names[s]);
		assert_int_equal(engine_state_parse(names[s]), s);
	}
	assert_string_equal(engine_state_name((enum engine_state)N_STATES), "unknown");
	assert_string_equal(engine_state_name((enum engine_state) - 1), "unknown");
	/* a record from elsewhere, or damaged, loads as exited: never as running */
	assert_int_equal(engine_state_parse(NULL), ENGINE_EXITED);
	assert_int_equal(engine_state_parse(""), ENGINE_EXITED);
	assert_int_equal(engine_state_parse("Running"), ENGINE_EXITED);
	assert_int_equal(engine_state_parse("unknown"), ENGINE_EXITED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_op_in_every_state),
		cmocka_unit_test(test_refusals_carry_dockerds_messages),
		cmocka_unit_test(test_forced_remove_admits_every_state),
		cmocka_unit_test(test_live_states),
		cmocka_unit_test(test_restart_policy_after_exit),
		cmocka_unit_test(test_restart_backoff),
		cmocka_unit_test(test_state_names_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
