/*
 * dns.c - the embedded resolver: one UDP socket per user network, bound to
 * the network's gateway address on its bridge (an address berth created;
 * IP_FREEBIND because the bridge gets it at the first attach). A query for a
 * container name, alias or short id on that network gets its A record; any
 * other name is forwarded to the daemon's own resolvers (not for --internal
 * networks). The socket set follows the network list through inotify.
 *
 * NEEDSWORK: forwarding is synchronous (one upstream at a time, 2 s timeout):
 * a slow upstream delays other queries. Records are re-read per query.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "net/internal.h"
#include "net/record.h"

#define DNS_MAX_PACKET   1232
#define DNS_FORWARD_MS   2000
#define DNS_MAX_UPSTREAM 3

struct dns_sock {
	int fd;
	char *network_id, *network_name;
	bool internal;
};

/* The extra record source (net_dns_set_records_file): re-read when the file's identity changes. */
struct dns_source {
	char *network, *path;
	struct dns_records *records;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
};

struct net_dns {
	struct net_ctx *ctx;
	struct dns_source src;
	uint16_t port;
	struct dns_sock *socks;
	size_t n;
	struct sockaddr_storage upstream[DNS_MAX_UPSTREAM];
	socklen_t upstream_len[DNS_MAX_UPSTREAM];
	size_t n_upstream;
};

static void socks_close(struct net_dns *d)
{
	for (size_t i = 0; i < d->n; i++) {
		safe_close(d->socks[i].fd);
		free(d->socks[i].network_id);
		free(d->socks[i].network_name);
	}
	free(d->socks);
	d->socks = NULL;
	d->n = 0;
}

static int sock_bind(const char *gw, uint16_t port, struct berth_error **err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, gw, &sa.sin_addr) != 1)
		return berth_error_msg(err, EINVAL, "invalid gateway '%s'", gw);
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) < 0)
		return berth_error_errno(err, "dns socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_errno(err, "bind dns socket to '%s:%u'", gw, port);
	return TAKE_FD(fd);
}

/* One socket per user network, from the current list. */
static int socks_sync(struct net_dns *d, struct berth_error **err)
{
	struct net_network **all = NULL;
	int r = net_network_list(d->ctx, &all, err);
	if (r < 0)
		return r;
	socks_close(d);
	for (size_t i = 0; all[i] && r >= 0; i++) {
		if (!net_network_is_user(all[i]))
			continue;
		int fd = sock_bind(all[i]->gateway, d->port, err);
		if (fd < 0) {
			r = berth_error_wrap(err, fd, "network '%s'", all[i]->name);
			break;
		}
		d->socks = xrealloc(d->socks, (d->n + 1) * sizeof(*d->socks));
		d->socks[d->n++] =
		    (struct dns_sock){ fd, xstrdup(all[i]->id), xstrdup(all[i]->name), all[i]->internal };
	}
	net_network_list_free(all);
	return r;
}

/* The daemon's resolvers (its netns: loopback ones work here). */
static void upstreams_load(struct net_dns *d)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, "/etc/resolv.conf", 64 << 10, &sb, NULL) < 0)
		return;
	char *save = NULL;
	for (char *l = strtok_r(sb.buf, "\n", &save); l && d->n_upstream < DNS_MAX_UPSTREAM;
	     l = strtok_r(NULL, "\n", &save)) {
		char ip[64];
		if (sscanf(l, "nameserver %63s", ip) != 1)
			continue;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&d->upstream[d->n_upstream];
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&d->upstream[d->n_upstream];
		if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(53);
			d->upstream_len[d->n_upstream++] = sizeof(*s4);
		} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(53);
			d->upstream_len[d->n_upstream++] = sizeof(*s6);
		}
	}
}

int net_dns_open(struct net_ctx *ctx, uint16_t port, struct net_dns **ret, struct berth_error **err)
{
	struct net_dns *d = xcalloc(1, sizeof(*d));
	d->ctx = ctx;
	d->port = port ? port : 53;
	int r = socks_sync(d, err);
	if (r < 0) {
		net_dns_free(d);
		return berth_error_wrap(err, r, "start embedded dns");
	}
	upstreams_load(d);
	*ret = d;
	return 0;
}

struct net_dns *net_dns_free(struct net_dns *d)
{
	if (!d)
		return NULL;
	socks_close(d);
	free(d->src.network);
	free(d->src.path);
	net_dns_records_free(d->src.records);
	free(d);
	return NULL;
}

int net_dns_set_records_file(struct net_dns *d, const char *network, const char *path,
			     struct berth_error **err)
{
	if (!network || !*network || !path || path[0] != '/')
		return berth_error_msg(err, EINVAL,
				       "resolver records: a network and an absolute path required");
	free(d->src.network);
	free(d->src.path);
	d->src.network = xstrdup(network);
	d->src.path = xstrdup(path);
	d->src.ino = 0;
	d->src.records = net_dns_records_free(d->src.records);
	return 0;
}

/* The current records of the source (re-read when the file changed), or NULL. */
static const struct dns_records *source_records(struct dns_source *src)
{
	struct stat st;
	if (!src->path)
		return NULL;
	if (stat(src->path, &st) < 0) {
		src->records = net_dns_records_free(src->records);
		src->ino = 0;
		return NULL;
	}
	if (src->ino == st.st_ino && src->dev == st.st_dev && src->size == st.st_size &&
	    src->mtime.tv_sec == st.st_mtim.tv_sec && src->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return src->records;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	struct dns_records *r = NULL;
	if (fs_read_file_at(AT_FDCWD, src->path, DNS_RECORDS_MAX_BYTES, &sb, NULL) < 0 ||
	    net_dns_records_parse(sb.buf, sb.len, &r, NULL) < 0)
		return src->records; /* keep the last good content */
	net_dns_records_free(src->records);
	src->records = r;
	src->dev = st.st_dev;
	src->ino = st.st_ino;
	src->size = st.st_size;
	src->mtime = st.st_mtim;
	return r;
}

static bool name_matches(const json_t *ep, const char *name)
{
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(ep, "aliases"), i, a)
		if (json_is_string(a) && strcasecmp(json_string_value(a), name) == 0)
			return true;
	return false;
}

/* Addresses of `name` on the network: IPv4 in a4 (host order), IPv6 in a6; none when unknown. */
struct dns_answer {
	uint32_t a4[DNS_MAX_ANSWERS];
	struct in6_addr a6[DNS_MAX_ANSWERS];
	size_t n4, n6;
};

static void lookup(struct net_dns *d, const char *network_id, const char *name, struct dns_answer *ans)
{
	json_auto_t *all = NULL;
	if (net_lock(d->ctx, NULL) < 0)
		return;
	int r = net_rec_load_all(d->ctx, &all, NULL);
	net_unlock(d->ctx);
	if (r < 0)
		return;
	size_t i, k;
	json_t *rec, *ep;
	json_array_foreach (all, i, rec)
		json_array_foreach (json_object_get(rec, "endpoints"), k, ep) {
			uint32_t a;
			int p;
			char gw[IP6_STR_MAX], mac[18], a6[IP6_STR_MAX];
			json_t *res = json_object_get(ep, "result");
			if (!res || !streq_ptr(net_rec_str(ep, "network_id"), network_id) ||
			    !streq_ptr(net_rec_str(ep, "state"), "ready") || !name_matches(ep, name))
				continue;
			if (ans->n4 < DNS_MAX_ANSWERS && net_cni_result_ipv4(res, &a, &p, gw, mac, NULL) == 0)
				ans->a4[ans->n4++] = a;
			if (ans->n6 < DNS_MAX_ANSWERS && net_cni_result_ipv6(res, a6, &p, gw) == 0 &&
			    inet_pton(AF_INET6, a6, &ans->a6[ans->n6]) == 1)
				ans->n6++;
		}
}

/* Relay the query to the first upstream that answers; reply length or 0. */
static size_t forward(struct net_dns *d, const uint8_t *q, size_t qlen, uint16_t id, uint8_t *out, size_t cap)
{
	for (size_t i = 0; i < d->n_upstream; i++) {
		_cleanup_close_ int fd = socket(d->upstream[i].ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&d->upstream[i], d->upstream_len[i]) < 0 ||
		    send(fd, q, qlen, 0) != (ssize_t)qlen)
			continue;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, DNS_FORWARD_MS) != 1)
			continue;
		ssize_t n = recv(fd, out, cap, 0);
		if (n >= DNS_HEADER_LEN && out[0] == (id >> 8) && out[1] == (id & 0xff))
			return (size_t)n;
	}
	return 0;
}

static void handle(struct net_dns *d, const struct dns_sock *s)
{
	uint8_t in[DNS_MAX_PACKET], out[DNS_MAX_PACKET];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(s->fd, in, sizeof(in), 0, (struct sockaddr *)&from, &fl);
	struct dns_query q;
	if (n <= 0 || net_dns_parse_query(in, (size_t)n, &q, NULL) < 0)
		return; /* not a query we can even answer with FORMERR safely: drop */
	struct dns_answer ans = { 0 };
	size_t len = 0;
	bool known = false;
	if (d->src.network &&
	    (streq(d->src.network, s->network_id) || streq(d->src.network, s->network_name)))
		ans.n4 = net_dns_records_lookup(source_records(&d->src), q.name, ans.a4, ARRAY_SIZE(ans.a4),
						&known);
	if (!known)
		lookup(d, s->network_id, q.name, &ans);
	/* a known name answers its records of the asked type, or none (NOERROR/NODATA, as dockerd) */
	if ((known || ans.n4 || ans.n6) && q.qclass == DNS_CLASS_IN) {
		if (q.qtype == DNS_TYPE_AAAA)
			len = net_dns_build_reply6(in, &q, ans.a6, ans.n6, out, sizeof(out));
		else
			len = net_dns_build_reply(in, &q, DNS_RCODE_OK, ans.a4,
						  q.qtype == DNS_TYPE_A ? ans.n4 : 0, out, sizeof(out));
		if (len)
			sendto(s->fd, out, len, 0, (struct sockaddr *)&from, fl);
		return;
	}
	if (!s->internal && d->n_upstream)
		len = forward(d, in, (size_t)n, q.id, out, sizeof(out));
	if (len == 0)
		len = net_dns_build_reply(in, &q, s->internal ? DNS_RCODE_NXDOMAIN : DNS_RCODE_SERVFAIL, NULL,
					  0, out, sizeof(out));
	if (len)
		sendto(s->fd, out, len, 0, (struct sockaddr *)&from, fl);
}

int net_dns_serve(struct net_dns *d, int stop_fd, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/networks", d->ctx->root_dir);
	_cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ino < 0 || inotify_add_watch(ino, dir, IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) < 0)
		return berth_error_errno(err, "watch '%s'", dir);
	for (;;) {
		_cleanup_free_ struct pollfd *p = xcalloc(d->n + 2, sizeof(*p));
		p[0] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = ino, .events = POLLIN };
		for (size_t i = 0; i < d->n; i++)
			p[i + 2] = (struct pollfd){ .fd = d->socks[i].fd, .events = POLLIN };
		if (poll(p, d->n + 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_errno(err, "poll");
		}
		if (p[0].revents)
			return 0;
		for (size_t i = 0; i < d->n; i++)
			if (p[i + 2].revents & POLLIN)
				handle(d, &d->socks[i]);
		if (p[1].revents & POLLIN) {
			char buf[4096];
			while (read(ino, buf, sizeof(buf)) > 0)
				;
			int r = socks_sync(d, err);
			if (r < 0)
				return r;
		}
	}
}
