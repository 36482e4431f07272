/* test-host.c - host assembly: open/close, the shared create policy (default log config), bad input. */
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "host/host.h"
#include "image/image.h"

static struct host *open_host(const char *base, const char *driver, const char *cgroup_parent, int *ret,
			      struct berth_error **err)
{
	_cleanup_free_ char *root = xasprintf("%s/root", base);
	_cleanup_free_ char *run = xasprintf("%s/run", base);
	_cleanup_json_ json_t *opts = driver ? json_pack("{s:s}", "max-size", "1m") : NULL;
	struct host_config cfg = { .root = root,
				   .exec_root = run,
				   .bridge = "none",
				   .log_driver = driver,
				   .log_opts = opts,
				   .cgroup_parent = cgroup_parent };
	struct host *h = NULL;
	*ret = host_open(&cfg, &h, err);
	return h;
}

/* An image with an empty root filesystem: an empty tar (two zero blocks). */
static void import_empty(struct host *h, const char *base)
{
	_cleanup_free_ char *tar = xasprintf("%s/empty.tar", base);
	char zero[1024] = { 0 };
	assert_int_equal(fs_write_file_atomic(tar, zero, sizeof(zero), 0600, NULL), 0);
	_cleanup_close_ int fd = open(tar, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	_cleanup_json_ json_t *cfg = json_pack("{s:[s]}", "Cmd", "true");
	assert_int_equal(image_import(h->images, fd, "empty:latest", cfg, NULL, NULL, NULL), 0);
}

static void test_open_creates_roots_and_close_accepts_null(void **state)
{
	(void)state;
	_cleanup_free_ char *base = unit_tmpdir();
	struct berth_error *err = NULL;
	int r;
	struct host *h = open_host(base, NULL, NULL, &r, &err);
	assert_int_equal(r, 0);
	assert_non_null(h->engine);
	assert_non_null(h->images);
	assert_null(h->net); /* bridge none */
	struct stat st;
	_cleanup_free_ char *root = xasprintf("%s/root", base);
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0710);
	/* a second host on the same root is refused while the first holds it */
	struct host *h2 = open_host(base, NULL, NULL, &r, &err);
	assert_int_equal(r, -EBUSY);
	assert_null(h2);
	assert_non_null(strstr(err->msg, "in use by another berth daemon or agent"));
	err = berth_error_free(err);
	host_shutdown(h);
	assert_null(host_close(h));
	assert_null(host_close(NULL));
	h2 = open_host(base, NULL, NULL, &r, &err);
	assert_int_equal(r, 0);
	host_close(h2);
	fs_rm_rf(base, NULL);
}

static void test_missing_roots_and_bad_defaults_are_refused(void **state)
{
	(void)state;
	struct berth_error *err = NULL;
	struct host *h = NULL;
	struct host_config cfg = { .root = "/tmp", .exec_root = NULL };
	assert_int_equal(host_open(&cfg, &h, &err), -EINVAL);
	assert_null(h);
	berth_error_free(err), err = NULL;

	_cleanup_free_ char *base = unit_tmpdir();
	int r;
	h = open_host(base, "no-such-driver", NULL, &r, &err);
	assert_true(r < 0);
	assert_null(h);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_non_null(strstr(msg, "invalid default log config"));
	berth_error_free(err), err = NULL;

	static const char *const bad[] = { "/abs", "a/../b", "..", "a//b", "a/", "", "sp ace", NULL };
	for (const char *const *p = bad; *p; p++) {
		h = open_host(base, NULL, *p, &r, &err);
		assert_int_equal(r, -EINVAL);
		assert_null(h);
		_cleanup_free_ char *m = berth_error_string(err);
		assert_non_null(strstr(m, "invalid cgroup parent"));
		berth_error_free(err), err = NULL;
	}
	fs_rm_rf(base, NULL);
}

static void test_create_applies_the_hosts_default_log_config(void **state)
{
	(void)state;
	_cleanup_free_ char *base = unit_tmpdir();
	struct berth_error *err = NULL;
	int r;
	struct host *h = open_host(base, "local", "berth-unit/nested", &r, &err);
	assert_int_equal(r, 0);
	import_empty(h, base);

	_cleanup_json_ json_t *cfg = json_pack("{s:s}", "Image", "empty:latest");
	_cleanup_free_ char *a = NULL, *b = NULL;
	/* no LogConfig: the host's default; an explicit one is kept */
	assert_int_equal(host_container_create(h, "ca", cfg, NULL, NULL, &a, &err), 0);
	_cleanup_json_ json_t *hc = json_pack("{s:{s:s,s:{}}}", "LogConfig", "Type", "none", "Config");
	assert_int_equal(host_container_create(h, "cb", cfg, hc, NULL, &b, &err), 0);
	_cleanup_container_info_ struct engine_container_info *ia = NULL, *ib = NULL;
	assert_int_equal(engine_container_inspect(h->engine, a, &ia, NULL), 0);
	assert_int_equal(engine_container_inspect(h->engine, b, &ib, NULL), 0);
	json_t *la = json_object_get(ia->hostconfig, "LogConfig");
	assert_string_equal(json_string_value(json_object_get(la, "Type")), "local");
	assert_string_equal(json_string_value(json_object_get(json_object_get(la, "Config"), "max-size")),
			    "1m");
	json_t *lb = json_object_get(ib->hostconfig, "LogConfig");
	assert_string_equal(json_string_value(json_object_get(lb, "Type")), "none");

	/* the same name twice, and an unknown image: refused, nothing created */
	_cleanup_free_ char *c = NULL;
	assert_true(host_container_create(h, "ca", cfg, NULL, NULL, &c, &err) < 0);
	assert_null(c);
	berth_error_free(err), err = NULL;
	_cleanup_json_ json_t *bad = json_pack("{s:s}", "Image", "missing:latest");
	assert_true(host_container_create(h, "cc", bad, NULL, NULL, &c, &err) < 0);
	assert_null(c);
	berth_error_free(err), err = NULL;

	assert_int_equal(engine_container_remove(h->engine, a, true, true, NULL), 0);
	assert_int_equal(engine_container_remove(h->engine, b, true, true, NULL), 0);
	host_close(h);
	fs_rm_rf(base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_roots_and_close_accepts_null),
		cmocka_unit_test(test_missing_roots_and_bad_defaults_are_refused),
		cmocka_unit_test(test_create_applies_the_hosts_default_log_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
