/*
 * test-server-elbv2.c - ELBv2's query protocol plumbing (elbv2-query.c):
 * form decoding with its refusals, member lists, XML escaping and errors.
 */
#include "unit.h"

#include "server/elbv2.h"

static json_t *form(const char *s)
{
	return server_elbv2_form_parse(s, strlen(s));
}

static void test_form_parse(void **state)
{
	(void)state;
	json_t *f =
	    form("Action=DescribeTargetHealth&Version=2015-12-01&TargetGroupArn=arn%3Aaws%3A"
		 "elasticloadbalancing%3Aus-east-1%3A1%3Atargetgroup%2Fweb%2Fab&Names.member.1=a+b&&empty=");
	assert_non_null(f);
	assert_string_equal(json_string_value(json_object_get(f, "Action")), "DescribeTargetHealth");
	assert_string_equal(json_string_value(json_object_get(f, "TargetGroupArn")),
			    "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/ab");
	assert_string_equal(json_string_value(json_object_get(f, "Names.member.1")), "a b");
	assert_string_equal(json_string_value(json_object_get(f, "empty")), "");
	json_decref(f);
	f = form("flag");
	assert_string_equal(json_string_value(json_object_get(f, "flag")), "");
	json_decref(f);
	f = form("");
	assert_int_equal(json_object_size(f), 0);
	json_decref(f);
	/* refusals: bad escapes, a NUL, an empty or repeated key */
	static const char *const bad[] = { "a=%zz", "a=%4", "a=%", "a=%00", "=x", "a=1&a=2", "%3D=%" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if ((f = form(bad[i]))) {
			json_decref(f);
			fail_msg("accepted %s", bad[i]);
		}
	/* a NUL byte inside the body itself */
	assert_null(server_elbv2_form_parse("a=b\0c", 5));
	/* too many pairs */
	struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i <= ELBV2_MAX_PARAMS; i++)
		strbuf_addf(&sb, "k%d=v&", i);
	assert_null(server_elbv2_form_parse(sb.buf, sb.len));
	strbuf_release(&sb);
}

static void test_form_list(void **state)
{
	(void)state;
	json_t *f = form("Names.member.1=a&Names.member.2=b&Names.member.4=d&Other.member.1=x");
	json_t *l = server_elbv2_form_list(f, "Names");
	assert_int_equal(json_array_size(l), 2); /* stops at the gap */
	assert_string_equal(json_string_value(json_array_get(l, 1)), "b");
	json_decref(l);
	l = server_elbv2_form_list(f, "None");
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	json_decref(f);
}

static void test_xml(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	server_elbv2_xml_elem(&sb, "Id", "<a & 'b'> \"c\"");
	server_elbv2_xml_elem(&sb, "Skipped", NULL);
	assert_string_equal(sb.buf, "<Id>&lt;a &amp; &apos;b&apos;&gt; &quot;c&quot;</Id>");
	strbuf_release(&sb);
	char *e = server_elbv2_error_xml("TargetGroupNotFound", "One or more target groups not found", "r-1");
	assert_string_equal(
	    e, "<ErrorResponse xmlns=\"" ELBV2_XMLNS "\"><Error><Type>Sender</Type>"
	       "<Code>TargetGroupNotFound</Code><Message>One or more target groups not found</Message>"
	       "</Error><RequestId>r-1</RequestId></ErrorResponse>");
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_parse),
		cmocka_unit_test(test_form_list),
		cmocka_unit_test(test_xml),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
