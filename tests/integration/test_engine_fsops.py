"""Container filesystem and resource operations against berth daemon: stats,
the archive API (docker cp), changes (docker diff), export and commit, driven
by the docker CLI (20.10 and 28 when present), docker-py and berth's own CLI.

One daemon for the whole module; each test makes its own containers.
"""
import base64
import io
import json
import os
import subprocess
import tarfile
import uuid

import pytest

from engine_daemon import DOCKER, Daemon

DOCKER28 = "/usr/local/bin/docker"


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def client(daemon):
    docker = pytest.importorskip("docker")
    c = docker.DockerClient(base_url=daemon.host, version="1.41")
    yield c
    c.close()


def name():
    return "f" + uuid.uuid4().hex[:10]


def running(daemon, *cmd):
    n = name()
    daemon.docker("run", "-d", "--name", n, "--network", "none", "busybox", *(cmd or ("sleep", "600")))
    return n


def created(daemon):
    n = name()
    daemon.docker("create", "--name", n, "--network", "none", "busybox", "sleep", "600")
    return n


def rm(daemon, n):
    daemon.docker("rm", "-f", n, check=False)


def tar_bytes(files):
    """{name: bytes or None (directory) or ('symlink', target)} -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.mtime = 1700000000
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif isinstance(data, tuple):
                ti.type = tarfile.SYMTYPE
                ti.linkname = data[1]
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                ti.uid = 1234
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def path_stat(headers):
    return json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))


# ---- archive API ----

def test_archive_head_reports_path_stat(daemon):
    n = running(daemon)
    try:
        st, _, h = daemon.request("HEAD", f"/containers/{n}/archive?path=/etc/passwd")
        assert st == 200
        s = path_stat(h)
        assert s["name"] == "passwd" and s["size"] > 0 and s["linkTarget"] == ""
        assert s["mode"] & 0o777 and not s["mode"] & (1 << 31)
        st, _, h = daemon.request("HEAD", f"/containers/{n}/archive?path=/etc")
        assert path_stat(h)["mode"] & (1 << 31)  # Go's os.ModeDir
    finally:
        rm(daemon, n)


def test_archive_head_of_symlink_gives_link_target(daemon):
    n = running(daemon)
    try:
        daemon.docker("exec", n, "ln", "-s", "/etc/passwd", "/tmp/pw")
        st, _, h = daemon.request("HEAD", f"/containers/{n}/archive?path=/tmp/pw")
        s = path_stat(h)
        assert s["mode"] & (1 << 27) and s["linkTarget"] == "/etc/passwd"
    finally:
        rm(daemon, n)


def test_archive_missing_path_is_404_with_dockers_message(daemon):
    n = created(daemon)
    try:
        st, body, _ = daemon.request("GET", f"/containers/{n}/archive?path=/no/such")
        assert st == 404
        assert json.loads(body)["message"].startswith("Could not find the file /no/such in container")
        assert daemon.request("HEAD", f"/containers/{n}/archive?path=/nope")[0] == 404
    finally:
        rm(daemon, n)


def test_archive_unknown_container_is_404(daemon):
    st, body, _ = daemon.request("GET", "/containers/nosuchthing/archive?path=/etc")
    assert st == 404 and "No such container: nosuchthing" in json.loads(body)["message"]
    st, body, _ = daemon.request("PUT", "/containers/nosuchthing/archive?path=/", body=tar_bytes({"a": b"x"}))
    assert st == 404


def test_archive_put_invalid_tar_is_400(daemon):
    n = created(daemon)
    try:
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/tmp", body=b"this is not a tar" * 64)
        assert st == 400, body
        assert daemon.request("PUT", f"/containers/{n}/archive?path=/etc/passwd",
                              body=tar_bytes({"a": b"x"}))[0] == 400  # not a directory
        assert daemon.request("PUT", f"/containers/{n}/archive", body=tar_bytes({"a": b"x"}))[0] == 400
    finally:
        rm(daemon, n)


def test_archive_put_then_get_round_trips_on_created_container(daemon):
    n = created(daemon)
    try:
        data = tar_bytes({"d": None, "d/hello.txt": b"hello\n", "d/link": ("sym", "hello.txt")})
        assert daemon.request("PUT", f"/containers/{n}/archive?path=/tmp", body=data)[0] == 200
        st, body, h = daemon.request("GET", f"/containers/{n}/archive?path=/tmp/d")
        assert st == 200 and path_stat(h)["name"] == "d"
        with tarfile.open(fileobj=io.BytesIO(body)) as t:
            members = {m.name: m for m in t.getmembers()}
            assert set(members) == {"d", "d/hello.txt", "d/link"}
            assert t.extractfile("d/hello.txt").read() == b"hello\n"
            assert members["d/link"].issym() and members["d/link"].linkname == "hello.txt"
            assert members["d/hello.txt"].uid == 0  # docker's default owner without copyUIDGID
        daemon.docker("start", n)
        assert daemon.docker("exec", n, "cat", "/tmp/d/hello.txt").stdout == "hello\n"
    finally:
        rm(daemon, n)


def test_archive_put_no_overwrite_dir_nondir(daemon):
    n = created(daemon)
    try:
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/&noOverwriteDirNonDir=1",
                                     body=tar_bytes({"etc": b"not a dir"}))
        assert st in (400, 409) and "cannot overwrite directory" in json.loads(body)["message"]
        st, _, h = daemon.request("HEAD", f"/containers/{n}/archive?path=/etc")
        assert path_stat(h)["mode"] & (1 << 31)
    finally:
        rm(daemon, n)


def test_archive_put_copy_uid_gid_uses_container_user(daemon):
    n = name()
    daemon.docker("create", "--name", n, "-u", "1000:1000", "--network", "none", "busybox", "true")
    try:
        assert daemon.request("PUT", f"/containers/{n}/archive?path=/tmp&copyUIDGID=1",
                              body=tar_bytes({"owned": b"x"}))[0] == 200
        body = daemon.request("GET", f"/containers/{n}/archive?path=/tmp/owned")[1]
        with tarfile.open(fileobj=io.BytesIO(body)) as t:
            m = t.getmember("owned")
            assert (m.uid, m.gid) == (1000, 1000)
    finally:
        rm(daemon, n)


def test_archive_paths_cannot_escape_container_root(daemon, tmp_path):
    n = running(daemon)
    try:
        # ../ in the request path stays at the container's root
        st, body, h = daemon.request("GET", f"/containers/{n}/archive?path=/../../../../etc/hostname")
        assert st == 200
        host_hostname = open("/etc/hostname", "rb").read()
        # a symlink planted in the container pointing at a host path resolves inside the container
        daemon.docker("exec", n, "sh", "-c", f"mkdir -p /esc && ln -s {tmp_path} /esc/out")
        st, body, _ = daemon.request("GET", f"/containers/{n}/archive?path=/esc/out/")
        assert st == 404  # tmp_path does not exist inside the container
        # extraction through the symlink lands inside the container, never in tmp_path
        st, _, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/esc/out",
                                  body=tar_bytes({"pwned": b"x"}))
        assert st == 404
        st, _, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/esc", body=tar_bytes({"out/pwned": b"x"}))
        assert st == 404  # the dangling link's target is looked up (and missing) inside the container
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/esc", body=tar_bytes({"../../evil": b"y"}))
        assert st == 400 and "escapes" in json.loads(body)["message"]
        daemon.docker("exec", n, "ln", "-s", "/", "/esc/root")
        assert daemon.request("PUT", f"/containers/{n}/archive?path=/esc/root",
                              body=tar_bytes({"inside": b"z"}))[0] == 200
        assert daemon.docker("exec", n, "cat", "/inside").stdout == "z"
        assert not os.path.exists(tmp_path / "pwned") and not os.path.exists("/inside")
        assert host_hostname  # the host file was never the target
    finally:
        rm(daemon, n)


def test_archive_tar_symlink_entries_cannot_escape(daemon, tmp_path):
    n = created(daemon)
    try:
        evil = tar_bytes({"lnk": ("sym", str(tmp_path)), "lnk/owned": b"x"})
        daemon.request("PUT", f"/containers/{n}/archive?path=/tmp", body=evil)
        assert os.listdir(tmp_path) == []
    finally:
        rm(daemon, n)


# ---- docker cp ----

@pytest.mark.parametrize("docker", ["/usr/bin/docker", DOCKER28])
def test_docker_cp_file_and_directory_both_ways(daemon, tmp_path, docker):
    if not os.path.exists(docker):
        pytest.skip(f"{docker} not installed")
    n = running(daemon)
    try:
        src = tmp_path / "src"
        (src / "sub").mkdir(parents=True)
        (src / "a.txt").write_text("A")
        (src / "sub" / "b.txt").write_text("B")
        daemon.docker("cp", src / "a.txt", f"{n}:/tmp/a.txt", docker=docker)
        daemon.docker("cp", src, f"{n}:/tmp/tree", docker=docker)
        assert daemon.docker("exec", n, "cat", "/tmp/a.txt", "/tmp/tree/sub/b.txt").stdout == "AB"
        out = tmp_path / "out"
        out.mkdir()
        daemon.docker("cp", f"{n}:/tmp/tree", out / "tree", docker=docker)
        daemon.docker("cp", f"{n}:/etc/passwd", out, docker=docker)
        assert (out / "tree" / "sub" / "b.txt").read_text() == "B"
        assert "root" in (out / "passwd").read_text()
        daemon.docker("cp", f"{n}:/tmp/tree/.", out / "contents", docker=docker)
        assert (out / "contents" / "a.txt").read_text() == "A"
    finally:
        rm(daemon, n)


def test_docker_cp_tar_stdin_and_stdout(daemon):
    n = created(daemon)
    try:
        daemon.docker("cp", "-", f"{n}:/tmp", input=tar_bytes({"in.txt": b"from stdin"}), text=False)
        out = daemon.docker("cp", f"{n}:/tmp/in.txt", "-", text=False).stdout
        with tarfile.open(fileobj=io.BytesIO(out)) as t:
            assert t.extractfile("in.txt").read() == b"from stdin"
    finally:
        rm(daemon, n)


def test_docker_cp_from_exited_container_and_missing_path(daemon, tmp_path):
    n = name()
    daemon.docker("run", "--name", n, "--network", "none", "busybox", "sh", "-c", "echo done > /result")
    try:
        daemon.docker("cp", f"{n}:/result", tmp_path / "result")
        assert (tmp_path / "result").read_text() == "done\n"
        p = daemon.docker("cp", f"{n}:/missing", tmp_path, check=False)
        # docker's CLI words a 404 itself ("No such container:path")
        assert p.returncode != 0 and f"{n}:/missing" in p.stderr
    finally:
        rm(daemon, n)


def test_berth_cp_both_directions(daemon, tmp_path):
    n = running(daemon)
    try:
        (tmp_path / "f.txt").write_text("berth")
        daemon.berth("cp", tmp_path / "f.txt", f"{n}:/tmp/")
        assert daemon.docker("exec", n, "cat", "/tmp/f.txt").stdout == "berth"
        daemon.berth("cp", f"{n}:/tmp/f.txt", tmp_path / "back.txt")
        assert (tmp_path / "back.txt").read_text() == "berth"
        daemon.berth("cp", f"{n}:/etc", tmp_path / "etc")
        assert (tmp_path / "etc" / "passwd").exists()
        p = daemon.berth("cp", f"{n}:/missing", tmp_path, check=False)
        assert p.returncode != 0 and "Could not find the file /missing" in p.stderr
    finally:
        rm(daemon, n)


def test_docker_py_put_and_get_archive(daemon, client):
    n = created(daemon)
    try:
        c = client.containers.get(n)
        assert c.put_archive("/tmp", tar_bytes({"py.txt": b"docker-py"}))
        stream, st = c.get_archive("/tmp/py.txt")
        assert st["name"] == "py.txt" and st["size"] == 9
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
            assert t.extractfile("py.txt").read() == b"docker-py"
    finally:
        rm(daemon, n)


# ---- changes ----

def test_changes_report_added_changed_deleted(daemon):
    n = running(daemon, "sh", "-c", "echo x > /newfile; rm /bin/ls; mkdir -p /tmp/newdir; sleep 600")
    try:
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st, ch = daemon.json("GET", f"/containers/{n}/changes")
            kinds = {c["Path"]: c["Kind"] for c in ch or []}
            if "/tmp/newdir" in kinds:
                break
            time.sleep(0.05)
        assert st == 200
        assert kinds["/newfile"] == 1 and kinds["/bin/ls"] == 2 and kinds["/tmp/newdir"] == 1
        assert kinds["/bin"] == 0 and kinds["/tmp"] == 0
        # the engine's mount points (/etc/hosts, ...) are not changes, nor is /etc because of them
        assert "/etc/hosts" not in kinds and "/etc/hostname" not in kinds and "/etc" not in kinds
        out = daemon.docker("diff", n).stdout.splitlines()
        assert "A /newfile" in out and "D /bin/ls" in out and "C /bin" in out
        assert "A /newfile" in daemon.berth("diff", n).stdout.splitlines()
    finally:
        rm(daemon, n)


def test_changes_of_unknown_container_is_404(daemon):
    assert daemon.request("GET", "/containers/nosuch/changes")[0] == 404
    assert daemon.docker("diff", "nosuch", check=False).returncode != 0


# ---- export ----

def test_export_writes_merged_rootfs(daemon, tmp_path, client):
    n = running(daemon, "sh", "-c", "echo exported > /marker; sleep 600")
    try:
        import time
        deadline = time.monotonic() + 10
        while daemon.request("HEAD", f"/containers/{n}/archive?path=/marker")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        out = tmp_path / "fs.tar"
        daemon.docker("export", "-o", out, n)
        with tarfile.open(out) as t:
            names = set(t.getnames())
            assert "marker" in names and "bin/busybox" in names
            assert t.extractfile("marker").read() == b"exported\n"
        daemon.berth("export", "-o", tmp_path / "b.tar", n)
        with tarfile.open(tmp_path / "b.tar") as t:
            assert "marker" in t.getnames()
        data = b"".join(client.containers.get(n).export())
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            assert "marker" in t.getnames()
    finally:
        rm(daemon, n)


def test_export_of_created_container_and_unknown(daemon, tmp_path):
    n = created(daemon)
    try:
        daemon.docker("export", "-o", tmp_path / "c.tar", n)
        with tarfile.open(tmp_path / "c.tar") as t:
            assert "bin/busybox" in t.getnames()
        assert daemon.request("GET", "/containers/nosuch/export")[0] == 404
    finally:
        rm(daemon, n)


# ---- commit ----

def test_docker_commit_then_run_shows_the_change(daemon):
    n = running(daemon, "sh", "-c", "echo committed > /state; sleep 600")
    tag = "fsops-commit:" + n
    try:
        import time
        deadline = time.monotonic() + 10
        while daemon.request("HEAD", f"/containers/{n}/archive?path=/state")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        daemon.docker("commit", "-m", "a message", "-a", "someone", "-c", "ENV FOO=bar", "-c",
                      'CMD ["cat", "/state"]', "-c", "LABEL x=y", "-c", "EXPOSE 8080", "-c", "WORKDIR /tmp",
                      n, tag)
        assert daemon.docker("run", "--rm", "--network", "none", tag).stdout == "committed\n"
        env = daemon.docker("run", "--rm", "--network", "none", tag, "sh", "-c", "echo $FOO; pwd").stdout
        assert env == "bar\n/tmp\n"
        img = json.loads(daemon.docker("image", "inspect", tag).stdout)[0]
        assert img["Comment"] == "a message" and img["Author"] == "someone"
        assert img["Config"]["Labels"]["x"] == "y" and "8080/tcp" in img["Config"]["ExposedPorts"]
        hist = json.loads(daemon.docker("history", "--format", "{{json .}}", "--no-trunc", tag).stdout.splitlines()[0])
        assert hist["Comment"] == "a message"
        # the container keeps running (pause was undone)
        assert json.loads(daemon.docker("inspect", n).stdout)[0]["State"]["Status"] == "running"
    finally:
        rm(daemon, n)
        daemon.docker("rmi", "-f", tag, check=False)


def test_commit_leaves_out_engine_mount_points(daemon):
    n = running(daemon, "true")
    tag = "fsops-clean:" + n
    try:
        daemon.docker("wait", n)
        daemon.docker("commit", n, tag)
        m = name()
        out = daemon.docker("run", "--name", m, "--network", "none", tag, "true")
        ch = daemon.json("GET", f"/containers/{m}/changes")[1]
        assert all(c["Path"] not in ("/etc/hosts", "/etc/resolv.conf") for c in ch)
        rm(daemon, m)
    finally:
        rm(daemon, n)
        daemon.docker("rmi", "-f", tag, check=False)


def test_berth_commit_and_docker_py_commit(daemon, client):
    n = running(daemon, "sh", "-c", "touch /by-commit; sleep 600")
    try:
        import time
        deadline = time.monotonic() + 10
        while daemon.request("HEAD", f"/containers/{n}/archive?path=/by-commit")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        out = daemon.berth("commit", "--change", "USER nobody", n, "fsops-berth:1").stdout.strip()
        assert out.startswith("sha256:")
        assert json.loads(daemon.docker("image", "inspect", "fsops-berth:1").stdout)[0]["Config"]["User"] == "nobody"
        img = client.containers.get(n).commit(repository="fsops-py", tag="2", changes=["VOLUME /data"])
        assert "/data" in img.attrs["Config"]["Volumes"]
    finally:
        rm(daemon, n)
        daemon.docker("rmi", "-f", "fsops-berth:1", "fsops-py:2", check=False)


def test_commit_bad_input(daemon):
    n = created(daemon)
    try:
        assert daemon.request("POST", f"/commit?container=nosuch")[0] == 404
        st, body, _ = daemon.request("POST", f"/commit?container={n}&changes=RUN%20echo")
        assert st == 400 and "not a valid change command" in json.loads(body)["message"]
        assert daemon.request("POST", f"/commit?container={n}&repo=UPPER")[0] == 400
        assert daemon.request("POST", "/commit")[0] == 400
        st, body = daemon.json("POST", f"/commit?container={n}&repo=fsops-created")
        assert st == 201 and body["Id"].startswith("sha256:")
        daemon.docker("rmi", "fsops-created")
    finally:
        rm(daemon, n)


# ---- stats ----

def test_stats_one_shot_shape(daemon):
    n = running(daemon)
    try:
        st, s = daemon.json("GET", f"/containers/{n}/stats?stream=false&one-shot=true")
        assert st == 200
        assert s["name"] == "/" + n and len(s["id"]) == 64
        cpu = s["cpu_stats"]
        assert cpu["cpu_usage"]["total_usage"] > 0 and cpu["system_cpu_usage"] > 0 and cpu["online_cpus"] >= 1
        mem = s["memory_stats"]
        assert 0 < mem["usage"] <= mem["limit"] and isinstance(mem["stats"], dict) and mem["stats"]
        assert s["pids_stats"]["current"] >= 1
        assert "io_service_bytes_recursive" in s["blkio_stats"]
    finally:
        rm(daemon, n)


def test_stats_stream_and_memory_limit(daemon):
    n = name()
    daemon.docker("run", "-d", "--name", n, "--network", "none", "-m", "64m", "busybox", "sleep", "600")
    try:
        conn_status, body, _ = daemon.request("GET", f"/containers/{n}/stats?stream=false")
        s = json.loads(body)
        assert s["memory_stats"]["limit"] == 64 << 20
        assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0 and s["preread"] != "0001-01-01T00:00:00Z"
        from engine_daemon import UnixHTTPConnection
        c = UnixHTTPConnection(daemon.sock, timeout=10)
        c.request("GET", f"/containers/{n}/stats")
        r = c.getresponse()
        first = json.loads(r.readline())
        second = json.loads(r.readline())
        c.close()
        assert second["precpu_stats"]["cpu_usage"]["total_usage"] == first["cpu_stats"]["cpu_usage"]["total_usage"]
    finally:
        rm(daemon, n)


def test_stats_of_stopped_and_unknown_container(daemon):
    n = created(daemon)
    try:
        st, s = daemon.json("GET", f"/containers/{n}/stats?stream=false")
        assert st == 200 and s["cpu_stats"]["cpu_usage"]["total_usage"] == 0
        assert daemon.request("GET", "/containers/nosuch/stats?stream=false")[0] == 404
    finally:
        rm(daemon, n)


def test_docker_stats_no_stream_table(daemon):
    n = name()
    daemon.docker("run", "-d", "--name", n, "--network", "none", "-m", "32m", "busybox", "sleep", "600")
    try:
        out = daemon.docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}", n).stdout
        nm, cpu, usage = out.split(" ", 2)
        assert nm == n and cpu.endswith("%")
        assert usage.strip().endswith("/ 32MiB") and not usage.startswith("0B")
        table = daemon.berth("stats", "--no-stream", n).stdout.splitlines()
        assert table[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and n in table[1] and "32MiB" in table[1]
    finally:
        rm(daemon, n)


def test_docker_py_stats_and_berth_format(daemon, client):
    n = running(daemon)
    try:
        s = next(client.containers.get(n).stats(stream=True, decode=True))  # the first frame comes at once
        assert s["memory_stats"]["usage"] > 0 and s["name"] == "/" + n
        out = daemon.berth("stats", "--no-stream", "--format", "{{.Name}}:{{.PIDs}}", n).stdout
        assert out.strip() == f"{n}:1"
    finally:
        rm(daemon, n)


def test_docker_stats_streams_until_interrupted(daemon):
    n = running(daemon)
    p = subprocess.Popen([DOCKER, "stats", "--format", "{{.Name}} {{.MemUsage}}", n], env=daemon.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while len(lines) < 2:  # docker's CLI redraws one line per sample
            line = p.stdout.readline()
            assert line, p.stderr.read()
            if n in line:
                lines.append(line)
        assert all("MiB" in ln or "KiB" in ln for ln in lines)
    finally:
        p.kill()
        p.wait()
        rm(daemon, n)


# ---- archive API on volumes, bind mounts and tmpfs (docker mounts them for the call) ----

def volume_name():
    return "v" + uuid.uuid4().hex[:10]


def with_mounts(daemon, *opts, cmd=("sleep", "600"), start=True):
    """A container with these run options (-v, --mount, --tmpfs, --read-only, ...)."""
    n = name()
    daemon.docker("run" if start else "create", *(("-d",) if start else ()), "--name", n,
                  "--network", "none", *opts, "busybox", *cmd)
    return n


def rm_volumes(daemon, *vols):
    daemon.docker("volume", "rm", "-f", *vols, check=False)


def read_tar(data):
    """{name: bytes (files) or None (directories) or ('sym', target)} of a tar."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            if m.isdir():
                out[m.name] = None
            elif m.issym():
                out[m.name] = ("sym", m.linkname)
            else:
                out[m.name] = t.extractfile(m).read()
    return out


def get_tar(daemon, n, path):
    st, body, _ = daemon.request("GET", f"/containers/{n}/archive?path={path}")
    assert st == 200, body
    return read_tar(body)


@pytest.mark.parametrize("state", ["running", "exited"])
def test_docker_cp_out_of_named_volume(daemon, tmp_path, client, state):
    vol = volume_name()
    daemon.docker("run", "--rm", "--network", "none", "-v", f"{vol}:/v", "busybox", "sh", "-c",
                  "mkdir -p /v/dir/deep && echo backup > /v/dir/a && echo deep > /v/dir/deep/b")
    n = with_mounts(daemon, "-v", f"{vol}:/vol")
    try:
        if state == "exited":
            daemon.docker("stop", "-t", "0", n)
        daemon.docker("cp", f"{n}:/vol/dir", tmp_path / "out")
        assert (tmp_path / "out" / "a").read_text() == "backup\n"
        assert (tmp_path / "out" / "deep" / "b").read_text() == "deep\n"
        # HEAD sees the volume's directory, docker-py reads a file of it
        st, _, h = daemon.request("HEAD", f"/containers/{n}/archive?path=/vol/dir/a")
        assert st == 200 and path_stat(h)["size"] == 7
        stream, stat = client.containers.get(n).get_archive("/vol/dir/a")
        assert stat["name"] == "a" and read_tar(b"".join(stream)) == {"a": b"backup\n"}
    finally:
        rm(daemon, n)
        rm_volumes(daemon, vol)


@pytest.mark.parametrize("state", ["running", "created"])
def test_docker_cp_into_named_volume(daemon, tmp_path, client, state):
    vol = volume_name()
    n = with_mounts(daemon, "-v", f"{vol}:/vol", start=state == "running")
    try:
        (tmp_path / "in.txt").write_text("into the volume")
        daemon.docker("cp", tmp_path / "in.txt", f"{n}:/vol/")
        assert client.containers.get(n).put_archive("/vol", tar_bytes({"py.txt": b"py"}))
        # the volume itself holds the files: another container sees them
        out = daemon.docker("run", "--rm", "--network", "none", "-v", f"{vol}:/other", "busybox",
                            "cat", "/other/in.txt", "/other/py.txt").stdout
        assert out == "into the volumepy"
        if state == "created":
            daemon.docker("start", n)
        assert daemon.docker("exec", n, "cat", "/vol/in.txt").stdout == "into the volume"
        # volume content is neither a change of the container nor part of its export (as in docker)
        assert not any(c["Path"].startswith("/vol/") for c in daemon.json("GET", f"/containers/{n}/changes")[1])
        daemon.docker("export", "-o", tmp_path / "fs.tar", n)
        with tarfile.open(tmp_path / "fs.tar") as t:
            assert not [m for m in t.getnames() if m.lstrip("./").startswith("vol/")]
    finally:
        rm(daemon, n)
        rm_volumes(daemon, vol)


def test_docker_cp_bind_mount_both_ways(daemon, tmp_path):
    src = tmp_path / "bind"
    src.mkdir()
    (src / "from-host.txt").write_text("host side")
    n = with_mounts(daemon, "-v", f"{src}:/b", "--mount", f"type=bind,src={src},dst=/m")
    # -v creates a missing source directory when it mounts it: for a copy as at start
    later = with_mounts(daemon, "-v", f"{tmp_path}/made/later:/later", start=False)
    try:
        daemon.docker("cp", f"{n}:/b/from-host.txt", tmp_path / "copied.txt")
        assert (tmp_path / "copied.txt").read_text() == "host side"
        (tmp_path / "up.txt").write_text("to the host")
        daemon.docker("cp", tmp_path / "up.txt", f"{n}:/b/up.txt")
        assert (src / "up.txt").read_text() == "to the host"
        assert get_tar(daemon, n, "/m/up.txt") == {"up.txt": b"to the host"}
        daemon.docker("stop", "-t", "0", n)
        daemon.docker("cp", tmp_path / "up.txt", f"{n}:/m/while-stopped.txt")
        assert (src / "while-stopped.txt").read_text() == "to the host"
        daemon.docker("cp", tmp_path / "up.txt", f"{later}:/later/")
        assert (tmp_path / "made" / "later" / "up.txt").read_text() == "to the host"
    finally:
        rm(daemon, n)
        rm(daemon, later)


def test_docker_cp_tmpfs_of_running_container(daemon, tmp_path, client):
    n = with_mounts(daemon, "--tmpfs", "/tt", "--mount", "type=tmpfs,dst=/mt")
    try:
        daemon.docker("exec", n, "sh", "-c", "echo seen > /tt/inside; echo mt > /mt/inside")
        daemon.docker("cp", f"{n}:/tt", tmp_path / "tt")
        assert (tmp_path / "tt" / "inside").read_text() == "seen\n"
        assert get_tar(daemon, n, "/mt") == {"mt": None, "mt/inside": b"mt\n"}
        (tmp_path / "f.txt").write_text("into tmpfs")
        daemon.docker("cp", tmp_path / "f.txt", f"{n}:/tt/")
        assert client.containers.get(n).put_archive("/mt", tar_bytes({"py": b"py"}))
        assert daemon.docker("exec", n, "cat", "/tt/f.txt", "/mt/py").stdout == "into tmpfspy"
        # a stopped container's tmpfs is empty (as with dockerd) and nothing can be copied into it
        daemon.docker("stop", "-t", "0", n)
        assert get_tar(daemon, n, "/tt") == {"tt": None}
        p = daemon.docker("cp", tmp_path / "f.txt", f"{n}:/tt/", check=False)
        assert p.returncode != 0 and "is not running" in p.stderr
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/mt", body=tar_bytes({"x": b"x"}))
        assert st == 409, body
    finally:
        rm(daemon, n)


def test_docker_cp_includes_mounts_nested_under_copied_dir(daemon, tmp_path):
    outer, inner = volume_name(), volume_name()
    n = with_mounts(daemon, "-v", f"{outer}:/data", "-v", f"{inner}:/data/sub", "--tmpfs", "/data/sub/t")
    try:
        daemon.docker("exec", n, "sh", "-c", "echo o > /data/o; echo i > /data/sub/i; echo t > /data/sub/t/t")
        daemon.docker("cp", f"{n}:/data", tmp_path / "data")
        assert (tmp_path / "data" / "o").read_text() == "o\n"
        assert (tmp_path / "data" / "sub" / "i").read_text() == "i\n"
        assert (tmp_path / "data" / "sub" / "t" / "t").read_text() == "t\n"
        root = read_tar(daemon.docker("cp", f"{n}:/", "-", text=False).stdout)
        assert root["./data/sub/i"] == b"i\n" and root["./data/sub/t/t"] == b"t\n"
        assert "./bin/busybox" in root
        # the container's /proc, /sys and /dev are not archived (dockerd shows the image's directories)
        assert not [k for k in root if k.startswith(("./proc/", "./sys/"))]
        # a tar extracted at / reaches into the nested mounts
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/",
                                     body=tar_bytes({"data/sub/new": b"nested", "data/sub/t/new": b"tmp"}))
        assert st == 200, body
        assert daemon.docker("exec", n, "cat", "/data/sub/new", "/data/sub/t/new").stdout == "nestedtmp"
        out = daemon.docker("run", "--rm", "--network", "none", "-v", f"{inner}:/x", "busybox", "cat", "/x/new")
        assert out.stdout == "nested"
    finally:
        rm(daemon, n)
        rm_volumes(daemon, outer, inner)


def test_docker_cp_into_read_only_mount_fails(daemon, tmp_path, client):
    vol = volume_name()
    bind = tmp_path / "robind"
    bind.mkdir()
    n = with_mounts(daemon, "-v", f"{vol}:/ro:ro", "-v", f"{bind}:/rob:ro", "--mount",
                    f"type=volume,src={vol},dst=/rw")
    try:
        (tmp_path / "f.txt").write_text("nope")
        for dst in ("/ro/", "/rob/", "/ro/f.txt"):
            p = daemon.docker("cp", tmp_path / "f.txt", f"{n}:{dst}", check=False)
            assert p.returncode != 0 and "mounted volume is marked read-only" in p.stderr, (dst, p.stderr)
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/rob", body=tar_bytes({"x": b"x"}))
        assert st == 403 and json.loads(body)["message"] == "mounted volume is marked read-only"
        # entries of a tar extracted higher up cannot land in the read-only mount either
        st, _, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/", body=tar_bytes({"rob/x": b"x"}))
        assert st != 200
        docker = pytest.importorskip("docker")
        with pytest.raises(docker.errors.APIError, match="read-only"):
            client.containers.get(n).put_archive("/ro", tar_bytes({"py": b"py"}))
        assert os.listdir(bind) == []
        assert daemon.docker("exec", n, "ls", "-A", "/rw").stdout == ""
        # the same volume mounted read-write elsewhere takes the copy
        daemon.docker("cp", tmp_path / "f.txt", f"{n}:/rw/")
        assert daemon.docker("exec", n, "cat", "/ro/f.txt").stdout == "nope"
    finally:
        rm(daemon, n)
        rm_volumes(daemon, vol)


def test_archive_read_only_rootfs_still_takes_copies_into_volumes(daemon, tmp_path):
    vol = volume_name()
    n = with_mounts(daemon, "--read-only", "-v", f"{vol}:/data")
    try:
        st, body, _ = daemon.request("PUT", f"/containers/{n}/archive?path=/tmp", body=tar_bytes({"x": b"x"}))
        assert st == 403 and json.loads(body)["message"] == "container rootfs is marked read-only"
        (tmp_path / "f.txt").write_text("in volume")
        daemon.docker("cp", tmp_path / "f.txt", f"{n}:/data/")
        assert daemon.docker("exec", n, "cat", "/data/f.txt").stdout == "in volume"
    finally:
        rm(daemon, n)
        rm_volumes(daemon, vol)


def test_archive_symlinks_in_volume_resolve_in_container_view(daemon, tmp_path):
    vol = volume_name()
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    (hostdir / "secret").write_text("host only")
    daemon.docker("run", "--rm", "--network", "none", "-v", f"{vol}:/v", "busybox", "sh", "-c",
                  f"ln -s /etc /v/etc && ln -s ../../../../../../../etc /v/rel && ln -s {hostdir} /v/host")
    n = with_mounts(daemon, "-v", f"{vol}:/vol")
    try:
        own = daemon.docker("exec", n, "cat", "/etc/hostname").stdout.encode()
        assert own != open("/etc/hostname", "rb").read()
        assert get_tar(daemon, n, "/vol/etc/hostname") == {"hostname": own}
        assert get_tar(daemon, n, "/vol/rel/hostname") == {"hostname": own}
        st, _, h = daemon.request("HEAD", f"/containers/{n}/archive?path=/vol/etc")
        assert st == 200 and path_stat(h)["linkTarget"] == "/etc"
        # a link to a host path is looked up inside the container, where it does not exist
        assert daemon.request("GET", f"/containers/{n}/archive?path=/vol/host/secret")[0] == 404
        assert daemon.request("PUT", f"/containers/{n}/archive?path=/vol/host",
                              body=tar_bytes({"pwned": b"x"}))[0] == 404
        p = daemon.docker("cp", f"{n}:/vol/host/", tmp_path / "leak", check=False)
        assert p.returncode != 0 and not (tmp_path / "leak").exists()
        # copying through the link lands in the container's /etc, never the host's
        (tmp_path / "planted").write_text("planted")
        daemon.docker("cp", tmp_path / "planted", f"{n}:/vol/etc/")
        assert daemon.docker("exec", n, "cat", "/etc/planted").stdout == "planted"
        assert not os.path.exists("/etc/planted") and os.listdir(hostdir) == ["secret"]
    finally:
        rm(daemon, n)
        rm_volumes(daemon, vol)
