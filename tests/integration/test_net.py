"""Container networking (src/net/) driven through `berth net-tool`.

Every test runs berth inside a fresh network namespace (the `hostns` fixture),
which plays the host: berth's bridges, veths and iptables rules live there and
vanish with it. "Containers" are network namespaces berth creates, with busybox
processes started in them by nsenter. Name resolution is checked the way a
container sees it: the generated hosts file bind-mounted on /etc/hosts in a
private mount namespace.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import mounts_under, run, traced_env

BUSYBOX = "/bin/busybox"


class Net:
    """berth net-tool bound to a test's root and running inside the host netns."""

    def __init__(self, berth, hostns, workdir):
        self.berth = berth
        self.hostns = hostns
        self.workdir = workdir
        self.procs = []
        # not under the shared berth-it- prefix: other sessions' leak sweeps unmount those
        self.exec_root = tempfile.mkdtemp(prefix="berth-net-run-")

    def nsenter(self, *cmd):
        return ["nsenter", f"--net=/run/netns/{self.hostns}", *cmd]

    def tool(self, *args):
        return self.nsenter(self.berth.bin, "net-tool", "--exec-root", self.exec_root, *map(str, args))

    def __call__(self, *args, check=True):
        return run(self.tool(*args), check=check, env=self.berth.env, timeout=60)

    def attach(self, cid, *args):
        return json.loads(self("attach", cid, *args).stdout)

    def httpd(self, netns_path, text="hello"):
        www = os.path.join(self.workdir, "www-" + os.path.basename(netns_path))
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(text + "\n")
        p = subprocess.Popen(["nsenter", f"--net={netns_path}", BUSYBOX, "httpd", "-f", "-p", "80", "-h", www],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def wget(self, netns_path, url, hosts=None, timeout=3):
        """Fetch url from inside a container netns; returns (exit code, body)."""
        inner = f"exec nsenter --net={netns_path} timeout {timeout} {BUSYBOX} wget -qO- {url}"
        if hosts:
            inner = f"mount --bind {hosts} /etc/hosts && " + inner
        # the httpd needs a moment to listen: retry connection refusals briefly, never a timeout
        for _ in range(20):
            p = subprocess.run(["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True,
                               timeout=timeout + 10)
            if p.returncode == 0 or "refused" not in p.stderr:
                return p.returncode, p.stdout
            time.sleep(0.05)
        return p.returncode, p.stdout

    def host_wget(self, url, timeout=3):
        for _ in range(20):
            p = subprocess.run(self.nsenter("timeout", str(timeout), BUSYBOX, "wget", "-qO-", url),
                               capture_output=True, text=True, timeout=timeout + 10)
            if p.returncode == 0 or "refused" not in p.stderr:
                break
            time.sleep(0.05)
        return p.returncode, p.stdout

    def veths(self):
        p = run(["ip", "-n", self.hostns, "-o", "link", "show", "type", "veth"])
        return [line for line in p.stdout.splitlines() if line.strip()]

    def iptables(self):
        return run(self.nsenter("iptables-save")).stdout

    def leases(self):
        ipam = os.path.join(self.berth.root, "net", "ipam")
        found = []
        for d, _, files in os.walk(ipam):
            found += [os.path.join(d, f) for f in files if f[0].isdigit()]
        return found

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


_created_netns = set()
_created_roots = set()


@pytest.fixture(scope="session", autouse=True)
def no_leaks():
    """Replaces conftest's session-wide sweep for this module.

    That sweep unmounts every /tmp/berth-it-* mount and deletes every new
    berth-test-* netns on the machine, including those of other engineers'
    sessions running at the same time (their dockerd lost its mounts while our
    tests ran). Here we check exactly what this module created.
    """
    yield
    leaked_ns = sorted(n for n in _created_netns if os.path.exists(f"/run/netns/{n}"))
    leaked_mounts = [m for r in _created_roots for m in mounts_under(r)]
    for n in leaked_ns:
        subprocess.run(["ip", "netns", "delete", n], capture_output=True)
    for m in leaked_mounts:
        subprocess.run(["umount", "-l", m], capture_output=True)
    assert not leaked_ns, f"tests leaked network namespaces: {leaked_ns}"
    assert not leaked_mounts, f"tests leaked mounts: {leaked_mounts}"


@pytest.fixture
def hostns():
    """The "host" of a test: a fresh netns, not named berth-test-* (other sessions' sweeps delete those)."""
    name = "berth-net-" + uuid.uuid4().hex[:8]
    _created_netns.add(name)
    run(["ip", "netns", "add", name])
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture
def net(berth, hostns, workdir):
    n = Net(berth, hostns, workdir)
    _created_roots.update([n.exec_root, workdir])
    try:
        yield n
    finally:
        n.stop()
        # tear down every container (unmounts netns files) before the host netns goes
        n("gc", check=False)
        for mp in mounts_under(n.exec_root):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(n.exec_root, ignore_errors=True)


def assert_no_leaks(net, *cids):
    assert net.veths() == []
    rules = net.iptables()
    for cid in cids:
        assert f'id: \\"{cid}\\"' not in rules and f'id: "{cid}"' not in rules, rules
    assert "CNI-DN-" not in rules, rules
    assert net.leases() == []
    assert os.listdir(os.path.join(net.exec_root, "net", "netns")) == []
    assert mounts_under(net.exec_root) == []


def test_default_networks_are_bridge_host_none(net):
    nets = json.loads(net("ls", "--json").stdout)
    assert [n["Name"] for n in nets] == ["bridge", "host", "none"]
    bridge = nets[0]
    assert bridge["Driver"] == "bridge"
    assert bridge["IPAM"]["Config"][0]["Subnet"] == "172.17.0.0/16"
    assert bridge["Options"]["com.docker.network.bridge.name"] == "berth0"


def test_containers_on_user_network_reach_each_other_by_ip_name_and_alias(net):
    net("create", "app", "--subnet", "10.31.0.0/24")
    web = net.attach("web1", "--name", "web", "--network", "app", "--alias", "www")
    cli = net.attach("cli1", "--name", "cli", "--network", "app")
    ip = web["NetworkSettings"]["Networks"]["app"]["IPAddress"]
    assert ip.startswith("10.31.0.")
    net.httpd(web["NetnsPath"])
    assert net.wget(cli["NetnsPath"], f"http://{ip}/") == (0, "hello\n")
    assert net.wget(cli["NetnsPath"], "http://web/", hosts=cli["HostsPath"]) == (0, "hello\n")
    assert net.wget(cli["NetnsPath"], "http://www/", hosts=cli["HostsPath"]) == (0, "hello\n")
    with open(web["HostsPath"]) as f:
        assert "\tcli cli1\n" in f.read()


def test_networks_are_isolated_from_each_other(net):
    net("create", "a", "--subnet", "10.32.0.0/24")
    net("create", "b", "--subnet", "10.33.0.0/24")
    server = net.attach("srv", "--name", "srv", "--network", "a")
    other = net.attach("oth", "--name", "oth", "--network", "b")
    net.httpd(server["NetnsPath"])
    ip = server["NetworkSettings"]["Networks"]["a"]["IPAddress"]
    code, _ = net.wget(other["NetnsPath"], f"http://{ip}/", timeout=2)
    assert code != 0
    with open(other["HostsPath"]) as f:
        assert "srv" not in f.read()


def test_published_port_on_loopback_reaches_httpd(net):
    c = net.attach("pub", "-p", "127.0.0.1:8080:80")
    assert c["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "8080"}]
    assert c["NetworkSettings"]["IPAddress"].startswith("172.17.")
    net.httpd(c["NetnsPath"], "published")
    assert net.host_wget("http://127.0.0.1:8080/") == (0, "published\n")


def test_publish_all_allocates_host_ports(net):
    c = net.attach("pall", "-P", "--expose", "80/tcp", "--expose", "53/udp")
    ports = c["NetworkSettings"]["Ports"]
    assert int(ports["80/tcp"][0]["HostPort"]) > 0
    assert int(ports["53/udp"][0]["HostPort"]) > 0
    net.httpd(c["NetnsPath"], "any")
    assert net.host_wget(f"http://127.0.0.1:{ports['80/tcp'][0]['HostPort']}/") == (0, "any\n")


@pytest.fixture
def outside(net):
    """A netns beyond the host (veth to it, 192.0.2.0/24) with no route back to containers."""
    name = "berth-net-out-" + uuid.uuid4().hex[:6]
    _created_netns.add(name)
    veth = "bo" + uuid.uuid4().hex[:8]
    run(["ip", "netns", "add", name])
    try:
        run(["ip", "-n", net.hostns, "link", "add", veth, "type", "veth", "peer", "name", "up0", "netns", name])
        run(["ip", "-n", net.hostns, "addr", "add", "192.0.2.1/24", "dev", veth])
        run(["ip", "-n", net.hostns, "link", "set", veth, "up"])
        run(["ip", "-n", name, "addr", "add", "192.0.2.2/24", "dev", "up0"])
        run(["ip", "-n", name, "link", "set", "up0", "up"])
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        net.httpd(f"/run/netns/{name}", "outside")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def test_outbound_traffic_is_masqueraded_except_on_internal_networks(net, outside):
    net("create", "sealed", "--subnet", "10.42.0.0/24", "--internal")
    c = net.attach("out1")
    assert net.wget(c["NetnsPath"], "http://192.0.2.2/") == (0, "outside\n")
    sealed = net.attach("out2", "--network", "sealed")
    code, _ = net.wget(sealed["NetnsPath"], "http://192.0.2.2/", timeout=2)
    assert code != 0


def test_published_port_reachable_from_container_on_other_network(net):
    net("create", "other", "--subnet", "10.39.0.0/24")
    srv = net.attach("psrv", "-p", "8085:80")
    cli = net.attach("pcli", "--network", "other")
    net.httpd(srv["NetnsPath"], "via-nat")
    gw = cli["NetworkSettings"]["Networks"]["other"]["Gateway"]
    assert net.wget(cli["NetnsPath"], f"http://{gw}:8085/") == (0, "via-nat\n")
    code, _ = net.wget(cli["NetnsPath"], f"http://{srv['NetworkSettings']['IPAddress']}/", timeout=2)
    assert code != 0  # but not directly across networks


def test_container_reaches_its_own_published_port_through_the_gateway(net):
    """Hairpin NAT: portmap marks the connection in berth's own BERTH-HOSTPORT-SETMARK chain
    (its externalSetMarkChain) and BERTH-POSTROUTING masquerades it."""
    c = net.attach("hairp", "-p", "8086:80")
    net.httpd(c["NetnsPath"], "hairpin")
    gw = c["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
    assert net.wget(c["NetnsPath"], f"http://{gw}:8086/") == (0, "hairpin\n")
    rules = net.iptables()
    assert "-j BERTH-HOSTPORT-SETMARK" in rules and "CNI-HOSTPORT-MASQ" not in rules, rules


def test_chains_are_rebuilt_when_the_exec_root_is_fresh(net):
    """After a reboot the rules are gone and the exec root (tmpfs) is empty: the next open
    rebuilds the chains portmap needs; while the marker exists no iptables-restore runs."""
    net("ls")
    run(net.nsenter("iptables", "-t", "nat", "-F", "BERTH-HOSTPORT-SETMARK"))
    net("ls")
    assert "-A BERTH-HOSTPORT-SETMARK -j MARK" not in net.iptables()  # marker present: trusted
    os.unlink(os.path.join(net.exec_root, "net", "fw-synced.2"))
    net("ls")
    assert "-A BERTH-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000" in net.iptables()
    c = net.attach("afterboot", "-p", "127.0.0.1:8087:80")
    net.httpd(c["NetnsPath"], "rebuilt")
    assert net.host_wget("http://127.0.0.1:8087/") == (0, "rebuilt\n")


def test_portmap_teardown_skips_ip6tables_on_ipv4_only_networks(net):
    """The plugins see an ip6tables that fails (net/cni-shim first in their PATH), so portmap's DEL
    tears down its IPv4 chains only, and nothing IPv6 is left behind since nothing was made."""
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    c = net.attach("v4only", "-p", "127.0.0.1:8088:80")
    net.httpd(c["NetnsPath"], "v4")
    assert net.host_wget("http://127.0.0.1:8088/") == (0, "v4\n")
    net.stop()
    trace = os.path.join(net.workdir, "detach.trace")
    run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", trace, *net.tool("detach", "v4only")],
        env=traced_env(net.berth.env), timeout=60)
    with open(trace) as f:
        execs = f.read()
    assert "CNI-DN-" in execs and "/usr/sbin/iptables" in execs, execs  # portmap's DEL did run
    assert "/usr/sbin/ip6tables" not in execs, execs
    assert_no_leaks(net, "v4only")


def test_disconnect_cuts_traffic_and_connect_restores_it(net):
    net("create", "app", "--subnet", "10.34.0.0/24")
    net("create", "side", "--subnet", "10.35.0.0/24")
    web = net.attach("w", "--name", "web", "--network", "app")
    cli = net.attach("c", "--name", "cli", "--network", "side")
    net.httpd(web["NetnsPath"])
    ip = web["NetworkSettings"]["Networks"]["app"]["IPAddress"]
    net("connect", "app", "c", "--alias", "client")
    assert net.wget(cli["NetnsPath"], "http://web/", hosts=cli["HostsPath"]) == (0, "hello\n")
    with open(web["HostsPath"]) as f:
        assert "client" in f.read()
    net("disconnect", "app", "c")
    code, _ = net.wget(cli["NetnsPath"], f"http://{ip}/", timeout=2)
    assert code != 0
    with open(web["HostsPath"]) as f:
        assert "client" not in f.read()


def test_detach_leaves_no_veth_rule_lease_or_netns(net):
    net("create", "app", "--subnet", "10.36.0.0/24")
    c = net.attach("gone", "--network", "app", "-p", "127.0.0.1:8081:80")
    assert len(net.veths()) == 1
    assert len(net.leases()) == 1
    net("detach", "gone")
    assert not os.path.exists(c["NetnsPath"])
    assert_no_leaks(net, "gone")
    net("rm", "app")
    assert "app" not in net("ls").stdout


def test_gc_after_kill_mid_add_leaks_nothing(net, workdir):
    # a CNI dir whose portmap blocks after bridge+IPAM have run: kill -9 lands mid-chain
    cni = os.path.join(workdir, "cni")
    os.makedirs(cni)
    for p in os.listdir("/usr/lib/cni"):
        os.symlink(os.path.join("/usr/lib/cni", p), os.path.join(cni, p))
    ready = os.path.join(workdir, "portmap-started")
    os.unlink(os.path.join(cni, "portmap"))
    with open(os.path.join(cni, "portmap"), "w") as f:
        f.write(f"#!/bin/sh\ntouch {ready}\nexec sleep 60\n")
    os.chmod(os.path.join(cni, "portmap"), 0o755)
    net("create", "app", "--subnet", "10.37.0.0/24")
    cmd = net.tool("--cni-path", cni, "attach", "victim", "--network", "app", "-p", "127.0.0.1:8082:80")
    p = subprocess.Popen(cmd, env=net.berth.env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(ready) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert os.path.exists(ready), "portmap was never reached"
        assert len(net.veths()) == 1 and len(net.leases()) == 1
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert "victim" in net("ls-containers").stdout
    assert net("gc").stdout.split() == ["victim"]
    assert_no_leaks(net, "victim")
    assert net("ls-containers").stdout == ""


def test_restart_with_gc_keeps_live_containers_connected(net):
    # a daemon restart = new process, same state on disk, gc keeping the live containers
    net("create", "app", "--subnet", "10.43.0.0/24")
    web = net.attach("rweb", "--name", "web", "--network", "app", "-p", "127.0.0.1:8086:80")
    cli = net.attach("rcli", "--name", "cli", "--network", "app")
    net.attach("rdead", "--name", "dead", "--network", "app")
    net.httpd(web["NetnsPath"], "still")
    assert net("gc", "--keep", "rweb", "--keep", "rcli").stdout.split() == ["rdead"]
    assert net.wget(cli["NetnsPath"], "http://web/", hosts=cli["HostsPath"]) == (0, "still\n")
    assert net.host_wget("http://127.0.0.1:8086/") == (0, "still\n")
    with open(cli["HostsPath"]) as f:
        assert "dead" not in f.read()
    assert len(net.veths()) == 2 and len(net.leases()) == 2
    net("check", "rweb")


def test_ls_filters_and_prune(net):
    net("create", "keep-me", "--subnet", "10.44.0.0/24", "--label", "env=prod")
    net("create", "drop-me", "--subnet", "10.45.0.0/24", "--label", "env=test")
    custom = json.loads(net("ls", "--json", "--filter", "type=custom").stdout)
    assert sorted(n["Name"] for n in custom) == ["drop-me", "keep-me"]
    prod = json.loads(net("ls", "--json", "--filter", "label=env=prod").stdout)
    assert [n["Name"] for n in prod] == ["keep-me"]
    p = net("ls", "--filter", "nope=1", check=False)
    assert p.returncode == 1 and "invalid filter 'nope'" in p.stderr
    pruned = json.loads(net("prune", "--filter", "label=env=test").stdout)
    assert pruned == {"NetworksDeleted": ["drop-me"]}
    assert "keep-me" in net("ls").stdout


def test_bad_options_are_usage_errors(net):
    """One message per bad option (getopt's or the value's), exit 2, nothing done."""
    for args, err in ((["ls", "--bogus"], "ls: unrecognized option '--bogus'\n"),
                      (["ls", "--filter"], "ls: option '--filter' requires an argument\n"),
                      (["ls", "--filter", "=x"], "berth net-tool: invalid filter '=x': expected KEY=VALUE\n"),
                      (["prune", "--json"], "prune: unrecognized option '--json'\n"),
                      (["dns", "--port", "65536"], "berth net-tool dns: invalid port\n"),
                      (["dns", "--bogus"], "dns: unrecognized option '--bogus'\n"),
                      (["gc", "--keep"], "gc: option '--keep' requires an argument\n"),
                      (["create", "--internal=1", "x"], "create: option '--internal' doesn't allow an argument\n"),
                      (["connect", "--ip"], "connect: option '--ip' requires an argument\n"),
                      (["--bridge"], "net-tool: option '--bridge' requires an argument\n")):
        p = net(*args, check=False)
        assert p.returncode == 2 and p.stderr.startswith(err) and p.stdout == "", (args, p.stderr)
    p = net("attach", "x", "--bogus", check=False)
    assert p.returncode == 1 and p.stderr.endswith("invalid option (see 'berth net-tool --help')\n")
    assert net("ls-containers").stdout == "" and "x" not in net("ls").stdout


def test_gc_keeps_listed_containers(net):
    keep = net.attach("keep1", "--name", "k")
    net.attach("drop1", "--name", "d")
    assert net("gc", "--keep", "keep1").stdout.split() == ["drop1"]
    assert net("ls-containers").stdout.split() == ["keep1"]
    assert os.path.exists(keep["NetnsPath"])


@pytest.mark.parametrize("args,message", [
    (["create", "x", "--subnet", "172.17.3.0/24"], "overlaps with network 'bridge'"),
    (["create", "x", "--subnet", "10.40.0.0/40"], "invalid subnet '10.40.0.0/40'"),
    (["create", "x", "--subnet", "10.40.0.0/24", "--gateway", "10.41.0.1"], "invalid gateway"),
    (["attach", "x", "--network", "nosuch"], "network 'nosuch' not found"),
    (["attach", "x", "-p", "127.0.0.1:8083:80"], "port is already allocated"),
    (["attach", "x", "-p", "99999:80"], "out of range"),
    (["connect", "nosuch", "taken"], "network 'nosuch' not found"),
    (["attach", "x", "--dns-option", "ndots:1\nnameserver 6.6.6.6"], "invalid --dns-option"),
    (["attach", "x", "--add-host", "evil\nhost:1.2.3.4"], "invalid --add-host"),
    (["attach", "../x"], "invalid container id '../x'"),
])
def test_bad_input_gets_clear_error_and_no_partial_state(net, args, message):
    net.attach("taken", "-p", "127.0.0.1:8083:80")
    before_nets = net("ls").stdout
    before_rules = net.iptables()
    p = net(*args, check=False)
    assert p.returncode == 1
    assert message in p.stderr
    assert p.stderr.count("berth net-tool:") == 1  # printed once
    assert net("ls").stdout == before_nets
    assert net("ls-containers").stdout.split() == ["taken"]
    assert len(net.veths()) == 1 and len(net.leases()) == 1
    assert net.iptables().count("CNI-DN-") == before_rules.count("CNI-DN-")


def test_port_in_use_by_a_host_process_is_refused(net):
    listener = subprocess.Popen(net.nsenter(BUSYBOX, "httpd", "-f", "-p", "127.0.0.1:8084", "-h", "/"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    net.procs.append(listener)
    for _ in range(200):
        if ":1F94 " in run(net.nsenter("cat", "/proc/net/tcp")).stdout:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the listener never bound 127.0.0.1:8084")
    p = net("attach", "x", "-p", "127.0.0.1:8084:80", check=False)
    assert p.returncode == 1 and "port is already allocated" in p.stderr
    assert net("ls-containers").stdout == ""


def test_static_ip_internal_network_and_inspect(net):
    net("create", "int", "--subnet", "10.38.0.0/24", "--ip-range", "10.38.0.128/25", "--internal",
        "--label", "team=x")
    c = net.attach("st", "--name", "st", "--network", "int", "--ip", "10.38.0.9")
    ep = c["NetworkSettings"]["Networks"]["int"]
    assert ep["IPAddress"] == "10.38.0.9" and ep["IPPrefixLen"] == 24
    d = net.attach("dyn", "--network", "int")
    assert d["NetworkSettings"]["Networks"]["int"]["IPAddress"].startswith("10.38.0.1")  # in .128/25
    routes = run(["nsenter", f"--net={c['NetnsPath']}", "ip", "route"]).stdout
    assert "default" not in routes
    info = json.loads(net("inspect", "int").stdout)
    assert info["Internal"] is True and info["Labels"] == {"team": "x"}
    assert info["Containers"]["st"]["IPv4Address"] == "10.38.0.9/24"
    p = net("attach", "again", "--network", "int", "--ip", "10.38.0.9", check=False)
    assert p.returncode == 1 and "already in use" in p.stderr
    p = net("rm", "int", check=False)
    assert p.returncode == 1 and "active endpoints" in p.stderr


def test_resolv_conf_hostname_and_extra_hosts(net):
    c = net.attach("dns1", "--hostname", "box", "--dns", "192.0.2.53", "--dns-search", "corp.test",
                   "--add-host", "db:192.0.2.7", "--add-host", "gw:host-gateway")
    with open(c["ResolvConfPath"]) as f:
        resolv = f.read()
    assert "nameserver 192.0.2.53\n" in resolv and "search corp.test\n" in resolv
    with open(c["HostnamePath"]) as f:
        assert f.read() == "box\n"
    with open(c["HostsPath"]) as f:
        hosts = f.read()
    assert "192.0.2.7\tdb\n" in hosts
    ip = c["NetworkSettings"]["IPAddress"]
    assert f"{ip}\tbox\n" in hosts
    assert f"{c['NetworkSettings']['Gateway']}\tgw\n" in hosts


def start_dns(net):
    """`berth net-tool dns` (the embedded resolver on every network's gateway), once it is ready."""
    dns = subprocess.Popen(net.tool("dns"), env=net.berth.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    net.procs.append(dns)
    assert dns.stdout.readline() == "ready\n", dns.stderr.read()


def test_embedded_dns_resolves_names_on_the_network_only(net):
    net("create", "app", "--subnet", "10.46.0.0/24")
    net("create", "far", "--subnet", "10.47.0.0/24")
    start_dns(net)
    web = net.attach("dweb", "--name", "web", "--network", "app", "--alias", "www", "--embedded-dns")
    cli = net.attach("dcli", "--name", "cli", "--network", "app", "--embedded-dns")
    other = net.attach("doth", "--name", "oth", "--network", "far", "--embedded-dns")
    with open(cli["ResolvConfPath"]) as f:
        assert "nameserver 10.46.0.1\n" in f.read()
    ip = web["NetworkSettings"]["Networks"]["app"]["IPAddress"]

    def lookup(c, name, server):
        p = subprocess.run(["nsenter", f"--net={c['NetnsPath']}", "timeout", "10", BUSYBOX, "nslookup", name,
                            server], capture_output=True, text=True, timeout=20)
        return p.returncode, p.stdout

    code, out = lookup(cli, "www", "10.46.0.1")
    assert code == 0 and f"Address: {ip}" in out
    code, out = lookup(cli, "WEB", "10.46.0.1")
    assert code == 0 and f"Address: {ip}" in out
    code, out = lookup(other, "web", "10.47.0.1")  # not on its network: no answer from us
    assert ip not in out


DNS_QUERY = r"""
import random, socket, struct, sys, ipaddress
server, name, qtype = sys.argv[1], sys.argv[2], int(sys.argv[3])
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(q, (server, 53))
r = s.recv(4096)
rid, flags, _, an, _, _ = struct.unpack(">HHHHHH", r[:12])
assert rid == qid
off, out = len(q), []
for _ in range(an):
    t, _, _, rdlen = struct.unpack(">HHIH", r[off + 2:off + 12])
    data = r[off + 12:off + 12 + rdlen]
    out.append(str(ipaddress.ip_address(data)) if t in (1, 28) else str(t))
    off += 12 + rdlen
print(flags & 0xf, " ".join(out))
"""


def test_embedded_dns_answers_aaaa_and_nodata(net):
    """AAAA answers for containers with IPv6 addresses on a dual-stack network; a name with only an
    A record answers AAAA with NOERROR and no answer (NODATA) and an unknown name NXDOMAIN on an
    internal network, as dockerd's resolver does."""
    net("create", "ds", "--subnet", "10.48.0.0/24", "--ipv6", "--subnet6", "fd00:db8:48::/64", "--internal")
    net("create", "v4", "--subnet", "10.49.0.0/24", "--internal")
    start_dns(net)
    web = net.attach("d6web", "--name", "web6", "--network", "ds", "--alias", "www6", "--embedded-dns")
    cli = net.attach("d6cli", "--name", "cli6", "--network", "ds", "--embedded-dns")
    old = net.attach("d4old", "--name", "old4", "--network", "v4", "--embedded-dns")
    ep = web["NetworkSettings"]["Networks"]["ds"]
    ip4, ip6 = ep["IPAddress"], ep["GlobalIPv6Address"]
    assert ip6.startswith("fd00:db8:48::"), ep

    def query(c, server, name, qtype):
        p = run(["nsenter", f"--net={c['NetnsPath']}", "python3", "-c", DNS_QUERY, server, name, str(qtype)],
                timeout=30)
        out = p.stdout.split()
        return int(out[0]), out[1:]

    assert query(cli, "10.48.0.1", "web6", 28) == (0, [ip6])
    assert query(cli, "10.48.0.1", "WWW6", 28) == (0, [ip6])
    assert query(cli, "10.48.0.1", "web6", 1) == (0, [ip4])
    assert query(old, "10.49.0.1", "old4", 28) == (0, [])  # NODATA: the name exists, no AAAA
    assert query(old, "10.49.0.1", "old4", 1) == (0, [old["NetworkSettings"]["Networks"]["v4"]["IPAddress"]])
    assert query(old, "10.49.0.1", "nosuch", 28) == (3, [])  # NXDOMAIN
    assert query(old, "10.49.0.1", "web6", 28) == (3, [])  # names stay on their network
    # a real resolver client
    p = subprocess.run(["nsenter", f"--net={cli['NetnsPath']}", "timeout", "10", BUSYBOX, "nslookup", "-type=AAAA",
                        "web6", "10.48.0.1"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0 and ip6 in p.stdout, (p.stdout, p.stderr)


def test_none_host_and_container_modes(net):
    none = net.attach("n1", "--network", "none")
    links = run(["nsenter", f"--net={none['NetnsPath']}", "ip", "-o", "link"]).stdout
    assert len(links.splitlines()) == 1 and "lo" in links and "UP" in links
    host = net.attach("h1", "--network", "host")
    assert host["NetnsPath"] is None
    joined = net.attach("j1", "--network", "container:n1")
    assert joined["NetnsPath"] == none["NetnsPath"]
    assert net.veths() == []
