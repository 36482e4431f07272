/*
 * server-store-fixture.h - a struct server over a new SQLite store in a
 * temporary directory, with the scheduler cache, the record cache and the
 * store's write observer installed as `berth server` does (cli.c). For the
 * unit tests of the server's store-backed paths (include once, after unit.h).
 */
#ifndef BERTH_TESTS_SERVER_STORE_FIXTURE_H
#define BERTH_TESTS_SERVER_STORE_FIXTURE_H

#include "common/fs.h"
#include "server/internal.h"
#include "store/store.h"

struct fixture {
	char *dir;
	struct server srv;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/store.db", f->dir);
	assert_int_equal(store_sqlite_open(path, &f->srv.store, NULL), 0);
	f->srv.region = xstrdup("us-east-1");
	f->srv.account = xstrdup("000000000000");
	f->srv.sched = server_sched_cache_new();
	f->srv.records = server_record_cache_new();
	pthread_mutex_init(&f->srv.lock, NULL);
	store_on_write(f->srv.store, server_note_write, &f->srv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	f->srv.sched = server_sched_cache_free(f->srv.sched);
	f->srv.records = server_record_cache_free(f->srv.records);
	f->srv.store = store_free(f->srv.store);
	pthread_mutex_destroy(&f->srv.lock);
	free(f->srv.region);
	free(f->srv.account);
	(void)fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f);
	return 0;
}

#endif
