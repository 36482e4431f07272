/* SPDX-License-Identifier: Apache-2.0 */
/* The exit drain of the threads that use OpenSSL: see tlsexit.h. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/process.h"
#include "common/util.h"
#include "http/tlsexit.h"

#define TLS_EXIT_MAX_S 60

struct tls_thread {
	enum tls_thread_wake how;
	int fd[2];
	struct tls_thread *next;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t threads_left = PTHREAD_COND_INITIALIZER;
static struct tls_thread *threads; /* joined and not yet left, under threads_lock */
static bool exiting;               /* under threads_lock: the drain has begun */

static void tls_thread_wake(struct tls_thread *t)
{
	for (int i = 0; i < 2; i++) {
		if (t->fd[i] < 0)
			continue;
		if (t->how == TLS_WAKE_SHUTDOWN)
			shutdown(t->fd[i], SHUT_RDWR);
		else
			(void)!write(t->fd[i], "q", 1);
	}
}

static void tls_threads_drain(void)
{
	/* threads_left is statically initialised: the realtime clock */
	struct timespec deadline = proc_deadline(CLOCK_REALTIME, TLS_EXIT_MAX_S * 1000);
	pthread_mutex_lock(&threads_lock);
	exiting = true;
	for (struct tls_thread *t = threads; t; t = t->next)
		tls_thread_wake(t);
	int r = 0;
	while (threads && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&threads_left, &threads_lock, &deadline);
	bool stuck = threads != NULL;
	pthread_mutex_unlock(&threads_lock);
	if (stuck) {
		static const char msg[] = "berth: a TLS thread did not end; exiting without TLS cleanup\n";
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(125);
	}
}

static void tls_threads_register_drain(void)
{
	atexit(tls_threads_drain); /* OpenSSL has registered its own by now (it is initialised): ours runs
				      first */
}

struct tls_thread *http_tls_thread_join(enum tls_thread_wake how, int fd1, int fd2)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, tls_threads_register_drain);
	struct tls_thread *t = xmalloc(sizeof(*t));
	/* duplicates: the thread may close its own before it leaves (a failed dup: it ends on its own) */
	*t = (struct tls_thread){ how,
				  { fd1 >= 0 ? fcntl(fd1, F_DUPFD_CLOEXEC, 3) : -1,
				    fd2 >= 0 ? fcntl(fd2, F_DUPFD_CLOEXEC, 3) : -1 },
				  NULL };
	pthread_mutex_lock(&threads_lock);
	t->next = threads;
	threads = t;
	if (exiting) /* joined while the process exits: end at once */
		tls_thread_wake(t);
	pthread_mutex_unlock(&threads_lock);
	return t;
}

void http_tls_thread_leave(struct tls_thread *t, bool ran_openssl)
{
	if (ran_openssl)
		http_tls_thread_forget(); /* this thread's error queue and other state, now rather than at its
					     exit */
	pthread_mutex_lock(&threads_lock);
	for (struct tls_thread **pp = &threads; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	safe_close(t->fd[0]);
	safe_close(t->fd[1]);
	pthread_cond_broadcast(&threads_left);
	pthread_mutex_unlock(&threads_lock);
	free(t);
}

void http_tls_thread_forget(void)
{
	OPENSSL_thread_stop();
}
