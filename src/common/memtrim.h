/*
 * memtrim.h - give memory back after bulk work (a long-running server's idle
 * resident set).
 *
 * A daemon that loaded an image maps libarchive, OpenSSL and their
 * dependencies from then on, and its malloc arenas keep the freed buffers:
 * its RSS stays ~7 MB above what it needs while idle. memtrim_release()
 * returns free heap pages (malloc_trim) and drops this process's page table
 * entries for the read-only, never-written file pages of libraries mapped
 * after memtrim_baseline() (text and read-only data of what bulk work loaded:
 * identical to the file, so the next use faults them back in from the page
 * cache). Mappings with private (copy-on-write) pages are never touched, nor
 * is anything mapped at the baseline (the steady working set stays resident).
 *
 * memtrim_note() marks bulk work; memtrim_due() says when the last of it is
 * idle_ms old and no release followed it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Remember the files mapped now (the process's steady working set). Call once, after start. */
void memtrim_baseline(void);
/* Bulk work happened (or is happening) now. Thread-safe. */
void memtrim_note(void);
/* fn(ctx) runs (in the noting thread) when a note arrives while none is pending: wake the waiter. */
void memtrim_set_waker(void (*fn)(void *ctx), void *ctx);
/* A release is due: bulk work was noted, the last note is at least idle_ms old. */
bool memtrim_due(int64_t idle_ms);
/* ms until memtrim_due(idle_ms) turns true; -1: nothing noted. */
int64_t memtrim_wait_ms(int64_t idle_ms);
/* Release; returns the kB of file pages dropped (heap trimming is not counted). */
size_t memtrim_release(void);

/*
 * For tests: whether a /proc/self/smaps mapping may be dropped: file-backed,
 * read-only ("r--p" or "r-xp"), no anonymous (copied) page, some resident.
 */
bool memtrim_droppable(const char *perms, const char *path, size_t rss_kb, size_t anon_kb);
