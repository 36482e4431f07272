"""Issue 19 item 7: image endpoints where berth differed from dockerd, checked
with docker-py and the docker CLI: import applies its "changes", a committed
image names its parent, loading a non-archive is a 200 stream carrying the
error (docker-py's ImageLoadError, the CLI's exit 1).

One daemon for the module (engine_daemon.Daemon, no container networking).
"""
import io
import json
import os
import tarfile
import uuid

import docker
import pytest

from engine_daemon import busybox_daemon


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    with busybox_daemon(berth_bin, busybox) as d:
        yield d


@pytest.fixture
def client(daemon):
    c = docker.DockerClient(base_url=daemon.host, version="1.41", timeout=60)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def rootfs_tar(daemon, busybox):
    """The busybox root filesystem as a plain tar (what `docker import` takes)."""
    path = os.path.join(daemon.base, "import-rootfs.tar")
    with tarfile.open(path, "w") as t:
        t.add(busybox["rootfs"], arcname=".")
    return path


def name():
    return "t" + uuid.uuid4().hex[:10]


def test_cli_import_applies_every_change(daemon, rootfs_tar):
    ref = name() + ":1"
    daemon.docker("import",
                  "-c", 'CMD ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u)"]',
                  "-c", "ENV GREETING=hello OTHER=x",
                  "-c", "ENV DERIVED=${GREETING}-world",
                  "-c", "WORKDIR /srv",
                  "-c", "EXPOSE 8080 53/udp",
                  "-c", "USER 65534",
                  "-c", 'LABEL org.example.team="core team"',
                  "-c", "VOLUME /data",
                  "-c", "STOPSIGNAL SIGINT",
                  "-c", "ONBUILD RUN true",
                  rootfs_tar, ref)
    cfg = json.loads(daemon.docker("inspect", ref).stdout)[0]["Config"]
    assert cfg["Cmd"] == ["sh", "-c", "echo $GREETING from $(pwd) as $(id -u)"]
    assert {"GREETING=hello", "OTHER=x", "DERIVED=hello-world"} <= set(cfg["Env"])
    assert cfg["WorkingDir"] == "/srv"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["User"] == "65534"
    assert cfg["Labels"] == {"org.example.team": "core team"}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["OnBuild"] == ["RUN true"]
    # the image runs with its CMD, no command given
    out = daemon.docker("run", "--rm", ref).stdout
    assert out.strip() == "hello from /srv as 65534"
    daemon.docker("rmi", ref)


def test_cli_import_entrypoint_and_shell_form_cmd(daemon, rootfs_tar):
    ref = name()
    daemon.docker("import", "-c", 'ENTRYPOINT ["echo", "entry"]', "-c", "CMD shell form",
                  rootfs_tar, ref)
    cfg = json.loads(daemon.docker("inspect", ref).stdout)[0]["Config"]
    assert cfg["Entrypoint"] == ["echo", "entry"]
    assert cfg["Cmd"] == ["/bin/sh", "-c", "shell form"]
    daemon.docker("rmi", ref)


def test_import_refuses_an_invalid_change(daemon, rootfs_tar):
    p = daemon.docker("import", "-c", "RUN echo no", rootfs_tar, name(), check=False)
    assert p.returncode != 0
    assert "RUN is not a valid change command" in p.stderr
    p = daemon.docker("import", "-c", "NOSUCH x", rootfs_tar, name(), check=False)
    assert p.returncode != 0


def test_docker_py_import_with_changes(client, rootfs_tar):
    repo = name()
    with open(rootfs_tar, "rb") as f:
        data = f.read()
    client.api.import_image_from_data(data, repository=repo, tag="v1",
                                      changes=['CMD ["cat", "/etc/hostname"]', "ENV A=b"])
    img = client.images.get(repo + ":v1")
    assert img.attrs["Config"]["Cmd"] == ["cat", "/etc/hostname"]
    assert "A=b" in img.attrs["Config"]["Env"]
    assert img.attrs["Parent"] == ""  # an import has no parent
    client.images.remove(img.id)


def test_docker_py_commit_names_the_parent_image(client):
    base = client.images.get("busybox")
    c = client.containers.create("busybox", ["sh", "-c", "echo x > /f"])
    try:
        c.start()
        c.wait()
        img = c.commit(repository=name(), tag="c1", changes=["CMD [\"cat\", \"/f\"]"])
        assert img.attrs["Parent"] == base.id
        assert img.attrs["Config"]["Cmd"] == ["cat", "/f"]
        listed = [i for i in client.api.images(all=True) if i["Id"] == img.id]
        assert listed and listed[0]["ParentId"] == base.id
        # a commit of the commit: its parent is the first commit
        c2 = client.containers.create(img.id, ["true"])
        img2 = c2.commit()
        assert img2.attrs["Parent"] == img.id
        c2.remove()
        client.images.remove(img2.id)
        client.images.remove(img.id)
    finally:
        c.remove(force=True)


def test_cli_commit_parent_and_removed_parent_reads_empty(daemon):
    cid = daemon.docker("create", "busybox", "true").stdout.strip()
    ref = name()
    try:
        daemon.docker("commit", cid, ref)
        base = daemon.docker("inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
        assert daemon.docker("inspect", "-f", "{{.Parent}}", ref).stdout.strip() == base
        # a commit of the commit, then the middle image removed: the child's parent reads empty
        cid2 = daemon.docker("create", ref, "true").stdout.strip()
        child = name()
        daemon.docker("commit", cid2, child)
        daemon.docker("rm", cid2)
        daemon.docker("rmi", ref)
        assert daemon.docker("inspect", "-f", "{{.Parent}}", child).stdout.strip() == ""
        daemon.docker("rmi", child)
    finally:
        daemon.docker("rm", "-f", cid, check=False)


def test_docker_py_load_of_a_non_archive_raises_image_load_error(client):
    with pytest.raises(docker.errors.ImageLoadError):
        client.images.load(b"this is not an image archive\n" * 10)


def test_load_of_a_non_archive_is_a_200_stream_with_the_error(daemon, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not an archive\n")
    status, body, _ = daemon.request("POST", "/images/load?quiet=1", body=junk.read_bytes(),
                                  headers={"Content-Type": "application/x-tar"})
    assert status == 200
    msgs = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    assert msgs and msgs[-1]["error"] == msgs[-1]["errorDetail"]["message"]
    assert msgs[-1]["error"]
    # the CLI prints the reason and fails
    p = daemon.docker("load", "-i", str(junk), check=False)
    assert p.returncode == 1
    assert msgs[-1]["error"] in p.stderr


def test_load_of_a_truncated_archive_reports_in_the_stream(client, busybox):
    data = open(busybox["docker_archive"], "rb").read()
    with pytest.raises(docker.errors.ImageLoadError):
        client.images.load(data[: len(data) // 3])
    # a good archive still loads (and reports what it loaded)
    loaded = client.images.load(data)
    assert any("busybox:latest" in i.tags for i in loaded)
