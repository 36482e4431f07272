/*
 * firewall.c - isolation between berth networks, docker's two-stage scheme:
 *
 *   FORWARD -> BERTH-ISOLATION-1-<tag>:
 *       internal net X: -i X ! -o X DROP, -o X ! -i X DROP
 *       ctstate DNAT RETURN          (published ports stay reachable from other networks)
 *       every net X:    -i X ! -o X -> BERTH-ISOLATION-2-<tag>
 *   BERTH-ISOLATION-2-<tag>:  every net X: -o X DROP
 *
 *   nat POSTROUTING -> BERTH-POSTROUTING-<tag>:
 *                          every non-internal net X: -s subnet ! -o X MASQUERADE
 *                          -m mark --mark 0x2000/0x2000 MASQUERADE
 *       BERTH-HOSTPORT-SETMARK: MARK --set-xmark 0x2000/0x2000
 *
 * <tag> names the daemon (net_fw_chains_init: a short hash of its root), so that
 * several daemons sharing a network namespace each rebuild only their own
 * chains: with one shared set, every rebuild dropped the other daemons' rules
 * (their containers lost outbound NAT until they rebuilt). The chains of
 * earlier versions (no tag) are removed by net_fw_migrate_legacy().
 *
 * BERTH-HOSTPORT-SETMARK is portmap's externalSetMarkChain: portmap jumps to it
 * for hairpin and localhost connections to a published port, which then get
 * masqueraded. Owning this chain (and the masquerade rule) saves portmap ~10
 * iptables execs per ADD (its own CNI-HOSTPORT-SETMARK/-MASQ chains are
 * re-checked on every call). Same mark bit as portmap's default. It stays
 * shared (the CNI configs of running containers name it): its one rule is the
 * same in every daemon, and each rebuild re-creates it in the same commit.
 *
 * The chains are rebuilt as a whole by one iptables-restore --noflush (declaring
 * a chain in the input flushes it), so the rules always equal the network list.
 */
#include <assert.h>
#include <sys/wait.h>

#include "common/process.h"
#include "net/internal.h"

/* The chain names of versions before per-daemon chains, and the prefixes of today's. */
#define FW_CHAIN1 "BERTH-ISOLATION-1"
#define FW_CHAIN2 "BERTH-ISOLATION-2"
#define FW_NAT    "BERTH-POSTROUTING"
#define FW_MARK   "0x2000/0x2000"

void net_fw_chains_init(struct fw_chains *c, const char *tag)
{
	/* FW_CHAIN_MAX holds the longest prefix, '-' and FW_TAG_LEN characters */
	snprintf(c->iso1, sizeof(c->iso1), FW_CHAIN1 "-%.*s", FW_TAG_LEN, tag);
	snprintf(c->iso2, sizeof(c->iso2), FW_CHAIN2 "-%.*s", FW_TAG_LEN, tag);
	snprintf(c->nat, sizeof(c->nat), FW_NAT "-%.*s", FW_TAG_LEN, tag);
}

void net_fw_render(struct strbuf *sb, const struct fw_chains *c, const struct fw_net *nets, size_t n)
{
	net_fw_render_family(sb, c, nets, n, false);
}

void net_fw_render_family(struct strbuf *sb, const struct fw_chains *c, const struct fw_net *nets, size_t n,
			  bool v6)
{
	strbuf_addf(sb, "*filter\n:%s - [0:0]\n:%s - [0:0]\n", c->iso1, c->iso2);
	for (size_t i = 0; i < n; i++)
		if (nets[i].internal)
			strbuf_addf(sb,
				    "-A %s -i %s ! -o %s -j DROP\n"
				    "-A %s -o %s ! -i %s -j DROP\n",
				    c->iso1, nets[i].bridge, nets[i].bridge, c->iso1, nets[i].bridge,
				    nets[i].bridge);
	strbuf_addf(sb, "-A %s -m conntrack --ctstate DNAT -j RETURN\n", c->iso1);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(sb, "-A %s -i %s ! -o %s -j %s\n", c->iso1, nets[i].bridge, nets[i].bridge,
			    c->iso2);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(sb, "-A %s -o %s -j DROP\n", c->iso2, nets[i].bridge);
	strbuf_addf(sb, "COMMIT\n*nat\n:%s - [0:0]\n:" NET_FW_SETMARK_CHAIN " - [0:0]\n", c->nat);
	strbuf_addstr(sb, "-A " NET_FW_SETMARK_CHAIN " -j MARK --set-xmark " FW_MARK "\n");
	strbuf_addf(sb, "-A %s -m mark --mark " FW_MARK " -j MASQUERADE\n", c->nat);
	for (size_t i = 0; i < n; i++) {
		const char *subnet = v6 ? nets[i].subnet6 : nets[i].subnet;
		if (!nets[i].internal && subnet)
			strbuf_addf(sb, "-A %s -s %s ! -o %s -j MASQUERADE\n", c->nat, subnet,
				    nets[i].bridge);
	}
	strbuf_addstr(sb, "COMMIT\n");
}

static int run_tool(const char *const *argv, const char *input, int timeout_ms, int *ret_code,
		    struct berth_error **err)
{
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_strbuf_ struct strbuf errout = STRBUF_INIT;
	int status = 0;
	int r =
	    proc_run(&o, input, input ? strlen(input) : 0, NULL, &errout, 64 << 10, timeout_ms, &status, err);
	if (r < 0)
		return berth_error_wrap(err, r, "run '%s'", argv[0]);
	*ret_code = proc_exit_code(status);
	if (*ret_code != 0 && err && !*err) {
		strbuf_trim_trailing(&errout);
		berth_error_msg(err, EIO, "'%s' failed: %s", argv[0], errout.buf);
	}
	return 0;
}

/* Insert "-t table -I from 1 -j to" unless present (tool: iptables or ip6tables). */
static int fw_ensure_jump(const char *tool, const char *table, const char *from, const char *to,
			  int timeout_ms, struct berth_error **err)
{
	int code = 0;
	struct berth_error *e = NULL;
	const char *check[] = { tool, "-w", "5", "-t", table, "-C", from, "-j", to, NULL };
	int r = run_tool(check, NULL, timeout_ms, &code, &e);
	berth_error_free(e);
	if (r < 0)
		return berth_error_wrap(err, r, "check %s jump", from);
	if (code == 0)
		return 0;
	e = NULL;
	const char *insert[] = { tool, "-w", "5", "-t", table, "-I", from, "1", "-j", to, NULL };
	r = run_tool(insert, NULL, timeout_ms, &code, &e);
	if (r < 0 || code != 0) {
		if (err)
			*err = e;
		else
			berth_error_free(e);
		return berth_error_wrap(err, r < 0 ? r : -EIO, "insert %s jump to '%s'", from, to);
	}
	berth_error_free(e);
	return 0;
}

static int fw_sync_family(const struct fw_chains *c, const struct fw_net *nets, size_t n, bool v6,
			  int timeout_ms, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf in = STRBUF_INIT;
	net_fw_render_family(&in, c, nets, n, v6);
	int code = 0;
	const char *tool = v6 ? "ip6tables" : "iptables";
	const char *restore[] = { v6 ? "ip6tables-restore" : "iptables-restore", "-w", "5", "--noflush",
				  NULL };
	struct berth_error *e = NULL;
	int r = run_tool(restore, in.buf, timeout_ms, &code, &e);
	if (r < 0 || code != 0) {
		if (err)
			*err = e;
		else
			berth_error_free(e);
		return berth_error_wrap(err, r < 0 ? r : -EIO, "rebuild %s isolation chains",
					v6 ? "IPv6" : "IPv4");
	}
	berth_error_free(e);
	if ((r = fw_ensure_jump(tool, "filter", "FORWARD", c->iso1, timeout_ms, err)) < 0)
		return r;
	return fw_ensure_jump(tool, "nat", "POSTROUTING", c->nat, timeout_ms, err);
}

int net_fw_sync(const struct fw_chains *c, const struct fw_net *nets, size_t n, bool v6, int timeout_ms,
		struct berth_error **err)
{
	int r = fw_sync_family(c, nets, n, false, timeout_ms, err);
	return r < 0 || !v6 ? r : fw_sync_family(c, nets, n, true, timeout_ms, err);
}

/* Run "tool -w 5 -t table <args...>"; returns its exit code (or -errno when it did not run). */
static int fw_iptables(const char *tool, const char *table, const char *const *args, int timeout_ms)
{
	const char *argv[12] = { tool, "-w", "5", "-t", table };
	size_t k = 5;
	for (size_t i = 0; args[i] && k < ARRAY_SIZE(argv) - 1; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	int code = 0;
	struct berth_error *e = NULL;
	int r = run_tool(argv, NULL, timeout_ms, &code, &e);
	berth_error_free(e);
	return r < 0 ? r : code;
}

struct fw_chain_ref {
	const char *table, *from, *chain; /* from: the built-in chain jumping to it, or NULL */
};

/* Remove chains and the jumps to them with tool (iptables or ip6tables); absent ones are skipped. */
static int fw_remove_chains(const char *tool, const struct fw_chain_ref *v, size_t n, int timeout_ms,
			    struct berth_error **err)
{
	bool present[8];
	assert(n <= ARRAY_SIZE(present));
	for (size_t i = 0; i < n; i++) {
		const char *list[] = { "-S", v[i].chain, NULL };
		int r = fw_iptables(tool, v[i].table, list, timeout_ms);
		if (r < 0)
			return berth_error_set(err, -r, "run '%s'", tool);
		present[i] = r == 0;
	}
	/* jumps first, then every rule (ISOLATION-1 jumps to -2), then the chains */
	for (size_t i = 0; i < n; i++) {
		const char *del[] = { "-D", v[i].from, "-j", v[i].chain, NULL };
		while (present[i] && v[i].from && fw_iptables(tool, v[i].table, del, timeout_ms) == 0)
			;
	}
	for (size_t i = 0; i < n; i++) {
		const char *flush[] = { "-F", v[i].chain, NULL };
		if (present[i])
			(void)fw_iptables(tool, v[i].table, flush, timeout_ms);
	}
	for (size_t i = 0; i < n; i++) {
		const char *x[] = { "-X", v[i].chain, NULL };
		if (present[i] && fw_iptables(tool, v[i].table, x, timeout_ms) != 0)
			return berth_error_msg(err, EIO, "remove chain '%s' (%s)", v[i].chain, tool);
	}
	return 0;
}

int net_fw_migrate_legacy(int timeout_ms, struct berth_error **err)
{
	static const struct fw_chain_ref legacy[] = { { "filter", "FORWARD", FW_CHAIN1 },
						      { "filter", NULL, FW_CHAIN2 },
						      { "nat", "POSTROUTING", FW_NAT } };
	int r = fw_remove_chains("iptables", legacy, ARRAY_SIZE(legacy), timeout_ms, err);
	return r < 0 ? berth_error_wrap(err, r, "remove the shared chains of an earlier berth") : 0;
}

int net_fw_remove(const struct fw_chains *c, bool v6, int timeout_ms, struct berth_error **err)
{
	const struct fw_chain_ref own[] = { { "filter", "FORWARD", c->iso1 },
					    { "filter", NULL, c->iso2 },
					    { "nat", "POSTROUTING", c->nat } };
	int r = fw_remove_chains("iptables", own, ARRAY_SIZE(own), timeout_ms, err);
	if (r >= 0 && v6)
		r = fw_remove_chains("ip6tables", own, ARRAY_SIZE(own), timeout_ms, err);
	return r;
}
