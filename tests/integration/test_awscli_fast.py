"""awscli_fast, the test helper that runs Debian's aws CLI from a forked zygote: what it leaves behind."""
import os
import shutil
import subprocess
import sys
import tempfile
import pathlib

import pytest

import awscli_fast

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def short_tmp():
    """A directory with a short path: the zygote's socket lives below it, and a unix socket's path
    has at most 107 bytes (pytest's tmp_path under xdist is longer than that allows)."""
    d = tempfile.mkdtemp(prefix="bt-", dir="/tmp")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_zygote_directory_is_removed_when_the_test_process_exits(short_tmp):
    """The zygote's socket and directory go with the test process (they stayed in /tmp: the daemon
    thread that removed them is stopped at exit before it gets to)."""
    tmp_path = short_tmp
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import awscli_fast\n"
            "p = awscli_fast.run(['--version'])\n"
            "assert p.returncode == 0 and 'aws-cli/' in p.stdout, p\n"
            "print(awscli_fast._zygote[1])\n")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("BERTH_TEST_AWS_FORK", None)
    p = subprocess.run(["/usr/bin/python3", "-c", code, HERE], env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    sock = p.stdout.strip()
    assert os.path.dirname(os.path.dirname(sock)) == str(tmp_path)
    assert os.listdir(tmp_path) == []


def test_directories_of_ended_test_processes_are_swept(tmp_path, monkeypatch):
    """A test process killed without its atexit leaves its directory; the next zygote's start removes
    it, and only those of processes that are gone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"{awscli_fast.DIR_PREFIX}{gone.pid}-abcd1234"
    dead.mkdir()
    (dead / "sock").touch()
    alive = tmp_path / f"{awscli_fast.DIR_PREFIX}{os.getppid()}-abcd1234"
    alive.mkdir()
    other = tmp_path / f"{awscli_fast.DIR_PREFIX}k2j4h5g6"  # an older helper's name: not ours to judge
    other.mkdir()
    awscli_fast._sweep()
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name])
