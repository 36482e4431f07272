/*
 * test-server-subnets.c - the overlay's subnet allocator: the CIDR arithmetic
 * (netalloc.h) and server_overlay_assign/server_overlay_release on a real SQLite store:
 * distinct blocks, stable re-assignment, explicit subnets, exhaustion naming
 * the cluster CIDR, reuse after release, and two writers racing.
 */
#include "unit.h"

#include <pthread.h>

#include "common/fs.h"
#include "server/internal.h"
#include "server/netalloc.h"

static void test_parse_and_format(void **state)
{
	(void)state;
	struct netalloc_cidr c;
	char buf[NETALLOC_CIDR_MAX];
	assert_int_equal(server_netalloc_parse("10.42.0.0/16", true, &c), 0);
	assert_int_equal(c.bits, 16);
	assert_string_equal(server_netalloc_format(&c, buf), "10.42.0.0/16");
	assert_int_equal(server_netalloc_parse("10.42.0.1/16", true, &c), -EINVAL);
	assert_int_equal(server_netalloc_parse("10.42.3.7/24", false, &c), 0);
	assert_string_equal(server_netalloc_format(&c, buf), "10.42.3.0/24");
	const char *bad[] = { "",    "10.42.0.0",    "10.42.0.0/33", "10.42.0.0/",   "10.42.0/16",
			      "x/8", "10.42.0.0/1a", "::1/64",       "10.42.0.0/016" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(server_netalloc_parse(bad[i], false, &c), -EINVAL);
	assert_string_equal(server_netalloc_format_addr(0x0a2a0300, buf), "10.42.3.0");
}

static void test_contains_and_blocks(void **state)
{
	(void)state;
	struct netalloc_cidr pool, in, out, big, small;
	server_netalloc_parse("10.42.0.0/16", true, &pool);
	server_netalloc_parse("10.42.9.0/24", true, &in);
	server_netalloc_parse("10.43.0.0/24", true, &out);
	server_netalloc_parse("10.42.4.0/22", true, &big);
	server_netalloc_parse("10.42.5.128/25", true, &small);
	assert_true(server_netalloc_contains(&pool, &in));
	assert_false(server_netalloc_contains(&pool, &out));
	assert_false(server_netalloc_contains(&in, &pool));
	uint32_t b[NETALLOC_MAX_BLOCKS];
	size_t n = 0;
	assert_int_equal(server_netalloc_blocks(&big, 24, b, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(b[0], 0x0a2a0400);
	assert_int_equal(b[3], 0x0a2a0700);
	assert_int_equal(server_netalloc_blocks(&small, 24, b, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(b[0], 0x0a2a0500);
	assert_int_equal(server_netalloc_blocks(&pool, 24, b, &n), -E2BIG);
	assert_int_equal(server_netalloc_block_count(&pool, 24), 256);
}

static void test_pick(void **state)
{
	(void)state;
	struct netalloc_cidr pool;
	server_netalloc_parse("10.42.0.0/22", true, &pool);
	uint32_t got = 0;
	assert_int_equal(server_netalloc_pick(&pool, 24, NULL, 0, &got), 0);
	assert_int_equal(got, 0x0a2a0000);
	uint32_t used[] = { 0x0a2a0200, 0x0a2a0000 }; /* unsorted, with a hole at .1 */
	assert_int_equal(server_netalloc_pick(&pool, 24, used, 2, &got), 0);
	assert_int_equal(got, 0x0a2a0100);
	uint32_t full[] = { 0x0a2a0300, 0x0a2a0100, 0x0a2a0200, 0x0a2a0000 };
	got = 7;
	assert_int_equal(server_netalloc_pick(&pool, 24, full, 4, &got), -ENOSPC);
	assert_int_equal(got, 7);
	assert_int_equal(server_netalloc_pick(&pool, 20, NULL, 0, &got), -EINVAL);
}

/* ---- allocation on a store ---- */

struct fx {
	char *dir;
	struct server s;
};

static void add_node(struct server *s, const char *id)
{
	_cleanup_free_ char *key = xasprintf("/berth/nodes/%s", id);
	json_t *n = json_pack("{s:s,s:b}", "nodeId", id, "revoked", 0);
	assert_int_equal(server_record_put(s, key, n, NULL), 0);
	json_decref(n);
}

static char *node_subnet(struct server *s, const char *id)
{
	_cleanup_free_ char *key = xasprintf("/berth/nodes/%s", id);
	json_t *n = NULL;
	assert_int_equal(server_record_get(s, key, &n, NULL, NULL), 0);
	const char *v = json_string_value(json_object_get(n, "taskSubnet"));
	char *out = v ? xstrdup(v) : NULL;
	json_decref(n);
	return out;
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	_cleanup_free_ char *db = xasprintf("%s/store.db", f->dir);
	assert_int_equal(store_sqlite_open(db, &f->s.store, NULL), 0);
	f->s.cluster_cidr = xstrdup("10.42.0.0/22"); /* four /24 blocks */
	f->s.node_subnet_bits = 24;
	f->s.vxlan_id = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_free(f->s.store);
	free(f->s.cluster_cidr);
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f);
	return 0;
}

static char *assign(struct server *s, const char *id, const char *want, int expect)
{
	char *got = NULL;
	struct berth_error *err = NULL;
	int r = server_overlay_assign(s, id, want, NULL, &got, &err);
	if (r != expect) {
		_cleanup_free_ char *m = err ? berth_error_string(err) : NULL;
		fail_msg("assign %s: %d (%s), expected %d", id, r, m ? m : "", expect);
	}
	berth_error_free(err);
	return got;
}

static void test_distinct_and_stable(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { "a1", "b2", "c3" };
	char *got[3];
	for (size_t i = 0; i < 3; i++) {
		add_node(&f->s, ids[i]);
		got[i] = assign(&f->s, ids[i], NULL, 0);
	}
	assert_string_equal(got[0], "10.42.0.0/24");
	assert_string_equal(got[1], "10.42.1.0/24");
	assert_string_equal(got[2], "10.42.2.0/24");
	/* re-registering keeps the subnet, and it is in the node record */
	_cleanup_free_ char *again = assign(&f->s, "b2", NULL, 0);
	assert_string_equal(again, "10.42.1.0/24");
	_cleanup_free_ char *rec = node_subnet(&f->s, "b2");
	assert_string_equal(rec, "10.42.1.0/24");
	for (size_t i = 0; i < 3; i++)
		free(got[i]);
	/* the other overlay fields land in the same write as the subnet */
	add_node(&f->s, "d4");
	json_t *fields = json_pack("{s:s,s:s}", "address", "192.168.77.14", "vtepMac", "02:00:00:00:00:04");
	_cleanup_free_ char *d = NULL;
	assert_int_equal(server_overlay_assign(&f->s, "d4", NULL, fields, &d, NULL), 0);
	json_decref(fields);
	json_t *n = NULL;
	assert_int_equal(server_record_get(&f->s, "/berth/nodes/d4", &n, NULL, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(n, "taskSubnet")), d);
	assert_string_equal(json_string_value(json_object_get(n, "address")), "192.168.77.14");
	json_decref(n);
}

static void test_exhaustion_names_the_cidr_and_release_frees(void **state)
{
	struct fx *f = *state;
	char name[8];
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		add_node(&f->s, name);
		free(assign(&f->s, name, NULL, 0));
	}
	add_node(&f->s, "late");
	char *got = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(server_overlay_assign(&f->s, "late", NULL, NULL, &got, &err), -ENOSPC);
	assert_null(got);
	_cleanup_free_ char *m = berth_error_string(err);
	berth_error_free(err);
	if (!strstr(m, "'10.42.0.0/22'") || !strstr(m, "--cluster-cidr"))
		fail_msg("exhaustion message does not name the CIDR: %s", m);
	/* n1 leaves: its block is free again and goes to the next node */
	assert_int_equal(server_overlay_release(&f->s, "n1", NULL), 0);
	_cleanup_free_ char *gone = node_subnet(&f->s, "n1");
	assert_null(gone);
	_cleanup_free_ char *reused = assign(&f->s, "late", NULL, 0);
	assert_string_equal(reused, "10.42.1.0/24");
	/* releasing a node without a subnet, or an unknown one, is fine */
	assert_int_equal(server_overlay_release(&f->s, "n1", NULL), 0);
	assert_int_equal(server_overlay_release(&f->s, "nobody", NULL), 0);
}

static void test_explicit_subnets(void **state)
{
	struct fx *f = *state;
	add_node(&f->s, "x");
	add_node(&f->s, "y");
	add_node(&f->s, "z");
	_cleanup_free_ char *x = assign(&f->s, "x", "10.42.2.0/24", 0);
	assert_string_equal(x, "10.42.2.0/24");
	/* the allocator skips the explicit block */
	add_node(&f->s, "w");
	_cleanup_free_ char *w1 = assign(&f->s, "w", NULL, 0);
	assert_string_equal(w1, "10.42.0.0/24");
	free(assign(&f->s, "y", "10.42.2.128/25", -EEXIST)); /* inside x's block */
	free(assign(&f->s, "y", "10.43.0.0/24", -EINVAL));   /* outside the CIDR */
	free(assign(&f->s, "y", "nonsense", -EINVAL));
	/* a node that changes its explicit subnet gives the old block back */
	_cleanup_free_ char *x2 = assign(&f->s, "x", "10.42.3.0/24", 0);
	assert_string_equal(x2, "10.42.3.0/24");
	_cleanup_free_ char *y = assign(&f->s, "y", NULL, 0);
	assert_string_equal(y, "10.42.1.0/24");
	_cleanup_free_ char *z = assign(&f->s, "z", NULL, 0);
	assert_string_equal(z, "10.42.2.0/24");
}

struct racer {
	struct server *s;
	char id[8];
	char *got;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	server_overlay_assign(r->s, r->id, NULL, NULL, &r->got, NULL);
	return NULL;
}

static void test_concurrent_assignments_never_share(void **state)
{
	struct fx *f = *state;
	struct racer rs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		rs[i] = (struct racer){ .s = &f->s };
		snprintf(rs[i].id, sizeof(rs[i].id), "r%d", i);
		add_node(&f->s, rs[i].id);
	}
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, race, &rs[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		assert_non_null(rs[i].got);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(rs[i].got, rs[k].got);
	}
	for (int i = 0; i < 4; i++)
		free(rs[i].got);
}

static void test_vtep_mac(void **state)
{
	(void)state;
	_cleanup_free_ char *m = server_overlay_vtep_mac("0123456789abcdef0123456789abcdef");
	assert_string_equal(m, "02:01:23:45:67:89");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format),
		cmocka_unit_test(test_contains_and_blocks),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_vtep_mac),
		cmocka_unit_test_setup_teardown(test_distinct_and_stable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exhaustion_names_the_cidr_and_release_frees, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_explicit_subnets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_assignments_never_share, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
