"""Builder features beyond the core: several tags from docker's CLI, intermediate images hidden,
docker-shaped progress (docker-py parses it), symbolic --chmod, COPY --parents/--link,
ADD --checksum, secrets and ssh agents, remote ADD (http and git) from a local server,
foreign platforms, and cancellation when the client hangs up.

One berth daemon for the module with the generated busybox image loaded.
"""
import functools
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import tarfile
import io
import threading
import time
import urllib.parse
import uuid

import pytest

from engine_daemon import Daemon, wait_for
from test_build_exec import context


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
    return "f" + uuid.uuid4().hex[:10]


def build(daemon, ctx, *args, check=True, env=None):
    p = subprocess.run([daemon.bin, "build", *args, ctx], capture_output=True, text=True, timeout=120,
                       env=dict(daemon.env, **(env or {})))
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def image_id(daemon, ref):
    st, j = daemon.json("GET", f"/images/{ref}/json")
    return j["Id"] if st == 200 else None


def sh(daemon, image, script):
    return daemon.berth("run", "--rm", "--network", "none", "--entrypoint", "", image, "sh", "-c",
                        script).stdout


def listed(daemon, all_=False):
    st, j = daemon.json("GET", "/images/json" + ("?all=1" if all_ else ""))
    assert st == 200
    return {i["Id"] for i in j}


def image_layers_blob(daemon, ref):
    """Every byte of every layer of the image (docker save), for secret scans."""
    st, data, _ = daemon.request("GET", f"/images/{ref}/get", timeout=60)
    assert st == 200
    out = b""
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            if m.isfile():
                out += t.extractfile(m).read()
    return out


def test_docker_cli_applies_every_tag(daemon, tmp_path):
    a, b = tag(), tag()
    ctx = context(tmp_path, "FROM busybox\nLABEL x=1\n")
    p = subprocess.run(["/usr/bin/docker", "build", "-t", a, "-t", b + ":v2", ctx], capture_output=True,
                       text=True, env=dict(daemon.env, DOCKER_BUILDKIT="0"), timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert image_id(daemon, a) and image_id(daemon, a) == image_id(daemon, b + ":v2")
    assert f"Successfully tagged {a}:latest" in p.stdout and f"Successfully tagged {b}:v2" in p.stdout


def test_newer_docker_cli_without_buildkit_applies_every_tag(daemon, tmp_path):
    if not os.path.exists("/usr/local/bin/docker"):
        pytest.skip("no /usr/local/bin/docker")
    a, b = tag(), tag()
    p = subprocess.run(["/usr/local/bin/docker", "build", "-t", a, "-t", b,
                        context(tmp_path, "FROM busybox\nRUN echo hi > /hi\n")], capture_output=True,
                       text=True, env=dict(daemon.env, DOCKER_BUILDKIT="0"), timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert image_id(daemon, a) == image_id(daemon, b)


def test_images_hides_intermediate_build_images(daemon, tmp_path):
    before, before_all = listed(daemon), listed(daemon, True)
    t = tag()
    build(daemon, context(tmp_path, f"FROM busybox\nCOPY a /a\nRUN echo {t} > /b\nWORKDIR /w\n",
                          {"a": t}), "-t", t)
    new = listed(daemon) - before
    assert new == {image_id(daemon, t)}
    assert len(listed(daemon, True) - before_all) >= 4  # COPY, RUN, WORKDIR states and the image
    out = daemon.docker("images").stdout
    assert "<none>" not in out, out


def stream_lines(daemon, ctx_files, query=""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in ctx_files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data.encode()))
    st, data, _ = daemon.request("POST", "/build" + query, body=buf.getvalue(),
                                 headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert st == 200
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_progress_output_has_docker_shape(daemon):
    t = tag()
    files = {"Dockerfile": f"FROM busybox\nCOPY f /f\nRUN echo {t}\nENV A=b\n", "f": "x"}
    msgs = stream_lines(daemon, files, f"?t={t}")
    text = "".join(m.get("stream", "") for m in msgs)
    # every step ends with " ---> <12 hex>"; RUN shows its container like docker's classic builder
    assert re.search(r"Step 2/4 : COPY f /f\n ---> [0-9a-f]{12}\n", text), text
    m = re.search(r"Step 3/4 : RUN echo \w+\n ---> Running in ([0-9a-f]{12})\n\w+\n"
                  r"Removing intermediate container \1\n ---> ([0-9a-f]{12})\n", text)
    assert m, text
    assert image_id(daemon, m.group(2)), "the step's short ID names an image"
    assert "sha256:" + image_id(daemon, t).split(":")[1] == [x["aux"]["ID"] for x in msgs if "aux" in x][0]
    assert f"Successfully built {image_id(daemon, t).split(':')[1][:12]}\n" in text
    again = "".join(m.get("stream", "") for m in stream_lines(daemon, files, f"?t={t}"))
    hits = re.findall(r" ---> Using cache\n ---> ([0-9a-f]{12})\n", again)
    assert len(hits) == 2 and hits[1] == m.group(2), again


def test_docker_py_build_parses_the_stream(daemon, tmp_path):
    import docker
    client = docker.DockerClient(base_url=daemon.host, version="1.41", timeout=120)
    t = tag()
    img, logs = client.images.build(path=context(tmp_path, f"FROM busybox\nRUN echo {t} > /x\n"), tag=t)
    assert img.id == image_id(daemon, t)
    assert any("Successfully built" in (x.get("stream") or "") for x in logs)


def test_symbolic_chmod_parents_and_link(daemon, tmp_path):
    t = tag()
    df = ("FROM busybox AS src\nRUN mkdir -p /s/a/b && echo deep > /s/a/b/f\n"
          "FROM busybox\nCOPY --chmod=u+x,g-w f.sh /bin/f.sh\nCOPY --chmod=go= dir/ /priv/\n"
          "COPY --parents x/*/y.txt /p/\nCOPY --parents --from=src /s/a/b /q/\n"
          "COPY --link f.sh /linked.sh\n")
    build(daemon, context(tmp_path, df, {"f.sh": "echo f\n", "dir/k": "k", "x/1/y.txt": "1",
                                          "x/2/y.txt": "2", "x/2/z.txt": "z"}), "-t", t)
    out = sh(daemon, t, "stat -c '%n %a' /bin/f.sh /priv/k /linked.sh; find /p /q -type f | sort")
    assert out.splitlines() == ["/bin/f.sh 744", "/priv/k 600", "/linked.sh 644",
                                "/p/x/1/y.txt", "/p/x/2/y.txt", "/q/s/a/b/f"]
    bad = build(daemon, context(tmp_path, "FROM busybox\nCOPY --chmod=u+z f /f\n", {"f": ""}), check=False)
    assert bad.returncode != 0 and "invalid chmod parameter 'u+z'" in bad.stdout + bad.stderr


def test_add_checksum_verifies_local_files(daemon, tmp_path):
    data = b"payload\n"
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    build(daemon, context(tmp_path, f"FROM busybox\nADD --checksum={good} f /f\n", {"f": data}))
    bad = "sha256:" + "0" * 64
    p = build(daemon, context(tmp_path, f"FROM busybox\nADD --checksum={bad} f /f\n", {"f": data}),
              check=False)
    assert p.returncode != 0
    assert f"checksum mismatch for 'f': expected {bad}, got {good}" in p.stdout + p.stderr


SECRET = "s3cr3t-" + uuid.uuid4().hex


def test_secret_mount_reaches_run_but_no_layer_or_cache(daemon, tmp_path):
    t = tag()
    sec = tmp_path / "tok"
    sec.write_text(SECRET)
    df = ("FROM busybox\n"
          "RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /sum && "
          "stat -c %a /run/secrets/tok > /mode\n"
          "RUN --mount=type=secret,id=tok,env=TOK printf %s \"$TOK\" | sha256sum | cut -c1-64 > /envsum\n")
    build(daemon, context(tmp_path, df), "-t", t, "--secret", f"id=tok,src={sec}")
    want = hashlib.sha256(SECRET.encode()).hexdigest()
    assert sh(daemon, t, "cat /sum /envsum /mode; test -e /run/secrets || echo gone") == \
        f"{want}\n{want}\n400\ngone\n"
    assert SECRET.encode() not in image_layers_blob(daemon, t)
    for name in os.listdir(os.path.join(daemon.root, "builder")):
        p = os.path.join(daemon.root, "builder", name)
        if os.path.isfile(p):
            assert SECRET.encode() not in open(p, "rb").read()
    missing = build(daemon, context(tmp_path, "FROM busybox\nRUN --mount=type=secret,id=nope,required cat "
                                               "/run/secrets/nope\n"), check=False)
    assert missing.returncode != 0 and "secret 'nope' is required but was not provided" in missing.stderr


def test_ssh_mount_needs_a_forwarded_agent(daemon, tmp_path):
    df = "FROM busybox\nRUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo agent > /agent\n"
    p = build(daemon, context(tmp_path, df), check=False, env={"SSH_AUTH_SOCK": ""})
    assert p.returncode != 0 and "no ssh agent 'default' was forwarded" in p.stdout + p.stderr
    path = str(tmp_path / "agent.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    try:
        t = tag()
        build(daemon, context(tmp_path, df), "-t", t, "--ssh", "default", env={"SSH_AUTH_SOCK": path})
        assert sh(daemon, t, "cat /agent; test -e /run/buildkit || echo gone") == "agent\ngone\n"
    finally:
        srv.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """python's http.server on a free 127.0.0.1 port serving a file and a dumb-http git repository."""
    root = tmp_path_factory.mktemp("web")
    (root / "data.txt").write_bytes(b"remote data\n")
    work = root / "src"
    work.mkdir()
    (work / "README").write_text("from git\n")
    (work / "sub").mkdir()
    (work / "sub" / "s.txt").write_text("sub\n")
    g = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*g, "init", "-q", str(work)], check=True)
    subprocess.run([*g, "-C", str(work), "add", "."], check=True)
    subprocess.run([*g, "-C", str(work), "commit", "-qm", "c"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "repo.git")], check=True)
    subprocess.run(["git", "-C", str(root / "repo.git"), "update-server-info"], check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_remote_add_downloads_and_verifies_checksum(daemon, tmp_path, web):
    good = "sha256:" + hashlib.sha256(b"remote data\n").hexdigest()
    t = tag()
    build(daemon, context(tmp_path, f"FROM busybox\nADD --checksum={good} {web}/data.txt /d/\n"
                                    f"ADD {web}/data.txt /named.txt\n"), "-t", t, "--no-cache")
    assert sh(daemon, t, "cat /d/data.txt; stat -c %a /named.txt") == "remote data\n600\n"
    bad = "sha256:" + "1" * 64
    p = build(daemon, context(tmp_path, f"FROM busybox\nADD --checksum={bad} {web}/data.txt /d/\n"),
              check=False)
    assert p.returncode != 0 and f"checksum mismatch for '{web}/data.txt'" in p.stderr


def test_remote_add_offline_is_a_clear_error(daemon, tmp_path):
    p = build(daemon, context(tmp_path, "FROM busybox\nADD http://nonexistent.invalid/x.tgz /x\n"),
              check=False)
    assert p.returncode != 0
    assert "download 'http://nonexistent.invalid/x.tgz' failed: Could not resolve host" in p.stderr, p.stderr


def test_add_git_repository(daemon, tmp_path, web):
    t = tag()
    build(daemon, context(tmp_path, f"FROM busybox\nADD {web}/repo.git#main /src\n"
                                    f"ADD {web}/repo.git#main:sub /only-sub\n"), "-t", t)
    assert sh(daemon, t, "cat /src/README /only-sub/s.txt; test -e /src/.git || echo no-git") == \
        "from git\nsub\nno-git\n"


def test_foreign_platform_is_a_clear_error(daemon, tmp_path):
    p = build(daemon, context(tmp_path, "FROM busybox\nRUN true\n"), "--platform", "linux/arm64",
              check=False)
    assert p.returncode != 0 and "does not match the specified platform" in p.stderr
    p = build(daemon, context(tmp_path, "FROM --platform=linux/arm64 scratch\nCOPY Dockerfile /\n"
                                        "FROM --platform=linux/riscv64 busybox\nRUN true\n"), check=False)
    assert p.returncode != 0 and "does not match the specified platform" in p.stderr


def build_containers(daemon):
    st, cs = daemon.json("GET", "/containers/json?all=1")
    return [c for c in cs if (c.get("Labels") or {}).get("berth.build") == "1"]


def test_client_disconnect_cancels_the_build(daemon):
    t = tag()
    buf = io.BytesIO()
    df = f"FROM busybox\nRUN echo started-{t} && sleep 60\n".encode()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(df)
        tf.addfile(ti, io.BytesIO(df))
    body = buf.getvalue()
    s = socket.socket(socket.AF_UNIX)
    s.connect(daemon.sock)
    s.sendall(f"POST /v1.41/build?t={t} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    deadline = time.monotonic() + 60
    while f'"stream":"started-{t}'.encode() not in got and time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    assert b"Running in" in got and build_containers(daemon), got
    s.close()
    assert wait_for(lambda: not build_containers(daemon), timeout=30), build_containers(daemon)
    assert image_id(daemon, t) is None
    tmp = os.path.join(daemon.root, "builder", "tmp")
    assert wait_for(lambda: not [n for n in os.listdir(tmp) if not n.startswith(".")] if os.path.isdir(tmp)
                    else True, timeout=10), os.listdir(tmp)


@pytest.mark.parametrize("secrets", ['{"a":"zz"}', '{"a":"abc"}', '{"../x":"00"}', '["a"]'])
def test_post_build_rejects_bad_secrets(daemon, secrets):
    q = urllib.parse.quote(secrets)
    st, data, _ = daemon.request("POST", f"/build?secrets={q}", body=b"",
                                 headers={"Content-Type": "application/x-tar"})
    assert st == 400, data
    assert b"secret" in data
