/*
 * logs-bench.c - `berth bench-logs ship` (bench/logs.sh drives it): the
 * agent's log path end to end without containers. Each FILE (a json-file
 * log as the engine writes it) is handed to the awslogs shipper (logship.h)
 * as a sealed container log of group GROUP (created if missing); the shipper sends it to the
 * server over mutual TLS with the node certificate (POST /agent/v1/logs, as
 * `berth agent` does) until every file is shipped. Prints one JSON line:
 * {"seconds", "files"}.
 *
 *   berth bench-logs ship HOST:PORT CA CERT KEY STATEDIR GROUP FILE...
 */
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/logship.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "http/http.h"
#include "logs/wire.h"

struct bench_conn {
	struct http_client *c[LOGSHIP_THREADS]; /* one per shipper thread */
};

static int bench_send(void *userdata, unsigned thread, const char *body, size_t len, json_t **ret,
		      struct berth_error **err)
{
	struct bench_conn *b = userdata;
	struct http_client_request rq = { .method = "POST",
					  .path = "/agent/v1/logs",
					  .content_type = LOGS_WIRE_TYPE,
					  .body = body,
					  .body_len = len,
					  .body_fd = -1,
					  .timeout_ms = 60000 };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	long status = 0;
	int r = http_client_do(b->c[thread], &rq, &status, &out, err);
	if (r < 0)
		return r;
	if (status != 200)
		return berth_error_msg(err, status == 404 ? ENOENT : EIO, "POST /agent/v1/logs: %ld %.*s",
				       status, (int)MIN(out.len, (size_t)300), out.buf);
	*ret = json_loadb(out.buf, out.len, 0, NULL);
	return *ret ? 0 : berth_error_msg(err, EPROTO, "POST /agent/v1/logs: not JSON");
}

/* States left in dir (one per source not yet fully shipped). */
static size_t pending(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += strlen(de->d_name) > 5 && streq(de->d_name + strlen(de->d_name) - 5, ".json");
	if (d)
		closedir(d);
	return n;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int agent_logs_bench_main(int argc, char **argv)
{
	if (argc < 9 || !streq(argv[1], "ship")) {
		fprintf(stderr,
			"usage: berth bench-logs ship HOST:PORT CA CERT KEY STATEDIR GROUP FILE...\n");
		return 2;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *url = xasprintf("tcp://%s", argv[2]);
	struct bench_conn b = { 0 };
	struct http_tls_files f = { .ca = argv[3], .cert = argv[4], .key = argv[5] };
	for (size_t i = 0; i < LOGSHIP_THREADS; i++)
		if (http_client_new(url, &b.c[i], &err) < 0 ||
		    http_client_set_tls(b.c[i], &f, true, &err) < 0) {
			fprintf(stderr, "bench-logs: %s\n", err->msg);
			return 1;
		}
	struct logship_config cfg = { .dir = argv[6], .send = bench_send, .userdata = &b };
	struct logship *l = NULL;
	if (agent_logship_open(&cfg, &l, &err) < 0) {
		fprintf(stderr, "bench-logs: %s\n", err->msg);
		for (size_t i = 0; i < LOGSHIP_THREADS; i++)
			http_client_free(b.c[i]);
		return 1;
	}
	double t0 = mono();
	int files = argc - 8;
	for (int i = 0; i < files; i++) {
		_cleanup_free_ char *name = xasprintf("c%d", i);
		_cleanup_json_ json_t *def =
		    json_pack("{s:s,s:{s:s,s:{s:s,s:s,s:s}}}", "name", name, "logConfiguration", "logDriver",
			      "awslogs", "options", "awslogs-group", argv[7], "awslogs-stream-prefix",
			      "bench", "awslogs-create-group", "true");
		if (agent_logship_seal(l, "0123456789abcdef0123456789abcdef", def, name, argv[8 + i], &err) <
		    0) {
			fprintf(stderr, "bench-logs: %s\n", err->msg);
			agent_logship_close(l);
			for (size_t k = 0; k < LOGSHIP_THREADS; k++)
				http_client_free(b.c[k]);
			return 1;
		}
	}
	while (pending(argv[6]))
		usleep(20000);
	double secs = mono() - t0;
	agent_logship_close(l);
	for (size_t i = 0; i < LOGSHIP_THREADS; i++)
		http_client_free(b.c[i]);
	printf("{\"seconds\": %.4f, \"files\": %d}\n", secs, files);
	return 0;
}
