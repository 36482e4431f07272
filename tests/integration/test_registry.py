"""berth registry: the OCI distribution API with real clients (skopeo, docker)
and raw HTTP (requests) for the corners clients do not reach."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests
import urllib3

from conftest import run, unmount_all
from test_registry_support import (MT_EMPTY, MT_LAYER, MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_MANIFEST,  # noqa: F401
                                   error_code, make_registry, registry, sha256, tmpdir)

urllib3.disable_warnings()

SKOPEO_TLS = ["--tls-verify=false"]


def skopeo(*args, check=True):
    return run(["skopeo", "--command-timeout", "60s", *args], check=check, timeout=90)


# ---------------------------------------------------------------------------- CLI

def test_registry_help_lists_commands(berth):
    out = berth("registry", "--help").stdout
    assert "registry serve" in out and "registry gc" in out


def test_registry_rejects_unknown_config_key(berth, workdir):
    cfg = os.path.join(workdir, "c.yml")
    with open(cfg, "w") as f:
        f.write("http:\n  adress: 127.0.0.1:0\n")
    p = berth("registry", "serve", "--config", cfg, check=False)
    assert p.returncode != 0 and "adress" in p.stderr


def test_registry_flags_are_checked_before_the_config_and_every_spelling_finds_it(berth, workdir):
    cfg = os.path.join(workdir, "c.yml")
    with open(cfg, "w") as f:
        f.write("http:\n  adress: 127.0.0.1:0\n")
    root = os.path.join(workdir, "reg")
    # -cFILE and --conf FILE used to be skipped by the search for the config file (gc ran without it)
    for spelling in (["-c" + cfg], ["--conf", cfg], ["--config=" + cfg], [cfg]):
        p = berth("registry", "gc", "--root", root, *spelling, check=False)
        assert p.returncode == 1 and "adress" in p.stderr, (spelling, p.stderr)
    for args, msg in ((["--threads", "0", "-c", cfg], "berth registry: invalid thread count '0'\n"),
                      (["-a", "nope", cfg], "berth registry: invalid address 'nope'\n"),
                      ([cfg, "extra"], "berth registry: unexpected argument 'extra'\n"),
                      (["-c", cfg, "extra"], "berth registry: unexpected argument 'extra'\n")):
        p = berth("registry", "gc", "--root", root, *args, check=False)
        assert p.returncode == 2 and p.stderr == msg, (args, p.stderr)
    p = berth("registry", "serve", "--bogus", check=False)
    assert p.returncode == 2 and p.stderr.startswith("serve: unrecognized option '--bogus'\nUsage: berth registry")
    p = berth("registry", "gc", "--root", root, "--dry-run", "--no-delete", "--token", "--threads", "2")
    assert p.stdout.startswith("gc (dry run): marked 0 manifests")


# ---------------------------------------------------------------------------- base, errors

def test_base_endpoint_reports_api_version(registry):
    r = registry.req("GET", "/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unknown_blob_and_manifest_return_spec_errors(registry):
    d = sha256(b"never pushed")
    r = registry.req("GET", f"/v2/nope/blobs/{d}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"
    r = registry.req("GET", "/v2/nope/manifests/latest")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = registry.req("GET", "/v2/nope/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


# ---------------------------------------------------------------------------- real clients

def test_skopeo_copy_in_inspect_list_tags_copy_out_delete(registry, busybox, workdir):
    dest = f"docker://{registry.host}/skopeo/busybox:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{busybox['oci']}", dest)
    info = json.loads(skopeo("inspect", *SKOPEO_TLS, dest).stdout)
    assert info["Architecture"] == "amd64"
    tags = json.loads(skopeo("list-tags", *SKOPEO_TLS, f"docker://{registry.host}/skopeo/busybox").stdout)
    assert tags["Tags"] == ["v1"]
    out = os.path.join(workdir, "out")
    skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out}:v1")
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    manifest_digest = index["manifests"][0]["digest"]
    assert manifest_digest == info["Digest"]
    skopeo("delete", *SKOPEO_TLS, dest)
    r = registry.req("GET", f"/v2/skopeo/busybox/manifests/{manifest_digest}")
    assert r.status_code == 404


@pytest.fixture(scope="session")
def dockerd():
    """One dockerd for the session, with its own roots, socket and client config."""
    d = tmpdir("registry-dockerd")
    sock = os.path.join(d, "docker.sock")
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=os.path.join(d, "config"))
    logf = open(os.path.join(d, "dockerd.log"), "wb")
    proc = subprocess.Popen(["dockerd", "--data-root", os.path.join(d, "data"), "--exec-root",
                             os.path.join(d, "exec"), "-H", f"unix://{sock}", "--pidfile",
                             os.path.join(d, "docker.pid"), "--bridge=none", "--iptables=false",
                             "--ip6tables=false"], stdout=logf, stderr=logf)
    try:
        deadline = time.monotonic() + 30
        while run(["docker", "version"], env=env, check=False).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, "dockerd did not start"
            time.sleep(0.2)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
        unmount_all(d)  # dockerd bind-mounts its data root onto itself
        shutil.rmtree(d, ignore_errors=True)


def docker(env, *args, check=True, **kw):
    return run(["docker", *args], env=env, check=check, timeout=120, **kw)


@pytest.fixture(scope="session")
def docker_busybox(dockerd, busybox):
    docker(dockerd, "load", "-i", busybox["docker_archive"])
    return busybox["tag"]


def test_docker_push_then_pull(registry, dockerd, docker_busybox):
    ref = f"{registry.host}/docker/busybox:v1"
    docker(dockerd, "tag", docker_busybox, ref)
    push = docker(dockerd, "push", ref).stdout
    assert "digest: sha256:" in push
    docker(dockerd, "rmi", ref)
    docker(dockerd, "pull", ref)
    out = docker(dockerd, "image", "inspect", ref, "--format", "{{.Id}}").stdout.strip()
    want = docker(dockerd, "image", "inspect", docker_busybox, "--format", "{{.Id}}").stdout.strip()
    assert out == want


def test_docker_token_auth_login_push_pull(make_registry, dockerd, docker_busybox, workdir):
    htpasswd = os.path.join(workdir, "htpasswd")
    run(["htpasswd", "-cbB", htpasswd, "alice", "s3cret"])
    reg = make_registry(config=f"auth:\n  htpasswd: {htpasswd}\n  token:\n    enabled: true\n")
    ref = f"{reg.host}/team/busybox:v1"
    docker(dockerd, "tag", docker_busybox, ref)
    # (an anonymous `docker push` would fail too, but dockerd retries it for ~50 s)
    p = docker(dockerd, "login", "-u", "alice", "--password-stdin", reg.host, input="wrong\n", check=False)
    assert p.returncode != 0
    docker(dockerd, "login", "-u", "alice", "--password-stdin", reg.host, input="s3cret\n")
    try:
        docker(dockerd, "push", ref)
        docker(dockerd, "rmi", ref)
        docker(dockerd, "pull", ref)
    finally:
        docker(dockerd, "logout", reg.host, check=False)


def test_docker_basic_auth_push(make_registry, dockerd, docker_busybox, workdir):
    htpasswd = os.path.join(workdir, "htpasswd")
    run(["htpasswd", "-cbB", htpasswd, "bob", "pw"])
    reg = make_registry(args=["--htpasswd", htpasswd])
    ref = f"{reg.host}/bob/busybox:v1"
    docker(dockerd, "tag", docker_busybox, ref)
    docker(dockerd, "login", "-u", "bob", "--password-stdin", reg.host, input="pw\n")
    try:
        docker(dockerd, "push", ref)
    finally:
        docker(dockerd, "logout", reg.host, check=False)
    assert reg.req("GET", "/v2/bob/busybox/tags/list", auth=("bob", "pw")).json()["tags"] == ["v1"]


# ---------------------------------------------------------------------------- uploads

def test_chunked_upload_with_content_range_status_and_final_chunk(registry):
    data = os.urandom(300_000)
    d = sha256(data)
    r = registry.req("POST", "/v2/up/chunked/blobs/uploads/")
    assert r.status_code == 202
    loc, uuid = r.headers["Location"], r.headers["Docker-Upload-UUID"]
    assert uuid in loc
    r = registry.req("PATCH", loc, data=data[:100_000],
                     headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99999"
    r = registry.req("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-99999"
    assert r.headers["Docker-Upload-UUID"] == uuid
    # a chunk that does not start at the current offset is refused, nothing is written
    r = registry.req("PATCH", loc, data=data[200_000:], headers={"Content-Range": "200000-299999"})
    assert r.status_code == 416 and r.headers["Range"] == "0-99999"
    r = registry.req("PATCH", loc, data=data[100_000:200_000], headers={"Content-Range": "100000-199999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-199999"
    r = registry.req("PUT", f"{loc}?digest={d}", data=data[200_000:],
                     headers={"Content-Range": "200000-299999"})
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert r.headers["Location"] == f"/v2/up/chunked/blobs/{d}"
    assert registry.req("GET", f"/v2/up/chunked/blobs/{d}").content == data


def test_streamed_patch_without_content_range(registry):
    parts = [os.urandom(50_000) for _ in range(5)]
    data = b"".join(parts)
    loc = registry.req("POST", "/v2/up/stream/blobs/uploads/").headers["Location"]
    r = registry.req("PATCH", loc, data=iter(parts))  # chunked transfer encoding
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    r = registry.req("PUT", f"{loc}?digest={sha256(data)}")
    assert r.status_code == 201
    assert registry.req("HEAD", f"/v2/up/stream/blobs/{sha256(data)}").headers["Content-Length"] == str(len(data))


def test_upload_cancel_then_unknown(registry):
    loc = registry.req("POST", "/v2/up/cancel/blobs/uploads/").headers["Location"]
    assert registry.req("DELETE", loc).status_code == 204
    r = registry.req("GET", loc)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_digest_mismatch_is_rejected_and_nothing_stored(registry):
    wrong = sha256(b"something else")
    r = registry.req("POST", f"/v2/up/bad/blobs/uploads/?digest={wrong}", data=b"actual data")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert registry.req("HEAD", f"/v2/up/bad/blobs/{wrong}").status_code == 404
    assert registry.req("HEAD", f"/v2/up/bad/blobs/{sha256(b'actual data')}").status_code == 404


def test_blob_range_requests(registry):
    data = bytes(range(256)) * 4
    d = registry.push_blob("ranges/x", data)
    r = registry.req("GET", f"/v2/ranges/x/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = registry.req("GET", f"/v2/ranges/x/blobs/{d}", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = registry.req("GET", f"/v2/ranges/x/blobs/{d}", headers={"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    r = registry.req("HEAD", f"/v2/ranges/x/blobs/{d}")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == d
    assert r.headers["Content-Length"] == str(len(data))


def test_cross_repository_mount(registry):
    d = registry.push_blob("mount/src", b"shared layer")
    r = registry.req("POST", f"/v2/mount/dst/blobs/uploads/?mount={d}&from=mount/src")
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == d
    assert registry.req("HEAD", f"/v2/mount/dst/blobs/{d}").status_code == 200
    absent = sha256(b"not there")
    r = registry.req("POST", f"/v2/mount/dst/blobs/uploads/?mount={absent}&from=mount/src")
    assert r.status_code == 202 and "Docker-Upload-UUID" in r.headers


def test_concurrent_pushes_of_the_same_blob(registry):
    data = os.urandom(2_000_000)
    d = sha256(data)
    results = []

    def push(i):
        repo = f"conc/r{i % 3}"
        loc = registry.req("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        r1 = registry.req("PATCH", loc, data=data[:1_000_000])
        r2 = registry.req("PUT", f"{loc}?digest={d}", data=data[1_000_000:])
        results.append((r1.status_code, r2.status_code))

    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(202, 201)] * 8
    for i in range(3):
        assert registry.req("GET", f"/v2/conc/r{i}/blobs/{d}").content == data


def test_kill9_during_chunked_upload_then_resume(make_registry):
    reg = make_registry()
    data = os.urandom(3_000_000)
    d = sha256(data)
    loc = reg.req("POST", "/v2/crash/x/blobs/uploads/").headers["Location"]
    assert reg.req("PATCH", loc, data=data[:1_000_000]).status_code == 202
    # a second chunk is in flight (half sent) when the server dies
    s = socket.create_connection(("127.0.0.1", reg.port))
    s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
               "Content-Range: 1000000-1999999\r\n\r\n").encode() + data[1_000_000:1_500_000])
    time.sleep(0.2)
    reg.kill9()
    s.close()
    reg.start()
    r = reg.req("GET", loc)
    assert r.status_code == 204
    offset = int(r.headers["Range"].split("-")[1]) + 1
    assert 1_000_000 <= offset <= 1_500_000
    r = reg.req("PATCH", loc, data=data[offset:], headers={"Content-Range": f"{offset}-{len(data) - 1}"})
    assert r.status_code == 202
    r = reg.req("PUT", f"{loc}?digest={d}")
    assert r.status_code == 201, r.text
    assert reg.req("GET", f"/v2/crash/x/blobs/{d}").content == data
    # the store holds no blob other than the verified one
    blobs = os.listdir(os.path.join(reg.root, "blobs", "sha256"))
    assert blobs == [d.split(":")[1]]


# ---------------------------------------------------------------------------- manifests

def test_manifest_put_get_head_delete_by_tag_and_digest(registry):
    digest, doc = registry.push_image("man/app", "v1")
    r = registry.req("GET", "/v2/man/app/manifests/v1")
    assert r.status_code == 200 and r.headers["Content-Type"] == MT_OCI_MANIFEST
    assert r.headers["Docker-Content-Digest"] == digest and r.headers["ETag"] == f'"{digest}"'
    assert sha256(r.content) == digest
    r = registry.req("HEAD", f"/v2/man/app/manifests/{digest}")
    assert r.status_code == 200 and int(r.headers["Content-Length"]) > 0
    r = registry.push_manifest("man/app", digest, doc)
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/man/app/manifests/{digest}"
    assert registry.req("DELETE", "/v2/man/app/manifests/v1").status_code == 202
    assert registry.req("GET", "/v2/man/app/manifests/v1").status_code == 404
    assert registry.req("GET", f"/v2/man/app/manifests/{digest}").status_code == 200
    assert registry.req("DELETE", f"/v2/man/app/manifests/{digest}").status_code == 202
    assert registry.req("GET", f"/v2/man/app/manifests/{digest}").status_code == 404


def test_manifest_referencing_missing_blob_is_refused(registry):
    cd = registry.push_blob("man/missing", b"{}")
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": {"mediaType": MT_OCI_CONFIG, "digest": cd, "size": 2},
           "layers": [{"mediaType": MT_LAYER, "digest": sha256(b"absent"), "size": 6}]}
    r = registry.push_manifest("man/missing", "v1", doc)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    # a blob pushed to another repository does not count
    other = registry.push_blob("man/other", b"layer elsewhere")
    doc["layers"][0] = {"mediaType": MT_LAYER, "digest": other, "size": 15}
    r = registry.push_manifest("man/missing", "v1", doc)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_invalid_manifests_are_refused(registry):
    r = registry.push_manifest("man/bad", "v1", b"{not json")
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    r = registry.push_manifest("man/bad", "v1", {"schemaVersion": 1, "fsLayers": []},
                               media_type="application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    r = registry.push_manifest("man/bad", "v1", {"schemaVersion": 2}, media_type="application/x-unknown")
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    r = registry.push_manifest("man/bad", "bad:tag", {"schemaVersion": 2})
    assert r.status_code == 400
    r = registry.push_manifest("man/bad", sha256(b"x"), {"schemaVersion": 2})
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    r = registry.push_manifest("man/bad", "big", b"{" + b" " * (5 << 20) + b"}")
    assert r.status_code == 413


def test_docker_manifest_list_is_accepted(registry):
    digest, doc = registry.push_image("man/list", "amd64")
    size = len(registry.req("GET", f"/v2/man/list/manifests/{digest}").content)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": [{"mediaType": MT_OCI_MANIFEST, "digest": digest, "size": size,
                            "platform": {"architecture": "amd64", "os": "linux"}}]}
    r = registry.push_manifest("man/list", "multi", index,
                               media_type="application/vnd.docker.distribution.manifest.list.v2+json")
    assert r.status_code == 201, r.text
    index["manifests"][0]["digest"] = sha256(b"unknown manifest")
    r = registry.push_manifest("man/list", "broken", index,
                               media_type="application/vnd.docker.distribution.manifest.list.v2+json")
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_tags_list_paginates_with_link_header(registry):
    for t in ["c", "a", "b", "d"]:
        registry.push_image("pages/app", t)
    r = registry.req("GET", "/v2/pages/app/tags/list?n=2")
    assert r.json() == {"name": "pages/app", "tags": ["a", "b"]}
    assert r.headers["Link"] == '</v2/pages/app/tags/list?n=2&last=b>; rel="next"'
    r = registry.req("GET", "/v2/pages/app/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"] and "Link" not in r.headers
    assert registry.req("GET", "/v2/pages/app/tags/list").json()["tags"] == ["a", "b", "c", "d"]


def test_catalog_paginates(registry):
    for name in ["cat/one", "cat/two", "cat/three"]:
        registry.push_image(name, "v1")
    repos = registry.req("GET", "/v2/_catalog").json()["repositories"]
    assert {"cat/one", "cat/two", "cat/three"} <= set(repos) and repos == sorted(repos)
    r = registry.req("GET", "/v2/_catalog?n=1&last=cat/one")
    assert r.json()["repositories"] == ["cat/three"] and 'rel="next"' in r.headers["Link"]


def test_referrers_api_with_subject_and_artifact_type_filter(registry):
    subject, _ = registry.push_image("refs/app", "v1")
    subject_size = len(registry.req("GET", f"/v2/refs/app/manifests/{subject}").content)
    empty = registry.push_blob("refs/app", b"{}")
    sig = registry.push_blob("refs/app", b"signature")

    def artifact(at, blob):
        return {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST, "artifactType": at,
                "config": {"mediaType": MT_EMPTY, "digest": empty, "size": 2},
                "layers": [{"mediaType": "application/octet-stream", "digest": blob, "size": 9}],
                "subject": {"mediaType": MT_OCI_MANIFEST, "digest": subject, "size": subject_size},
                "annotations": {"org.example": "yes"}}

    r = registry.push_manifest("refs/app", sha256(json.dumps(artifact("application/vnd.example.sig", sig)).encode()),
                               artifact("application/vnd.example.sig", sig))
    assert r.status_code == 201 and r.headers["OCI-Subject"] == subject
    r = registry.push_manifest("refs/app", "sbom", artifact("application/vnd.example.sbom", sig))
    assert r.status_code == 201
    r = registry.req("GET", f"/v2/refs/app/referrers/{subject}")
    assert r.status_code == 200 and r.headers["Content-Type"] == MT_OCI_INDEX
    found = {m["artifactType"] for m in r.json()["manifests"]}
    assert found == {"application/vnd.example.sig", "application/vnd.example.sbom"}
    assert r.json()["manifests"][0]["annotations"] == {"org.example": "yes"}
    r = registry.req("GET", f"/v2/refs/app/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["artifactType"] for m in r.json()["manifests"]] == ["application/vnd.example.sbom"]
    r = registry.req("GET", f"/v2/refs/app/referrers/{sha256(b'no such subject')}")
    assert r.status_code == 200 and r.json()["manifests"] == []


def test_deletes_disabled_return_unsupported(make_registry):
    reg = make_registry(args=["--no-delete"])
    digest, _ = reg.push_image("nodel/app", "v1")
    r = reg.req("DELETE", f"/v2/nodel/app/manifests/{digest}")
    assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"
    r = reg.req("DELETE", f"/v2/nodel/app/blobs/{sha256(b'layer-bytes')}")
    assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"


# ---------------------------------------------------------------------------- hostile input

def raw(reg, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                break
        return out
    finally:
        s.close()


def test_path_tricks_get_name_invalid(registry):
    for path in ["/v2/../../etc/manifests/latest", "/v2/a/%2e%2e/b/manifests/latest", "/v2/A/manifests/x",
                 "/v2/a//b/blobs/uploads/", "/v2/a/%2E%2E/tags/list"]:
        r = raw(registry, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert r.startswith(b"HTTP/1.1 400") or r.startswith(b"HTTP/1.1 404"), (path, r[:200])
        if r.startswith(b"HTTP/1.1 400"):
            assert b"NAME_INVALID" in r or b"DIGEST_INVALID" in r


def test_bad_digests_get_digest_invalid(registry):
    for ref in ["sha256:abc", "sha256:" + "Z" * 64, "md5:" + "a" * 32, "sha256:" + "a" * 65]:
        r = registry.req("GET", f"/v2/hostile/x/blobs/{ref}")
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", ref
    r = registry.req("POST", "/v2/hostile/x/blobs/uploads/?digest=sha256:nothex", data=b"x")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    loc = registry.req("POST", "/v2/hostile/x/blobs/uploads/").headers["Location"]
    r = registry.req("PUT", f"{loc}?digest=bogus")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_content_range_lies_are_refused(registry):
    loc = registry.req("POST", "/v2/hostile/cr/blobs/uploads/").headers["Location"]
    # claims 10 bytes, sends 20
    r = registry.req("PATCH", loc, data=b"x" * 20, headers={"Content-Range": "0-9"})
    assert r.status_code == 416
    # malformed ranges
    for bad in ["banana", "5-1", "-1-3"]:
        r = registry.req("PATCH", loc, data=b"x", headers={"Content-Range": bad})
        assert r.status_code == 416, bad
    # body shorter than the range (chunked, so no Content-Length to compare)
    r = registry.req("PATCH", loc, data=iter([b"x" * 5]), headers={"Content-Range": "0-9"})
    assert r.status_code == 416
    r = registry.req("GET", loc)
    assert r.status_code == 204 and r.headers["Range"] == "0-0"
    data = b"y" * 10
    assert registry.req("PATCH", loc, data=data, headers={"Content-Range": "0-9"}).status_code == 202
    assert registry.req("PUT", f"{loc}?digest={sha256(data)}").status_code == 201


def test_huge_headers_and_slow_clients_do_not_block_others(registry):
    r = raw(registry, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n")
    assert r == b"" or r.split(b" ")[1] in (b"400", b"413", b"431")
    slow = socket.create_connection(("127.0.0.1", registry.port))
    slow.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    garbage = socket.create_connection(("127.0.0.1", registry.port))
    garbage.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(100))  # a TLS hello
    try:
        for _ in range(20):
            assert registry.req("GET", "/v2/", timeout=5).status_code == 200
    finally:
        slow.close()
        garbage.close()


def test_unknown_routes_and_methods(registry):
    assert registry.req("GET", "/nope").status_code == 404
    r = registry.req("POST", f"/v2/a/blobs/{sha256(b'x')}")
    assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"
    r = registry.req("GET", "/v2/a/blobs/uploads/" + "f" * 32)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_blob_size_limit(make_registry):
    reg = make_registry(config="storage:\n  blob_max_size: 1k\n")
    loc = reg.req("POST", "/v2/limit/x/blobs/uploads/").headers["Location"]
    r = reg.req("PATCH", loc, data=b"z" * 2048)
    assert r.status_code == 413 and error_code(r) == "SIZE_INVALID"
    assert reg.req("GET", loc).headers["Range"] == "0-0"
    r = reg.req("POST", f"/v2/limit/x/blobs/uploads/?digest={sha256(b'z' * 2048)}", data=b"z" * 2048)
    assert r.status_code == 413
    assert os.listdir(os.path.join(reg.root, "uploads")) == [loc.rsplit("/", 1)[1]]
    assert reg.push_blob("limit/x", b"small enough")


# ---------------------------------------------------------------------------- durability policy

def _store_fsyncs(make_registry, config):
    """Push a small image to a registry run under strace; the fsync calls on files of its store."""
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    trace = os.path.join(tmpdir("fsync"), "trace")
    reg = make_registry(config=config, wrapper=["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync",
                                                "-o", trace])
    try:
        digest, doc = reg.push_image("durable/app", "v1", layer=b"layer-" + os.urandom(64))
        layer = doc["layers"][0]["digest"]
        r = reg.req("GET", f"/v2/durable/app/blobs/{layer}")
        assert r.status_code == 200 and sha256(r.content) == layer
        assert reg.req("GET", "/v2/durable/app/manifests/v1").headers["Docker-Content-Digest"] == digest
    finally:
        # SIGTERM the server itself (strace's child); strace exits with it and flushes the trace
        with open(f"/proc/{reg.proc.pid}/task/{reg.proc.pid}/children") as f:
            for pid in f.read().split():
                os.kill(int(pid), signal.SIGTERM)
        reg.proc.wait(timeout=30)
    with open(trace) as f:
        calls = [line for line in f if "sync(" in line and reg.root + "/" in line]
    shutil.rmtree(os.path.dirname(trace), ignore_errors=True)
    return calls


def test_storage_fsyncs_blobs_and_manifests_by_default(make_registry):
    calls = _store_fsyncs(make_registry, None)
    # the blob data before its rename and the blobs/ directory after it; manifest, revision and tag files
    assert any("/uploads/" in c for c in calls), calls
    assert any(c.rstrip().endswith("= 0") and "/blobs/sha256>" in c for c in calls), calls
    assert any("/_manifests/tags" in c for c in calls), calls


def test_storage_fsync_false_skips_every_fsync(make_registry):
    assert _store_fsyncs(make_registry, "storage: {fsync: false}\n") == []


def test_slow_loris_upload_body_is_cut_off(make_registry):
    """A PATCH body trickling in below http.body_min_rate once http.timeout has passed loses its
    connection (issue 17); the upload session stays usable."""
    reg = make_registry(config="http:\n  timeout: 1s\n  body_min_rate: 1000\n")
    r = reg.req("POST", "/v2/slow/blobs/uploads/")
    assert r.status_code == 202
    loc = r.headers["Location"]
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=30)
    try:
        s.sendall(f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode())
        deadline = time.monotonic() + 60
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                s.sendall(b"x" * 10)
                s.settimeout(0.3)
                closed = s.recv(4096) == b""
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed, "a body at ~30 bytes/s kept its connection"
    finally:
        s.close()
    # what arrived is kept, as with any interrupted PATCH; the session goes on from there
    r = reg.req("GET", loc)
    assert r.status_code == 204
    kept = int(r.headers["Range"].split("-")[1]) + 1
    data = b"z" * 10
    assert reg.req("PATCH", loc, data=data).status_code == 202
    assert reg.req("PUT", f"{loc}?digest={sha256(b'x' * kept + data)}").status_code == 201
