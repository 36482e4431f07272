"""Shared pytest fixtures for berth's integration tests.

Every test gets isolated state: its own berth root and exec root under a temp
directory, and, when it asks for `netns`, its own network namespace. Teardown
unmounts and removes whatever a test left, even when the test failed, and the
session ends by checking that nothing leaked (mounts, netns, processes).
"""
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MKIMAGE = os.path.join(REPO, "scripts", "mkimage")
NETNS_PREFIX = "berth-test-"
# Unique per pytest session: the leak check must only ever look at (and clean)
# what this session created, never at another session running on the machine.
TMP_PREFIX = f"berth-it-{os.getpid()}-"
_created_netns = set()


def berth_binary():
    path = os.environ.get("BERTH_BIN") or os.path.join(REPO, "build", "src", "berth")
    if not os.access(path, os.X_OK):
        pytest.exit(f"berth binary not found at {path}: run 'make build' or set BERTH_BIN", 2)
    return path


@pytest.fixture(scope="session")
def berth_bin():
    return berth_binary()


def traced_env(env=None):
    """The environment for a berth run under strace: LeakSanitizer cannot work under ptrace
    (integration-asan), so leak detection is off there; other sanitizer checks stay on."""
    env = dict(os.environ if env is None else env)
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    return env


def run(cmd, check=True, timeout=120, **kw):
    """Run a command, capturing text output; on failure show both streams."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


class Berth:
    """A berth installation confined to a temp root and exec root."""

    def __init__(self, binary, base):
        self.bin = binary
        self.base = base
        self.root = os.path.join(base, "root")
        self.exec_root = os.path.join(base, "run")
        os.makedirs(self.root)
        os.makedirs(self.exec_root)
        self.env = dict(os.environ, BERTH_ROOT=self.root, BERTH_EXEC_ROOT=self.exec_root)

    def __call__(self, *args, check=True, timeout=120, **kw):
        kw.setdefault("env", self.env)
        return run([self.bin, *map(str, args)], check=check, timeout=timeout, **kw)


def mounts_under(path):
    """Mount points at or below path, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def unmount_all(path):
    for mp in mounts_under(path):
        subprocess.run(["umount", "-l", mp], capture_output=True)


@pytest.fixture
def workdir():
    """A temp directory removed after the test, with any mounts below it undone."""
    d = tempfile.mkdtemp(prefix=TMP_PREFIX)
    try:
        yield d
    finally:
        unmount_all(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def berth(berth_bin, workdir):
    """The berth binary bound to a private root and exec root."""
    return Berth(berth_bin, workdir)


@pytest.fixture
def netns():
    """A fresh network namespace with loopback up; deleted afterwards, always."""
    name = NETNS_PREFIX + uuid.uuid4().hex[:8]
    run(["ip", "netns", "add", name])
    _created_netns.add(name)
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


class Images:
    """Generated test images, made once per session and cached by options."""

    def __init__(self, base):
        self.base = base
        self.cache = {}

    def make(self, name="busybox", tag="busybox:latest", **opts):
        key = (name, tag, tuple(sorted(opts.items())))
        if key in self.cache:
            return self.cache[key]
        # a directory per cached image: two images of one name (other tag or options) made by
        # files that share this worker must not overwrite each other's archives
        d = os.path.join(self.base, f"{name}-{len(self.cache)}")
        os.makedirs(d)
        cmd = [MKIMAGE, "--tag", tag, "--oci", os.path.join(d, "oci"),
               "--oci-archive", os.path.join(d, "oci.tar"),
               "--docker-archive", os.path.join(d, "docker.tar"),
               "--rootfs", os.path.join(d, "rootfs")]
        for k, v in opts.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                cmd.append(flag)
            elif v not in (False, None):
                cmd += [flag, str(v)]
        digest = run(cmd).stdout.strip()
        img = {"dir": d, "oci": os.path.join(d, "oci"), "oci_archive": os.path.join(d, "oci.tar"),
               "docker_archive": os.path.join(d, "docker.tar"), "rootfs": os.path.join(d, "rootfs"),
               "id": digest, "tag": tag}
        self.cache[key] = img
        return img


@pytest.fixture(scope="session")
def images():
    d = tempfile.mkdtemp(prefix=TMP_PREFIX + "images-")
    try:
        yield Images(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox(images):
    """The default busybox image in every format."""
    return images.make()


def _netns_list():
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return {line.split()[0] for line in p.stdout.splitlines() if line.strip()}


def find_leaks():
    """Network namespaces and mounts this session created and did not remove."""
    leaked_ns = sorted(_netns_list() & _created_netns)
    leaked_mounts = [mp for mp in mounts_under(tempfile.gettempdir())
                     if f"/{TMP_PREFIX}" in mp]
    return leaked_ns, leaked_mounts


# Seconds each file took in a full parallel run (scripts/test-durations.py JUNIT.xml prints this
# table from `pytest --junitxml`). `make integration` runs files on 4 workers, a file at a time per
# worker, in collection order: the longest files go first so that no long file starts last and
# leaves the other workers idle at the end. Files not listed run after these, in name order.
FILE_SECONDS = {  # a full run at load 2-7, 2026-12-07 (session 5)
    "test_cluster_services.py": 145, "test_cluster_server.py": 99, "test_engine_network.py": 96,
    "test_cluster_agent.py": 90, "test_cluster_services_lb.py": 85, "test_cluster_sched.py": 77,
    "test_cluster_ecr.py": 74, "test_cluster_agent_etcd.py": 74, "test_cluster_overlay.py": 62,
    "test_cluster_autoscaling.py": 59, "test_cluster_logs.py": 53, "test_engine_fsops.py": 44,
    "test_cluster_lb.py": 37, "test_net.py": 34, "test_cluster_sched_ops.py": 34,
    "test_engine_seccomp.py": 33, "test_build.py": 32, "test_cluster_cli.py": 31,
    "test_image_registry.py": 30, "test_engine_upload_memory.py": 29,
}


def _sanitizer_log_paths(nodeid):
    """Under integration-asan.sh (BERTH_SANITIZER_LOGS set), every process a test starts writes its
    sanitizer reports to a file named after that test, so a report in CI names the test it came from."""
    logs = os.environ.get("BERTH_SANITIZER_LOGS")
    if not logs:
        return
    tag = "".join(c if c.isalnum() or c in "._-" else "_" for c in nodeid.replace("::", "."))[:150]
    for var, kind in (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan")):
        opts = [o for o in os.environ.get(var, "").split(":") if o and not o.startswith("log_path=")]
        opts.append(f"log_path={logs}/{kind}.{tag}")
        os.environ[var] = ":".join(opts)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _sanitizer_log_paths(item.nodeid)


def pytest_collection_modifyitems(session, config, items):
    order = {}
    for it in items:
        order.setdefault(it.fspath.basename, len(order))
    items.sort(key=lambda it: (-FILE_SECONDS.get(it.fspath.basename, 0), order[it.fspath.basename]))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """After every fixture is torn down: fail the run if anything leaked, then clean up."""
    leaked_ns, leaked_mounts = find_leaks()
    for n in leaked_ns:
        subprocess.run(["ip", "netns", "delete", n], capture_output=True)
    for mp in sorted(leaked_mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    if leaked_ns or leaked_mounts:
        msg = f"LEAK CHECK FAILED: network namespaces {leaked_ns}, mounts {leaked_mounts}"
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr:
            tr.write_line(msg, red=True)
        else:
            print(msg)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
