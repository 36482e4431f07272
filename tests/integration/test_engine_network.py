"""Container networking through the engine: the daemon runs inside a network
namespace this module creates and is driven with the docker CLI, docker-py and
docker-compose (bridge default, user networks with names and aliases,
published ports, connect/disconnect, bad input, crash recovery)."""
import contextlib
import json
import os
import signal
import subprocess
import textwrap
import uuid

import pytest

import conftest
from conftest import run
from engine_daemon import Daemon, wait_for

COMPOSE = "/usr/bin/docker-compose"


class NetnsDaemon(Daemon):
    """engine_daemon.Daemon run inside a network namespace of ours (nsenter --net)."""

    def in_netns(self, *cmd, check=True, timeout=30):
        return run(["nsenter", f"--net=/run/netns/{self.netns}", *cmd], check=check, timeout=timeout)


@contextlib.contextmanager
def netns_daemon(berth_bin, busybox, tag, prepare=None, before_cleanup=None):
    """A NetnsDaemon in a network namespace of its own (deleted afterwards, also on failure);
    prepare(d) runs before the start, before_cleanup(d) before the daemon's cleanup."""
    name = conftest.NETNS_PREFIX + tag + uuid.uuid4().hex[:8]
    run(["ip", "netns", "add", name])
    conftest._created_netns.add(name)
    d = None
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        d = NetnsDaemon(berth_bin, netns=name)
        if prepare:
            prepare(d)
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        try:
            if d and before_cleanup:
                before_cleanup(d)
        finally:
            if d:
                d.cleanup()
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    with netns_daemon(berth_bin, busybox, "eng-") as d:
        yield d
        d.remove_all()
        for n in networks(d):
            if n["Name"] not in ("bridge", "host", "none"):
                d.docker("network", "rm", n["Name"])
        assert_no_network_state(d)


def networks(d):
    return d.json("GET", "/networks")[1]


def inspect(d, name):
    return json.loads(d.docker("inspect", name).stdout)[0]


def leases(d):
    """{network: [addresses]} of the host-local leases (placeholders of kept addresses included)."""
    ipam = os.path.join(d.root, "net", "ipam")
    out = {}
    for net in os.listdir(ipam) if os.path.isdir(ipam) else []:
        ips = sorted(f for f in os.listdir(os.path.join(ipam, net)) if f[0].isdigit())
        if ips:
            out[net] = ips
    return out


def assert_no_network_state(d):
    """No container has a netns, veth, lease, kept address or record left."""
    links = d.in_netns("ip", "-o", "link").stdout
    assert "veth" not in links, links
    netns_dir = os.path.join(d.exec_root, "net", "netns")
    assert not os.listdir(netns_dir) if os.path.isdir(netns_dir) else True
    assert os.listdir(os.path.join(d.root, "net", "containers")) == []
    assert leases(d) == {}
    reserved = os.path.join(d.root, "net", "reserved")
    assert not os.listdir(reserved) if os.path.isdir(reserved) else True


def wget(d, ctr, url, check=True):
    return d.docker("exec", ctr, "sh", "-c", f"timeout 5 wget -qO- {url}", check=check)


@pytest.fixture
def usernet(daemon):
    name = "net" + uuid.uuid4().hex[:6]
    daemon.docker("network", "create", name)
    yield name
    daemon.remove_all()
    daemon.docker("network", "rm", name, check=False)


def httpd(d, name, *opts):
    d.docker("run", "-d", "--name", name, *opts, "busybox", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")


def test_default_network_is_bridge_with_an_address(daemon):
    daemon.docker("run", "-d", "--name", "plain", "busybox", "sleep", "600")
    try:
        ns = inspect(daemon, "plain")["NetworkSettings"]
        assert list(ns["Networks"]) == ["bridge"]
        assert ns["IPAddress"] and ns["Gateway"] and ns["MacAddress"]
        assert ns["SandboxKey"].startswith(daemon.exec_root)
        out = daemon.docker("exec", "plain", "sh", "-c", "ip -4 addr show eth0").stdout
        assert f"inet {ns['IPAddress']}/" in out
        route = daemon.docker("exec", "plain", "sh", "-c", "ip route").stdout
        assert f"default via {ns['Gateway']}" in route
    finally:
        daemon.docker("rm", "-f", "plain")


def test_user_network_resolves_names_and_aliases(daemon, usernet):
    httpd(daemon, "srv1", "--network", usernet, "--network-alias", "www")
    daemon.docker("run", "-d", "--name", "cli1", "--network", usernet, "busybox", "sleep", "600")
    srv_id = inspect(daemon, "srv1")["Id"]
    assert wget(daemon, "cli1", "http://srv1/hostname").stdout.strip() == srv_id[:12]
    assert wget(daemon, "cli1", "http://www/hostname").stdout.strip() == srv_id[:12]
    ep = inspect(daemon, "srv1")["NetworkSettings"]["Networks"][usernet]
    assert "www" in ep["Aliases"] and ep["IPAddress"]
    net = json.loads(daemon.docker("network", "inspect", usernet).stdout)[0]
    assert {c["Name"] for c in net["Containers"].values()} == {"srv1", "cli1"}


def test_networks_are_isolated(daemon, usernet):
    httpd(daemon, "srv2", "--network", usernet)
    other = "other" + uuid.uuid4().hex[:6]
    daemon.docker("network", "create", other)
    try:
        daemon.docker("run", "-d", "--name", "cli2", "--network", other, "busybox", "sleep", "600")
        ip = inspect(daemon, "srv2")["NetworkSettings"]["Networks"][usernet]["IPAddress"]
        assert wget(daemon, "cli2", "http://srv2/hostname", check=False).returncode != 0
        assert wget(daemon, "cli2", f"http://{ip}/hostname", check=False).returncode != 0
    finally:
        daemon.docker("rm", "-f", "cli2")
        daemon.docker("network", "rm", other)


def test_published_port_reaches_httpd_on_loopback(daemon):
    httpd(daemon, "pub1", "-p", "127.0.0.1:8080:80")
    try:
        assert daemon.docker("port", "pub1").stdout.strip() == "80/tcp -> 127.0.0.1:8080"
        cid = inspect(daemon, "pub1")["Id"]
        out = daemon.in_netns("curl", "-sf", "--max-time", "5", "http://127.0.0.1:8080/hostname").stdout
        assert out.strip() == cid[:12]
    finally:
        daemon.docker("rm", "-f", "pub1")
    # the mapping went away with the container
    assert daemon.in_netns("curl", "-sf", "--max-time", "2", "http://127.0.0.1:8080/", check=False).returncode != 0


def test_publish_all_maps_exposed_ports(daemon):
    httpd(daemon, "pub2", "-P", "--expose", "80")
    try:
        ports = inspect(daemon, "pub2")["NetworkSettings"]["Ports"]["80/tcp"]
        host_port = int(ports[0]["HostPort"])
        assert host_port > 0
        out = daemon.in_netns("curl", "-sf", "--max-time", "5", f"http://127.0.0.1:{host_port}/hostname").stdout
        assert out.strip() == inspect(daemon, "pub2")["Id"][:12]
    finally:
        daemon.docker("rm", "-f", "pub2")


def hosts_names(daemon, ctr):
    """The host names in a container's /etc/hosts, as whole words (an id may contain an alias)."""
    out = daemon.docker("exec", ctr, "sh", "-c", "cat /etc/hosts").stdout
    return {name for line in out.splitlines() if not line.startswith("#") for name in line.split()[1:]}


def test_disconnect_cuts_traffic_and_connect_restores_it(daemon, usernet):
    httpd(daemon, "srv3", "--network", usernet)
    daemon.docker("run", "-d", "--name", "cli3", "busybox", "sleep", "600")
    assert wget(daemon, "cli3", "http://srv3/hostname", check=False).returncode != 0
    daemon.docker("network", "connect", "--alias", "c3", usernet, "cli3")
    assert usernet in inspect(daemon, "cli3")["NetworkSettings"]["Networks"]
    assert wget(daemon, "cli3", "http://srv3/hostname").stdout.strip() == inspect(daemon, "srv3")["Id"][:12]
    assert "c3" in hosts_names(daemon, "srv3")
    ip = inspect(daemon, "srv3")["NetworkSettings"]["Networks"][usernet]["IPAddress"]
    daemon.docker("network", "disconnect", usernet, "cli3")
    assert wget(daemon, "cli3", f"http://{ip}/hostname", check=False).returncode != 0
    assert "c3" not in hosts_names(daemon, "srv3")
    assert list(inspect(daemon, "cli3")["NetworkSettings"]["Networks"]) == ["bridge"]


def test_connect_while_stopped_applies_at_start(daemon, usernet):
    httpd(daemon, "srv4", "--network", usernet)
    daemon.docker("create", "--name", "cli4", "busybox", "sleep", "600")
    daemon.docker("network", "connect", usernet, "cli4")
    assert set(inspect(daemon, "cli4")["NetworkSettings"]["Networks"]) == {"bridge", usernet}
    daemon.docker("start", "cli4")
    assert wget(daemon, "cli4", "http://srv4/hostname").stdout.strip() == inspect(daemon, "srv4")["Id"][:12]


def test_static_ip_dns_and_extra_hosts(daemon):
    name = "st" + uuid.uuid4().hex[:6]
    daemon.docker("network", "create", "--subnet", "10.251.7.0/24", name)
    try:
        p = daemon.docker("run", "--rm", "--network", name, "--ip", "10.251.7.77", "--dns", "10.9.9.9",
                          "--dns-search", "example.test", "--dns-option", "ndots:2", "--add-host",
                          "db.local:10.1.2.3", "--hostname", "myhost", "busybox", "sh", "-c",
                          "ip -4 addr show eth0; cat /etc/resolv.conf /etc/hosts /etc/hostname")
        assert "inet 10.251.7.77/24" in p.stdout
        assert "nameserver 10.9.9.9" in p.stdout
        assert "search example.test" in p.stdout and "options ndots:2" in p.stdout
        assert "10.1.2.3\tdb.local" in p.stdout
        assert "myhost" in p.stdout.splitlines()[-1]
    finally:
        daemon.docker("network", "rm", name)


def test_bad_input_gets_clear_errors_and_no_state(daemon):
    name = "bad" + uuid.uuid4().hex[:6]
    before = {n["Name"] for n in networks(daemon)}
    daemon.docker("network", "create", "--subnet", "10.252.0.0/24", name)
    try:
        p = daemon.docker("network", "create", "--subnet", "10.252.0.0/25", name + "x", check=False)
        assert p.returncode != 0 and "overlaps" in p.stderr
        p = daemon.docker("network", "create", "--subnet", "10.252.1.0/33", name + "y", check=False)
        assert p.returncode != 0 and "invalid subnet" in p.stderr
        p = daemon.docker("network", "create", name, check=False)
        assert p.returncode != 0 and "already exists" in p.stderr
        assert {n["Name"] for n in networks(daemon)} == before | {name}
        st, body = daemon.json("POST", "/networks/create", {"Name": name + "z", "IPAM": {"Config": [
            {"Subnet": "10.252.0.128/25"}]}})
        assert st == 400 and "overlaps" in body["message"]
        # unknown network: refused at create, no container left
        p = daemon.docker("run", "--name", "orphan", "--network", "nosuchnet", "busybox", "true", check=False)
        assert p.returncode != 0 and "network 'nosuchnet' not found" in p.stderr
        assert daemon.docker("ps", "-aq", "--filter", "name=orphan").stdout.strip() == ""
        st, body = daemon.json("GET", "/networks/nosuchnet")
        assert st == 404
        # malformed port bindings and --ip on the default network: 400 at create, no container
        before_ctrs = daemon.json("GET", "/containers/json?all=1")[1]
        for hc, nc, msg in (({"PortBindings": {"abc/tcp": [{"HostPort": "80"}]}}, None, "invalid port"),
                            ({"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}, None, "99999"),
                            ({"PortBindings": {"80/bogus": [{"HostPort": "81"}]}}, None, "bogus"),
                            ({"PortBindings": "x"}, None, "PortBindings"),
                            ({}, {"EndpointsConfig": {"bridge": {"IPAMConfig": {"IPv4Address": "172.30.0.9"}}}},
                             "user defined networks only")):
            st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": hc,
                                                                  "NetworkingConfig": nc})
            assert st == 400 and msg in body["message"], (hc, body)
        assert daemon.json("GET", "/containers/json?all=1")[1] == before_ctrs
        # a host port in use: the second container does not start and holds nothing
        httpd(daemon, "holder", "-p", "127.0.0.1:8181:80")
        p = daemon.docker("run", "-d", "--name", "loser", "-p", "127.0.0.1:8181:80", "busybox", "sleep", "60",
                          check=False)
        assert p.returncode != 0 and "already allocated" in p.stderr
        loser = inspect(daemon, "loser")
        assert loser["State"]["Status"] != "running"
        assert not os.path.exists(os.path.join(daemon.root, "net", "containers", loser["Id"]))
        # a network in use cannot be removed
        daemon.docker("run", "-d", "--name", "user1", "--network", name, "busybox", "sleep", "600")
        st, body = daemon.json("DELETE", f"/networks/{name}")
        assert st == 409 and "active endpoints" in body["message"]
        st, body = daemon.json("DELETE", "/networks/bridge")
        assert st == 403
    finally:
        for c in ("holder", "loser", "user1"):
            daemon.docker("rm", "-f", c, check=False)
        daemon.docker("network", "rm", name)


def test_network_api_list_filters_and_prune(daemon):
    a, b = "pa" + uuid.uuid4().hex[:6], "pb" + uuid.uuid4().hex[:6]
    daemon.docker("network", "create", "--label", "team=x", a)
    daemon.docker("network", "create", b)
    daemon.docker("run", "-d", "--name", "pinuse", "--network", b, "busybox", "sleep", "600")
    try:
        out = daemon.docker("network", "ls", "--filter", "label=team=x", "--format", "{{.Name}}").stdout.split()
        assert out == [a]
        out = daemon.docker("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}").stdout.split()
        assert a in out and b in out and "bridge" not in out
        pruned = daemon.docker("network", "prune", "-f").stdout
        assert a in pruned and b not in pruned
        assert b in {n["Name"] for n in networks(daemon)}
    finally:
        daemon.docker("rm", "-f", "pinuse")
        daemon.docker("network", "rm", b)


def test_berth_network_cli_labels_and_filters(daemon):
    """berth's own `network` verb: --label K=V / bare K, repeated --filter ANDed, docker's error for a bad key."""
    name = "pc" + uuid.uuid4().hex[:6]
    daemon.berth("network", "create", "--label", "team=x", "--label", "bare", name)
    try:
        assert daemon.json("GET", f"/networks/{name}")[1]["Labels"] == {"team": "x", "bare": ""}
        ls = daemon.berth("network", "ls", "--format", "{{.Name}}", "-f", "label=team=x", "-f", "type=custom")
        assert ls.stdout.split() == [name]
        assert name not in daemon.berth("network", "ls", "--format", "{{.Name}}", "-f", "label=team=y").stdout
        p = daemon.berth("network", "ls", "-f", "nope=1", check=False)
        assert p.returncode == 1 and "invalid filter 'nope'" in p.stderr
    finally:
        daemon.berth("network", "rm", name, check=False)


def test_docker_py_networks(daemon, usernet):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host)
    try:
        net = client.networks.create("py" + uuid.uuid4().hex[:6], ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet="10.253.3.0/24", gateway="10.253.3.1")]))
        try:
            assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.253.3.0/24"
            c = client.containers.run("busybox", ["sleep", "600"], detach=True, network=net.name, name="pyc")
            net.reload()
            assert c.id in net.attrs["Containers"]
            client.networks.get(usernet).connect(c, aliases=["pyalias"])
            c.reload()
            ip = c.attrs["NetworkSettings"]["Networks"][usernet]["IPAddress"]
            out = client.containers.run("busybox", ["sh", "-c", "ping -c 1 -W 2 pyalias"], network=usernet,
                                        remove=True)
            assert f"({ip})".encode() in out
        finally:
            for c in client.containers.list(all=True, filters={"name": "pyc"}):
                c.remove(force=True)
            net.remove()
    finally:
        client.close()


def test_daemon_kill9_keeps_connectivity_and_leaks_nothing(daemon, usernet):
    httpd(daemon, "srv5", "--network", usernet, "-p", "127.0.0.1:8282:80")
    daemon.docker("run", "-d", "--name", "cli5", "--network", usernet, "busybox", "sleep", "600")
    daemon.docker("run", "-d", "--name", "gone5", "--network", usernet, "busybox", "sleep", "600")
    srv = inspect(daemon, "srv5")["Id"][:12]
    gone_pid = inspect(daemon, "gone5")["State"]["Pid"]
    gone_id = inspect(daemon, "gone5")["Id"]
    daemon.stop(signal.SIGKILL)
    os.kill(gone_pid, signal.SIGKILL)  # exits while no daemon runs: its network must be collected
    daemon.start()
    assert wget(daemon, "cli5", "http://srv5/hostname").stdout.strip() == srv
    assert daemon.in_netns("curl", "-sf", "--max-time", "5", "http://127.0.0.1:8282/hostname").stdout.strip() == srv
    assert inspect(daemon, "gone5")["State"]["Status"] == "exited"
    assert not os.path.exists(os.path.join(daemon.root, "net", "containers", gone_id))
    assert "gone5" not in hosts_names(daemon, "cli5")
    daemon.remove_all()
    assert_no_network_state(daemon)


def test_compose_services_talk_by_service_name(daemon, tmp_path):
    if not os.access(COMPOSE, os.X_OK):
        pytest.skip("docker-compose not installed")
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent("""\
        version: "3"
        services:
          web:
            image: busybox
            command: busybox httpd -f -p 80 -h /etc
          client:
            image: busybox
            command: sleep 600
        """))
    project = "cp" + uuid.uuid4().hex[:6]
    compose = [COMPOSE, "-p", project, "-f", str(tmp_path / "docker-compose.yml")]
    try:
        run([*compose, "up", "-d"], env=daemon.env, timeout=120)
        web = inspect(daemon, f"{project}_web_1")["Id"][:12]
        assert wget(daemon, f"{project}_client_1", "http://web/hostname").stdout.strip() == web
    finally:
        run([*compose, "down"], env=daemon.env, timeout=120, check=False)
    assert f"{project}_default" not in {n["Name"] for n in networks(daemon)}


def test_berth_cli_network_commands_and_port(daemon):
    name = "bc" + uuid.uuid4().hex[:6]
    nid = daemon.berth("network", "create", "--subnet", "10.254.9.0/24", "--label", "k=v", name).stdout.strip()
    try:
        assert len(nid) == 64
        assert daemon.berth("network", "ls", "-q", "--filter", "label=k=v").stdout.split() == [nid[:12]]
        httpd(daemon, "bsrv", "--network", name, "--network-alias", "bw", "--ip", "10.254.9.50",
              "-p", "127.0.0.1:8383:80")
        assert daemon.berth("port", "bsrv").stdout.strip() == "80/tcp -> 127.0.0.1:8383"
        assert daemon.berth("port", "bsrv", "80").stdout.strip() == "127.0.0.1:8383"
        assert "127.0.0.1:8383->80/tcp" in daemon.docker("ps").stdout
        p = daemon.berth("run", "--rm", "--network", name, "--dns", "10.9.8.7", "--add-host", "h.x:10.0.0.1",
                         "busybox", "sh", "-c", "timeout 5 wget -qO- http://bw/hostname; cat /etc/resolv.conf")
        assert inspect(daemon, "bsrv")["Id"][:12] in p.stdout and "nameserver 10.9.8.7" in p.stdout
        daemon.berth("run", "-d", "--name", "bcli", "busybox", "sleep", "600")
        daemon.berth("network", "connect", "--alias", "bc", name, "bcli")
        net = json.loads(daemon.berth("network", "inspect", name).stdout)[0]
        assert {c["Name"] for c in net["Containers"].values()} == {"bsrv", "bcli"}
        assert net["IPAM"]["Config"][0]["Subnet"] == "10.254.9.0/24"
        assert "10.254.9.50/24" in {c["IPv4Address"] for c in net["Containers"].values()}
        daemon.berth("network", "disconnect", name, "bcli")
        p = daemon.berth("network", "rm", name, check=False)
        assert p.returncode == 1 and "active endpoints" in p.stderr
        p = daemon.berth("network", "inspect", "nosuchnet", check=False)
        assert p.returncode == 1 and "not found" in p.stderr
    finally:
        daemon.berth("rm", "-f", "bsrv", "bcli", check=False)
        daemon.berth("network", "rm", name, check=False)
    assert name not in {n["Name"] for n in networks(daemon)}


# --- a container keeps its addresses across restarts (docker's behaviour) -------------------

def addrs(daemon, ctr):
    """{network: (IPv4, MAC)} of a running container."""
    nets = inspect(daemon, ctr)["NetworkSettings"]["Networks"]
    return {n: (ep["IPAddress"], ep["MacAddress"]) for n, ep in nets.items()}


def test_restart_and_stop_start_keep_ip_and_mac_until_rm(daemon, usernet):
    before_pool = leases(daemon)
    daemon.docker("run", "-d", "--name", "keep1", "--network", usernet, "busybox", "sleep", "600")
    daemon.docker("network", "connect", "bridge", "keep1")
    first = addrs(daemon, "keep1")
    assert set(first) == {usernet, "bridge"} and all(ip and mac for ip, mac in first.values())
    daemon.docker("restart", "-t", "0", "keep1")
    assert addrs(daemon, "keep1") == first
    daemon.docker("stop", "-t", "0", "keep1")
    # while it is stopped, another container on the same networks gets other addresses
    daemon.docker("run", "-d", "--name", "keep1b", "--network", usernet, "busybox", "sleep", "600")
    daemon.docker("network", "connect", "bridge", "keep1b")
    other = addrs(daemon, "keep1b")
    assert {ip for ip, _ in other.values()}.isdisjoint(ip for ip, _ in first.values())
    daemon.docker("start", "keep1")
    assert addrs(daemon, "keep1") == first
    # the peer resolves the name to the same address as before
    out = daemon.docker("exec", "keep1b", "sh", "-c", "ping -c 1 -W 2 keep1").stdout
    assert f"({first[usernet][0]})" in out
    daemon.docker("rm", "-f", "keep1", "keep1b")
    assert leases(daemon) == before_pool


def test_an_exhausted_pool_does_not_hand_out_a_stopped_containers_ip(daemon):
    name = "tiny" + uuid.uuid4().hex[:6]
    # two addresses: .5 and .6
    daemon.docker("network", "create", "--subnet", "10.248.3.0/24", "--ip-range", "10.248.3.4/30", name)
    try:
        daemon.docker("run", "-d", "--name", "owner", "--network", name, "busybox", "sleep", "600")
        ip = addrs(daemon, "owner")[name][0]
        daemon.docker("stop", "-t", "0", "owner")
        daemon.docker("run", "-d", "--name", "squat1", "--network", name, "busybox", "sleep", "600")
        assert addrs(daemon, "squat1")[name][0] != ip
        p = daemon.docker("run", "-d", "--name", "squat2", "--network", name, "busybox", "sleep", "600",
                          check=False)
        if p.returncode == 0:
            assert addrs(daemon, "squat2")[name][0] != ip
        else:
            assert "no IP addresses available" in p.stderr, p.stderr
        daemon.docker("rm", "-f", "squat1", "squat2", check=False)
        daemon.docker("start", "owner")
        assert addrs(daemon, "owner")[name][0] == ip
        # rm frees it: the next container can have it
        daemon.docker("rm", "-f", "owner")
        daemon.docker("run", "-d", "--name", "heir", "--network", name, "--ip", ip, "busybox", "sleep", "600")
    finally:
        daemon.docker("rm", "-f", "owner", "squat1", "squat2", "heir", check=False)
        daemon.docker("network", "rm", name)


def test_static_ip_is_kept_while_stopped_and_disconnect_frees_it(daemon):
    name = "stk" + uuid.uuid4().hex[:6]
    daemon.docker("network", "create", "--subnet", "10.248.4.0/24", name)
    try:
        daemon.docker("run", "-d", "--name", "fixed", "--network", name, "--ip", "10.248.4.40", "busybox",
                      "sleep", "600")
        first = addrs(daemon, "fixed")
        daemon.docker("stop", "-t", "0", "fixed")
        p = daemon.docker("run", "-d", "--name", "thief", "--network", name, "--ip", "10.248.4.40", "busybox",
                          "sleep", "600", check=False)
        assert p.returncode != 0 and "already in use" in p.stderr, p.stderr
        daemon.docker("rm", "-f", "thief")
        daemon.docker("start", "fixed")
        assert addrs(daemon, "fixed") == first
        daemon.docker("stop", "-t", "0", "fixed")
        daemon.docker("network", "disconnect", name, "fixed")
        assert name not in leases(daemon)
        daemon.docker("run", "-d", "--name", "thief", "--network", name, "--ip", "10.248.4.40", "busybox",
                      "sleep", "600")
    finally:
        daemon.docker("rm", "-f", "fixed", "thief", check=False)
        daemon.docker("network", "rm", name)


def test_restart_policy_restart_keeps_ip_and_mac(daemon):
    # first run: note the address, exit 1; the policy restarts it; second run: note it again, stay
    script = ("ip -o -4 addr show eth0 | awk '{print $4}' >> /seen; cat /sys/class/net/eth0/address >> /seen; "
              "[ -e /again ] || { touch /again; exit 1; }; exec sleep 600")
    daemon.docker("run", "-d", "--name", "pol", "--restart", "on-failure", "busybox", "sh", "-c", script)
    try:
        wait_for(lambda: inspect(daemon, "pol")["RestartCount"] >= 1 and
                 inspect(daemon, "pol")["State"]["Running"] and
                 len(daemon.docker("exec", "pol", "cat", "/seen", check=False).stdout.split()) == 4)
        ip1, mac1, ip2, mac2 = daemon.docker("exec", "pol", "cat", "/seen").stdout.split()
        assert (ip1, mac1) == (ip2, mac2)
        ip, mac = addrs(daemon, "pol")["bridge"]
        assert ip1.split("/")[0] == ip and mac1 == mac
    finally:
        daemon.docker("rm", "-f", "pol")


def test_daemon_restart_keeps_addresses_of_running_and_stopped_containers(daemon, usernet):
    daemon.docker("run", "-d", "--name", "live6", "--network", usernet, "busybox", "sleep", "600")
    daemon.docker("run", "-d", "--name", "stopped6", "--network", usernet, "busybox", "sleep", "600")
    daemon.docker("run", "-d", "--name", "died6", "--network", usernet, "busybox", "sleep", "600")
    live, stopped, died = (addrs(daemon, c) for c in ("live6", "stopped6", "died6"))
    daemon.docker("stop", "-t", "0", "stopped6")
    daemon.stop(signal.SIGTERM)
    daemon.start()
    died_pid = inspect(daemon, "died6")["State"]["Pid"]
    daemon.stop(signal.SIGKILL)
    os.kill(died_pid, signal.SIGKILL)  # exits while no daemon runs: collected by gc, address kept
    daemon.start()
    # the shim may still be recording that exit when the daemon comes back: it then learns of it at once after
    wait_for(lambda: inspect(daemon, "died6")["State"]["Status"] == "exited")
    assert addrs(daemon, "live6") == live
    # newcomers do not get the addresses of the stopped ones
    daemon.docker("run", "-d", "--name", "new6", "--network", usernet, "busybox", "sleep", "600")
    taken = {ip for a in (stopped, died) for ip, _ in a.values()}
    assert {ip for ip, _ in addrs(daemon, "new6").values()}.isdisjoint(taken)
    daemon.docker("start", "stopped6", "died6")
    assert addrs(daemon, "stopped6") == stopped and addrs(daemon, "died6") == died
    daemon.remove_all()
    assert_no_network_state(daemon)


def test_docker_py_restart_and_stop_start_keep_ip(daemon, usernet):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host)
    try:
        c = client.containers.run("busybox", ["sleep", "600"], detach=True, name="pykeep", network=usernet)
        c.reload()
        ip = c.attrs["NetworkSettings"]["Networks"][usernet]["IPAddress"]
        c.restart(timeout=0)
        c.reload()
        assert c.attrs["NetworkSettings"]["Networks"][usernet]["IPAddress"] == ip
        c.stop(timeout=0)
        c.start()
        c.reload()
        assert c.attrs["NetworkSettings"]["Networks"][usernet]["IPAddress"] == ip
        c.remove(force=True)
    finally:
        for x in client.containers.list(all=True, filters={"name": "pykeep"}):
            x.remove(force=True)
        client.close()


# --- endpoint settings as dockerd 20.10 shows and applies them (issue 19, Docker API item 2) ----------

def test_network_name_with_spaces_and_auxiliary_addresses(daemon):
    name = "my net " + uuid.uuid4().hex[:4]
    # two addresses in the range: .5 (auxiliary, never handed out) and .6
    daemon.docker("network", "create", "--subnet", "10.248.9.0/24", "--ip-range", "10.248.9.4/30",
                  "--aux-address", "host1=10.248.9.5", name)
    try:
        ipam = json.loads(daemon.docker("network", "inspect", name).stdout)[0]["IPAM"]["Config"][0]
        assert ipam["AuxiliaryAddresses"] == {"host1": "10.248.9.5"}
        daemon.docker("run", "-d", "--name", "aux1", "--network", name, "busybox", "sleep", "600")
        assert inspect(daemon, "aux1")["NetworkSettings"]["Networks"][name]["IPAddress"] == "10.248.9.6"
        r = daemon.docker("run", "-d", "--name", "aux2", "--network", name, "--ip", "10.248.9.5", "busybox",
                          "sleep", "600", check=False)
        assert r.returncode != 0 and "already in use" in r.stderr, r.stderr
        st, body = daemon.json("POST", "/networks/create", {"Name": "aux-bad", "IPAM": {"Config": [
            {"Subnet": "10.248.10.0/24", "AuxiliaryAddresses": {"x": "10.9.9.9"}}]}})
        assert st == 400 and "not inside subnet" in body["message"], body
    finally:
        daemon.docker("rm", "-f", "aux1", "aux2", check=False)
        daemon.docker("network", "rm", name)
    assert not any(n["Name"] in (name, "aux-bad") for n in networks(daemon))


def test_docker_py_endpoint_settings_mac_and_aliases(daemon, usernet):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host)
    api = client.api
    net = json.loads(daemon.docker("network", "inspect", usernet).stdout)[0]
    prefix = net["IPAM"]["Config"][0]["Subnet"].rsplit(".", 1)[0]
    try:
        # Config.MacAddress applies to the network mode's endpoint; IPAMConfig is echoed
        cid = api.create_container(
            "busybox", ["sleep", "600"], name="pyep", mac_address="02:42:ac:11:00:99",
            host_config=api.create_host_config(network_mode=usernet),
            networking_config=api.create_networking_config(
                {usernet: api.create_endpoint_config(aliases=["foo"], ipv4_address=prefix + ".50")}))["Id"]
        ep = api.inspect_container(cid)["NetworkSettings"]["Networks"][usernet]
        assert ep["Aliases"] == ["foo"] and ep["IPAMConfig"] == {"IPv4Address": prefix + ".50"}
        assert ep["Links"] is None and ep["DriverOpts"] is None
        api.start(cid)
        ep = api.inspect_container(cid)["NetworkSettings"]["Networks"][usernet]
        assert ep["Aliases"] == ["foo", cid[:12]]  # the short id, never the name (dockerd 20.10)
        assert ep["IPAMConfig"] == {"IPv4Address": prefix + ".50"} and ep["IPAddress"] == prefix + ".50"
        assert ep["MacAddress"] == "02:42:ac:11:00:99"
        assert api.exec_start(api.exec_create(cid, ["cat", "/sys/class/net/eth0/address"])) == \
            b"02:42:ac:11:00:99\n"
        # connect: DriverOpts, Links and aliases as given
        client.networks.get("bridge").connect(cid, aliases=None, driver_opt={"com.example.x": "1"})
        other = "other" + uuid.uuid4().hex[:4]
        client.networks.create(other)
        client.networks.get(other).connect(cid, aliases=["z1"], links=[("pyep", "self")],
                                           driver_opt={"com.example.y": "2"})
        nets = api.inspect_container(cid)["NetworkSettings"]["Networks"]
        assert nets["bridge"]["DriverOpts"] == {"com.example.x": "1"} and nets["bridge"]["Aliases"] is None
        assert nets[other]["Aliases"] == ["z1", cid[:12]] and nets[other]["Links"] == ["pyep:self"]
        assert nets[other]["DriverOpts"] == {"com.example.y": "2"}
        # the name still resolves on the user network although it is not an alias
        daemon.docker("run", "--rm", "--network", usernet, "busybox", "ping", "-c", "3", "-W", "5", "pyep")
        api.remove_container(cid, force=True)
        client.networks.get(other).remove()
        with pytest.raises(docker.errors.APIError, match="invalid MAC address"):
            api.create_container("busybox", "true", mac_address="02:42:zz:11:00:99")
    finally:
        for x in client.containers.list(all=True, filters={"name": "pyep"}):
            x.remove(force=True)
        client.close()


def test_cli_per_network_mac_address_api_1_44(daemon, usernet):
    env = dict(daemon.env, DOCKER_API_VERSION="1.44")
    run([conftest_docker(), "run", "-d", "--name", "climac", "--network", usernet, "--mac-address",
         "02:42:ac:11:00:42", "busybox", "sleep", "600"], env=env)
    try:
        assert inspect(daemon, "climac")["NetworkSettings"]["Networks"][usernet]["MacAddress"] == \
            "02:42:ac:11:00:42"
        assert daemon.docker("exec", "climac", "cat", "/sys/class/net/eth0/address").stdout == \
            "02:42:ac:11:00:42\n"
        daemon.docker("restart", "-t", "0", "climac")
        assert daemon.docker("exec", "climac", "cat", "/sys/class/net/eth0/address").stdout == \
            "02:42:ac:11:00:42\n"
    finally:
        daemon.docker("rm", "-f", "climac")


def conftest_docker():
    from engine_daemon import DOCKER
    return DOCKER


def test_a_bridge_left_with_another_address_is_adopted(daemon, berth_bin, busybox):
    """Issue 19 item 9: a bridge of an earlier daemon (another root, another subnet) under the default
    network's bridge name: the new daemon takes its address as dockerd does with docker0."""
    br = "bt" + uuid.uuid4().hex[:8]
    daemon.in_netns("ip", "link", "add", br, "type", "bridge")
    second = None
    try:
        daemon.in_netns("ip", "addr", "add", "10.251.0.1/16", "dev", br)
        second = NetnsDaemon(berth_bin, netns=daemon.netns)
        second.extra_args = ["--bridge", br]
        second.start()
        second.load_busybox(busybox)
        cfg = json.loads(second.docker("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]
        assert (cfg["Subnet"], cfg["Gateway"]) == ("10.251.0.0/16", "10.251.0.1")
        out = second.docker("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0; ip route").stdout
        assert " 10.251." in out and "default via 10.251.0.1" in out, out
        second.remove_all()
    finally:
        if second:
            second.cleanup()
        daemon.in_netns("ip", "link", "delete", br, check=False)


def test_default_bridge_ipv6_from_daemon_flags(daemon, berth_bin, busybox):
    """The default network is dual stack with dockerd's --ipv6 --fixed-cidr-v6: containers on it get
    an address of that subnet and reach each other and the gateway over IPv6; the flags without each
    other are refused at start; a start without them makes it IPv4-only again."""
    base = os.path.join(daemon.base, "v6flags")
    for args, msg in ((["--ipv6"], "--ipv6 needs --fixed-cidr-v6"),
                      (["--fixed-cidr-v6", "fd00:db8:90::/64"], "--fixed-cidr-v6 needs --ipv6"),
                      (["--ipv6", "--fixed-cidr-v6", "fd00:db8:90::1/64"], "host bits")):
        p = daemon.in_netns(berth_bin, "daemon", "--root", base + "/root", "--exec-root", base + "/run",
                            "--bridge", "bx" + uuid.uuid4().hex[:6], *args, check=False, timeout=30)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
    br = "b6" + uuid.uuid4().hex[:8]
    second = None
    try:
        second = NetnsDaemon(berth_bin, netns=daemon.netns)
        second.extra_args = ["--bridge", br, "--ipv6", "--fixed-cidr-v6", "fd00:db8:90::/64"]
        second.start()
        second.load_busybox(busybox)
        net = json.loads(second.docker("network", "inspect", "bridge").stdout)[0]
        assert net["EnableIPv6"] is True, net
        assert {"Subnet": "fd00:db8:90::/64", "Gateway": "fd00:db8:90::1"} in net["IPAM"]["Config"], net
        second.docker("run", "-d", "--name", "d6a", "busybox", "sleep", "600")
        ep = inspect(second, "d6a")["NetworkSettings"]["Networks"]["bridge"]
        assert ep["GlobalIPv6Address"].startswith("fd00:db8:90::") and ep["IPv6Gateway"] == "fd00:db8:90::1", ep
        out = second.docker("run", "--rm", "busybox", "sh", "-c",
                            f"ip -6 -o addr show eth0; ping -6 -c 1 -W 5 {ep['GlobalIPv6Address']} && "
                            "ping -6 -c 1 -W 5 fd00:db8:90::1").stdout
        assert "fd00:db8:90::" in out and out.count("1 packets received") == 2, out
        # the flags are refused while a container holds an address of the old subnet
        second.stop()
        second.extra_args = ["--bridge", br]
        with pytest.raises(AssertionError, match="containers are attached"):
            second.start()
        second.extra_args = ["--bridge", br, "--ipv6", "--fixed-cidr-v6", "fd00:db8:90::/64"]
        second.start()
        second.remove_all()
        # without the flags (and without containers) the default network is IPv4-only again
        second.stop()
        second.extra_args = ["--bridge", br]
        second.start()
        net = json.loads(second.docker("network", "inspect", "bridge").stdout)[0]
        assert net["EnableIPv6"] is False and all(":" not in c["Subnet"] for c in net["IPAM"]["Config"]), net
        assert "fd00:db8:90" not in daemon.in_netns("ip6tables", "-t", "nat", "-S").stdout
    finally:
        if second:
            second.cleanup()
        daemon.in_netns("ip", "link", "delete", br, check=False)


def test_dual_stack_network_ping_nat_and_published_port_over_ipv6(daemon):
    """Issue 19 item 10: a dual-stack bridge network (ULA subnet): both addresses, ping -6 between
    containers, outbound MASQUERADE over IPv6 to a server in a namespace that has no route back to
    the containers' subnet, a port published over IPv6, and docker-py's inspect fields."""
    docker = pytest.importorskip("docker")
    name = "v6" + uuid.uuid4().hex[:6]
    outer = conftest.NETNS_PREFIX + "v6out-" + uuid.uuid4().hex[:6]
    veth = "v6" + uuid.uuid4().hex[:6]
    www = os.path.join(daemon.base, "www6")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("hello6\n")
    server = None
    client = docker.DockerClient(base_url=daemon.host)
    before = {n["Name"] for n in networks(daemon)}
    for body, msg in (({"EnableIPv6": True}, "need an IPv6 subnet"),
                      ({"IPAM": {"Config": [{"Subnet": "fd00:db8:78::/64"}]}}, "needs IPv6 enabled"),
                      ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:db8:78::1/64"}]}}, "host bits"),
                      ({"EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:db8:78::/64",
                                                                 "Gateway": "fd00:db9::1"}]}}, "not in subnet")):
        st, resp = daemon.json("POST", "/networks/create", dict(body, Name=name + "bad"))
        assert st == 400 and msg in resp["message"], (body, resp)
    assert {n["Name"] for n in networks(daemon)} == before
    daemon.docker("network", "create", "--ipv6", "--subnet", "fd00:db8:77::/64", name)
    try:
        run(["ip", "netns", "add", outer])
        conftest._created_netns.add(outer)
        run(["ip", "link", "add", veth, "netns", daemon.netns, "type", "veth", "peer", "name", veth + "b",
             "netns", outer])
        daemon.in_netns("ip", "addr", "add", "fd00:beef:77::1/64", "dev", veth, "nodad")
        daemon.in_netns("ip", "link", "set", veth, "up")
        run(["ip", "-n", outer, "addr", "add", "fd00:beef:77::2/64", "dev", veth + "b", "nodad"])
        run(["ip", "-n", outer, "link", "set", veth + "b", "up"])
        server = subprocess.Popen(["ip", "netns", "exec", outer, "busybox", "httpd", "-f", "-p",
                                   "[fd00:beef:77::2]:8081", "-h", www])
        net = client.networks.get(name).attrs
        assert net["EnableIPv6"] is True
        assert {"Subnet": "fd00:db8:77::/64", "Gateway": "fd00:db8:77::1"} in net["IPAM"]["Config"]
        httpd(daemon, "srv6", "--network", name, "-p", "18086:80")
        daemon.docker("run", "-d", "--name", "cli6", "--network", name, "busybox", "sleep", "600")
        srv = client.containers.get("srv6").attrs["NetworkSettings"]["Networks"][name]
        assert srv["GlobalIPv6Address"].startswith("fd00:db8:77::") and srv["GlobalIPv6PrefixLen"] == 64
        assert srv["IPv6Gateway"] == "fd00:db8:77::1" and srv["IPAddress"]
        assert srv["GlobalIPv6Address"] in daemon.docker("exec", "srv6", "ip", "-6", "addr", "show", "eth0").stdout
        # containers reach each other over IPv6, by address and by name
        for target in (srv["GlobalIPv6Address"], "srv6"):
            out = daemon.docker("exec", "cli6", "ping", "-6", "-c", "1", "-W", "2", target).stdout
            assert f"from {srv['GlobalIPv6Address']}" in out, out
        # a static IPv6 address (--ip6), and one outside the subnet refused
        daemon.docker("run", "-d", "--name", "fix6", "--network", name, "--ip6", "fd00:db8:77::99", "busybox",
                      "sleep", "600")
        ep = client.containers.get("fix6").attrs["NetworkSettings"]["Networks"][name]
        assert ep["GlobalIPv6Address"] == "fd00:db8:77::99" and ep["IPAMConfig"] == {"IPv6Address": "fd00:db8:77::99"}
        r = daemon.docker("run", "--rm", "--network", name, "--ip6", "fd00:db9::5", "busybox", "true", check=False)
        assert r.returncode != 0 and "not available" in r.stderr, r.stderr
        # outbound: masqueraded to the daemon side's address (the outer namespace has no route back)
        get = 'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 3 fd00:beef:77::2 8081'
        out = wait_for(lambda: daemon.docker("exec", "cli6", "sh", "-c", get, check=False).stdout, timeout=10)
        assert "hello6" in out, out
        # a published port over IPv6 (inspect lists the [::] binding as dockerd does)
        assert client.containers.get("srv6").attrs["NetworkSettings"]["Ports"]["80/tcp"] == [
            {"HostIp": "0.0.0.0", "HostPort": "18086"}, {"HostIp": "::", "HostPort": "18086"}]
        out = daemon.in_netns("curl", "-s", "-g", "-m", "5", "http://[fd00:beef:77::1]:18086/hostname").stdout
        assert out.strip() == client.containers.get("srv6").id[:12]
        # both addresses are kept across a restart, and while stopped nobody gets them
        daemon.docker("restart", "-t", "0", "srv6")
        again = client.containers.get("srv6").attrs["NetworkSettings"]["Networks"][name]
        assert (again["IPAddress"], again["GlobalIPv6Address"]) == (srv["IPAddress"], srv["GlobalIPv6Address"])
        daemon.docker("stop", "-t", "0", "fix6")
        r = daemon.docker("run", "--rm", "--network", name, "--ip6", "fd00:db8:77::99", "busybox", "true",
                          check=False)
        assert r.returncode != 0 and "already in use" in r.stderr, r.stderr
        daemon.docker("start", "fix6")
        assert client.containers.get("fix6").attrs["NetworkSettings"]["Networks"][name]["GlobalIPv6Address"] == \
            "fd00:db8:77::99"
    finally:
        client.close()
        if server:
            server.kill()
            server.wait()
        daemon.docker("rm", "-f", "srv6", "cli6", "fix6", check=False)
        daemon.docker("network", "rm", name, check=False)
        daemon.in_netns("ip", "link", "delete", veth, check=False)
        subprocess.run(["ip", "netns", "delete", outer], capture_output=True)
    # the network's ip6tables rules went with it
    assert "fd00:db8:77" not in daemon.in_netns("ip6tables", "-t", "nat", "-S").stdout



def test_ipv6_ip_range_of_a_dual_stack_network(daemon):
    """`docker network create --ipv6 --subnet V4 --subnet V6 --ip-range V6RANGE`: containers get
    IPv6 addresses from the range only (dockerd's IPRange of the IPv6 IPAM config), inspect shows
    it, a static --ip6 may sit outside it, and a range outside the subnet is refused."""
    name = "r6" + uuid.uuid4().hex[:6]
    # (the docker CLI already refuses a range outside every subnet; the API checks it too)
    for rng, msg in (("fd00:db8:67::/120", "not inside subnet"), ("fd00:db8:66::1/120", "host bits"),
                     ("fd00:db8::/48", "not inside subnet")):
        st, resp = daemon.json("POST", "/networks/create", {"Name": name + "x", "EnableIPv6": True, "IPAM": {
            "Config": [{"Subnet": "fd00:db8:66::/64", "IPRange": rng}]}})
        assert st == 400 and msg in resp["message"], (rng, resp)
    daemon.docker("network", "create", "--ipv6", "--subnet", "10.66.0.0/24", "--subnet", "fd00:db8:66::/64",
                  "--ip-range", "10.66.0.128/25", "--ip-range", "fd00:db8:66::1:0/120", name)
    try:
        cfg = json.loads(daemon.docker("network", "inspect", name).stdout)[0]["IPAM"]["Config"]
        assert {"Subnet": "fd00:db8:66::/64", "Gateway": "fd00:db8:66::1", "IPRange": "fd00:db8:66::1:0/120"} in cfg
        assert {"Subnet": "10.66.0.0/24", "Gateway": "10.66.0.1", "IPRange": "10.66.0.128/25"} in cfg
        daemon.docker("run", "-d", "--name", "inr6", "--network", name, "busybox", "sleep", "600")
        ep = inspect(daemon, "inr6")["NetworkSettings"]["Networks"][name]
        assert ep["GlobalIPv6Address"].startswith("fd00:db8:66::1:"), ep
        assert ep["IPAddress"].startswith("10.66.0.") and int(ep["IPAddress"].split(".")[3]) > 128, ep
        # a static address outside the range but inside the subnet, as dockerd allows
        daemon.docker("run", "-d", "--name", "fixr6", "--network", name, "--ip6", "fd00:db8:66::42", "busybox",
                      "sleep", "600")
        assert inspect(daemon, "fixr6")["NetworkSettings"]["Networks"][name]["GlobalIPv6Address"] == "fd00:db8:66::42"
        out = daemon.docker("exec", "inr6", "ping", "-6", "-c", "1", "-W", "2", "fd00:db8:66::42").stdout
        assert "from fd00:db8:66::42" in out, out
    finally:
        daemon.docker("rm", "-f", "inr6", "fixr6", check=False)
        daemon.docker("network", "rm", name, check=False)


def test_publish_on_ipv6_loopback_is_forwarded(daemon):
    """`-p [::1]:PORT:80` answers on [::1]:PORT as with dockerd (its docker-proxy: the kernel cannot
    DNAT IPv6 loopback traffic to a bridge), also after a restart; the forwarder goes with the
    container, and a taken port is refused."""
    httpd(daemon, "pub6lo", "-p", "[::1]:8090:80")
    try:
        cid = inspect(daemon, "pub6lo")["Id"]
        # (older docker CLIs print the address without brackets)
        assert daemon.docker("port", "pub6lo").stdout.strip() in ("80/tcp -> [::1]:8090", "80/tcp -> ::1:8090")
        url = "http://[::1]:8090/hostname"
        out = wait_for(lambda: daemon.in_netns("curl", "-sfg", "--max-time", "5", url, check=False).stdout)
        assert out.strip() == cid[:12]
        # not on the IPv4 loopback, not on the other addresses
        assert daemon.in_netns("curl", "-sf", "--max-time", "2", "http://127.0.0.1:8090/", check=False).returncode != 0
        # an outside process holding the port: the start fails and says so
        holder = subprocess.Popen(["nsenter", f"--net=/run/netns/{daemon.netns}", "/usr/bin/python3", "-c",
                                   "import socket,sys; s=socket.socket(socket.AF_INET6); s.bind(('::1',8091)); "
                                   "s.listen(); print('ok', flush=True); sys.stdin.read()"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "ok"
            r = daemon.docker("run", "-d", "--name", "pub6b", "-p", "[::1]:8091:80", "busybox", "sleep", "60",
                              check=False)
            assert r.returncode != 0 and "bind for ::1:8091/tcp failed: port is already allocated" in r.stderr, r.stderr
        finally:
            holder.kill()
            holder.wait()
        daemon.docker("restart", "-t", "0", "pub6lo")
        out = wait_for(lambda: daemon.in_netns("curl", "-sfg", "--max-time", "5", url, check=False).stdout)
        assert out.strip() == cid[:12]
        daemon.docker("stop", "-t", "0", "pub6lo")
        assert daemon.in_netns("curl", "-sfg", "--max-time", "2", url, check=False).returncode != 0
        assert "]:8090" not in daemon.in_netns("ss", "-ltn").stdout  # the forwarder went with it
    finally:
        daemon.docker("rm", "-f", "pub6lo", "pub6b", check=False)
    assert "]:8090" not in daemon.in_netns("ss", "-ltn").stdout


def test_network_events(daemon):
    """create, connect, disconnect and destroy are dockerd's network events (there were none):
    Actor the network's ID, attributes its name and type and the container's ID."""
    import time
    d = daemon
    since = time.time()
    name = "evnet" + uuid.uuid4().hex[:6]
    d.docker("network", "create", name)
    net_id = inspect(d, name)["Id"]
    cid = d.docker("create", "busybox", "true").stdout.strip()
    try:
        d.docker("network", "connect", name, cid)
        d.docker("network", "disconnect", name, cid)
    finally:
        d.docker("rm", "-f", cid)
        d.docker("network", "rm", name)
    out = d.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time() + 1:.3f}", "--filter",
                   "type=network", "--filter", f"network={name}", "--format", "{{json .}}").stdout
    evs = [json.loads(line) for line in out.splitlines()]
    assert [e["Action"] for e in evs] == ["create", "connect", "disconnect", "destroy"], evs
    assert all(e["Actor"]["ID"] == net_id and e["Actor"]["Attributes"]["name"] == name for e in evs), evs
    assert evs[1]["Actor"]["Attributes"]["container"] == cid and evs[1]["Actor"]["Attributes"]["type"] == "bridge"
