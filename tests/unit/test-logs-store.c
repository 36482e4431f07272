/*
 * test-logs-store.c - segment files: append and read in order (forward,
 * backward, by time range), a reopened store rebuilds its index and drops a
 * torn last frame, tokens survive, deletion, retention (whole segments) and
 * compaction (expired events gone, batches merged, sequence numbers kept).
 */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "logs/logstore.h"

struct collect {
	uint64_t seqs[4096];
	int64_t ts[4096];
	char msgs[4096][32];
	size_t n, limit;
};

static int take(void *ud, const struct logs_event *ev)
{
	struct collect *c = ud;
	if (c->n == c->limit)
		return 2;
	c->seqs[c->n] = ev->seq;
	c->ts[c->n] = ev->timestamp;
	snprintf(c->msgs[c->n], sizeof(c->msgs[0]), "%.*s", (int)ev->len, ev->message);
	c->n++;
	return 0;
}

static void put(struct logs_store *s, const char *stream, int from, int n, int64_t ts0, uint64_t token)
{
	struct logs_in_event ev[64];
	char text[64][16];
	assert_true(n <= 64);
	for (int i = 0; i < n; i++) {
		snprintf(text[i], sizeof(text[i]), "line %d", from + i);
		ev[i] = (struct logs_in_event){ ts0 + from + i, text[i], strlen(text[i]) };
	}
	assert_int_equal(logs_append(s, "g/1", stream, ev, (size_t)n, 5000, token, NULL, NULL), 0);
}

static struct collect *read_all(struct logs_store *s, const char *stream, const struct logs_read *q,
				size_t limit, uint64_t *ret_seq)
{
	struct collect *c = xcalloc(1, sizeof(*c));
	c->limit = limit;
	assert_int_equal(logs_read_stream(s, "g/1", stream, q, take, c, ret_seq, NULL), 0);
	return c;
}

static void test_append_read(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	struct logs_store *s = NULL;
	struct logs_store_opts o = { .segment_bytes = 300 }; /* a few batches per segment */
	assert_int_equal(logs_store_open(dir, &o, &s, NULL), 0);
	for (int i = 0; i < 10; i++)
		put(s, "a", i * 5, 5, 1000, (uint64_t)i + 1);
	struct logs_read q = { 0 };
	uint64_t next = 0;
	struct collect *c = read_all(s, "a", &q, 4096, &next);
	assert_int_equal(c->n, 50);
	assert_int_equal(next, 50);
	for (size_t i = 0; i < c->n; i++) {
		assert_int_equal(c->seqs[i], i);
		char want[32];
		snprintf(want, sizeof(want), "line %zu", i);
		assert_string_equal(c->msgs[i], want);
	}
	free(c);
	/* forward from a position, limited */
	q.seq = 12;
	c = read_all(s, "a", &q, 3, &next);
	assert_int_equal(c->n, 3);
	assert_int_equal(c->seqs[0], 12);
	assert_int_equal(next, 15);
	free(c);
	/* backward from the end: newest first */
	q = (struct logs_read){ .seq = UINT64_MAX, .backward = true };
	c = read_all(s, "a", &q, 4, &next);
	assert_int_equal(c->n, 4);
	assert_int_equal(c->seqs[0], 49);
	assert_int_equal(c->seqs[3], 46);
	assert_int_equal(next, 46);
	free(c);
	q.seq = 3;
	c = read_all(s, "a", &q, 10, &next);
	assert_int_equal(c->n, 3);
	assert_int_equal(c->seqs[2], 0);
	free(c);
	/* time range [1020, 1025) */
	q = (struct logs_read){ .start_ms = 1020, .end_ms = 1025 };
	c = read_all(s, "a", &q, 100, &next);
	assert_int_equal(c->n, 5);
	assert_int_equal(c->ts[0], 1020);
	free(c);
	struct logs_stream_stat st;
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &st, NULL), 0);
	assert_int_equal(st.next_seq, 50);
	assert_int_equal(st.token, 10);
	assert_int_equal(st.first_ts, 1000);
	assert_int_equal(st.last_ts, 1049);
	assert_true(st.time_ordered);
	/* an unknown stream reads as empty */
	q = (struct logs_read){ 0 };
	c = read_all(s, "nope", &q, 10, &next);
	assert_int_equal(c->n, 0);
	free(c);
	/* bad batches */
	struct logs_in_event empty = { 1, "", 0 };
	struct berth_error *err = NULL;
	assert_int_equal(logs_append(s, "g/1", "a", &empty, 1, 1, 0, NULL, &err), -EINVAL);
	berth_error_free(err);
	logs_store_close(s);
	fs_rm_rf(dir, NULL);
}

static void test_reopen_torn(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	struct logs_store *s = NULL;
	assert_int_equal(logs_store_open(dir, NULL, &s, NULL), 0);
	put(s, "a", 0, 10, 0, 7);
	put(s, "a", 10, 10, 0, 8);
	logs_store_close(s);
	/* tear the last frame: cut its last 3 bytes */
	_cleanup_free_ char *cmd = xasprintf("for f in %s/*/*.seg; do truncate -s -3 $f; done", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(logs_store_open(dir, NULL, &s, NULL), 0);
	struct logs_stream_stat st;
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &st, NULL), 0);
	assert_int_equal(st.next_seq, 10);
	assert_int_equal(st.token, 7);
	put(s, "a", 10, 5, 0, 9);
	struct logs_read q = { 0 };
	uint64_t next;
	struct collect *c = read_all(s, "a", &q, 100, &next);
	assert_int_equal(c->n, 15);
	assert_string_equal(c->msgs[14], "line 14");
	free(c);
	assert_int_equal(logs_stream_delete(s, "g/1", "a", NULL), 0);
	c = read_all(s, "a", &q, 100, &next);
	assert_int_equal(c->n, 0);
	free(c);
	put(s, "a", 0, 1, 0, 1);
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &st, NULL), 0);
	assert_int_equal(st.next_seq, 1);
	logs_store_close(s);
	fs_rm_rf(dir, NULL);
}

static void test_expire_compact(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	struct logs_store *s = NULL;
	struct logs_store_opts o = { .segment_bytes = 400 };
	assert_int_equal(logs_store_open(dir, &o, &s, NULL), 0);
	for (int i = 0; i < 40; i++)
		put(s, "a", i * 2, 2, 0, (uint64_t)i + 100); /* ts = 0..79 */
	uint64_t freed = 0;
	struct logs_stream_stat before, after;
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &before, NULL), 0);
	assert_int_equal(logs_stream_expire(s, "g/1", "a", 50, &freed, NULL), 0);
	assert_true(freed > 0);
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &after, NULL), 0);
	assert_int_equal(after.next_seq, 80);
	assert_int_equal(after.token, 139);
	assert_true(after.stored_bytes < before.stored_bytes);
	struct logs_read q = { .expired_before = 50 };
	uint64_t next;
	struct collect *c = read_all(s, "a", &q, 100, &next);
	assert_int_equal(c->n, 30);
	assert_int_equal(c->seqs[0], 50); /* sequence numbers kept */
	free(c);
	/* compaction merges the small batches; reads and appends go on */
	assert_int_equal(logs_stream_compact(s, "g/1", "a", 60, NULL), 0);
	logs_store_close(s);
	assert_int_equal(logs_store_open(dir, &o, &s, NULL), 0);
	q = (struct logs_read){ 0 };
	c = read_all(s, "a", &q, 100, &next);
	assert_int_equal(c->n, 20);
	assert_int_equal(c->seqs[0], 60);
	assert_int_equal(c->seqs[19], 79);
	free(c);
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &after, NULL), 0);
	assert_int_equal(after.token, 139);
	put(s, "a", 80, 2, 0, 140);
	c = read_all(s, "a", &q, 100, &next);
	assert_int_equal(c->n, 22);
	assert_int_equal(c->seqs[21], 81);
	free(c);
	/* everything expired: the token is still there */
	assert_int_equal(logs_stream_compact(s, "g/1", "a", 1000, NULL), 0);
	assert_int_equal(logs_stream_stat(s, "g/1", "a", &after, NULL), 0);
	assert_int_equal(after.token, 140);
	assert_int_equal(after.next_seq, 82);
	logs_store_close(s);
	fs_rm_rf(dir, NULL);
}

static void test_append_from(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	struct logs_store *s = NULL;
	assert_int_equal(logs_store_open(dir, NULL, &s, NULL), 0);
	struct logs_in_event ev[3] = { { 1, "a", 1 }, { 2, "bb", 2 }, { 3, "ccc", 3 } };
	uint64_t off[3] = { 0, 10, 20 }, tok = 0;
	size_t taken = 0;
	assert_int_equal(logs_append_from(s, "g/1", "x", ev, off, 2, 9, 20, &taken, &tok, NULL), 0);
	assert_int_equal(taken, 2);
	assert_int_equal(tok, 20);
	/* the same batch again: nothing */
	assert_int_equal(logs_append_from(s, "g/1", "x", ev, off, 2, 9, 20, &taken, &tok, NULL), 0);
	assert_int_equal(taken, 0);
	/* a longer retry overlapping the accepted part: only the new event */
	assert_int_equal(logs_append_from(s, "g/1", "x", ev, off, 3, 9, 30, &taken, &tok, NULL), 0);
	assert_int_equal(taken, 1);
	assert_int_equal(tok, 30);
	struct logs_read q = { 0 };
	uint64_t next;
	struct collect *c = read_all(s, "x", &q, 10, &next);
	assert_int_equal(c->n, 3);
	assert_string_equal(c->msgs[2], "ccc");
	free(c);
	logs_store_close(s);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_read),
		cmocka_unit_test(test_reopen_torn),
		cmocka_unit_test(test_expire_compact),
		cmocka_unit_test(test_append_from),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
