"""berth registry on a full disk (issue 18 item 3, the registry's half): the store is a
small tmpfs mounted by the fixture (unmounted always). Pushes fail with the spec's error
JSON, a 5xx naming the reason; nothing half-written is addressable (no partial blob, no
manifest or tag of a failed push); pulls of what is stored keep working (skopeo); once
space is freed pushes work again."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import run, unmount_all
from test_registry_support import MT_LAYER, MT_OCI_CONFIG, MT_OCI_MANIFEST, Registry, sha256, tmpdir

FULL = "no space left on device"


@pytest.fixture
def reg():
    base = tmpdir("regfull")
    root = os.path.join(base, "store")
    os.makedirs(root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m,mode=0700", "berth-reg-full", root], check=True)
    r = Registry(base, root=root)
    try:
        r.start()
        yield r
    finally:
        r.stop()
        unmount_all(root)
        shutil.rmtree(base, ignore_errors=True)


def skopeo(*args, check=True):
    return run(["skopeo", "--command-timeout", "60s", *args], check=check, timeout=90)


def free_kb(reg):
    st = os.statvfs(reg.root)
    return st.f_bavail * st.f_frsize // 1024


def fill(reg):
    """Fill the store's file system to the last block with a file of our own."""
    path = os.path.join(reg.root, "filler")
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=64k"], capture_output=True)
    assert free_kb(reg) == 0
    return path


def assert_full_error(resp):
    assert 500 <= resp.status_code < 600, (resp.status_code, resp.text)
    err = resp.json()["errors"][0]
    assert err["code"] and FULL in (err["message"] + " " + str(err.get("detail", ""))).lower(), resp.text


def manifest(config_digest, config_len, layer_digest, layer_len):
    return json.dumps({"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
                       "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": config_len},
                       "layers": [{"mediaType": MT_LAYER, "digest": layer_digest, "size": layer_len}]}).encode()


def pull_ok(reg, ref, dest):
    shutil.rmtree(dest, ignore_errors=True)
    skopeo("copy", "--src-tls-verify=false", f"docker://{reg.host}/{ref}", f"oci:{dest}:x")
    with open(os.path.join(dest, "index.json")) as f:
        return json.load(f)["manifests"][0]["digest"]


def test_pushes_fail_clearly_nothing_half_written_pulls_keep_working(reg, busybox, workdir):
    # an image stored before the disk fills
    skopeo("copy", "--dest-tls-verify=false", f"oci:{busybox['oci']}", f"docker://{reg.host}/full/busybox:v1")
    stored = pull_ok(reg, "full/busybox:v1", os.path.join(workdir, "before"))

    # monolithic blob pushes until the disk is full: a 5xx with the reason, the blob not addressable
    failed = None
    for _ in range(40):
        data = os.urandom(1 << 20)
        d = sha256(data)
        r = reg.req("POST", f"/v2/full/app/blobs/uploads/?digest={d}", data=data,
                    headers={"Content-Type": "application/octet-stream"})
        if r.status_code != 201:
            failed = (r, d)
            break
    assert failed, "the store never filled"
    assert_full_error(failed[0])
    assert reg.req("HEAD", f"/v2/full/app/blobs/{failed[1]}").status_code == 404
    assert reg.req("GET", f"/v2/full/app/blobs/{failed[1]}").status_code == 404

    # a chunked upload: the chunk that does not fit is refused and rolled back (offset unchanged)
    r = reg.req("POST", "/v2/full/app/blobs/uploads/")
    assert r.status_code == 202
    loc = r.headers["Location"]
    filler = fill(reg)
    # no new session on a full disk, and no half-made one left behind
    sessions = set(os.listdir(os.path.join(reg.root, "uploads")))
    assert_full_error(reg.req("POST", "/v2/full/app/blobs/uploads/"))
    assert set(os.listdir(os.path.join(reg.root, "uploads"))) == sessions
    r = reg.req("PATCH", loc, data=os.urandom(256 << 10), headers={"Content-Type": "application/octet-stream"})
    assert_full_error(r)
    st = reg.req("GET", loc)
    assert st.status_code == 204 and st.headers.get("Range", "0-0") in ("0-0", "bytes=0-0"), st.headers

    # a manifest push on a full disk: refused with the reason, neither tag nor digest appears
    cfg, layer = b"{}", b"small layer"
    os.unlink(filler)
    cd, ld = reg.push_blob("full/app", cfg), reg.push_blob("full/app", layer)
    body = manifest(cd, len(cfg), ld, len(layer))
    filler = fill(reg)
    r = reg.req("PUT", "/v2/full/app/manifests/v1", data=body, headers={"Content-Type": MT_OCI_MANIFEST})
    assert_full_error(r)
    assert reg.req("GET", "/v2/full/app/manifests/v1").status_code == 404
    assert reg.req("GET", f"/v2/full/app/manifests/{sha256(body)}").status_code == 404
    # a manifest naming the blob that failed is refused as unknown, never stored
    bad = manifest(cd, len(cfg), failed[1], 1 << 20)
    r = reg.req("PUT", "/v2/full/app/manifests/v2", data=bad, headers={"Content-Type": MT_OCI_MANIFEST})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"

    # a real client's push fails, and says why
    p = skopeo("copy", "--dest-tls-verify=false", f"oci:{busybox['oci']}",
               f"docker://{reg.host}/full/other:v1", check=False)
    assert p.returncode != 0

    # reads keep working while the disk is full
    assert pull_ok(reg, "full/busybox:v1", os.path.join(workdir, "during")) == stored
    tags = reg.req("GET", "/v2/full/busybox/tags/list")
    assert tags.status_code == 200 and tags.json()["tags"] == ["v1"]

    # space freed: pushes work again, through the same repository and a real client
    os.unlink(filler)
    r = reg.req("PUT", "/v2/full/app/manifests/v1", data=body, headers={"Content-Type": MT_OCI_MANIFEST})
    assert r.status_code == 201, r.text
    skopeo("copy", "--dest-tls-verify=false", f"oci:{busybox['oci']}", f"docker://{reg.host}/full/other:v1")
    assert pull_ok(reg, "full/other:v1", os.path.join(workdir, "after")) == stored
    data = b"after " + uuid.uuid4().bytes
    reg.push_blob("full/app", data)
