/*
 * firewall.c - isolation between berth networks, docker's two-stage scheme:
 *
 *   FORWARD -> BERTH-ISOLATION-1:
 *       internal net X: -i X ! -o X DROP, -o X ! -i X DROP
 *       ctstate DNAT RETURN          (published ports stay reachable from other networks)
 *       every net X:    -i X ! -o X -> BERTH-ISOLATION-2
 *   BERTH-ISOLATION-2:  every net X: -o X DROP
 *
 *   nat BERTH-POSTROUTING: every non-internal net X: -s subnet ! -o X MASQUERADE
 *                          -m mark --mark 0x2000/0x2000 MASQUERADE
 *       BERTH-HOSTPORT-SETMARK: MARK --set-xmark 0x2000/0x2000
 *
 * BERTH-HOSTPORT-SETMARK is portmap's externalSetMarkChain: portmap jumps to it
 * for hairpin and localhost connections to a published port, which then get
 * masqueraded. Owning this chain (and the masquerade rule) saves portmap ~10
 * iptables execs per ADD (its own CNI-HOSTPORT-SETMARK/-MASQ chains are
 * re-checked on every call). Same mark bit as portmap's default.
 *
 * The chains are rebuilt as a whole by one iptables-restore --noflush (declaring
 * a chain in the input flushes it), so the rules always equal the network list.
 */
#include <sys/wait.h>

#include "common/process.h"
#include "net/internal.h"

#define FW_CHAIN1 "BERTH-ISOLATION-1"
#define FW_CHAIN2 "BERTH-ISOLATION-2"
#define FW_NAT    "BERTH-POSTROUTING"
#define FW_MARK   "0x2000/0x2000"

void fw_render(struct strbuf *sb, const struct fw_net *nets, size_t n)
{
	strbuf_addstr(sb, "*filter\n:" FW_CHAIN1 " - [0:0]\n:" FW_CHAIN2 " - [0:0]\n");
	for (size_t i = 0; i < n; i++)
		if (nets[i].internal)
			strbuf_addf(sb,
				    "-A " FW_CHAIN1 " -i %s ! -o %s -j DROP\n"
				    "-A " FW_CHAIN1 " -o %s ! -i %s -j DROP\n",
				    nets[i].bridge, nets[i].bridge, nets[i].bridge, nets[i].bridge);
	strbuf_addstr(sb, "-A " FW_CHAIN1 " -m conntrack --ctstate DNAT -j RETURN\n");
	for (size_t i = 0; i < n; i++)
		strbuf_addf(sb, "-A " FW_CHAIN1 " -i %s ! -o %s -j " FW_CHAIN2 "\n", nets[i].bridge,
			    nets[i].bridge);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(sb, "-A " FW_CHAIN2 " -o %s -j DROP\n", nets[i].bridge);
	strbuf_addstr(sb, "COMMIT\n*nat\n:" FW_NAT " - [0:0]\n:" NET_FW_SETMARK_CHAIN " - [0:0]\n");
	strbuf_addstr(sb, "-A " NET_FW_SETMARK_CHAIN " -j MARK --set-xmark " FW_MARK "\n");
	strbuf_addstr(sb, "-A " FW_NAT " -m mark --mark " FW_MARK " -j MASQUERADE\n");
	for (size_t i = 0; i < n; i++)
		if (!nets[i].internal && nets[i].subnet)
			strbuf_addf(sb, "-A " FW_NAT " -s %s ! -o %s -j MASQUERADE\n", nets[i].subnet,
				    nets[i].bridge);
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

/* Insert "-t table -I from 1 -j to" unless present. */
static int fw_ensure_jump(const char *table, const char *from, const char *to, int timeout_ms,
			  struct berth_error **err)
{
	int code = 0;
	struct berth_error *e = NULL;
	const char *check[] = { "iptables", "-w", "5", "-t", table, "-C", from, "-j", to, NULL };
	int r = run_tool(check, NULL, timeout_ms, &code, &e);
	berth_error_free(e);
	if (r < 0)
		return berth_error_wrap(err, r, "check %s jump", from);
	if (code == 0)
		return 0;
	e = NULL;
	const char *insert[] = { "iptables", "-w", "5", "-t", table, "-I", from, "1", "-j", to, NULL };
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

int fw_sync(const struct fw_net *nets, size_t n, int timeout_ms, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf in = STRBUF_INIT;
	fw_render(&in, nets, n);
	int code = 0;
	const char *restore[] = { "iptables-restore", "-w", "5", "--noflush", NULL };
	struct berth_error *e = NULL;
	int r = run_tool(restore, in.buf, timeout_ms, &code, &e);
	if (r < 0 || code != 0) {
		if (err)
			*err = e;
		else
			berth_error_free(e);
		return berth_error_wrap(err, r < 0 ? r : -EIO, "rebuild isolation chains");
	}
	berth_error_free(e);
	if ((r = fw_ensure_jump("filter", "FORWARD", FW_CHAIN1, timeout_ms, err)) < 0)
		return r;
	return fw_ensure_jump("nat", "POSTROUTING", FW_NAT, timeout_ms, err);
}
