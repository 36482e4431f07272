"""A cached rebuild streams its context: POST /build scans the context tar as it arrives (entries and
content digests: the cache keys are those of an extracted context) and writes the files only when a
step misses the cache. The daemon logs, at debug level, whether a build extracted its context.

One berth daemon for the module, driven with the docker CLI (DOCKER_BUILDKIT=0, docker's classic
builder API, which sends the context tar as the POST /build body).
"""
import os
import pathlib
import re
import subprocess
import threading
import time
import uuid

import pytest

from engine_daemon import busybox_daemon
from test_build_exec import context as build_exec_context

DOCKER = "/usr/bin/docker"


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    with busybox_daemon(berth_bin, busybox, ["--log-level", "debug"]) as d:
        yield d


def context(tmp_path, dockerfile, files):
    return pathlib.Path(build_exec_context(tmp_path, dockerfile, files))


def extractions(daemon):
    """extracted=yes|no of every build so far, in order."""
    with open(daemon.logpath) as f:
        return re.findall(r'msg="build context".* extracted=(yes|no)', f.read())


def docker_build(daemon, ctx, tag, stdin=None):
    """Build with the docker CLI (ctx "-": the context tar is stdin); the steps' output and whether the
    build extracted its context."""
    before = len(extractions(daemon))
    p = subprocess.run([DOCKER, "build", "-t", tag, str(ctx)], capture_output=True, input=stdin,
                       env=dict(daemon.env, DOCKER_BUILDKIT="0"), timeout=300)
    p.stdout, p.stderr = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    assert p.returncode == 0, p.stdout + p.stderr
    # the line is written once the build's answer is complete; the CLI may return a moment before
    deadline = time.monotonic() + 10
    while len(extractions(daemon)) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    after = extractions(daemon)
    assert len(after) == before + 1, after
    return p.stdout.split("Step ")[1:], after[-1] == "yes"


def cached(steps):
    return ["Using cache" in s for s in steps if s.split(" : ")[1].split()[0] in ("COPY", "ADD", "RUN", "WORKDIR")]


def sh(daemon, image, script):
    return daemon.berth("run", "--rm", "--network", "none", "--entrypoint", "", image, "sh", "-c",
                        script).stdout


DF = """FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt > /from-a
ADD tree.tar /unpacked/
COPY b.txt /b.txt
RUN cat /b.txt > /from-b
"""


def tar_of(files):
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


FILES = {"a.txt": "a1\n", "b.txt": "b1\n", "tree.tar": tar_of({"in/x": b"x\n"}),
         ".dockerignore": "ignored/\n*.tmp\n", "ignored/junk": "j1\n", "scratch.tmp": "t1\n"}


def test_cached_rebuild_does_not_extract_the_context(daemon, tmp_path):
    ctx = context(tmp_path, DF, FILES)
    t = "s" + uuid.uuid4().hex[:10]
    steps, extracted = docker_build(daemon, ctx, t)
    assert extracted and not any(cached(steps))
    steps, extracted = docker_build(daemon, ctx, t)
    assert all(cached(steps)) and len(cached(steps)) == 5, steps
    assert not extracted  # the ADD's archive check read the spool, nothing was written
    assert os.listdir(os.path.join(daemon.root, "builder", "tmp")) == []
    assert sh(daemon, t, "cat /from-a /from-b /unpacked/in/x") == "a1\nb1\nx\n"


def test_one_changed_file_misses_from_its_copy_on(daemon, tmp_path):
    ctx = context(tmp_path, DF, FILES)
    t = "s" + uuid.uuid4().hex[:10]
    docker_build(daemon, ctx, t)
    (ctx / "b.txt").write_text("b2\n")
    steps, extracted = docker_build(daemon, ctx, t)
    assert cached(steps) == [True, True, True, False, False], steps
    assert extracted
    assert sh(daemon, t, "cat /from-a /from-b") == "a1\nb2\n"


def test_dockerignored_changes_still_hit(daemon, tmp_path):
    ctx = context(tmp_path, DF, FILES)
    t = "s" + uuid.uuid4().hex[:10]
    docker_build(daemon, ctx, t)
    (ctx / "ignored" / "junk").write_text("j2, and longer\n")
    (ctx / "ignored" / "new").write_text("new\n")
    (ctx / "scratch.tmp").write_text("t2\n")
    steps, extracted = docker_build(daemon, ctx, t)
    assert all(cached(steps)), steps
    assert not extracted


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_big_context_rebuilds_cached_with_bounded_daemon_rss(daemon, tmp_path):
    """200 MB of context (sparse files: zeros the CLI reads and sends in full) stream through the
    daemon's scan; its RSS grows by at most 64 MB while they do, and the rebuild writes nothing."""
    ctx = context(tmp_path, "FROM busybox\nCOPY small /small\nRUN cat /small > /copy\n", {"small": "s\n"})
    (ctx / "big").mkdir()
    for i in range(4):
        with open(ctx / "big" / f"zeros{i}", "wb") as f:
            f.truncate(50 << 20)
    t = "s" + uuid.uuid4().hex[:10]
    pid = daemon.proc.pid
    base = rss_kb(pid)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.01)
    th = threading.Thread(target=sample)
    th.start()
    try:
        docker_build(daemon, ctx, t)
        with open(ctx / "big" / "zeros2", "r+b") as f:  # content the Dockerfile does not COPY
            f.seek(30 << 20)
            f.write(b"changed")
        steps, extracted = docker_build(daemon, ctx, t)
    finally:
        stop.set()
        th.join()
    assert all(cached(steps)) and not extracted, steps
    assert peak[0] - base <= 64 * 1024, f"daemon RSS grew from {base} kB to {peak[0]} kB"
    assert sh(daemon, t, "cat /copy") == "s\n"


def test_run_bind_mount_of_the_context_keys_on_its_content(daemon, tmp_path):
    """RUN --mount=type=bind from the context: a change below the bound source misses that RUN (as in
    BuildKit); an unchanged rebuild hits without extracting, a change elsewhere hits."""
    ctx = context(tmp_path, "FROM busybox\nRUN --mount=type=bind,source=conf,target=/c cat /c/x > /out\n",
                  {"conf/x": "one\n", "other": "o\n"})
    t = "s" + uuid.uuid4().hex[:10]
    docker_build(daemon, ctx, t)
    (ctx / "other").write_text("o2\n")
    steps, extracted = docker_build(daemon, ctx, t)
    assert all(cached(steps)) and not extracted, steps
    (ctx / "conf" / "x").write_text("two\n")
    steps, extracted = docker_build(daemon, ctx, t)
    assert cached(steps) == [False] and extracted, steps
    assert sh(daemon, t, "cat /out") == "two\n"


def test_run_bind_mount_of_the_context_hides_what_dockerignore_excludes(daemon):
    """A context tar on stdin reaches the daemon as it is, ignored files included: a RUN bind mount of
    the context shows what COPY sees (BuildKit's context arrives filtered), so neither an ignored file
    nor an ignored Dockerfile; an ignored file's change is not in the step's key."""
    df = b"FROM busybox\nRUN --mount=type=bind,target=/c ls -a /c /c/sub > /out\n"
    files = {"Dockerfile": df, ".dockerignore": b"Dockerfile\n**/secret*\n", "keep": b"k\n",
             "secret.txt": b"s1\n", "sub/keep2": b"k2\n", "sub/secret-x": b"x\n"}
    t = "s" + uuid.uuid4().hex[:10]
    docker_build(daemon, "-", t, stdin=tar_of(files))
    assert sh(daemon, t, "cat /out").split() == ["/c:", ".", "..", ".dockerignore", "keep", "sub",
                                                  "/c/sub:", ".", "..", "keep2"]
    files["secret.txt"] = b"s2, longer\n"
    steps, extracted = docker_build(daemon, "-", t, stdin=tar_of(files))
    assert all(cached(steps)) and not extracted, steps
