"""Builds executed for real: berth build / POST /build over the engine and the image store.

One berth daemon for the module (engine_daemon.Daemon) with the generated busybox image
loaded; every build runs RUN steps as berth containers, commits layers through the image
library and is checked by running the result (`berth run`) or unpacking it (--output local).
"""
import json
import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from engine_daemon import Daemon

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "dockerfiles")


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def tag():
    return "b" + uuid.uuid4().hex[:10]


def context(tmp_path, dockerfile, files=None):
    ctx = tmp_path / ("ctx-" + uuid.uuid4().hex[:6])
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(ctx)


def build(daemon, ctx, *args, check=True):
    p = daemon.berth("build", *args, ctx, check=False, timeout=120)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def image_id(daemon, ref):
    st, j = daemon.json("GET", f"/images/{ref}/json")
    return j["Id"] if st == 200 else None


def sh(daemon, image, script):
    return daemon.berth("run", "--rm", "--network", "none", "--entrypoint", "", image, "sh", "-c",
                        script).stdout


def images(daemon):
    st, j = daemon.json("GET", "/images/json?all=1")
    return {i["Id"] for i in j}


APP = """FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app
LABEL org.example.role=test
COPY --chown=1000:1000 app/ $APP_HOME/
COPY conf.txt /etc/app.conf
WORKDIR $APP_HOME
RUN echo "$GREETING from run" > made.txt && chmod 604 made.txt && rm /bin/vi && mkdir -p /var/empty
USER 1000:1000
EXPOSE 8080/tcp
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat made.txt"]
"""
APP_FILES = {"app/main.sh": "echo main\n", "app/lib/util.sh": "echo util\n", "conf.txt": "k=v\n"}


def test_build_runs_steps_and_result_runs(daemon, tmp_path):
    t = tag()
    build(daemon, context(tmp_path, APP, APP_FILES), "-t", t, "--build-arg", "GREETING=hi")
    assert daemon.berth("run", "--rm", t).stdout == "hi from run\n"
    out = sh(daemon, t, "stat -c '%n %u:%g %a' /srv/app/main.sh /srv/app/lib/util.sh /srv/app/made.txt "
                        "/etc/app.conf; cat /srv/app/lib/util.sh; test -e /bin/vi || echo no-vi; "
                        "test -d /var/empty && echo empty-dir")
    assert out.splitlines() == ["/srv/app/main.sh 1000:1000 644", "/srv/app/lib/util.sh 1000:1000 644",
                                "/srv/app/made.txt 0:0 604", "/etc/app.conf 0:0 644", "echo util",
                                "no-vi", "empty-dir"]


def test_build_sets_image_config_and_history(daemon, tmp_path):
    t = tag()
    build(daemon, context(tmp_path, APP, APP_FILES), "-t", t)
    st, img = daemon.json("GET", f"/images/{t}/json")
    c = img["Config"]
    assert c["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "APP_HOME=/srv/app"]
    assert c["Cmd"] == ["cat made.txt"] and c["Entrypoint"] == ["/bin/sh", "-c"]
    assert c["WorkingDir"] == "/srv/app" and c["User"] == "1000:1000"
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    assert c["Labels"]["org.example.role"] == "test"
    st, hist = daemon.json("GET", f"/images/{t}/history")
    created_by = [h["CreatedBy"] for h in hist]
    assert any("COPY conf.txt /etc/app.conf" in x for x in created_by)
    assert any(x.startswith("RUN ") or "RUN " in x for x in created_by)
    # one layer per filesystem step on top of busybox's: 2 COPY + WORKDIR + RUN
    base = daemon.json("GET", "/images/busybox/json")[1]
    assert len(img["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 4


def test_run_rm_becomes_a_whiteout_in_the_layer(daemon, tmp_path):
    t = tag()
    build(daemon, context(tmp_path, "FROM busybox\nRUN rm /bin/vi && echo x > /x\n"), "-t", t)
    out = tmp_path / "save"
    out.mkdir()
    tar = tmp_path / "img.tar"
    daemon.docker("save", "-o", str(tar), t)
    with tarfile.open(tar) as tf:
        tf.extractall(out)
    manifest = json.load(open(out / "manifest.json"))[0]
    with tarfile.open(out / manifest["Layers"][-1]) as layer:
        names = sorted(m.name for m in layer.getmembers() if not m.isdir())
    # the runtime's mount points (/etc/hosts, /etc/resolv.conf) are not in the layer
    assert names == ["bin/.wh.vi", "x"]


def test_cached_rebuild_uses_cache_for_every_step_and_same_id(daemon, tmp_path):
    ctx = context(tmp_path, APP, dict(APP_FILES, **{"app/unique": uuid.uuid4().hex}))
    t = tag()
    first = build(daemon, ctx, "-t", t)
    assert "Using cache" not in first.stdout
    id1 = image_id(daemon, t)
    second = build(daemon, ctx, "-t", t)
    fs_steps = [s for s in second.stdout.split("Step ")[1:]
                if s.split(" : ")[1].split()[0] in ("COPY", "WORKDIR", "RUN")]
    assert len(fs_steps) == 4
    assert all("Using cache" in s for s in fs_steps), second.stdout
    assert image_id(daemon, t) == id1
    assert "Successfully built " + id1[7:19] in second.stdout


def test_cache_survives_daemon_restart(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo restart > /r\n")
    t = tag()
    build(daemon, ctx, "-t", t)
    id1 = image_id(daemon, t)
    daemon.stop()
    daemon.start()
    again = build(daemon, ctx, "-t", t)
    assert "Using cache" in again.stdout
    assert image_id(daemon, t) == id1


def test_no_cache_runs_every_step_again(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN date +%s%N > /stamp\n")
    build(daemon, ctx)
    again = build(daemon, ctx, "--no-cache")
    assert "Using cache" not in again.stdout


def test_changed_context_file_invalidates_copy_and_later_steps(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo a > /a\nCOPY f /f\nRUN cat /f > /g\n", {"f": "1\n"})
    t = tag()
    build(daemon, ctx, "-t", t)
    with open(os.path.join(ctx, "f"), "w") as f:
        f.write("2\n")
    out = build(daemon, ctx, "-t", t).stdout
    steps = out.split("Step ")[1:]
    assert "Using cache" in steps[1] and "Using cache" not in steps[2] and "Using cache" not in steps[3]
    assert sh(daemon, t, "cat /g") == "2\n"


def test_builder_prune_forgets_the_cache(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo prune > /p\n")
    t = tag()
    build(daemon, ctx, "-t", t)
    p = daemon.berth("builder", "prune", "-f")
    assert "Deleted" in p.stdout
    again = build(daemon, ctx, "-t", t)
    assert "Using cache" not in again.stdout
    assert sh(daemon, t, "cat /p") == "prune\n"


def test_failing_run_reports_exit_code_and_output_and_tags_nothing(daemon, tmp_path):
    t = tag()
    before = images(daemon)
    p = build(daemon, context(tmp_path, "FROM busybox\nRUN echo first-line; echo oops >&2; exit 7\n"),
              "-t", t, check=False)
    assert p.returncode == 1
    assert "returned a non-zero code: 7" in p.stderr
    assert "oops" in p.stderr
    assert image_id(daemon, t) is None
    assert images(daemon) == before
    st, cs = daemon.json("GET", "/containers/json?all=1")
    assert cs == []


@pytest.mark.parametrize("dockerfile,files,message", [
    ("FROM busybox\nRUNN echo\n", {}, "Dockerfile:2: unknown instruction: RUNN"),
    ("FROM busybox\nCOPY missing.txt /\n", {}, "missing.txt"),
    ("FROM busybox\nCOPY ../outside /\n", {}, "outside the build context"),
    ("FROM busybox\nCOPY --from=nostage /x /\n", {}, "nostage"),
    ("FROM no-such-image-here\n", {}, "no-such-image-here"),
    ("FROM scratch\nRUN true\n", {}, "RUN on an empty root filesystem"),
    ("FROM busybox\nCOPY --chown=nouser f /\n", {"f": "x"}, "no such user 'nouser'"),
    ("FROM busybox\nCOPY --chmod=u+y f /\n", {"f": "x"}, "invalid chmod parameter 'u+y'"),
    ("FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n", {},
     "secret 'tok' is required but was not provided"),
    ("FROM busybox\nADD http://example.invalid/x /x\n", {},
     "download 'http://example.invalid/x' failed: Could not resolve host"),
    ("FROM busybox\nRUN --mount=type=bind,source=nothere,target=/m true\n", {}, "source 'nothere' not found"),
])
def test_bad_input_is_a_clear_error_and_creates_no_image(daemon, tmp_path, dockerfile, files, message):
    t = tag()
    before = images(daemon)
    p = build(daemon, context(tmp_path, dockerfile, files), "-t", t, check=False)
    assert p.returncode == 1
    assert message in p.stderr
    assert image_id(daemon, t) is None
    assert images(daemon) == before


def test_post_build_rejects_a_body_that_is_not_a_tar(daemon):
    before = images(daemon)
    st, body, _ = daemon.request("POST", "/build?t=garbage", body=b"this is not a tar archive",
                                 headers={"Content-Type": "application/x-tar"})
    lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
    assert st == 200 and "context tar" in lines[-1]["error"]
    st, body, _ = daemon.request("POST", "/build?buildargs=notjson", body=b"")
    assert st == 400 and b"invalid buildargs" in body
    assert image_id(daemon, "garbage") is None and images(daemon) == before


def test_multistage_target_builds_only_what_is_needed(daemon, tmp_path):
    src = os.path.join(FIXTURES, "multistage")
    out = tmp_path / "full"
    build(daemon, src, "--output", f"type=local,dest={out}")
    assert sorted(os.listdir(out / "app")) == ["deps.txt", "tools.txt"]
    tools = tmp_path / "tools"
    p = build(daemon, src, "--target", "tools", "-o", f"type=local,dest={tools}")
    assert os.listdir(tools) == ["tools.txt"]
    assert "deps.txt" not in p.stdout


def test_copy_forms_chown_chmod_wildcards_and_add_extract(daemon, tmp_path):
    out = tmp_path / "out"
    build(daemon, os.path.join(FIXTURES, "copyfiles"), "-o", f"type=local,dest={out}")
    st = os.lstat(out / "usr/local/bin/tool")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o755)
    assert sorted(os.listdir(out / "opt/etc")) == ["a b.conf", "x.conf"]
    assert os.listdir(out / "spaced") == ["a b.conf"]
    assert os.path.isfile(out / "unpacked/conf/x.conf")  # local tar unpacked by ADD
    assert os.listdir(out / "raw") == ["plain.gz"]  # a plain compressed file is copied as is


def test_dockerignore_keeps_excluded_files_out(daemon, tmp_path):
    src = os.path.join(FIXTURES, "dockerignore")
    want = json.load(open(os.path.join(src, "expect.json")))["files"]
    out = tmp_path / "out"
    build(daemon, src, "-o", f"type=local,dest={out}")
    got = sorted(os.path.relpath(os.path.join(d, n), out / "ctx")
                 for d, ds, fs in os.walk(out / "ctx") for n in ds + fs)
    assert got == sorted(want)


@pytest.mark.parametrize("name", ["argenv", "onbuild", "metadata", "inherit"])
def test_fixture_config_is_applied(daemon, name):
    src = os.path.join(FIXTURES, name)
    exp = json.load(open(os.path.join(src, "expect.json")))
    t = tag()
    args = [a for kv in exp.get("build_args", []) for a in ("--build-arg", kv)]
    build(daemon, src, "-t", t, *args)
    cfg = daemon.json("GET", f"/images/{t}/json")[1]["Config"]
    for k, v in exp.get("config", {}).items():
        assert cfg.get(k) in ((v,) if v is not None else (None, [], {})), k


HEREDOCS = """FROM busybox
ARG NAME=world
COPY <<EOF /etc/greeting
hello $NAME
EOF
RUN <<SCRIPT
echo "scripted $NAME" > /scripted
SCRIPT
RUN <<PY
#!/bin/sh
echo "shebang" > /shebang
PY
RUN cat <<A > /a && cat <<B > /b
first
A
second
B
"""


def test_heredocs_copy_and_run(daemon, tmp_path):
    t = tag()
    build(daemon, context(tmp_path, HEREDOCS), "-t", t)
    assert sh(daemon, t, "cat /etc/greeting /scripted /shebang /a /b") == \
        "hello world\nscripted world\nshebang\nfirst\nsecond\n"


def test_run_mounts_cache_bind_and_tmpfs(daemon, tmp_path):
    df = """FROM busybox AS files
RUN mkdir /data && echo from-stage > /data/f
FROM busybox
RUN --mount=type=cache,target=/cache echo x >> /cache/n && wc -l < /cache/n > /count
RUN --mount=type=bind,from=files,source=/data,target=/mnt cat /mnt/f > /copied
RUN --mount=type=bind,source=ctx.txt,target=/ctx.txt cat /ctx.txt > /from-ctx
RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && grep -q ' /scratch tmpfs' /proc/mounts && echo ok > /tmpfs
"""
    ctx = context(tmp_path, df, {"ctx.txt": "context-file\n"})
    t = tag()
    build(daemon, ctx, "-t", t)
    build(daemon, ctx, "-t", t, "--no-cache")
    out = sh(daemon, t, "cat /count /copied /from-ctx /tmpfs; ls -d /cache /mnt /scratch /ctx.txt 2>&1 | wc -l")
    lines = out.splitlines()
    assert lines[0] == "2"  # the cache directory persisted between the two builds
    assert lines[1:4] == ["from-stage", "context-file", "ok"]
    # /mnt exists in busybox; the other mount points are not left in the image
    assert sh(daemon, t, "ls -d /cache /scratch /ctx.txt 2>/dev/null | wc -l").strip() == "0"


def test_bind_mount_symlinks_resolve_inside_the_context(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN --mount=type=bind,source=evil,target=/m ls /m > /listing\n",
                  {"inside/ok.txt": "x"})
    os.symlink("/etc", os.path.join(ctx, "evil"))  # absolute: means the context's /etc, which is not there
    t = tag()
    p = build(daemon, ctx, "-t", t, check=False)
    assert p.returncode == 1 and "source 'evil' not found" in p.stderr
    os.remove(os.path.join(ctx, "evil"))
    os.symlink("/inside", os.path.join(ctx, "evil"))
    build(daemon, ctx, "-t", t)
    assert sh(daemon, t, "cat /listing") == "ok.txt\n"


def test_run_network_is_none_unless_host(daemon, tmp_path):
    df = "FROM busybox\nRUN ls /sys/class/net | sort | tr '\\n' ' ' > /ifs\n"
    t = tag()
    build(daemon, context(tmp_path, df), "-t", t)
    assert sh(daemon, t, "cat /ifs").split() == ["lo"]
    h = tag()
    build(daemon, context(tmp_path, df), "-t", h, "--network", "host", "--no-cache")
    assert len(sh(daemon, h, "cat /ifs").split()) == len(os.listdir("/sys/class/net"))


def test_iidfile_quiet_labels_and_several_tags(daemon, tmp_path):
    t1, t2 = tag(), tag()
    iid = tmp_path / "iid"
    p = build(daemon, context(tmp_path, "FROM busybox\nRUN touch /q\n"), "-q", "-t", t1, "-t", t2,
              "--iidfile", str(iid), "--label", "a=b")
    assert p.stdout.strip() == iid.read_text()
    assert image_id(daemon, t1) == image_id(daemon, t2) == iid.read_text()
    assert daemon.json("GET", f"/images/{t1}/json")[1]["Config"]["Labels"]["a"] == "b"


def test_output_docker_and_oci_archives_are_written(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\nRUN echo out > /o\n")
    out = tmp_path / "img.tar"
    build(daemon, ctx, "-o", f"type=docker,dest={out}")
    with tarfile.open(out) as tf:
        assert "manifest.json" in tf.getnames()
    oci = tmp_path / "oci.tar"
    build(daemon, ctx, "-o", f"type=oci,dest={oci}")
    with tarfile.open(oci) as tf:
        assert {"oci-layout", "index.json"} <= set(tf.getnames())
    p = build(daemon, ctx, "-o", "type=zip,dest=x", check=False)
    assert p.returncode == 1 and "type=docker|oci|local" in p.stderr


def test_context_from_stdin_tar_and_dockerfile_outside(daemon, tmp_path):
    ctx = context(tmp_path, "FROM busybox\n", {"data.txt": "stdin-ctx\n"})
    other = tmp_path / "Other.dockerfile"
    other.write_text("FROM busybox\nCOPY data.txt /d\n")
    t = tag()
    build(daemon, ctx, "-f", str(other), "-t", t)
    assert sh(daemon, t, "cat /d") == "stdin-ctx\n"
    tar = subprocess.run(["tar", "-C", ctx, "-cf", "-", "."], capture_output=True, check=True).stdout
    t2 = tag()
    p = subprocess.run([daemon.bin, "build", "-t", t2, "-"], input=tar, capture_output=True,
                       env=daemon.env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert image_id(daemon, t2)


def test_docker_cli_builds_against_berth(daemon, tmp_path):
    t = tag()
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    ctx = context(tmp_path, APP, APP_FILES)
    p = subprocess.run(["/usr/bin/docker", "build", "-t", t, "--build-arg", "GREETING=docker", ctx],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Successfully tagged" in p.stdout
    assert daemon.berth("run", "--rm", t).stdout == "docker from run\n"
    bad = subprocess.run(["/usr/bin/docker", "build", context(tmp_path, "FROM busybox\nRUN exit 4\n")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "returned a non-zero code: 4" in bad.stderr


def test_docker_cli_cache_sees_a_same_size_same_mtime_edit(daemon, tmp_path):
    """The cache key hashes the content the docker CLI sends, never its metadata: an edit that keeps
    the size and the modification time (a tar header identical to the last build's) misses COPY."""
    env = dict(daemon.env, DOCKER_BUILDKIT="0")
    ctx = context(tmp_path, "FROM busybox\nCOPY d/ /d/\nRUN cat /d/f > /g\n",
                  {"d/f": "aaaa\n", "d/other": "x\n"})
    t = tag()
    def docker_build():
        p = subprocess.run(["/usr/bin/docker", "build", "-t", t, ctx], capture_output=True, text=True,
                           env=env, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout.split("Step ")[1:]
    docker_build()
    assert all("Using cache" in s for s in docker_build()[1:])  # unchanged: every step cached
    f = os.path.join(ctx, "d", "f")
    st = os.stat(f)
    with open(f, "w") as fh:
        fh.write("bbbb\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    steps = docker_build()
    assert "Using cache" not in steps[1] and "Using cache" not in steps[2], steps
    assert sh(daemon, t, "cat /g") == "bbbb\n"


# --- docker's classic builder as the oracle for RUN-based builds ----------------------------

from test_build import dockerd  # noqa: E402,F401 (one dockerd per pytest session)

ORACLE_DF = """FROM busybox
ENV DIR=/srv/app
COPY --chown=1000:1000 app/ $DIR/
COPY conf.txt /etc/app.conf
WORKDIR $DIR
RUN echo made > made.txt && chmod 604 made.txt && ln -s made.txt link && mkdir -p sub/deep \\
    && chown -R 1000:1000 sub && rm /bin/vi /usr/bin/wget && rm -r /var/www
RUN touch /etc/app.conf && echo more >> /etc/app.conf && mkdir -p -m 0750 /opt/private
"""
# what docker's runtime adds that is not part of the image
ORACLE_SKIP = (".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", "dev", "proc", "sys")


def tree_of_tar(fileobj):
    out = {}
    with tarfile.open(fileobj=fileobj, mode="r|") as tf:
        for m in tf:
            p = m.name.removeprefix("./").rstrip("/")
            if not p or p.split("/")[0] in ORACLE_SKIP or p in ORACLE_SKIP:
                continue
            data = tf.extractfile(m).read() if m.isfile() else None
            out[p] = (m.type if m.type != tarfile.AREGTYPE else tarfile.REGTYPE, m.mode & 0o7777,
                      m.uid, m.gid, m.linkname if m.issym() else None, data)
    return out


def tree_of_dir(root):
    out = {}
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            full = os.path.join(d, n)
            p = os.path.relpath(full, root)
            if p.split("/")[0] in ORACLE_SKIP or p in ORACLE_SKIP:
                continue
            st = os.lstat(full)
            kind = {0o040000: tarfile.DIRTYPE, 0o120000: tarfile.SYMTYPE}.get(st.st_mode & 0o170000,
                                                                             tarfile.REGTYPE)
            data = open(full, "rb").read() if kind == tarfile.REGTYPE else None
            out[p] = (kind, st.st_mode & 0o7777, st.st_uid, st.st_gid,
                      os.readlink(full) if kind == tarfile.SYMTYPE else None, data)
    return out


def test_run_based_build_filesystem_matches_docker(daemon, dockerd, busybox, tmp_path):
    import io
    with open(busybox["docker_archive"], "rb") as f:
        list(dockerd.load_image(f.read()))
    ctx = context(tmp_path, ORACLE_DF, APP_FILES)
    msgs = [json.loads(x) for chunk in dockerd.build(path=ctx, rm=True, forcerm=True, decode=False)
            for x in chunk.decode().splitlines() if x.strip()]
    errors = [m for m in msgs if "errorDetail" in m]
    if errors and "runtime" in json.dumps(errors):
        pytest.skip("dockerd cannot run containers here: " + json.dumps(errors))
    assert not errors, errors
    docker_id = [m["aux"]["ID"] for m in msgs if "aux" in m][-1]
    cid = dockerd.create_container(docker_id, command=["true"])["Id"]
    try:
        want = tree_of_tar(io.BytesIO(b"".join(dockerd.export(cid))))
    finally:
        dockerd.remove_container(cid, force=True)
    out = tmp_path / "berth-out"
    build(daemon, ctx, "-o", f"type=local,dest={out}")
    got = tree_of_dir(out)
    assert sorted(got) == sorted(want)
    diffs = {p: (got[p][:5], want[p][:5]) for p in want if got[p] != want[p]}
    assert diffs == {}
