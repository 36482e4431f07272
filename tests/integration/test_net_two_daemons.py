"""Two berth daemons in one network namespace (different roots, bridges and
subnets) share the kernel's iptables: each must rebuild only its own chains.
A second namespace ("outside"), joined by a veth pair, holds an HTTP server
and has no route back to the containers' subnets, so a container reaches it
only through its daemon's outbound NAT. Restarting one daemon (which rebuilds
its chains at start) must leave the other's containers their NAT."""
import json
import subprocess
import uuid

import pytest

import conftest
from conftest import run
from test_engine_network import NetnsDaemon

INSIDE_IP, OUTSIDE_IP = "10.123.46.1", "10.123.46.2"
TOKEN = "two-daemons-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def env(berth_bin, busybox, tmp_path_factory):
    """(daemon a, daemon b, server port) in a namespace of ours, the server outside."""
    tmp_path = tmp_path_factory.mktemp("two-daemons")
    inside = conftest.NETNS_PREFIX + "two-" + uuid.uuid4().hex[:8]
    outside = inside + "-o"
    daemons, server = [], None
    try:
        for ns in (inside, outside):
            run(["ip", "netns", "add", ns])
            conftest._created_netns.add(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", inside, "link", "add", "tw0", "type", "veth", "peer", "name", "tw1", "netns", outside])
        run(["ip", "-n", inside, "addr", "add", INSIDE_IP + "/30", "dev", "tw0"])
        run(["ip", "-n", outside, "addr", "add", OUTSIDE_IP + "/30", "dev", "tw1"])
        run(["ip", "-n", inside, "link", "set", "tw0", "up"])
        run(["ip", "-n", outside, "link", "set", "tw1", "up"])
        (tmp_path / "payload").write_text(TOKEN + "\n")
        server = subprocess.Popen(["nsenter", f"--net=/run/netns/{outside}", "/usr/bin/python3", "-u", "-m",
                                   "http.server", "--bind", OUTSIDE_IP, "--directory", str(tmp_path), "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = int(server.stdout.readline().split(" port ")[1].split()[0])
        # legacy shared chains of an earlier berth, to be migrated away at the first start
        for table, parent, chain in (("filter", "FORWARD", "BERTH-ISOLATION-1"), ("filter", None, "BERTH-ISOLATION-2"),
                                     ("nat", "POSTROUTING", "BERTH-POSTROUTING")):
            run(["nsenter", f"--net=/run/netns/{inside}", "iptables", "-t", table, "-N", chain])
            if parent:
                run(["nsenter", f"--net=/run/netns/{inside}", "iptables", "-t", table, "-I", parent, "-j", chain])
        for br in ("btwa0", "btwb0"):
            d = NetnsDaemon(berth_bin, netns=inside)
            d.extra_args = ["--bridge", br]
            daemons.append(d)
            d.start()
            d.load_busybox(busybox)
        yield daemons[0], daemons[1], port
    finally:
        if server:
            server.kill()
            server.wait()
        for d in daemons:
            d.cleanup()
        for ns in (inside, outside):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def fetch(d, ctr, port):
    return d.docker("exec", ctr, "sh", "-c", f"timeout 10 wget -qO- http://{OUTSIDE_IP}:{port}/payload",
                    check=False)


def default_subnet(d):
    return json.loads(d.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Subnet"]


def test_default_bridges_get_distinct_subnets_and_both_nat(env):
    """Each daemon addresses its default bridge at start (as dockerd does docker0), so the second
    one sees the first's route and takes the next pool subnet instead of the same 172.17.0.0/16."""
    a, b, port = env
    sa, sb = default_subnet(a), default_subnet(b)
    assert sa == "172.17.0.0/16" and sb == "172.18.0.0/16", (sa, sb)
    routes = a.in_netns("ip", "-4", "route").stdout
    assert "172.17.0.0/16 dev btwa0" in routes and "172.18.0.0/16 dev btwb0" in routes, routes
    try:
        for d in (a, b):
            d.docker("run", "-d", "--name", "dflt", "busybox", "sleep", "600")
        for d, sn in ((a, "172.17."), (b, "172.18.")):
            ip = json.loads(d.docker("inspect", "dflt").stdout)[0]["NetworkSettings"]["IPAddress"]
            assert ip.startswith(sn), ip
            p = fetch(d, "dflt", port)
            assert p.returncode == 0 and p.stdout == TOKEN + "\n", (d.extra_args, p.stderr)
    finally:
        for d in (a, b):
            d.docker("rm", "-f", "dflt", check=False)


def test_restarting_one_daemon_keeps_the_other_daemons_nat(env):
    a, b, port = env
    for d, subnet in ((a, "10.201.1.0/24"), (b, "10.201.2.0/24")):
        d.docker("network", "create", "--subnet", subnet, "natnet")
        d.docker("run", "-d", "--name", "client", "--network", "natnet", "busybox", "sleep", "600")
        assert fetch(d, "client", port).stdout == TOKEN + "\n"
    rules = a.in_netns("iptables-save").stdout
    for legacy in ("-j BERTH-ISOLATION-1\n", "-j BERTH-POSTROUTING\n", ":BERTH-ISOLATION-2 ", ":BERTH-POSTROUTING "):
        assert legacy not in rules, rules
    for _ in range(3):
        a.stop()
        a.start()  # rebuilds a's chains (gc at start)
        p = fetch(b, "client", port)
        assert p.returncode == 0 and p.stdout == TOKEN + "\n", ("b lost its NAT", p.stderr)
        b.stop()
        b.start()
        p = fetch(a, "client", port)
        assert p.returncode == 0 and p.stdout == TOKEN + "\n", ("a lost its NAT", p.stderr)
    # each daemon's NAT chain holds its own network's rule and no other's
    nat = a.in_netns("iptables", "-t", "nat", "-S").stdout.splitlines()
    own = {sub: [l for l in nat if f"-s {sub} " in l and "MASQUERADE" in l] for sub in ("10.201.1.0/24", "10.201.2.0/24")}
    assert len(own["10.201.1.0/24"]) == 1 and len(own["10.201.2.0/24"]) == 1, nat
    chain_a = own["10.201.1.0/24"][0].split()[1]
    chain_b = own["10.201.2.0/24"][0].split()[1]
    assert chain_a != chain_b and chain_a.startswith("BERTH-POSTROUTING-"), nat
    for d in (a, b):
        d.docker("rm", "-f", "client")
        d.docker("network", "rm", "natnet")


def own_chains(d, tool="iptables"):
    """The per-daemon chains (BERTH-ISOLATION-1/2-<tag>, BERTH-POSTROUTING-<tag>) in d's namespace."""
    rules = d.in_netns(f"{tool}-save").stdout.splitlines()
    return {l.split()[0][1:] for l in rules if l.startswith(":BERTH-ISOLATION-") or l.startswith(":BERTH-POSTROUTING-")}


def test_a_clean_stop_with_nothing_running_removes_the_daemons_chains_only(env):
    a, b, port = env
    both = own_chains(a)
    assert len(both) == 6, both  # three per daemon
    # a container still running after the stop keeps its daemon's chains (it outlives the daemon)
    a.docker("run", "-d", "--name", "keep", "busybox", "sleep", "600")
    a.stop()
    assert own_chains(b) == both
    a.start()
    a.docker("rm", "-f", "keep")
    a.stop()
    left = own_chains(b)
    assert len(left) == 3 and left < both, left
    jumps = a.in_netns("iptables-save").stdout
    assert all(f"-j {c}" not in jumps for c in both - left), jumps
    # b's containers keep their NAT; a's next start rebuilds its chains
    b.docker("network", "create", "--subnet", "10.201.3.0/24", "natnet")
    b.docker("run", "-d", "--name", "client", "--network", "natnet", "busybox", "sleep", "600")
    try:
        p = fetch(b, "client", port)
        assert p.returncode == 0 and p.stdout == TOKEN + "\n", ("b lost its NAT", p.stderr)
    finally:
        b.docker("rm", "-f", "client")
        b.docker("network", "rm", "natnet")
    a.start()
    assert own_chains(a) == both
