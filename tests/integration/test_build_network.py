"""RUN steps of a build get networking like dockerd's classic builder gives them.

The daemon runs in a network namespace of this module ("inside"); a second namespace
("outside") joined to it by a veth pair holds an HTTP server. The inside namespace has a
route to the server, the outside one has none back to the containers' subnets: a RUN step
on a bridge network reaches the server only through the daemon's outbound NAT, as a
`RUN apt-get install` reaches a mirror. Builds come from the docker CLI (DOCKER_BUILDKIT=0)
and `berth build`, with --network default/bridge/host/<user network>/none and --add-host;
afterwards no veth, lease, kept address, netns or iptables rule of a RUN container is left.
"""
import subprocess
import uuid

import pytest

import conftest
from conftest import run
from test_engine_network import NetnsDaemon, assert_no_network_state

INSIDE_IP, OUTSIDE_IP = "10.123.45.1", "10.123.45.2"
TOKEN = "payload-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def env(berth_bin, busybox, tmp_path_factory):
    """(daemon, server port): the daemon inside, python's http.server outside."""
    inside = conftest.NETNS_PREFIX + "bld-" + uuid.uuid4().hex[:8]
    outside = inside + "-o"
    d = server = None
    try:
        for ns in (inside, outside):
            run(["ip", "netns", "add", ns])
            conftest._created_netns.add(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", inside, "link", "add", "bo0", "type", "veth", "peer", "name", "bo1", "netns", outside])
        run(["ip", "-n", inside, "addr", "add", INSIDE_IP + "/30", "dev", "bo0"])
        run(["ip", "-n", outside, "addr", "add", OUTSIDE_IP + "/30", "dev", "bo1"])
        run(["ip", "-n", inside, "link", "set", "bo0", "up"])
        run(["ip", "-n", outside, "link", "set", "bo1", "up"])
        www = tmp_path_factory.mktemp("www")
        (www / "payload").write_text(TOKEN + "\n")
        server = subprocess.Popen(["nsenter", f"--net=/run/netns/{outside}", "/usr/bin/python3", "-u", "-m",
                                   "http.server", "--bind", OUTSIDE_IP, "--directory", str(www), "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = server.stdout.readline()  # "Serving HTTP on 10.123.45.2 port N (...)": it listens
        port = int(line.split(" port ")[1].split()[0])
        d = NetnsDaemon(berth_bin, netns=inside)
        d.start()
        d.load_busybox(busybox)
        yield d, port
        d.remove_all()
        assert_no_network_state(d)
        assert_no_run_container_rules(d)
    finally:
        if server:
            server.kill()
            server.wait()
        if d:
            d.cleanup()
        for ns in (inside, outside):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def assert_no_run_container_rules(d):
    """portmap/bridge leave no per-container chain or rule in the daemon's namespace."""
    for table in ("nat", "filter"):
        rules = d.in_netns("iptables", "-t", table, "-S").stdout
        assert "CNI-" not in rules, rules


def context(tmp_path, dockerfile):
    ctx = tmp_path / ("ctx-" + uuid.uuid4().hex[:6])
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    return str(ctx)


def fetch_df(host=OUTSIDE_IP, port=0, extra=""):
    # the token makes every Dockerfile new: no step comes from the cache
    return (f"FROM busybox\nRUN echo {uuid.uuid4().hex} && timeout 10 wget -qO- http://{host}:{port}/payload"
            f"{extra}\n")


def docker_build(d, ctx, *args):
    return subprocess.run(["/usr/bin/docker", "build", *args, ctx], capture_output=True, text=True,
                          env=dict(d.env, DOCKER_BUILDKIT="0"), timeout=180)


def berth_build(d, ctx, *args):
    return d.berth("build", *args, ctx, check=False, timeout=180)


def between(out, begin="BEGIN", end="END"):
    return out.split(begin + "\n", 1)[1].split(end + "\n", 1)[0]


@pytest.mark.parametrize("how", [docker_build, berth_build], ids=["docker", "berth"])
@pytest.mark.parametrize("network", [None, "default", "bridge", "host"])
def test_run_fetches_over_the_network(env, tmp_path, how, network):
    d, port = env
    df = fetch_df(port=port, extra=" && echo BEGIN && cat /etc/resolv.conf && echo END")
    p = how(d, context(tmp_path, df), *(["--network", network] if network else []))
    assert p.returncode == 0, p.stdout + p.stderr
    assert TOKEN in p.stdout
    # the DNS settings a container run on that network gets
    ran = d.docker("run", "--rm", "--network", network or "default", "busybox", "cat", "/etc/resolv.conf").stdout
    assert between(p.stdout) == ran and "nameserver" in ran


@pytest.mark.parametrize("how", [docker_build, berth_build], ids=["docker", "berth"])
def test_run_on_a_user_network(env, tmp_path, how):
    d, port = env
    name = "bn" + uuid.uuid4().hex[:6]
    d.docker("network", "create", "--subnet", "10.249.7.0/24", name)
    try:
        df = fetch_df(port=port, extra=" && echo BEGIN && ip -4 -o addr show eth0 && echo END")
        p = how(d, context(tmp_path, df), "--network", name)
        assert p.returncode == 0, p.stdout + p.stderr
        assert TOKEN in p.stdout
        assert " inet 10.249.7." in between(p.stdout)
    finally:
        d.docker("network", "rm", name)


@pytest.mark.parametrize("how", [docker_build, berth_build], ids=["docker", "berth"])
def test_run_with_network_none_cannot_fetch(env, tmp_path, how):
    d, port = env
    p = how(d, context(tmp_path, fetch_df(port=port)), "--network", "none")
    assert p.returncode != 0
    assert "returned a non-zero code" in p.stdout + p.stderr
    assert TOKEN not in p.stdout


def test_unknown_build_network_is_a_clear_error(env, tmp_path):
    d, port = env
    p = berth_build(d, context(tmp_path, fetch_df(port=port)), "--network", "nosuchnet")
    assert p.returncode != 0 and "network 'nosuchnet' not found" in p.stdout + p.stderr


@pytest.mark.parametrize("how", [docker_build, berth_build], ids=["docker", "berth"])
@pytest.mark.parametrize("network", ["default", "host"])
def test_add_host_reaches_run_steps(env, tmp_path, how, network):
    d, port = env
    df = fetch_df(host="mirror.test", port=port, extra=" && echo BEGIN && cat /etc/hosts && echo END")
    p = how(d, context(tmp_path, df), "--network", network, "--add-host", f"mirror.test:{OUTSIDE_IP}",
            "--add-host", "other.test:10.9.9.9")
    assert p.returncode == 0, p.stdout + p.stderr
    assert TOKEN in p.stdout
    hosts = between(p.stdout)
    assert f"{OUTSIDE_IP}\tmirror.test" in hosts and "10.9.9.9\tother.test" in hosts


def test_failed_and_finished_run_steps_leave_no_network_state(env, tmp_path):
    d, port = env
    ok = berth_build(d, context(tmp_path, fetch_df(port=port)))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = berth_build(d, context(tmp_path, fetch_df(port=port, extra=" && exit 3")))
    assert bad.returncode != 0 and "returned a non-zero code: 3" in bad.stdout + bad.stderr
    docker_bad = docker_build(d, context(tmp_path, fetch_df(port=port, extra=" && exit 4")), "--network", "bridge")
    assert docker_bad.returncode != 0
    assert d.json("GET", "/containers/json?all=1")[1] == []
    assert_no_network_state(d)
    assert_no_run_container_rules(d)
