/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Threads that use OpenSSL, ended before the process exits.
 *
 * OPENSSL_cleanup (OpenSSL's atexit handler) frees every thread's OpenSSL
 * state without a lock: a thread that still runs SSL_* calls, or ends
 * (its thread-local destructor), while it does, frees memory twice or
 * leaks it. So every such thread of ours joins this list before it starts;
 * an atexit handler registered after OpenSSL's own (so it runs first) wakes
 * each one (shuts its sockets down, or writes a byte to its pipe) and waits
 * until every one has left. A thread that has not left after a minute is a
 * bug: the process then ends without OpenSSL's cleanup (_exit) rather than
 * corrupt its heap.
 */
#pragma once

#include <stdbool.h>

struct tls_thread;

/* How the exit wakes the thread: shut these sockets down, or write one byte to this pipe. */
enum tls_thread_wake { TLS_WAKE_SHUTDOWN, TLS_WAKE_PIPE };

/* Called by the creator before pthread_create; fds are duplicated (the caller keeps its own). */
struct tls_thread *http_tls_thread_join(enum tls_thread_wake how, int fd1, int fd2);
/* Called by the thread as its last OpenSSL-using act: frees its OpenSSL state (OPENSSL_thread_stop)
 * when ran_openssl (false: the creator undoing a join whose thread never started), then leaves. */
void http_tls_thread_leave(struct tls_thread *t, bool ran_openssl);

/* For threads that may have used OpenSSL (through libcurl) and whose end is counted before the
 * process may exit (the http server's workers): free this thread's OpenSSL state now, before the
 * count drops, rather than at its exit, which could overlap OPENSSL_cleanup. Cheap when unused. */
void http_tls_thread_forget(void);
