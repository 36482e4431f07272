/* Unit tests for the CNI executor (fake shell plugins) and strict result validation. */
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "net/internal.h"

static const char fake_plugin[] =
    "#!/bin/sh\n"
    "in=$(cat)\n"
    "n=$(basename \"$0\")\n"
    "echo \"$n $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_ARGS\" >> \"$FAKE_LOG/calls\"\n"
    "printf '%s\\n' \"$in\" > \"$FAKE_LOG/$n.$CNI_COMMAND.json\"\n"
    "case \"$n.$CNI_COMMAND\" in\n"
    "fail.ADD) echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no way\",\"details\":\"nope\"}'; exit "
    "1;;\n"
    "bad.ADD) echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.0.300/24\"}]}';;\n"
    "slow.ADD) sleep 20;;\n"
    "*.ADD) echo '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"aa:bb:cc:dd:ee:ff\","
    "\"sandbox\":\"/x\"}],\"ips\":[{\"address\":\"10.9.0.2/"
    "24\",\"gateway\":\"10.9.0.1\",\"interface\":0}]}';;\n"
    "new.VERSION) echo '{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"1.0.0\",\"1.1.0\"]}';;\n"
    "*.VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}';;\n"
    "esac\n"
    "exit 0\n";

struct fixture {
	char *dir;
	struct cni_exec x;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	_cleanup_free_ char *one = xasprintf("%s/one", f->dir);
	assert_int_equal(fs_write_file_atomic(one, fake_plugin, strlen(fake_plugin), 0755, NULL), 0);
	const char *links[] = { "two", "fail", "bad", "slow", "new" };
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		_cleanup_free_ char *l = xasprintf("%s/%s", f->dir, links[i]);
		assert_int_equal(symlink("one", l), 0);
	}
	setenv("FAKE_LOG", f->dir, 1);
	f->x = (struct cni_exec){ .cni_path = f->dir, .timeout_ms = 5000 };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f);
	return 0;
}

static json_t *conflist(const char *a, const char *b)
{
	json_t *p = json_pack("[{s:s,s:{s:b}}]", "type", a, "capabilities", "portMappings", 1);
	if (b)
		json_array_append_new(p, json_pack("{s:s,s:s}", "type", b, "extra", "x"));
	return json_pack("{s:s,s:s,s:o}", "cniVersion", "1.0.0", "name", "testnet", "plugins", p);
}

static char *read_log(struct fixture *f, const char *name)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *p = xasprintf("%s/%s", f->dir, name);
	if (fs_read_file_at(AT_FDCWD, p, 0, &sb, NULL) < 0)
		return NULL;
	return strbuf_detach(&sb, NULL);
}

static void test_add_chains_prev_result_and_env(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("one", "two");
	json_auto_t *caps =
	    json_pack("{s:[{s:i}],s:[s]}", "portMappings", "hostPort", 8080, "ips", "1.2.3.4/24");
	struct cni_runtime rt = { "ctr1", "/run/ns1", "eth0", "IgnoreUnknown=1", caps };
	json_t *res = NULL;
	assert_int_equal(net_cni_list_add(&f->x, conf, &rt, &res, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(res, "cniVersion")), "1.0.0");
	json_decref(res);
	_cleanup_free_ char *calls = read_log(f, "calls");
	assert_string_equal(
	    calls,
	    "one ADD ctr1 /run/ns1 eth0 IgnoreUnknown=1\ntwo ADD ctr1 /run/ns1 eth0 IgnoreUnknown=1\n");
	_cleanup_free_ char *in1 = read_log(f, "one.ADD.json"), *in2 = read_log(f, "two.ADD.json");
	json_auto_t *j1 = NULL, *j2 = NULL;
	assert_int_equal(json_parse(in1, strlen(in1), "in1", &j1, NULL), 0);
	assert_int_equal(json_parse(in2, strlen(in2), "in2", &j2, NULL), 0);
	/* name and version injected, capability args filtered, no prevResult for the first */
	assert_string_equal(json_string_value(json_object_get(j1, "name")), "testnet");
	assert_null(json_object_get(j1, "prevResult"));
	json_t *rc = json_object_get(j1, "runtimeConfig");
	assert_non_null(json_object_get(rc, "portMappings"));
	assert_null(json_object_get(rc, "ips"));
	/* second plugin: prevResult from the first, no runtimeConfig (no capabilities) */
	assert_non_null(json_object_get(json_object_get(j2, "prevResult"), "ips"));
	assert_null(json_object_get(j2, "runtimeConfig"));
	assert_string_equal(json_string_value(json_object_get(j2, "extra")), "x");
}

static void test_add_failure_dels_in_reverse(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("one", "fail");
	struct cni_runtime rt = { "ctr2", "/run/ns2", "eth1", NULL, NULL };
	json_t *res = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(net_cni_list_add(&f->x, conf, &rt, &res, &err), -EIO);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_non_null(strstr(msg, "cni plugin 'fail' ADD failed: no way: nope (code 7)"));
	_cleanup_free_ char *calls = read_log(f, "calls");
	assert_string_equal(calls, "one ADD ctr2 /run/ns2 eth1 \nfail ADD ctr2 /run/ns2 eth1 \n"
				   "fail DEL ctr2 /run/ns2 eth1 \none DEL ctr2 /run/ns2 eth1 \n");
}

static void test_invalid_result_is_refused(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("bad", NULL);
	struct cni_runtime rt = { "ctr3", "/run/ns3", "eth0", NULL, NULL };
	json_t *res = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(net_cni_list_add(&f->x, conf, &rt, &res, &err), -EINVAL);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_non_null(strstr(msg, "invalid CIDR '10.9.0.300/24'"));
	_cleanup_free_ char *calls = read_log(f, "calls");
	assert_non_null(strstr(calls, "bad DEL ctr3"));
}

static void test_plugin_timeout(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("slow", NULL);
	struct cni_runtime rt = { "ctr4", "/run/ns4", "eth0", NULL, NULL };
	struct cni_exec x = f->x;
	x.timeout_ms = 200;
	json_t *res = NULL;
	assert_int_equal(net_cni_list_add(&x, conf, &rt, &res, NULL), -ETIMEDOUT);
}

static void test_del_check_status_gc(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("one", "two");
	struct cni_runtime rt = { "ctr5", "", "eth0", NULL, NULL };
	json_auto_t *prev = json_pack("{s:s}", "cniVersion", "1.0.0");
	assert_int_equal(net_cni_list_del(&f->x, conf, &rt, prev, NULL), 0);
	_cleanup_free_ char *calls = read_log(f, "calls");
	assert_string_equal(calls, "two DEL ctr5  eth0 \none DEL ctr5  eth0 \n");
	_cleanup_free_ char *in = read_log(f, "two.DEL.json");
	assert_non_null(strstr(in, "\"prevResult\""));
	assert_int_equal(net_cni_list_check(&f->x, conf, &rt, prev, NULL), 0);
	assert_int_equal(net_cni_list_check(&f->x, conf, &rt, NULL, NULL), -EINVAL);
	assert_int_equal(net_cni_list_status(&f->x, conf, NULL), 0);
	json_auto_t *valid = json_array();
	assert_int_equal(net_cni_list_gc(&f->x, conf, valid, NULL), -EOPNOTSUPP);
}

static void test_cni_11_plugins_get_gc_and_status(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("new", NULL);
	json_auto_t *valid = json_pack("[{s:s,s:s}]", "containerID", "keep1", "ifname", "eth0");
	assert_int_equal(net_cni_list_gc(&f->x, conf, valid, NULL), 0);
	assert_int_equal(net_cni_list_status(&f->x, conf, NULL), 0);
	_cleanup_free_ char *calls = read_log(f, "calls");
	assert_string_equal(calls, "new VERSION    \nnew GC    \nnew VERSION    \nnew STATUS    \n");
	_cleanup_free_ char *in = read_log(f, "new.GC.json");
	json_auto_t *j = NULL;
	assert_int_equal(json_parse(in, strlen(in), "gc", &j, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(j, "cniVersion")), "1.1.0");
	json_t *va = json_object_get(j, "cni.dev/valid-attachments");
	assert_string_equal(json_string_value(json_object_get(json_array_get(va, 0), "containerID")),
			    "keep1");
}

static void test_missing_plugin(void **state)
{
	struct fixture *f = *state;
	json_auto_t *conf = conflist("nosuch", NULL);
	struct cni_runtime rt = { "c", "/x", "eth0", NULL, NULL };
	json_t *res = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(net_cni_list_add(&f->x, conf, &rt, &res, &err), -ENOENT);
}

static void test_conflist_validation(void **state)
{
	const char *bad[] = {
		"[]",
		"{\"name\":\"n\",\"plugins\":[{\"type\":\"bridge\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/sh\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{}]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"plugins\":[{\"type\":\"x\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[1]}",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		json_auto_t *j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		assert_int_equal(net_cni_conflist_validate(j, NULL), -EINVAL);
	}
}

static void test_result_validation(void **state)
{
	const char *good =
	    "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"m\"}],"
	    "\"ips\":[{\"address\":\"10.0.0.2/24\",\"gateway\":\"10.0.0.1\",\"interface\":0},"
	    "{\"address\":\"fd00::2/64\"}],\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\"}],"
	    "\"dns\":{\"nameservers\":[\"1.1.1.1\"],\"search\":[\"x\"]},\"future\":1}";
	json_t *res = NULL;
	assert_int_equal(net_cni_result_parse(good, strlen(good), "1.0.0", &res, NULL), 0);
	uint32_t a;
	int p;
	char gw[IP4_STR_MAX], mac[18];
	assert_int_equal(net_cni_result_ipv4(res, &a, &p, gw, mac, NULL), 0);
	assert_int_equal(a, 0x0a000002);
	assert_int_equal(p, 24);
	assert_string_equal(gw, "10.0.0.1");
	assert_string_equal(mac, "m");
	json_decref(res);
	const char *bad[] = {
		"",
		"[]",
		"{}",
		"{\"cniVersion\":\"0.4.0\"}",
		"{\"cniVersion\":\"1.0.0\",\"ips\":{}}",
		"{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\",\"interface\":0}]}",
		"{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\",\"interface\":-1}]}",
		"{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\",\"gateway\":\"x\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"waytoolonginterfacename\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"e\",\"mtu\":\"1\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"routes\":[{\"gw\":\"1.1.1.1\"}]}",
		"{\"cniVersion\":\"1.0.0\",\"dns\":{\"nameservers\":[1]}}",
		"{\"cniVersion\":\"1.0.0\",\"dns\":{\"domain\":[]}}",
		"{\"cniVersion\":\"1.0.0\",\"cniVersion\":\"1.0.0\"}",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		res = NULL;
		assert_true(net_cni_result_parse(bad[i], strlen(bad[i]), "1.0.0", &res, &err) < 0);
		assert_null(res);
		assert_non_null(err);
	}
	const char *noip = "{\"cniVersion\":\"1.0.0\"}";
	assert_int_equal(net_cni_result_parse(noip, strlen(noip), "1.0.0", &res, NULL), 0);
	assert_int_equal(net_cni_result_ipv4(res, &a, &p, gw, mac, NULL), -EADDRNOTAVAIL);
	json_decref(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_chains_prev_result_and_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_failure_dels_in_reverse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_result_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_check_status_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_plugin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cni_11_plugins_get_gc_and_status, setup, teardown),
		cmocka_unit_test(test_conflist_validation),
		cmocka_unit_test(test_result_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
