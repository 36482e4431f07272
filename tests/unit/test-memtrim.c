#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit.h"
#include "common/fs.h"
#include "common/memtrim.h"

#define MAP_LEN (16 * 4096)

/* Rss (kB) of the mapping that starts at addr, from /proc/self/smaps; -1: not found. */
static long mapping_rss(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	assert_non_null(f);
	char line[1024], want[32];
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
	bool in = false;
	long rss = -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, want, strlen(want)))
			in = true;
		else if (in && sscanf(line, "Rss: %ld kB", &rss) == 1)
			break;
	}
	fclose(f);
	return rss;
}

static char *make_file(const char *dir, const char *name, char fill)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *buf = xmalloc(MAP_LEN);
	memset(buf, fill, MAP_LEN);
	assert_int_equal(fs_write_file_replace(path, buf, MAP_LEN, 0644, NULL), 0);
	free(buf);
	return path;
}

static unsigned char *map_file(const char *path, int prot)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	void *p = mmap(NULL, MAP_LEN, prot, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static unsigned touch(const unsigned char *p)
{
	unsigned sum = 0;
	for (size_t i = 0; i < MAP_LEN; i += 4096)
		sum += ((const volatile unsigned char *)p)[i];
	return sum;
}

static void test_droppable(void **state)
{
	assert_true(memtrim_droppable("r-xp", "/usr/lib/libx.so", 12, 0));
	assert_true(memtrim_droppable("r--p", "/usr/lib/libx.so", 4, 0));
	assert_false(memtrim_droppable("r--p", "/usr/lib/libx.so", 4, 4)); /* relocated (RELRO) */
	assert_false(memtrim_droppable("rw-p", "/usr/lib/libx.so", 4, 0)); /* writable data */
	assert_false(memtrim_droppable("rw-s", "/db-shm", 4, 0));          /* shared */
	assert_false(memtrim_droppable("r--s", "/db", 4, 0));
	assert_false(memtrim_droppable("r-xp", "[vdso]", 4, 0));
	assert_false(memtrim_droppable("r--p", "", 4, 0)); /* anonymous */
	assert_false(memtrim_droppable("r-xp", "/usr/lib/libx.so", 0, 0));
}

static void test_due(void **state)
{
	(void)memtrim_release();
	assert_int_equal(memtrim_wait_ms(1000), -1);
	assert_false(memtrim_due(0));
	memtrim_note();
	int64_t w = memtrim_wait_ms(60000);
	assert_true(w > 0 && w <= 60000);
	assert_false(memtrim_due(60000));
	assert_true(memtrim_due(0));
	(void)memtrim_release();
	assert_int_equal(memtrim_wait_ms(0), -1);
}

/* Read-only file pages mapped after the baseline are dropped (and read back the same); pages
 * mapped before it, and copied (written) pages, stay. */
static void test_release(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *before = make_file(dir, "before", 'b');
	_cleanup_free_ char *after = make_file(dir, "after", 'a');
	_cleanup_free_ char *cow = make_file(dir, "cow", 'c');
	unsigned char *pb = map_file(before, PROT_READ);
	memtrim_baseline();
	unsigned char *pa = map_file(after, PROT_READ);
	unsigned char *pc = map_file(cow, PROT_READ | PROT_WRITE);
	pc[0] = 'X';
	assert_int_equal(mprotect(pc, MAP_LEN, PROT_READ), 0);
	unsigned sb = touch(pb), sa = touch(pa), sc = touch(pc);
	assert_int_equal(mapping_rss(pa), MAP_LEN / 1024);
	size_t kb = memtrim_release();
	assert_true(kb >= MAP_LEN / 1024);
	assert_int_equal(mapping_rss(pa), 0);
	assert_int_equal(mapping_rss(pb), MAP_LEN / 1024);
	assert_true(mapping_rss(pc) > 0);
	assert_int_equal(pc[0], 'X'); /* the copied page kept its content */
	assert_int_equal(touch(pa), sa);
	assert_int_equal(touch(pb), sb);
	assert_int_equal(touch(pc), sc);
	munmap(pa, MAP_LEN);
	munmap(pb, MAP_LEN);
	munmap(pc, MAP_LEN);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_droppable),
		cmocka_unit_test(test_due),
		cmocka_unit_test(test_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
