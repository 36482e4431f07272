/* test-runtime-state.c - container ids, state JSON for hooks and `state`, start times. */
#include <signal.h>
#include <sys/wait.h>

#include "unit.h"
#include "common/json.h"
#include "runtime/container.h"

static void test_ids(void **state)
{
	static const char *const good[] = { "a", "web-1", "A.b_c+d", "0123456789abcdef" };
	static const char *const bad[] = { "", ".", "..", "a/b", "-x", "_x", "a b", "a\nb", "é" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(runtime_id_validate(good[i], NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		assert_int_equal(runtime_id_validate(bad[i], &err), -EINVAL);
		assert_non_null(err);
	}
	char long_id[RUNTIME_ID_MAX + 2];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = 0;
	assert_int_equal(runtime_id_validate(long_id, NULL), -EINVAL);
}

static void test_hook_state_json(void **state)
{
	_cleanup_json_ json_t *ann = json_pack("{s:s}", "k", "v\"q");
	_cleanup_free_ char *s = runtime_state_hook_json("c1", RUNTIME_STATUS_CREATED, 42, "/b", ann);
	_cleanup_json_ json_t *j = NULL;
	assert_int_equal(json_parse(s, strlen(s), "state", &j, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(j, "id")), "c1");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "created");
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 42);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "annotations"), "k")),
			    "v\"q");
	_cleanup_free_ char *s2 = runtime_state_hook_json("c1", RUNTIME_STATUS_STOPPED, 0, "/b", NULL);
	assert_null(strstr(s2, "pid"));
}

static void test_state_to_json(void **state)
{
	struct runtime_state st = { .id = (char *)"x",
				    .status = RUNTIME_STATUS_PAUSED,
				    .pid = 7,
				    .bundle = (char *)"/b",
				    .rootfs = (char *)"/b/rootfs",
				    .created = (char *)"2026-01-01T00:00:00Z",
				    .owner = (char *)"root" };
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	runtime_state_to_json(&st, &sb);
	_cleanup_json_ json_t *j = NULL;
	assert_int_equal(json_parse(sb.buf, sb.len, "state", &j, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
	assert_string_equal(json_string_value(json_object_get(j, "ociVersion")), "1.1.0");
}

static void test_start_time_detects_exit(void **state)
{
	assert_true(runtime_proc_start_time(getpid()) > 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(runtime_proc_start_time(pid), 0);
	assert_int_equal(runtime_proc_start_time(-1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_hook_state_json),
		cmocka_unit_test(test_state_to_json),
		cmocka_unit_test(test_start_time_detects_exit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
