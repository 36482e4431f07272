"""Classic builder parity (issue 19 item 6): `docker build --cache-from` takes an image
(here loaded from `docker save` after the builder's own cache was pruned) as the cache of
every step it was built with, as dockerd's classic builder does: each step is "Using cache",
nothing runs and the result is the source image itself; a changed file misses from its COPY
on. RUN output written to stderr arrives wrapped in the classic builder's colour codes.

Builds come from the docker CLI with DOCKER_BUILDKIT=0 and from `berth build`; one daemon
for the module (engine_daemon.Daemon).
"""
import json
import subprocess
import uuid

import pytest

from engine_daemon import busybox_daemon


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    with busybox_daemon(berth_bin, busybox) as d:
        yield d


def context(tmp_path, dockerfile, files):
    ctx = tmp_path / ("ctx-" + uuid.uuid4().hex[:6])
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in files.items():
        (ctx / name).write_text(data)
    return ctx


def docker_build(d, ctx, *args):
    p = subprocess.run(["/usr/bin/docker", "build", "--network", "none", *args, str(ctx)],
                       capture_output=True, text=True, env=dict(d.env, DOCKER_BUILDKIT="0"), timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def berth_build(d, ctx, *args):
    p = d.berth("build", "--network", "none", *args, str(ctx), check=False, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def image_id(d, ref):
    return d.docker("inspect", "-f", "{{.Id}}", ref).stdout.strip()


def dockerfile(token):
    # each RUN writes something new on every real run: a hit is the only way to the same layer
    return (f"FROM busybox\n"
            f"ENV TOKEN={token}\n"
            f"RUN date +%s%N > /built-at && echo ran-first-$TOKEN\n"
            f"COPY f /f\n"
            f"WORKDIR /app\n"
            f"RUN cat /f /built-at > /app/out && echo ran-second-$TOKEN\n"
            f'CMD ["cat", "/app/out"]\n')


def save_prune_load(d, ref, tmp_path):
    """The image only through `docker save`/`docker load`: the builder's cache is gone."""
    tar = tmp_path / (uuid.uuid4().hex[:6] + ".tar")
    d.docker("save", "-o", str(tar), ref)
    d.docker("rmi", ref)
    d.docker("builder", "prune", "-af")
    d.docker("load", "-i", str(tar))


def using_cache_count(out):
    return out.count(" ---> Using cache")


@pytest.mark.parametrize("how", [docker_build, berth_build], ids=["docker", "berth"])
def test_cache_from_a_loaded_image_hits_every_step(daemon, tmp_path, how):
    token = uuid.uuid4().hex[:8]
    ctx = context(tmp_path, dockerfile(token), {"f": "content\n"})
    src = "cf" + token + ":1"
    first = how(daemon, ctx, "-t", src)
    assert "ran-first-" + token in first and "ran-second-" + token in first
    src_id = image_id(daemon, src)
    save_prune_load(daemon, src, tmp_path)
    out = how(daemon, ctx, "--cache-from", src, "-t", "cf" + token + ":2")
    assert "ran-first-" + token not in out and "ran-second-" + token not in out, out
    assert "Running in" not in out
    assert using_cache_count(out) == 4  # RUN, COPY, WORKDIR, RUN
    # dockerd gives the source image itself
    assert image_id(daemon, "cf" + token + ":2") == src_id
    run = daemon.docker("run", "--rm", "cf" + token + ":2").stdout
    assert run.startswith("content\n")


def test_cache_from_stops_at_the_first_changed_step(daemon, tmp_path):
    token = uuid.uuid4().hex[:8]
    ctx = context(tmp_path, dockerfile(token), {"f": "one\n"})
    src = "cf" + token
    docker_build(daemon, ctx, "-t", src)
    save_prune_load(daemon, src, tmp_path)
    (ctx / "f").write_text("two\n")
    out = docker_build(daemon, ctx, "--cache-from", src, "-t", src + ":changed")
    # the first RUN hits, the COPY of the changed file and everything after it run
    assert "ran-first-" + token not in out
    assert "ran-second-" + token in out
    assert using_cache_count(out) == 1
    assert daemon.docker("run", "--rm", src + ":changed").stdout.startswith("two\n")
    assert image_id(daemon, src + ":changed") != image_id(daemon, src)


def test_cache_from_a_missing_image_is_skipped_and_bad_json_refused(daemon, tmp_path):
    token = uuid.uuid4().hex[:8]
    ctx = context(tmp_path, dockerfile(token), {"f": "x\n"})
    out = docker_build(daemon, ctx, "--cache-from", "no-such-image:" + token)
    assert "ran-first-" + token in out
    status, body, _ = daemon.request("POST", "/build?cachefrom=notjson", body=b"",
                                     headers={"Content-Type": "application/x-tar"})
    assert status == 400 and b"cachefrom" in body


def test_run_stderr_has_the_classic_builders_colour(daemon, tmp_path):
    ctx = context(tmp_path, f"FROM busybox\nRUN echo to-out-{uuid.uuid4().hex[:6]}; echo to-err >&2\n", {})
    tar = subprocess.run(["tar", "-C", str(ctx), "-cf", "-", "."], capture_output=True, check=True).stdout
    status, body, _ = daemon.request("POST", "/build?networkmode=none", body=tar,
                                     headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert status == 200
    streams = [json.loads(line).get("stream", "") for line in body.decode().splitlines() if line.strip()]
    assert "\x1b[91mto-err\n\x1b[0m" in streams, streams
    assert any(s.startswith("to-out-") and s.endswith("\n") and "\x1b" not in s for s in streams), streams
    # the docker CLI prints them as dockerd's builder sends them
    out = docker_build(daemon, ctx, "--no-cache")
    assert "\x1b[91mto-err\n\x1b[0m" in out
