/*
 * memtrim.c - give memory back after bulk work (memtrim.h).
 */
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include "common/macro.h"
#include "common/memtrim.h"
#include "common/process.h"
#include "common/util.h"

/* Files mapped at the baseline (device, inode); a few dozen at most. */
#define BASELINE_MAX 128

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned long long dev;
	unsigned long ino;
} baseline[BASELINE_MAX];
static size_t n_baseline;
static bool have_baseline;
static int64_t noted_ms = -1; /* last memtrim_note(); -1: none since the last release */
static void (*waker)(void *);
static void *waker_ctx;

struct mapping {
	uintptr_t start, end;
	char perms[8];
	unsigned long long dev;
	unsigned long ino;
	char path[512];
	size_t rss_kb, anon_kb;
};

/* A smaps mapping header: "start-end perms offset major:minor inode [path]". */
static bool parse_header(const char *line, struct mapping *m)
{
	unsigned long long start, end, off;
	unsigned maj, mn;
	unsigned long ino;
	int n = 0;
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %lu %n", &start, &end, m->perms, &off, &maj, &mn, &ino,
		   &n) < 7)
		return false;
	m->start = (uintptr_t)start;
	m->end = (uintptr_t)end;
	m->dev = makedev(maj, mn);
	m->ino = ino;
	const char *p = line + n;
	size_t len = strcspn(p, "\n");
	if (len >= sizeof(m->path))
		len = sizeof(m->path) - 1;
	memcpy(m->path, p, len);
	m->path[len] = '\0';
	m->rss_kb = m->anon_kb = 0;
	return true;
}

bool memtrim_droppable(const char *perms, const char *path, size_t rss_kb, size_t anon_kb)
{
	return path[0] == '/' && (streq(perms, "r--p") || streq(perms, "r-xp")) && rss_kb > 0 && anon_kb == 0;
}

static bool in_baseline(const struct mapping *m)
{
	for (size_t i = 0; i < n_baseline; i++)
		if (baseline[i].dev == m->dev && baseline[i].ino == m->ino)
			return true;
	return false;
}

/* Call fn on each mapping of /proc/self/smaps, with its Rss and Anonymous filled in. */
static void each_mapping(void (*fn)(const struct mapping *m, void *ctx), void *ctx)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return;
	char line[1024];
	struct mapping m = { 0 };
	bool have = false;
	while (fgets(line, sizeof(line), f)) {
		size_t kb;
		if (sscanf(line, "Rss: %zu kB", &kb) == 1)
			m.rss_kb = kb;
		else if (sscanf(line, "Anonymous: %zu kB", &kb) == 1)
			m.anon_kb = kb;
		else {
			struct mapping next;
			if (!parse_header(line, &next))
				continue;
			if (have)
				fn(&m, ctx);
			m = next;
			have = true;
		}
	}
	if (have)
		fn(&m, ctx);
	fclose(f);
}

static void add_baseline(const struct mapping *m, void *ctx)
{
	(void)ctx;
	if (m->path[0] != '/' || in_baseline(m) || n_baseline >= BASELINE_MAX)
		return;
	baseline[n_baseline].dev = m->dev;
	baseline[n_baseline].ino = m->ino;
	n_baseline++;
}

void memtrim_baseline(void)
{
	pthread_mutex_lock(&lock);
	n_baseline = 0;
	each_mapping(add_baseline, NULL);
	have_baseline = true;
	pthread_mutex_unlock(&lock);
}

void memtrim_set_waker(void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&lock);
	waker = fn;
	waker_ctx = ctx;
	pthread_mutex_unlock(&lock);
}

void memtrim_note(void)
{
	pthread_mutex_lock(&lock);
	bool first = noted_ms < 0;
	noted_ms = proc_now_ms();
	void (*fn)(void *) = first ? waker : NULL;
	void *ctx = waker_ctx;
	pthread_mutex_unlock(&lock);
	if (fn)
		fn(ctx);
}

int64_t memtrim_wait_ms(int64_t idle_ms)
{
	pthread_mutex_lock(&lock);
	int64_t w = noted_ms < 0 ? -1 : MAX(noted_ms + idle_ms - proc_now_ms(), (int64_t)0);
	pthread_mutex_unlock(&lock);
	return w;
}

bool memtrim_due(int64_t idle_ms)
{
	return memtrim_wait_ms(idle_ms) == 0;
}

static void drop(const struct mapping *m, void *ctx)
{
	size_t *dropped = ctx;
	if (!memtrim_droppable(m->perms, m->path, m->rss_kb, m->anon_kb) || in_baseline(m))
		return;
	/* read-only and never copied: the pages equal the file's, refaulted from the page cache */
	if (madvise((void *)m->start, m->end - m->start, MADV_DONTNEED) == 0)
		*dropped += m->rss_kb;
}

size_t memtrim_release(void)
{
	size_t dropped = 0;
	(void)malloc_trim(0);
	pthread_mutex_lock(&lock);
	noted_ms = -1;
	if (have_baseline)
		each_mapping(drop, &dropped);
	pthread_mutex_unlock(&lock);
	return dropped;
}
