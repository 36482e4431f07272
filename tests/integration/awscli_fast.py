"""Debian's aws CLI without its start-up cost, for tests that call it hundreds of times.

`/usr/bin/aws` is a three-line script around `awscli.clidriver`. Importing that package and building
its driver costs about a second of CPU per invocation, more than the request itself, and 4 test
workers on 2 cores pay it for every call (10+ s per call under load in CI). Here one process per
test worker imports the package once (the "zygote") and forks a child per call that runs exactly
what /usr/bin/aws runs: `AWSCLIEntryPoint().main(argv)`, which builds a fresh driver from the
call's environment. Arguments, environment, network namespace, stdin/stdout/stderr and the exit
code are those of the call, so a test sees what the real command prints and returns.

BERTH_TEST_AWS_FORK=0 runs /usr/bin/aws as a process instead (to compare, or to debug).
"""
import atexit
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

AWS = "/usr/bin/aws"
CLONE_NEWNET = 0x40000000

_zygote = None  # (Popen, socket path) of this process's zygote
_lock = threading.Lock()


def _start():
    """Start this process's zygote from a thread that lives as long as the zygote: the zygote's
    PR_SET_PDEATHSIG fires when the thread that forked it ends, so never from a test's short thread."""
    global _zygote
    _sweep()
    d = tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")
    path = os.path.join(d, "sock")
    started = queue.Queue()

    def keeper():
        p = subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__), path, str(os.getpid())],
                             stdin=subprocess.DEVNULL)
        started.put(p)
        p.wait()
        _remove(d)
    threading.Thread(target=keeper, name="awscli-zygote", daemon=True).start()
    p = started.get()
    # at exit the daemon thread above is stopped wherever it is: the process removes the directory itself
    atexit.register(_stop, p, d)
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the aws CLI zygote did not start")
        time.sleep(0.05)
    _zygote = (p, path)
    return _zygote


DIR_PREFIX = "berth-awscli-"  # then the test process's pid and mkdtemp's suffix


def _remove(d):
    """The zygote's directory: its socket (or the socket it was binding), then the directory."""
    for name in ("sock", "sock.tmp"):
        with_suppress(os.unlink, os.path.join(d, name))
    with_suppress(os.rmdir, d)


def _stop(p, d):
    p.kill()
    with_suppress(p.wait)
    _remove(d)


def _sweep():
    """Directories of test processes that ended without their atexit (an xdist worker killed): their
    zygote died with them (PR_SET_PDEATHSIG)."""
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        pid = name[len(DIR_PREFIX):].split("-")[0] if name.startswith(DIR_PREFIX) else ""
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _remove(os.path.join(tmp, name))
        except OSError:
            pass


def with_suppress(f, *a):
    try:
        f(*a)
    except OSError:
        pass


def run(args, env=None, netns=None, timeout=90, input=None, check=False):
    """Run `aws ARGS` (a list of str) with env (default: os.environ) inside /run/netns/NETNS (default:
    the caller's namespace). Returns a subprocess.CompletedProcess with text stdout/stderr."""
    args = [str(a) for a in args]
    env = dict(os.environ if env is None else env)
    if os.environ.get("BERTH_TEST_AWS_FORK") == "0":
        cmd = (["nsenter", f"--net=/run/netns/{netns}"] if netns else []) + [AWS, *args]
        p = subprocess.run(cmd, env=env, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {args!r} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p
    with _lock:
        if _zygote is None or _zygote[0].poll() is not None:
            _start()
    with tempfile.TemporaryFile() as i, tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        if input is not None:
            i.write(input.encode() if isinstance(input, str) else input)
            i.seek(0)
        req = json.dumps({"argv": args, "env": env, "netns": netns}).encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        pid = None
        try:
            s.connect(_zygote[1])
            socket.send_fds(s, [len(req).to_bytes(4, "big") + req], [i.fileno(), o.fileno(), e.fileno()])
            f = s.makefile("rb")
            pid = int(f.readline())
            line = f.readline()
            if not line:  # the child died before it could report (killed, crashed)
                raise RuntimeError(f"aws {args[:2]}: the CLI process ended without an exit code")
            rc = int(line)
        except socket.timeout:
            if pid:
                with_suppress(os.kill, pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired([AWS, *args], timeout)
        finally:
            s.close()
        o.seek(0)
        e.seek(0)
        out = subprocess.CompletedProcess([AWS, *args], rc, o.read().decode(), e.read().decode())
    if check and out.returncode != 0:
        raise AssertionError(f"aws {args!r} exited {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}")
    return out


# ---- the zygote ----

def _child(conn):
    """In the forked child: become the call (namespace, environment, stdio) and run the CLI."""
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)  # the descriptors come with the first bytes
    while len(msg) < 4 or len(msg) < 4 + int.from_bytes(msg[:4], "big"):
        chunk = conn.recv(1 << 16)
        if not chunk or len(fds) != 3:
            os._exit(255)
        msg += chunk
    req = json.loads(msg[4:])
    conn.sendall(b"%d\n" % os.getpid())
    rc = 255
    try:
        if req["netns"]:
            import ctypes
            fd = os.open(f"/run/netns/{req['netns']}", os.O_RDONLY)
            if ctypes.CDLL("libc.so.6", use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + req["netns"])
            os.close(fd)
        os.environ.clear()
        os.environ.update(req["env"])
        if os.environ.get("LC_CTYPE", "") == "UTF-8":  # as /usr/bin/aws does
            os.environ["LC_CTYPE"] = "en_US.UTF-8"
        import awscli  # what its import did to the zygote's environment, done to the call's
        data = [os.path.expanduser(os.path.expandvars(p)) for p in os.environ["AWS_DATA_PATH"].split(os.pathsep)] \
            if "AWS_DATA_PATH" in os.environ else []
        os.environ["AWS_DATA_PATH"] = os.pathsep.join(data + [os.path.join(os.path.dirname(awscli.__file__), "data")])
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.argv = [AWS, *req["argv"]]
        from awscli.clidriver import AWSCLIEntryPoint
        rc = AWSCLIEntryPoint().main(req["argv"]) or 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - report, never return into the zygote's loop
        print(f"aws (forked): {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        for f in (sys.stdout, sys.stderr):
            with_suppress(f.flush)
        try:
            conn.sendall(b"%d\n" % rc)
        finally:
            os._exit(rc)


def _serve(path, parent):
    import ctypes
    # never outlive the test process (its atexit may not run: xdist workers can end without it)
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        return
    from awscli.clidriver import create_clidriver  # the import is the cost saved; warm lazy imports too
    driver = create_clidriver()
    table = driver._get_command_table()
    for service in ("ecs", "ecr", "logs", "elbv2", "application-autoscaling"):
        if service in table:
            table[service]._get_command_table()
    del driver, table
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path + ".tmp")
    os.rename(path + ".tmp", path)
    srv.listen(64)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        conn, _ = srv.accept()
        if os.fork() == 0:
            srv.close()
            try:
                _child(conn)
            finally:
                os._exit(255)
        conn.close()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
