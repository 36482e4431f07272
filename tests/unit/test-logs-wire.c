/*
 * test-logs-wire.c - the agents' binary log batches (encode, parse, refusals)
 * and the json-file line reader against jansson's reading of the same lines.
 */
#include "unit.h"

#include <jansson.h>

#include "logs/wire.h"

static void test_batch_round_trip(void **state)
{
	(void)state;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "{\"end\":99}\n");
	logs_wire_add(&sb, 0, 1700000000123LL, "first line", 10);
	logs_wire_add(&sb, 11, -5, "x\0y\n", 4);
	struct logs_wire_batch b;
	assert_null(logs_wire_parse(sb.buf, sb.len, 10, &b));
	assert_int_equal(b.head_len, 10);
	assert_memory_equal(b.head, "{\"end\":99}", 10);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.offsets[1], 11);
	assert_int_equal(b.ev[0].timestamp, 1700000000123LL);
	assert_int_equal(b.ev[1].timestamp, -5);
	assert_int_equal(b.ev[1].len, 4);
	assert_memory_equal(b.ev[1].message, "x\0y\n", 4);
	logs_wire_batch_done(&b);
	/* a head alone is an empty batch */
	assert_null(logs_wire_parse("{}\n", 3, 10, &b));
	assert_int_equal(b.n, 0);
	logs_wire_batch_done(&b);
}

static void test_batch_refusals(void **state)
{
	(void)state;
	struct logs_wire_batch b;
	assert_non_null(logs_wire_parse("{}", 2, 10, &b)); /* no head line */
	assert_non_null(logs_wire_parse(NULL, 0, 10, &b));
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "{}\n");
	logs_wire_add(&sb, 0, 0, "abc", 3);
	assert_non_null(logs_wire_parse(sb.buf, sb.len - 1, 10, &b)); /* message cut */
	assert_non_null(logs_wire_parse(sb.buf, 3 + 10, 10, &b));     /* header cut */
	assert_non_null(logs_wire_parse(sb.buf, sb.len, 0, &b));      /* over max_events */
	assert_null(b.ev);
	strbuf_reset(&sb);
	strbuf_addstr(&sb, "{}\n");
	logs_wire_add(&sb, 0, 0, "", 0);
	assert_non_null(logs_wire_parse(sb.buf, sb.len, 10, &b)); /* empty message */
	/* a length past the body */
	strbuf_reset(&sb);
	strbuf_addstr(&sb, "{}\n");
	logs_wire_add(&sb, 0, 0, "abc", 3);
	sb.buf[3 + 19] = (char)0x80;
	assert_non_null(logs_wire_parse(sb.buf, sb.len, 10, &b));
}

/* The reader agrees with jansson on the message, or declines (-1). */
static void same_as_jansson(const char *line)
{
	_cleanup_strbuf_ struct strbuf msg = STRBUF_INIT;
	int64_t ts = 0;
	int r = logs_jsonfile_line(line, strlen(line), &msg, &ts);
	json_t *j = json_loads(line, 0, NULL);
	json_t *log = json_object_get(j, "log");
	if (r == 1) {
		assert_true(json_is_string(log));
		assert_int_equal(msg.len, json_string_length(log));
		assert_memory_equal(msg.buf, json_string_value(log), msg.len);
	} else if (r == 0) {
		assert_non_null(j);
		assert_false(json_is_string(log));
	}
	json_decref(j);
}

static void test_jsonfile_lines(void **state)
{
	(void)state;
	_cleanup_strbuf_ struct strbuf msg = STRBUF_INIT;
	int64_t ts = 0;
	const char *l =
	    "{\"log\":\"GET / 200\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-06T12:00:01.123456789Z\"}";
	assert_int_equal(logs_jsonfile_line(l, strlen(l), &msg, &ts), 1);
	assert_int_equal(msg.len, 10);
	assert_memory_equal(msg.buf, "GET / 200\n", 10);
	assert_int_equal(ts, 1796558401123LL);
	l = "{\"time\":\"1970-01-01T00:00:00Z\",\"log\":\"a\\u00e9\\ud83d\\ude00\\t\\\"\\\\\\/\"}";
	assert_int_equal(logs_jsonfile_line(l, strlen(l), &msg, &ts), 1);
	assert_int_equal(ts, 0);
	assert_memory_equal(msg.buf, "a\xc3\xa9\xf0\x9f\x98\x80\t\"\\/", msg.len);
	l = "{\"log\":\"x\",\"time\":\"2026-12-06T13:00:01+01:00\"}"; /* an offset: the slow path */
	assert_int_equal(logs_jsonfile_line(l, strlen(l), &msg, &ts), 1);
	assert_int_equal(ts, 1796558401000LL);
	l = "{\"log\":\"a\x01"
	    "b\"}"; /* a raw control character: JSON says no, the shipper ships the line */
	assert_int_equal(logs_jsonfile_line(l, strlen(l), &msg, &ts), 1);
	assert_int_equal(msg.len, 3);
	l = "{\"stream\":\"stdout\"}";
	assert_int_equal(logs_jsonfile_line(l, strlen(l), &msg, &ts), 0);
	static const char *const declined[] = {
		"",
		"{",
		"{\"log\":1}",
		"{\"log\":\"a\\u0000\"}",
		"{\"log\":\"a\"} x",
		"{\"log\":\"\\x\"}",
		"{\"log\":\"a\",\"log\":\"b\"}",
		"{\"log\":\"\\ud800\"}",
		"{\"log\":\"a\",}",
		"[\"log\"]",
		"{\"log\":\"a\",\"n\":{\"x\":1}}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(declined); i++)
		assert_int_equal(logs_jsonfile_line(declined[i], strlen(declined[i]), &msg, &ts), -1);
	static const char *const lines[] = {
		"{\"log\":\"plain\"}",
		" { \"log\" : \"sp aces\" , \"stream\" : \"stderr\" } ",
		"{\"log\":\"\\u20ac \\uD834\\uDD1E\"}",
		"{\"a\":\"\",\"log\":\"\\\"quoted\\\"\"}",
		"{}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
		same_as_jansson(lines[i]);
}

/* Events built in place (the shipper's way) read back as logs_wire_add's; append keeps what was there. */
static void test_build_in_place(void **state)
{
	(void)state;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT, ref = STRBUF_INIT;
	strbuf_addstr(&sb, "{}\n");
	strbuf_addstr(&ref, "{}\n");
	const char *l = "{\"log\":\"a \\\"q\\\" \\u00e9 long enough to pass eight "
			"bytes\\n\",\"time\":\"2026-12-06T12:00:01Z\"}";
	size_t start = logs_wire_begin(&sb);
	int64_t ts = 0;
	assert_int_equal(logs_jsonfile_append(l, strlen(l), &sb, &ts), 1);
	assert_int_equal(ts, 1796558401000LL);
	const char *want = "a \"q\" \xc3\xa9 long enough to pass eight bytes\n";
	assert_int_equal(sb.len - start - LOGS_WIRE_EVENT_HDR, strlen(want));
	assert_memory_equal(sb.buf + start + LOGS_WIRE_EVENT_HDR, want, strlen(want));
	logs_wire_end(&sb, start, 7, ts);
	logs_wire_add(&ref, 7, ts, want, strlen(want));
	assert_int_equal(sb.len, ref.len);
	assert_memory_equal(sb.buf, ref.buf, sb.len);
	/* a declined line leaves the buffer as it was */
	size_t before = sb.len;
	assert_int_equal(logs_jsonfile_append("{\"log\":\"abc\\x\"}", 16, &sb, &ts), -1);
	assert_int_equal(logs_jsonfile_append("{\"x\":\"abc\"}", 11, &sb, &ts), 0);
	assert_int_equal(sb.len, before);
	assert_memory_equal(sb.buf, ref.buf, sb.len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_round_trip),
		cmocka_unit_test(test_batch_refusals),
		cmocka_unit_test(test_jsonfile_lines),
		cmocka_unit_test(test_build_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
