/*
 * serve.c - one host behind the Docker Engine API until a stop signal (see
 * serve.h). The shutdown order matters: the engine stops blocking first (so
 * followers and waits return), then the listeners stop accepting, then the
 * server drains, and only then the host closes; containers keep running
 * under their shims and the next start reattaches.
 */
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "api/api.h"
#include "api/serve.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/memtrim.h"

/* Uploads read as they arrive and spooled to disk (load, import, build contexts, archive
 * uploads): bounded by the disk, not memory. */
#define API_MAX_SPOOLED  (64ull << 30)
/* Idle this long after the last bulk request, the daemon gives its memory back (memtrim.h). */
#define API_TRIM_IDLE_MS 3000

bool api_body_stream(const char *method, const char *path, void *userdata)
{
	(void)userdata;
	if (streq(method, "POST"))
		return streq(path, "/images/create") || streq(path, "/images/load") || streq(path, "/build");
	return streq(method, "PUT") && startswith(path, "/containers/") && endswith(path, "/archive");
}

size_t api_body_limit(const char *method, const char *path, void *userdata)
{
	return api_body_stream(method, path, userdata) ? (size_t)API_MAX_SPOOLED : 0;
}

/* memtrim's waker: bulk work began, the main thread's wait gets a deadline. */
static void wake_main(void *ctx)
{
	(void)pthread_kill(*(pthread_t *)ctx, SIGUSR2);
}

static void warn_insecure(const char *role)
{
	fprintf(stderr,
		"\n*** WARNING: berth %s is listening on TCP without TLS client certificates.\n"
		"*** Anyone who can connect to it can run containers as root on this host.\n"
		"*** Use --tlsverify with --tlscacert, --tlscert and --tlskey instead.\n\n",
		role);
	log_fields(LOG_LEVEL_WARN, "insecure TCP listener: no client authentication", NULL);
}

int api_serve(const struct api_serve_opts *o, struct berth_error **err)
{
	int r;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2); /* wake_main */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The libraries mapped from here on (SQLite, libmicrohttpd and GnuTLS, and
	 * what bulk work loads: libarchive, OpenSSL) give their clean pages back
	 * when the daemon is idle after bulk work; the binary and libc stay.
	 */
	memtrim_baseline();
	bool insecure = false;
	if ((r = api_listen_check(&o->listen, &insecure, err)) < 0)
		return r;
	if (insecure)
		warn_insecure(o->role);
	struct host *h = NULL;
	if ((r = host_open(&o->host, &h, err)) < 0)
		return r;
	struct api api;
	api_init(&api, h, o->detach_keys);
	struct api_listeners *ls = NULL;
	int fd = -1;
	struct http_server *srv = NULL;
	struct http_limits lim = o->limits;
	if (!lim.conn_memory) /* docker load, build contexts: larger reads of streamed bodies */
		lim.conn_memory = HTTP_CONN_MEMORY_BULK;
	if ((r = api_listen_bind(&o->listen, &ls, &fd, err)) >= 0) {
		struct http_server_opts so = { .listen_fd = fd,
					       .handler = api_handle,
					       .run_inline = api_run_inline,
					       .userdata = &api,
					       .body_limit = api_body_limit,
					       .body_stream = api_body_stream,
					       .limits = &lim };
		if ((r = http_server_start(&so, &srv, err)) >= 0 && (r = api_listen_start(ls, srv, err)) < 0)
			srv = http_server_stop(srv);
	}
	if (r >= 0 && o->started && (r = o->started(o->userdata, h, err)) < 0)
		host_shutdown(h); /* requests in flight return; the listeners go below */
	if (r < 0) {
		api_listen_free(ls);
		http_server_stop(srv);
		host_close(h);
		return r;
	}
	if (o->pidfile) {
		_cleanup_free_ char *pid = xasprintf("%d\n", (int)getpid());
		fs_write_file_atomic(o->pidfile, pid, strlen(pid), 0644, NULL);
	}
	_cleanup_free_ char *where = api_listen_describe(&o->listen);
	_cleanup_free_ char *msg = xasprintf("%s listening", o->role);
	log_fields(LOG_LEVEL_INFO, msg, "hosts", where, "root", o->host.root, "exec-root", o->host.exec_root,
		   "default-runtime", engine_runtime_default(h->engine), NULL);
	pthread_t self = pthread_self();
	memtrim_set_waker(wake_main, &self);
	memtrim_note(); /* what the start mapped and freed (libmicrohttpd's GnuTLS init) goes too */
	for (;;) {
		/* idle after bulk work (load, pull, build, save): give its memory back (memtrim.h) */
		int64_t w = memtrim_wait_ms(API_TRIM_IDLE_MS);
		struct timespec ts = { .tv_sec = w / 1000, .tv_nsec = (w % 1000) * 1000000 };
		int sig = sigtimedwait(&mask, NULL, w >= 0 ? &ts : NULL);
		if (sig < 0 && errno == EAGAIN && memtrim_due(API_TRIM_IDLE_MS)) {
			size_t kb = memtrim_release();
			_cleanup_free_ char *s = xasprintf("%zu", kb);
			log_fields(LOG_LEVEL_DEBUG, "idle after bulk work: memory released", "library-kB", s,
				   NULL);
		}
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	memtrim_set_waker(NULL, NULL);
	log_fields(LOG_LEVEL_INFO, "shutting down; containers keep running", NULL);
	if (o->stopping)
		o->stopping(o->userdata);
	host_shutdown(h);
	api_listen_free(ls); /* stop accepting on the extra sockets first */
	http_server_stop(srv);
	host_close(h);
	if (o->pidfile)
		(void)unlink(o->pidfile);
	return 0;
}
