/*
 * cli.c - `berth server`: flags, then open the store, load or create the
 * cluster identity, serve HTTPS (ECS API + agent protocol), run the leader
 * election, and wait for SIGTERM/SIGINT.
 */
#include <sys/file.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "http/http.h"
#include "server/internal.h"
#include "pki/pki.h"
#include "metrics/series.h"
#include "server/netalloc.h"
#include "server/retention.h"
#include "server/server.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: berth server [OPTIONS]\n\n"
	    "Run the cluster control plane: an Amazon ECS-compatible API (SigV4, awsJson1_1) and the\n"
	    "agent protocol, over HTTPS on one listener.\n\n"
	    "Options:\n"
	    "      --root DIR             state and PKI (default " SERVER_DEFAULT_ROOT ")\n"
	    "      --listen HOST:PORT     HTTPS listen address (default " SERVER_DEFAULT_LISTEN
	    "; port 0 picks one)\n"
	    "      --store SPEC           'sqlite' (ROOT/store.db, default) or\n"
	    "                             'etcd://HOST:PORT[,HOST:PORT...]' (several servers share it)\n"
	    "      --region R             region in ARNs and SigV4 scopes (default " SERVER_DEFAULT_REGION
	    ")\n"
	    "      --lost-node-timeout N  seconds without a heartbeat before a node's tasks are STOPPED\n"
	    "                             (default 60)\n"
	    "      --agent-lease-ttl N    seconds one heartbeat keeps a node connected (default 15)\n"
	    "      --task-retention N     seconds a STOPPED task (and an INACTIVE service) stays visible\n"
	    "                             before the leader deletes it (default 3600, as ECS)\n"
	    "      --cluster-cidr CIDR    IPv4 range of the awsvpc task subnets; each node gets one\n"
	    "                             subnet of it, reachable from every node over the VXLAN\n"
	    "                             overlay (default " OVERLAY_DEFAULT_CIDR ")\n"
	    "      --node-subnet-size N   prefix length of one node's subnet (default 24)\n"
	    "      --vxlan-id VNI         VXLAN network identifier of the overlay (default 1)\n"
	    "      --registry HOST:PORT   also run the cluster's container registry there (HTTPS with a\n"
	    "                             certificate from the cluster CA) and serve Amazon ECR's API\n"
	    "                             (aws ecr ...; docker login with get-login-password). Port 0\n"
	    "                             picks one. Images live in ROOT/registry. With several\n"
	    "                             servers, run it on one: every server answers ECR calls\n"
	    "                             (docs/ecr.md)\n"
	    "      --vuln-feed DIR        OSV JSON files image scans match against (reloaded when\n"
	    "                             they change)\n"
	    "      --registry-clock FILE  (tests) the registry's 'now' for push times and lifecycle\n"
	    "                             rules is the epoch seconds in FILE while it holds a number\n"
	    "      --logs-sweep-interval N  seconds between log retention sweeps (default 600)\n"
	    "      --logs-day-seconds N   length of a retention day in seconds (default 86400; a\n"
	    "                             test hook: PutRetentionPolicy 1 expires after N s)\n"
	    "      --advertise-url URL    how the other server replicas reach this one (default:\n"
	    "                             https://LISTEN-ADDRESS:PORT); they fetch log events held\n"
	    "                             here through it\n"
	    "      --logs-fsync           acknowledge log events only once on disk (fdatasync per\n"
	    "                             batch): a machine crash loses nothing acknowledged\n"
	    "      --metrics-period N     seconds of one metrics datapoint: service and cluster\n"
	    "                             utilization history, autoscaling alarms (default 60; tests\n"
	    "                             shorten it). GET /metrics takes 'Authorization: Bearer' with\n"
	    "                             ROOT/metrics-token (docs/metrics.md)\n"
	    "      --log-level LEVEL      error, warn, info, debug\n" HTTP_LIMITS_USAGE
	    "  -h, --help                 show this help\n\n"
	    "First start creates ROOT/pki/ca.pem, ROOT/credentials (AWS credentials file), ROOT/join-token\n"
	    "and an account id; later starts reuse them. Try:\n"
	    "  AWS_SHARED_CREDENTIALS_FILE=ROOT/credentials aws ecs list-clusters --region us-east-1 \\\n"
	    "      --endpoint-url https://127.0.0.1:7443 --ca-bundle ROOT/pki/ca.pem\n");
}

/* --region R: 1 to 64 characters */
static int opt_region(void *dest, const char *arg)
{
	if (!*arg || strlen(arg) > 64) {
		fprintf(stderr, "berth server: invalid region '%s'\n", arg);
		return -1;
	}
	free(*(char **)dest);
	*(char **)dest = xstrdup(arg);
	return 0;
}

static int opt_cidr(void *dest, const char *arg)
{
	struct netalloc_cidr cidr;
	if (server_netalloc_parse(arg, true, &cidr) < 0 || cidr.bits > 30) {
		fprintf(stderr,
			"berth server: invalid --cluster-cidr '%s': expected an IPv4 network such as "
			"10.42.0.0/16\n",
			arg);
		return -1;
	}
	free(*(char **)dest);
	*(char **)dest = xstrdup(arg);
	return 0;
}

/* A number in [o->min, o->max] into the int o->dest; o->key names the unit the error shows. */
static int opt_number(const struct cli_opt *o, const char *arg)
{
	uint64_t n;
	if (util_parse_uint64(arg, &n) < 0 || n < (uint64_t)o->min || n > (uint64_t)o->max) {
		fprintf(stderr, "berth server: invalid --%s '%s'", o->name, arg);
		if (o->key)
			fprintf(stderr, " (%ld to %ld %s)", o->min, o->max, o->key);
		fputc('\n', stderr);
		return -1;
	}
	*(int *)o->dest = (int)n;
	return 0;
}

static int parse_args(struct server *s, int argc, char **argv)
{
#define NUMBER(name, field, lo, hi, unit)                                                        \
	{                                                                                        \
		(name), 0, CLI_OPT_ENTRY, &s->field, (unit), (lo), (hi), .entry_fn = opt_number, \
									 .has_arg = true         \
	}
#define CALL(name, dest, f)                                                 \
	{                                                                   \
		(name), 0, CLI_OPT_CALL, (dest), .fn = (f), .has_arg = true \
	}
	const struct cli_opt t[] = {
		{ "root", 0, CLI_OPT_STRDUP, &s->root },
		{ "listen", 0, CLI_OPT_STRDUP, &s->listen },
		{ "store", 0, CLI_OPT_STRDUP, &s->store_spec },
		CALL("region", &s->region, opt_region),
		NUMBER("lost-node-timeout", lost_node_timeout, 1, 86400, NULL),
		NUMBER("agent-lease-ttl", agent_lease_ttl, 1, 86400, NULL),
		NUMBER("task-retention", task_retention, 1, 30 * 86400, "seconds"),
		CALL("log-level", "berth server", opttab_log_level),
		CALL("cluster-cidr", &s->cluster_cidr, opt_cidr),
		NUMBER("node-subnet-size", node_subnet_bits, 1, 30, NULL),
		NUMBER("vxlan-id", vxlan_id, 1, 16777215, NULL),
		{ "registry", 0, CLI_OPT_STRDUP, &s->registry_addr },
		{ "vuln-feed", 0, CLI_OPT_STRDUP, &s->vuln_feed },
		{ "registry-clock", 0, CLI_OPT_STRDUP, &s->registry_clock },
		NUMBER("logs-sweep-interval", logs_sweep_interval, 1, 86400, "seconds"),
		NUMBER("logs-day-seconds", logs_day_seconds, 1, 86400, "seconds"),
		{ "logs-fsync", 0, CLI_OPT_FLAG, &s->logs_fsync },
		{ "advertise-url", 0, CLI_OPT_STRDUP, &s->advertise },
		NUMBER("metrics-period", metrics_period, 1, 3600, "seconds"),
		HTTP_LIMITS_OPTS(&s->http_limits, "berth server"),
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
#undef NUMBER
#undef CALL
	int r = opttab_scan_usage(t, argc, argv, NULL, usage);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 1 : 2;
	if (optind < argc) {
		fprintf(stderr, "berth server: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	struct netalloc_cidr pool;
	if (server_netalloc_parse(s->cluster_cidr, true, &pool) < 0 || s->node_subnet_bits < pool.bits) {
		fprintf(stderr, "berth server: --node-subnet-size %d is larger than the cluster CIDR '%s'\n",
			s->node_subnet_bits, s->cluster_cidr);
		return 2;
	}
	return 0;
}

static void server_done(struct server *s)
{
	if (s->store)
		store_on_write(s->store, NULL, NULL);
	server_agent_hb_writer_stop(s); /* the listener is stopped: nothing queues more */
	s->sched = server_sched_cache_free(s->sched);
	s->records = server_record_cache_free(s->records);
	s->hbc = server_hb_cache_free(s->hbc);
	store_free(s->store);
	free(s->root);
	free(s->listen);
	free(s->advertise);
	free(s->replica_id);
	free(s->region);
	free(s->store_spec);
	free(s->cluster_cidr);
	free(s->registry_addr);
	free(s->vuln_feed);
	free(s->registry_clock);
	free(s->id);
	free(s->account);
	free(s->access_key);
	free(s->secret);
	free(s->join_secret);
	free(s->ca_pem);
	free(s->ca_key_pem);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->stop_cond);
	pthread_mutex_destroy(&s->logs_lock);
	pthread_cond_destroy(&s->logs_cond);
}

static int ensure_default_cluster(struct server *s, struct berth_error **err)
{
	json_t *j = NULL;
	int r = server_record_get(s, "/berth/clusters/default", &j, NULL, err);
	json_decref(j);
	if (r != -ENOENT)
		return r;
	_cleanup_free_ char *arn = server_arn_make(s, "cluster", "default");
	j = json_pack("{s:s,s:s,s:s,s:f,s:[{s:s,s:s}]}", "clusterArn", arn, "clusterName", "default",
		      "status", "ACTIVE", "createdAt", server_record_now(), "settings", "name",
		      "containerInsights", "value", "disabled");
	bool ok;
	r = server_record_cas(s, "/berth/clusters/default", j, 0, &ok, err);
	json_decref(j);
	return r;
}

/* The bound port of fd (for --listen HOST:0). */
static int bound_port(int fd)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	if (a.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&a)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

static int serve(struct server *s, struct berth_error **err)
{
	int r = fs_mkdir_p(s->root, 0700, err);
	if (r < 0)
		return berth_error_wrap(err, r, "create root '%s'", s->root);
	/* a root made by someone else (an installer, a test) is tightened as dockerd tightens its own */
	if (chmod(s->root, 0700) < 0)
		return berth_error_errno(err, "make root '%s' private", s->root);
	/* one server per root (replicas share etcd, never a root); released when the process ends */
	_cleanup_free_ char *lock = xasprintf("%s/server.lock", s->root);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return berth_error_errno(err, "open '%s'", lock);
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		close(lfd);
		return berth_error_msg(err, EBUSY, "root '%s' is in use by another berth server", s->root);
	}
	r = store_connect(s->store_spec, s->root, &s->store, err);
	if (r < 0)
		return r;
	if (streq(s->store->ops->name, "sqlite")) {
		/* records are cached only where every write goes through this handle (not etcd's replicas);
		 * the only writer keeps heartbeats' keepalives in memory (hbcache.h) */
		s->records = server_record_cache_new();
		s->hbc = server_hb_cache_new();
		if ((r = server_agent_hb_writer_start(s, err)) < 0)
			return r;
	}
	store_on_write(s->store, server_note_write, s);
	if ((r = server_identity_init(s, err)) < 0 || (r = ensure_default_cluster(s, err)) < 0)
		return r;
	if ((r = server_logs_start(s, err)) < 0)
		return r;
	if ((r = server_metrics_start(s, err)) < 0) {
		server_logs_stop(s);
		server_metrics_stop(s);
		return r;
	}
	int fd = http_listen_tcp(s->listen, err);
	if (fd < 0) {
		server_logs_stop(s);
		server_metrics_stop(s);
		return fd;
	}
	int port = bound_port(fd);
	struct http_server *hs = NULL;
	struct http_server_opts o = { .listen_fd = -1,
				      .max_body = SERVER_MAX_BODY,
				      .handler = server_http_handler,
				      .quick = server_agent_quick,
				      .userdata = s,
				      .limits = &s->http_limits };
	if ((r = http_server_start(&o, &hs, err)) < 0) {
		close(fd);
		server_logs_stop(s);
		server_metrics_stop(s);
		return r;
	}
	_cleanup_free_ char *ca = xasprintf("%s/pki/ca.pem", s->root);
	_cleanup_free_ char *cert = xasprintf("%s/pki/server.pem", s->root);
	_cleanup_free_ char *key = xasprintf("%s/pki/server-key.pem", s->root);
	struct http_tls_files tls = { ca, cert, key };
	struct http_tcp_listener *l = NULL;
	if ((r = http_tcp_listener_start_peer(hs, fd, &tls, &l, err)) < 0) {
		http_server_stop(hs);
		server_logs_stop(s);
		server_metrics_stop(s);
		return r;
	}
	_cleanup_free_ char *host = xstrndup(s->listen, strrchr(s->listen, ':') - s->listen);
	_cleanup_free_ char *endpoint = xasprintf("https://%s:%d", *host ? host : "127.0.0.1", port);
	if ((r = server_ecr_start(s, err)) < 0 || (r = server_longpoll_start(s, err)) < 0 ||
	    (r = server_replicas_start(s, endpoint, err)) < 0 ||
	    (r = server_metrics_share_start(s, err)) < 0 || (r = server_leader_start(s, err)) < 0) {
		server_metrics_share_stop(s);
		server_replicas_stop(s);
		server_longpoll_stop(s);
		server_ecr_stop(s);
		http_tcp_listener_stop(l);
		http_server_stop(hs);
		server_logs_stop(s);
		server_metrics_stop(s);
		return r;
	}
	printf("berth server: endpoint %s (account %s, region %s, store %s)\n"
	       "try:\n  AWS_SHARED_CREDENTIALS_FILE=%s/credentials aws ecs list-clusters --region %s "
	       "--endpoint-url %s --ca-bundle %s\n"
	       "join a host:\n  berth agent --server %s --token $(cat %s/join-token)\n",
	       endpoint, s->account, s->region, s->store->ops->name, s->root, s->region, endpoint, ca,
	       endpoint, s->root);
	if (server_ecr_endpoint(s))
		printf(
		    "registry %s (aws ecr get-login-password | docker login --username AWS --password-stdin "
		    "%s)\n",
		    server_ecr_endpoint(s), server_ecr_endpoint(s));
	fflush(stdout);
	log_fields(LOG_LEVEL_INFO, "server listening", "endpoint", endpoint, "root", s->root, "store",
		   s->store_spec, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int sig;
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	log_fields(LOG_LEVEL_INFO, "server shutting down", NULL);
	server_leader_stop(s);
	server_metrics_share_stop(s);
	server_replicas_stop(s);
	server_longpoll_stop(s);
	http_tcp_listener_stop(l);
	http_server_stop(hs);
	server_ecr_stop(s);
	server_logs_stop(s);
	server_metrics_stop(s);
	return 0;
}

int server_main(int argc, char **argv)
{
	struct server s = { .lost_node_timeout = 60,
			    .agent_lease_ttl = 15,
			    .task_retention = RETENTION_DEFAULT_SEC,
			    .leader_ttl = 3,
			    .logs_day_seconds = 86400,
			    .logs_sweep_interval = 600,
			    .metrics_period = METRICS_DEFAULT_PERIOD };
	pthread_mutex_init(&s.lock, NULL);
	pthread_mutex_init(&s.logs_lock, NULL);
	pthread_mutex_init(&s.replicas_lock, NULL);
	proc_cond_init_monotonic(&s.replicas_cond);
	proc_cond_init_monotonic(&s.logs_cond);
	proc_cond_init_monotonic(&s.stop_cond);
	const char *env_root = getenv("BERTH_SERVER_ROOT");
	s.root = xstrdup(env_root && *env_root ? env_root : SERVER_DEFAULT_ROOT);
	s.listen = xstrdup(SERVER_DEFAULT_LISTEN);
	s.region = xstrdup(SERVER_DEFAULT_REGION);
	s.store_spec = xstrdup("sqlite");
	s.cluster_cidr = xstrdup(OVERLAY_DEFAULT_CIDR);
	s.node_subnet_bits = OVERLAY_DEFAULT_SUBNET_BITS;
	s.vxlan_id = OVERLAY_DEFAULT_VXLAN_ID;
	s.id = pki_random_hex(8);
	s.sched = server_sched_cache_new();
	int r = parse_args(&s, argc, argv);
	if (r != 0) {
		server_done(&s);
		return r == 1 ? 0 : 2;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: they inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	_cleanup_error_ struct berth_error *err = NULL;
	r = serve(&s, &err);
	if (r < 0)
		berth_error_print(err, "berth server");
	server_done(&s);
	return r < 0 ? 1 : 0;
}
