/*
 * index.c - the scheduler's hash maps and string interner.
 *
 * Open addressing with linear probing and backward-shift deletion: lookups
 * touch one or two cache lines, deletions leave no tombstones, so a snapshot
 * under constant task churn keeps its probe lengths. Load factor <= 1/2.
 */
#include <string.h>

#include "sched/internal.h"

uint64_t sched_hash64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Fibonacci hashing: keys are small dense integers (symbols, slots), the high bits mix them well. */
static uint32_t hash_u32(uint32_t k)
{
	return (uint32_t)(((uint64_t)k * 0x9e3779b97f4a7c15ULL) >> 32);
}

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h ? h : 1;
}

/* ---- u32map ---- */

static void u32map_grow(struct u32map *m)
{
	struct u32map old = *m;
	m->cap = old.cap ? old.cap * 2 : 8;
	m->keys = xcalloc(m->cap, sizeof(*m->keys));
	m->vals = xcalloc(m->cap, sizeof(*m->vals));
	m->n = 0;
	for (uint32_t i = 0; i < old.cap; i++)
		if (old.keys[i])
			sched_u32map_set(m, old.keys[i] - 1, old.vals[i]);
	free(old.keys);
	free(old.vals);
}

static int64_t u32map_slot(const struct u32map *m, uint32_t key)
{
	if (!m->cap)
		return -1;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = hash_u32(key) & mask;; i = (i + 1) & mask) {
		if (!m->keys[i])
			return -1;
		if (m->keys[i] == key + 1)
			return i;
	}
}

uint32_t sched_u32map_get(const struct u32map *m, uint32_t key)
{
	int64_t i = u32map_slot(m, key);
	return i < 0 ? 0 : m->vals[i];
}

bool sched_u32map_has(const struct u32map *m, uint32_t key)
{
	return u32map_slot(m, key) >= 0;
}

void sched_u32map_set(struct u32map *m, uint32_t key, uint32_t val)
{
	assert(key != UINT32_MAX);
	if ((m->n + 1) * 2 > m->cap)
		u32map_grow(m);
	uint32_t mask = m->cap - 1;
	uint32_t i = hash_u32(key) & mask;
	while (m->keys[i] && m->keys[i] != key + 1)
		i = (i + 1) & mask;
	if (!m->keys[i]) {
		m->keys[i] = key + 1;
		m->n++;
	}
	m->vals[i] = val;
}

void sched_u32map_del(struct u32map *m, uint32_t key)
{
	int64_t found = u32map_slot(m, key);
	if (found < 0)
		return;
	uint32_t mask = m->cap - 1, i = (uint32_t)found;
	m->keys[i] = 0;
	m->n--;
	/* Backward shift: move later members of the cluster into the hole. */
	for (uint32_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		uint32_t home = hash_u32(m->keys[j] - 1) & mask;
		/* j's entry may move to i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		m->keys[j] = 0;
		i = j;
	}
}

uint32_t sched_u32map_add(struct u32map *m, uint32_t key, int32_t delta)
{
	int64_t i = u32map_slot(m, key);
	int64_t v = (i < 0 ? 0 : (int64_t)m->vals[i]) + delta;
	assert(v >= 0);
	if (v == 0) {
		if (i >= 0)
			sched_u32map_del(m, key);
		return 0;
	}
	if (i >= 0)
		m->vals[i] = (uint32_t)v;
	else
		sched_u32map_set(m, key, (uint32_t)v);
	return (uint32_t)v;
}

bool sched_u32map_next(const struct u32map *m, uint32_t *iter, uint32_t *ret_key, uint32_t *ret_val)
{
	for (; *iter < m->cap; (*iter)++) {
		if (!m->keys[*iter])
			continue;
		*ret_key = m->keys[*iter] - 1;
		*ret_val = m->vals[*iter];
		(*iter)++;
		return true;
	}
	return false;
}

void sched_u32map_done(struct u32map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct u32map){ 0 };
}

/* ---- strmap ---- */

static int64_t strmap_slot(const struct strmap *m, const char *key, uint32_t h)
{
	if (!m->cap)
		return -1;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = h & mask;; i = (i + 1) & mask) {
		if (!m->keys[i])
			return -1;
		if (m->hashes[i] == h && streq(m->keys[i], key))
			return i;
	}
}

/* Growing re-places entries by their stored hash: keys are distinct, no string is hashed or compared. */
static void strmap_grow(struct strmap *m, uint32_t cap)
{
	struct strmap old = *m;
	m->cap = cap;
	m->keys = xcalloc(m->cap, sizeof(*m->keys));
	m->hashes = xcalloc(m->cap, sizeof(*m->hashes));
	m->vals = xcalloc(m->cap, sizeof(*m->vals));
	uint32_t mask = m->cap - 1;
	for (uint32_t i = 0; i < old.cap; i++) {
		if (!old.keys[i])
			continue;
		uint32_t j = old.hashes[i] & mask;
		while (m->keys[j])
			j = (j + 1) & mask;
		m->keys[j] = old.keys[i];
		m->hashes[j] = old.hashes[i];
		m->vals[j] = old.vals[i];
	}
	free(old.keys);
	free(old.hashes);
	free(old.vals);
}

bool sched_strmap_get(const struct strmap *m, const char *key, uint32_t *ret_val)
{
	int64_t i = strmap_slot(m, key, hash_str(key));
	if (i < 0)
		return false;
	*ret_val = m->vals[i];
	return true;
}

void sched_strmap_set(struct strmap *m, const char *key, uint32_t val)
{
	if ((m->n + 1) * 2 > m->cap)
		strmap_grow(m, m->cap ? m->cap * 2 : 16);
	uint32_t h = hash_str(key), mask = m->cap - 1;
	uint32_t i = h & mask;
	while (m->keys[i] && !(m->hashes[i] == h && streq(m->keys[i], key)))
		i = (i + 1) & mask;
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key;
	m->hashes[i] = h;
	m->vals[i] = val;
}

void sched_strmap_del(struct strmap *m, const char *key)
{
	int64_t found = strmap_slot(m, key, hash_str(key));
	if (found < 0)
		return;
	uint32_t mask = m->cap - 1, i = (uint32_t)found;
	m->keys[i] = NULL;
	m->n--;
	for (uint32_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		uint32_t home = m->hashes[j] & mask;
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		m->keys[i] = m->keys[j];
		m->hashes[i] = m->hashes[j];
		m->vals[i] = m->vals[j];
		m->keys[j] = NULL;
		i = j;
	}
}

void sched_strmap_reserve(struct strmap *m, uint32_t n)
{
	uint32_t cap = m->cap ? m->cap : 16;
	while (cap < 2 * n + 2)
		cap *= 2;
	if (cap > m->cap)
		strmap_grow(m, cap);
}

void sched_strmap_done(struct strmap *m)
{
	free(m->keys);
	free(m->hashes);
	free(m->vals);
	*m = (struct strmap){ 0 };
}

/* ---- interner ---- */

uint32_t sched_intern_find(const struct interner *in, const char *s)
{
	uint32_t v;
	return s && sched_strmap_get(&in->map, s, &v) ? v : 0;
}

uint32_t sched_intern(struct interner *in, const char *s)
{
	if (!s)
		return 0;
	uint32_t v = sched_intern_find(in, s);
	if (v)
		return v;
	if (in->n == in->cap) {
		in->cap = in->cap ? in->cap * 2 : 64;
		in->strs = xrealloc(in->strs, in->cap * sizeof(*in->strs));
	}
	char *copy = xstrdup(s);
	in->strs[in->n++] = copy;
	sched_strmap_set(&in->map, copy, in->n);
	return in->n;
}

void sched_interner_done(struct interner *in)
{
	for (uint32_t i = 0; i < in->n; i++)
		free(in->strs[i]);
	free(in->strs);
	sched_strmap_done(&in->map);
	*in = (struct interner){ 0 };
}
