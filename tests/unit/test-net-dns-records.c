/*
 * test-net-dns-records.c - the resolver's extra record source (dns-records.c):
 * the "NAME IP..." format, case-insensitive lookups, duplicates, and the
 * errors naming the line of a malformed file.
 */
#include "unit.h"

#include "net/internal.h"

static void test_parse_and_lookup(void **state)
{
	(void)state;
	const char *text = "# discovery\n"
			   "web 10.42.1.2 10.42.2.3\n"
			   "  Web.Default.Local.   10.42.1.2\t10.42.2.3  \r\n"
			   "\n"
			   "web 10.42.1.2 10.42.3.4\n"
			   "empty\n";
	struct dns_records *r = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(net_dns_records_parse(text, strlen(text), &r, &err), 0);
	uint32_t out[8];
	bool known = false;
	size_t n = net_dns_records_lookup(r, "WEB", out, 8, &known);
	assert_true(known);
	assert_int_equal(n, 3); /* both lines, 10.42.1.2 once */
	assert_int_equal(out[0], 0x0a2a0102);
	assert_int_equal(out[1], 0x0a2a0203);
	assert_int_equal(out[2], 0x0a2a0304);
	assert_int_equal(net_dns_records_lookup(r, "web.default.local", out, 1, NULL), 1);
	assert_int_equal(net_dns_records_lookup(r, "empty", out, 8, &known), 0);
	assert_true(known);
	assert_int_equal(net_dns_records_lookup(r, "other", out, 8, &known), 0);
	assert_false(known);
	assert_int_equal(net_dns_records_lookup(NULL, "web", out, 8, &known), 0);
	assert_false(known);
	net_dns_records_free(r);
}

static void test_errors_name_the_line(void **state)
{
	(void)state;
	struct {
		const char *text, *msg;
	} bad[] = {
		{ "web 10.0.0.1\nweb 10.0.0.300\n", "records: line 2: invalid IPv4 address" },
		{ "we!b 10.0.0.1\n", "records: line 1: invalid name" },
		{ "a..b 10.0.0.1\n", "records: line 1: invalid name" },
		{ ".a 10.0.0.1\n", "records: line 1: invalid name" },
		{ "web ::1\n", "records: line 1: invalid IPv4 address" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dns_records *r = NULL;
		struct berth_error *err = NULL;
		assert_int_equal(net_dns_records_parse(bad[i].text, strlen(bad[i].text), &r, &err), -EINVAL);
		assert_null(r);
		assert_string_equal(err->msg, bad[i].msg);
		berth_error_free(err);
	}
	struct dns_records *r = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(net_dns_records_parse("a 1.1.1.1\0b", 11, &r, &err), -EINVAL);
	berth_error_free(err);
	err = NULL;
	/* too many addresses on one line */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "many");
	for (int i = 0; i <= DNS_RECORDS_MAX_ADDRS; i++)
		strbuf_addf(&sb, " 10.0.%d.%d", i / 250, i % 250 + 1);
	assert_int_equal(net_dns_records_parse(sb.buf, sb.len, &r, &err), -EINVAL);
	assert_string_equal(err->msg, "records: line 1: too many addresses");
	berth_error_free(err);
	strbuf_release(&sb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_lookup),
		cmocka_unit_test(test_errors_name_the_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
