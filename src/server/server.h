/*
 * server.h - `berth server`, the cluster control plane: the ECS-compatible
 * API (SigV4, awsJson1_1) and the agent protocol on one HTTPS listener, over
 * the store (store/store.h). See docs/cluster.md.
 */
#ifndef BERTH_SERVER_SERVER_H
#define BERTH_SERVER_SERVER_H

struct http_request;

/* `berth server [--root DIR] [--listen HOST:PORT] [--store SPEC] [--region R]`. */
int server_main(int argc, char **argv);

/*
 * `berth bench-scheduler`: with --store sqlite:PATH or etcd://HOST:PORT the
 * server's durable RunTask path (sched-bench.c), else the library's
 * compute-only bench (sched_bench_main).
 */
int server_bench_scheduler_main(int argc, char **argv);

/* The HTTP handler (userdata: struct server *). */
void server_http_handler(struct http_request *req, void *userdata);

#endif
