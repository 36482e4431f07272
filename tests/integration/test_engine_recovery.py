"""Containers outlive the daemon and their monitors fail safely: kill -9 of the
daemon, kill of a shim, restart policies and health checks."""
import json
import os
import signal

import pytest

from engine_daemon import Daemon, wait_for


@pytest.fixture
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def inspect(d, name):
    return json.loads(d.docker("inspect", name).stdout)[0]


def test_daemon_kill9_reattaches_running_containers(daemon):
    names = [f"keep{i}" for i in range(20)]
    for n in names:
        daemon.docker("run", "-d", "--name", n, "busybox", "sh", "-c",
                      "mkfifo /tmp/go; echo before; cat /tmp/go >/dev/null; echo after; exec sleep 600")
    daemon.docker("run", "-d", "--name", "quitter", "busybox", "sh", "-c",
                  "mkfifo /tmp/go; cat /tmp/go; exit 7")
    pids = {n: inspect(daemon, n)["State"]["Pid"] for n in names}
    qpid = inspect(daemon, "quitter")["State"]["Pid"]
    daemon.stop(signal.SIGKILL)
    # While no daemon runs, the containers go on: they log, and one of them exits.
    for pid in list(pids.values()) + [qpid]:
        wait_for(lambda: os.path.exists(f"/proc/{pid}/root/tmp/go"))
        with open(f"/proc/{pid}/root/tmp/go", "w") as f:
            f.write("go\n")
    wait_for(lambda: not os.path.exists(f"/proc/{qpid}"))
    daemon.start()
    wait_for(lambda: inspect(daemon, "quitter")["State"]["Status"] == "exited")
    assert inspect(daemon, "quitter")["State"]["ExitCode"] == 7
    running = daemon.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(running) == sorted(names)
    for n in names:
        assert inspect(daemon, n)["State"]["Pid"] == pids[n]
        wait_for(lambda: daemon.docker("logs", n).stdout == "before\nafter\n")
    p = daemon.docker("exec", names[0], "echo", "still attached")
    assert p.stdout == "still attached\n"
    daemon.docker("stop", "-t", "0", names[0])
    assert inspect(daemon, names[0])["State"]["Status"] == "exited"


def test_exit_while_daemon_down_is_recorded(daemon):
    daemon.docker("run", "-d", "--name", "late", "busybox", "sh", "-c",
                  "mkfifo /tmp/go; cat /tmp/go >/dev/null; echo bye; exit 5")
    pid = inspect(daemon, "late")["State"]["Pid"]
    daemon.stop(signal.SIGKILL)
    wait_for(lambda: os.path.exists(f"/proc/{pid}/root/tmp/go"))
    with open(f"/proc/{pid}/root/tmp/go", "w") as f:
        f.write("go\n")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    daemon.start()
    # The shim may still be finishing (flushing the log, writing exit.json): the
    # daemon adopts it and records the exit when it ends.
    wait_for(lambda: inspect(daemon, "late")["State"]["Status"] == "exited")
    st = inspect(daemon, "late")["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 5)
    assert daemon.docker("logs", "late").stdout == "bye\n"


def test_killed_shim_marks_container_exited(daemon):
    daemon.docker("run", "-d", "--name", "victim", "busybox", "sleep", "600")
    pid = inspect(daemon, "victim")["State"]["Pid"]
    with open(f"/proc/{pid}/stat") as f:
        shim = int(f.read().rsplit(")", 1)[1].split()[1])
    os.kill(shim, signal.SIGKILL)
    wait_for(lambda: inspect(daemon, "victim")["State"]["Status"] == "exited")
    st = inspect(daemon, "victim")["State"]
    assert st["ExitCode"] == 137
    assert "shim" in st["Error"]
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    daemon.docker("start", "victim")
    assert inspect(daemon, "victim")["State"]["Running"]
    daemon.docker("rm", "-f", "victim")


def test_restart_policy_on_failure_stops_after_max_retries(daemon):
    daemon.docker("run", "-d", "--name", "crashy", "--restart", "on-failure:3", "busybox", "sh", "-c",
                  "echo crash; exit 3")
    wait_for(lambda: inspect(daemon, "crashy")["RestartCount"] == 3
             and inspect(daemon, "crashy")["State"]["Status"] == "exited", timeout=30)
    st = inspect(daemon, "crashy")["State"]
    assert st["ExitCode"] == 3
    assert daemon.docker("logs", "crashy").stdout == "crash\n" * 4


def test_restart_always_restarts_until_stopped(daemon):
    daemon.docker("run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sh", "-c", "exit 0")
    wait_for(lambda: inspect(daemon, "phoenix")["RestartCount"] >= 2, timeout=30)
    daemon.docker("stop", "-t", "0", "phoenix")
    assert inspect(daemon, "phoenix")["State"]["Status"] == "exited"


def test_health_status_transitions(daemon):
    # the first check blocks until /tmp/go exists: "starting" holds however slow this inspect is
    daemon.docker("run", "-d", "--name", "doc", "--health-cmd",
                  "while [ ! -e /tmp/go ]; do sleep 0.05; done; test -e /tmp/ok", "--health-interval", "100ms",
                  "--health-timeout", "60s", "--health-retries", "2", "busybox", "sleep", "600")
    assert inspect(daemon, "doc")["State"]["Health"]["Status"] == "starting"
    daemon.docker("exec", "doc", "touch", "/tmp/go")
    wait_for(lambda: inspect(daemon, "doc")["State"]["Health"]["Status"] == "unhealthy")
    daemon.docker("exec", "doc", "touch", "/tmp/ok")
    wait_for(lambda: inspect(daemon, "doc")["State"]["Health"]["Status"] == "healthy")
    h = inspect(daemon, "doc")["State"]["Health"]
    assert h["FailingStreak"] == 0 and h["Log"][-1]["ExitCode"] == 0
    assert "(healthy)" in daemon.docker("ps", "--format", "{{.Status}}").stdout


def test_inprocess_berth_runtime_runs_and_execs(berth_bin, busybox):
    d = Daemon(berth_bin)
    d.extra_args = ["--runtime-path", "berth"]
    try:
        d.start()
        d.load_busybox(busybox)
        assert d.docker("run", "--rm", "busybox", "echo", "in-process").stdout == "in-process\n"
        assert d.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
        d.docker("run", "-d", "--name", "lib", "busybox", "sleep", "600")
        assert d.docker("exec", "lib", "echo", "exec-ok").stdout == "exec-ok\n"
        assert d.docker("run", "-i", "--rm", "busybox", "cat", input="piped\n").stdout == "piped\n"
        d.docker("rm", "-f", "lib")
    finally:
        d.cleanup()
