/*
 * test-server-hbcache.c - the heartbeat cache (hbcache.c): an entry answers
 * only the certificate identity it was made for; a write to the node's
 * record, instance record or alive key, or a lease revoke, drops it; an
 * entry built from reads a write overtook is not kept (generation); other
 * keys leave it alone.
 */
#include "unit.h"

#include "server/hbcache.h"

#define PEER "n1 sha256:aa"

static void test_hit_needs_the_same_identity(void **state)
{
	(void)state;
	struct hb_cache *c = server_hb_cache_new();
	int64_t lease = 0;
	char *body = NULL;
	assert_false(server_hb_cache_get(c, PEER, &lease, &body));
	server_hb_cache_put(c, server_hb_cache_gen(c), "n1", PEER, 42, "{\"status\":\"ACTIVE\"}\n");
	assert_true(server_hb_cache_get(c, PEER, &lease, &body));
	assert_int_equal(lease, 42);
	assert_string_equal(body, "{\"status\":\"ACTIVE\"}\n");
	free(body);
	assert_false(server_hb_cache_get(c, "n1 sha256:bb", &lease, &body)); /* another certificate */
	assert_false(server_hb_cache_get(c, "n2 sha256:aa", &lease, &body));
	assert_false(server_hb_cache_get(c, "n1", &lease, &body)); /* malformed */
	assert_false(server_hb_cache_get(c, NULL, &lease, &body));
	server_hb_cache_drop(c, "n1");
	assert_false(server_hb_cache_get(c, PEER, &lease, &body));
	server_hb_cache_free(c);
}

static void test_writes_that_matter_drop(void **state)
{
	(void)state;
	const char *keys[] = { "/berth/nodes/n1", "/berth/instances/default/n1", "/berth/alive/n1" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		struct hb_cache *c = server_hb_cache_new();
		server_hb_cache_put(c, server_hb_cache_gen(c), "n1", PEER, 1, "x");
		server_hb_cache_put(c, server_hb_cache_gen(c), "n2", "n2 sha256:cc", 2, "y");
		/* other keys, and look-alikes, do not */
		struct store_op other[] = {
			{ .type = STORE_OP_PUT, .key = "/berth/tasks/default/n1" },
			{ .type = STORE_OP_PUT, .key = "/berth/nodes/n1/x" },
			{ .type = STORE_OP_PUT, .key = "/berth/instances/n1" },
		};
		server_hb_cache_note_write(c, other, ARRAY_SIZE(other));
		assert_int_equal(server_hb_cache_size(c), 2);
		struct store_op op = { .type = i == 2 ? STORE_OP_DELETE : STORE_OP_PUT, .key = keys[i] };
		server_hb_cache_note_write(c, &op, 1);
		int64_t lease;
		char *body = NULL;
		assert_false(server_hb_cache_get(c, PEER, &lease, &body));
		assert_true(server_hb_cache_get(c, "n2 sha256:cc", &lease, &body)); /* only its node */
		free(body);
		server_hb_cache_note_write(c, NULL, 0); /* a lease revoke: everything */
		assert_int_equal(server_hb_cache_size(c), 0);
		server_hb_cache_free(c);
	}
}

static void test_overtaken_reads_are_not_kept(void **state)
{
	(void)state;
	struct hb_cache *c = server_hb_cache_new();
	uint64_t gen = server_hb_cache_gen(c); /* a heartbeat starts reading */
	struct store_op op = { .type = STORE_OP_PUT, .key = "/berth/instances/default/n1" };
	server_hb_cache_note_write(c, &op, 1); /* e.g. DRAINING, acknowledged meanwhile */
	server_hb_cache_put(c, gen, "n1", PEER, 1, "{\"status\":\"ACTIVE\"}\n");
	assert_int_equal(server_hb_cache_size(c), 0);
	server_hb_cache_put(c, server_hb_cache_gen(c), "n1", PEER, 1, "{\"status\":\"DRAINING\"}\n");
	assert_int_equal(server_hb_cache_size(c), 1);
	server_hb_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_needs_the_same_identity),
		cmocka_unit_test(test_writes_that_matter_drop),
		cmocka_unit_test(test_overtaken_reads_are_not_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
