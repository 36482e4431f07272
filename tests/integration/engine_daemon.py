"""A berth daemon on a private root, exec root and socket, for engine tests.

Started with `berth daemon --pidfile`, stopped by that PID only. Teardown
removes every container through the API first (so shims, mounts and cgroups
go away), then stops the daemon and unmounts anything left under its root.
"""
import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

from conftest import run, mounts_under, unmount_all

# Not conftest's TMP_PREFIX: other engineers' pytest sessions on this machine lazily
# unmount every leftover mount under /tmp/berth-it-* when they end, which would pull
# the overlay roots out from under our running containers. Leaks are checked here instead.
BASE_PREFIX = "berth-engine-"

DOCKER = "/usr/bin/docker"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class Daemon:
    def __init__(self, binary, base=None, netns=None):
        self.bin = binary
        # Container networking only inside a network namespace the caller made
        # (run with nsenter); without one, `--bridge none` keeps the host's untouched.
        self.netns = netns
        self.base = base or tempfile.mkdtemp(prefix=BASE_PREFIX)
        self.root = os.path.join(self.base, "root")
        self.exec_root = os.path.join(self.base, "run")
        self.sock = os.path.join(self.exec_root, "berth.sock")
        self.pidfile = os.path.join(self.base, "daemon.pid")
        self.logpath = os.path.join(self.base, "daemon.log")
        self.proc = None
        self.extra_args = []
        self.env = dict(os.environ, BERTH_ROOT=self.root, BERTH_EXEC_ROOT=self.exec_root,
                        DOCKER_HOST="unix://" + self.sock)

    @property
    def host(self):
        return "unix://" + self.sock

    def start(self):
        log = open(self.logpath, "a")
        net = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        self.proc = subprocess.Popen([*net, self.bin, "daemon", "--root", self.root, "--exec-root", self.exec_root,
                                      "--pidfile", self.pidfile, *([] if self.netns else ["--bridge", "none"]),
                                      *self.extra_args], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited:\n" + open(self.logpath).read())
            try:
                if self.request("GET", "/_ping")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("daemon did not come up:\n" + open(self.logpath).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = UnixHTTPConnection(self.sock, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            h = {"Content-Type": "application/json"} if body is not None else {}
            h.update(headers or {})
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, dict(resp.getheaders())
        finally:
            conn.close()

    def json(self, method, path, body=None):
        status, data, _ = self.request(method, path, body)
        return status, (json.loads(data) if data.strip() else None)

    def docker(self, *args, check=True, timeout=60, docker=DOCKER, **kw):
        return run([docker, *map(str, args)], check=check, timeout=timeout, env=self.env, **kw)

    def berth(self, *args, check=True, timeout=60, **kw):
        return run([self.bin, *map(str, args)], check=check, timeout=timeout, env=self.env, **kw)

    def load_busybox(self, image):
        """`docker load` of the generated busybox image (docker save format)."""
        self.docker("load", "-i", image["docker_archive"])

    def import_rootfs(self, rootfs, tag):
        tar = os.path.join(self.base, "rootfs.tar")
        if not os.path.exists(tar):
            with tarfile.open(tar, "w") as t:
                t.add(rootfs, arcname=".")
        self.docker("import", "-c", 'CMD ["sh"]', tar, tag)

    def remove_all(self):
        try:
            st, cs = self.json("GET", "/containers/json?all=1")
        except OSError:
            return
        for c in cs or []:
            self.request("DELETE", f"/containers/{c['Id']}?force=1")

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.remove_all()
        self.stop()
        subprocess.run(["runc", "--root", os.path.join(self.exec_root, "runc"), "list", "-q"],
                       capture_output=True)
        keep = os.environ.get("BERTH_TEST_LOGDIR")
        if keep and os.path.exists(self.logpath):
            os.makedirs(keep, exist_ok=True)
            shutil.copy(self.logpath, os.path.join(keep, os.path.basename(self.base) + ".log"))
        leaked = mounts_under(self.base)
        unmount_all(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        assert not leaked, f"engine left mounts behind: {leaked}"


@contextlib.contextmanager
def busybox_daemon(binary, busybox, extra_args=()):
    """A started Daemon (with extra_args) with the generated busybox image loaded; cleaned up on exit."""
    d = Daemon(binary)
    d.extra_args = list(extra_args)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def wait_for(pred, timeout=20, interval=0.05):
    """Poll a condition the test cannot wait on directly (state seen through the API)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
        interval = min(interval * 1.5, max(interval, 0.25))  # long waits poll less often
    raise AssertionError("condition not met in time")


# ---- BERTH_TEST_HANG_AT: a daemon step that blocks until the test lets it go ----

def start_hanging(d, at):
    """Start d with BERTH_TEST_HANG_AT=at (e.g. "exit-cleanup:NAME"); the hook waits on d.fifo."""
    d.fifo = os.path.join(d.base, "hang.fifo")
    if not os.path.exists(d.fifo):
        os.mkfifo(d.fifo)
    old = {k: os.environ.get(k) for k in ("BERTH_TEST_HANG_AT", "BERTH_TEST_HANG_FIFO")}
    os.environ.update(BERTH_TEST_HANG_AT=at, BERTH_TEST_HANG_FIFO=d.fifo)
    try:
        d.start()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def hanging(d):
    """A daemon thread waits for a writer on the FIFO (the kernel's wchan says so; looking does not wake it)."""
    for t in glob.glob(f"/proc/{d.proc.pid}/task/*/wchan"):
        try:
            if open(t).read() == "wait_for_partner":
                return True
        except OSError:
            pass
    return False


def release(d):
    """Let a hung step go on: opening the FIFO for writing wakes its reader, closing it ends the wait."""
    try:
        os.close(os.open(d.fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody waits
        pass
