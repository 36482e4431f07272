"""awscli_fast, the test helper that runs Debian's aws CLI from a forked zygote: what it leaves behind."""
import os
import subprocess
import tempfile

import awscli_fast


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
