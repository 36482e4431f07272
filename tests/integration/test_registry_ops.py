"""berth registry operations: gc, lifecycle rules, immutable tags, pull-through
cache (against Debian's docker-registry as upstream), metrics, graceful shutdown,
upload session expiry."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import urllib3

from conftest import run
from test_registry_support import (error_code, free_port, make_registry, sha256, tmpdir,  # noqa: F401
                                   wait_http)

urllib3.disable_warnings()


def gc(berth, reg, *args):
    cmd = ["registry", "gc", "--root", reg.root, *args]
    if reg.config:
        cmd += ["--config", reg.config]
    return berth(*cmd).stdout


def blob_files(reg):
    return set(os.listdir(os.path.join(reg.root, "blobs", "sha256")))


def test_gc_sweeps_unreferenced_blobs_and_keeps_referenced(berth, make_registry):
    reg = make_registry(config="storage:\n  gc_grace: 0s\n")
    digest, doc = reg.push_image("gc/app", "v1", layer=b"kept layer")
    orphan = reg.push_blob("gc/app", b"orphan blob")
    out = gc(berth, reg, "--dry-run")
    assert "would delete 1 blobs" in out
    assert orphan.split(":")[1] in blob_files(reg)
    out = gc(berth, reg)
    assert "deleted 1 blobs" in out
    assert orphan.split(":")[1] not in blob_files(reg)
    assert reg.req("HEAD", f"/v2/gc/app/blobs/{orphan}").status_code == 404
    for d in (digest, doc["config"]["digest"], doc["layers"][0]["digest"]):
        assert d.split(":")[1] in blob_files(reg)
    assert reg.req("GET", "/v2/gc/app/manifests/v1").status_code == 200
    # deleting the manifest makes its blobs garbage
    assert reg.req("DELETE", f"/v2/gc/app/manifests/{digest}").status_code == 202
    gc(berth, reg)
    assert blob_files(reg) == set()


def test_gc_grace_period_keeps_fresh_uploads(berth, make_registry):
    reg = make_registry(config="storage:\n  gc_grace: 1h\n")
    fresh = reg.push_blob("gc/fresh", b"just uploaded, manifest not yet pushed")
    assert "deleted 0 blobs" in gc(berth, reg)
    assert fresh.split(":")[1] in blob_files(reg)


def test_gc_keeps_blobs_of_index_children_and_referrers(berth, make_registry):
    reg = make_registry(config="storage:\n  gc_grace: 0s\n")
    child, _ = reg.push_image("gc/idx", "child", layer=b"child layer")
    size = len(reg.req("GET", f"/v2/gc/idx/manifests/{child}").content)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child,
                            "size": size}]}
    assert reg.push_manifest("gc/idx", "multi", index,
                             media_type="application/vnd.oci.image.index.v1+json").status_code == 201
    assert reg.req("DELETE", "/v2/gc/idx/manifests/child").status_code == 202  # untag the child
    gc(berth, reg)
    assert reg.req("GET", f"/v2/gc/idx/blobs/{sha256(b'child layer')}").content == b"child layer"


def test_lifecycle_keeps_newest_tags_and_expires_untagged(berth, make_registry):
    config = ("storage:\n  gc_grace: 0s\nrepositories:\n  - name: \"life/*\"\n    lifecycle:\n"
              "      expire_untagged_days: 0\n      keep_tags: {pattern: \"v*\", count: 2}\n")
    reg = make_registry(config=config)
    digests = {}
    for i, tag in enumerate(["v1", "v2", "v3", "dev"]):
        digests[tag], _ = reg.push_image("life/app", tag, layer=f"layer {tag}".encode())
        path = os.path.join(reg.root, "repositories/life/app/_manifests/tags", tag)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # push order, deterministic
    out = gc(berth, reg)
    assert "1 tags" in out and "1 manifests" in out
    assert reg.req("GET", "/v2/life/app/tags/list").json()["tags"] == ["dev", "v2", "v3"]
    assert reg.req("GET", f"/v2/life/app/manifests/{digests['v1']}").status_code == 404
    assert reg.req("GET", f"/v2/life/app/blobs/{sha256(b'layer v1')}").status_code == 404
    assert reg.req("GET", f"/v2/life/app/blobs/{sha256(b'layer v2')}").status_code == 200


def test_immutable_tags_cannot_move_or_be_deleted(make_registry):
    reg = make_registry(config="repositories:\n  - name: \"frozen/*\"\n    immutable_tags: true\n")
    reg.push_image("frozen/app", "v1", layer=b"one")
    reg.push_image("frozen/app", "v1", layer=b"one")  # same content again: fine
    cd = reg.push_blob("frozen/app", b"{}")
    ld = reg.push_blob("frozen/app", b"two")
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": 3}]}
    r = reg.push_manifest("frozen/app", "v1", doc)
    assert r.status_code == 400 and error_code(r) == "TAG_INVALID"
    r = reg.req("DELETE", "/v2/frozen/app/manifests/v1")
    assert r.status_code == 400 and error_code(r) == "TAG_INVALID"


@pytest.fixture(scope="module")
def upstream(busybox):
    """Debian's docker-registry on loopback, holding the busybox image."""
    d = tmpdir("upstream")
    port = free_port()
    cfg = os.path.join(d, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    logf = open(os.path.join(d, "log"), "wb")
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=logf, stderr=logf)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/")
        run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{busybox['oci']}",
             f"docker://127.0.0.1:{port}/library/busybox:latest"], timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        logf.close()
        shutil.rmtree(d, ignore_errors=True)


def test_pull_through_cache_fetches_from_upstream_once(make_registry, upstream, workdir):
    reg = make_registry(args=["--proxy", upstream])
    out = os.path.join(workdir, "out")
    run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{reg.host}/library/busybox:latest",
         f"oci:{out}:latest"], timeout=90)
    fetched = int([line for line in reg.req("GET", "/metrics").text.splitlines()
                   if line.startswith("berth_registry_proxy_fetches_total")][0].split()[1])
    assert fetched >= 3  # manifest, config, layer
    # served from the cache now: a second pull fetches nothing new
    run(["skopeo", "inspect", "--tls-verify=false", f"docker://{reg.host}/library/busybox:latest"])
    again = int([line for line in reg.req("GET", "/metrics").text.splitlines()
                 if line.startswith("berth_registry_proxy_fetches_total")][0].split()[1])
    assert again == fetched
    assert reg.req("GET", "/v2/library/busybox/manifests/nosuchtag").status_code == 404


def test_metrics_count_requests_by_route_and_status(make_registry):
    reg = make_registry()
    reg.push_image("metrics/app", "v1")
    reg.req("GET", "/v2/metrics/app/manifests/v1")
    reg.req("GET", "/v2/metrics/app/manifests/nope")
    text = reg.req("GET", "/metrics").text
    assert 'berth_registry_requests_total{route="manifest",status="2xx"}' in text
    assert 'berth_registry_requests_total{route="manifest",status="4xx"} 1' in text
    assert "berth_registry_storage_bytes" in text and "berth_registry_upload_sessions 0" in text


def test_sigterm_finishes_in_flight_request(make_registry):
    reg = make_registry()
    loc = reg.req("POST", "/v2/drain/x/blobs/uploads/").headers["Location"]
    data = os.urandom(200_000)
    s = socket.create_connection(("127.0.0.1", reg.port), timeout=10)
    s.sendall((f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data[:1000])
    time.sleep(0.2)
    reg.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert reg.proc.poll() is None  # still draining
    s.sendall(data[1000:])
    resp = s.recv(4096)
    s.close()
    assert resp.startswith(b"HTTP/1.1 202"), resp
    assert reg.proc.wait(timeout=10) == 0
    # a new connection is refused once draining started
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", reg.port), timeout=2).sendall(b"GET /v2/ HTTP/1.1\r\n\r\n")


def test_upload_sessions_expire(make_registry):
    reg = make_registry(config="storage:\n  upload_expiry: 1s\n")
    loc = reg.req("POST", "/v2/expire/x/blobs/uploads/").headers["Location"]
    assert reg.req("PATCH", loc, data=b"partial").status_code == 202
    reg.stop()
    time.sleep(2.1)
    reg.start()  # expiry runs at start and every minute
    assert reg.req("GET", loc).status_code == 404
    assert os.listdir(os.path.join(reg.root, "uploads")) == []


def test_gc_while_pushing_never_leaves_a_manifest_without_its_blobs(berth, make_registry):
    reg = make_registry(config="storage:\n  gc_grace: 0s\n")
    accepted, stop = [], threading.Event()

    def pusher(n):
        # until 3 pushes got through (or 40 tries): under load gc may sweep every early attempt's
        # blobs before their manifest comes (grace 0), which is a clean refusal, not a result
        mine = 0
        for i in range(40):
            if mine >= 3:
                break
            repo = f"race/r{n}"
            try:
                cd = reg.push_blob(repo, f"config {n} {i}".encode())
                ld = reg.push_blob(repo, f"layer {n} {i}".encode())
            except AssertionError:
                continue
            doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                              "size": len(f"config {n} {i}")},
                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld,
                               "size": len(f"layer {n} {i}")}]}
            r = reg.push_manifest(repo, f"t{i}", doc)
            # gc may sweep a blob between its upload and the manifest: then the push is refused cleanly
            assert r.status_code in (201, 400), r.text
            if r.status_code == 201:
                accepted.append((repo, f"t{i}", cd, ld))
                mine += 1
            else:
                assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"

    def collector():
        while not stop.wait(0.05):
            berth("registry", "gc", "--root", reg.root, "--config", reg.config)

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(3)]
    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    gc_thread.join()
    gc(berth, reg)
    assert accepted
    for repo, tag, cd, ld in accepted:
        assert reg.req("GET", f"/v2/{repo}/manifests/{tag}").status_code == 200
        for d in (cd, ld):
            assert reg.req("GET", f"/v2/{repo}/blobs/{d}").status_code == 200, (repo, tag, d)


def test_pull_through_cache_with_token_auth_upstream_and_tag_revalidation(make_registry, workdir):
    htpasswd = os.path.join(workdir, "htpasswd")
    run(["htpasswd", "-cbB", htpasswd, "mirror", "m-pw"])
    up = make_registry(config=f"auth:\n  htpasswd: {htpasswd}\n  token:\n    enabled: true\n")
    creds = ("mirror", "m-pw")
    first, _ = up.push_image("lib/app", "stable", layer=b"first", auth=creds)
    mirror = make_registry(config=f"proxy:\n  remoteurl: {up.url}\n  username: mirror\n  password: m-pw\n"
                                  "  tag_ttl: 0s\n")
    r = mirror.req("GET", "/v2/lib/app/manifests/stable")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == first
    assert mirror.req("GET", f"/v2/lib/app/blobs/{sha256(b'first')}").content == b"first"
    second, _ = up.push_image("lib/app", "stable", layer=b"second", auth=creds)
    r = mirror.req("GET", "/v2/lib/app/manifests/stable")
    assert r.headers["Docker-Content-Digest"] == second
    up.stop()  # upstream down: the cached copy is still served
    assert mirror.req("GET", "/v2/lib/app/manifests/stable").headers["Docker-Content-Digest"] == second


def test_thread_per_connection_mode_serves_the_same_api(make_registry):
    reg = make_registry(config="http:\n  thread_per_connection: true\n")
    digest, _ = reg.push_image("tpc/app", "v1")
    r = reg.req("GET", "/v2/tpc/app/manifests/v1")
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest


def test_token_key_is_created_and_reused_across_restarts(make_registry, workdir):
    key = os.path.join(workdir, "token.pem")
    reg = make_registry(config=f"auth:\n  token:\n    enabled: true\n    key: {key}\n"
                               "repositories:\n  - name: \"*\"\n    public: true\n")
    tok = reg.req("GET", "/auth/token?scope=repository:any/x:pull").json()["token"]
    assert os.stat(key).st_mode & 0o777 == 0o600
    reg.stop()
    reg.start()
    r = reg.req("GET", "/v2/any/x/tags/list", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"  # authorized, just empty
