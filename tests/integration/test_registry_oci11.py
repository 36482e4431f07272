"""berth registry: distribution-spec 1.1 features the conformance suite leaves off by
default (issue 19): tags on a push by digest (`?tag=a&tag=b`, answered with `OCI-Tag`
headers) and manifests and blobs addressed by a sha512 digest the client asks for
(`PUT /manifests/<tag>?digest=sha512:...`, `?digest-algorithm=sha512` uploads).
Raw HTTP (requests) for the protocol, skopeo to read the result as a client does."""
import hashlib
import json
import uuid

from conftest import run
from test_registry_support import (MT_LAYER, MT_OCI_CONFIG, MT_OCI_MANIFEST, error_code,  # noqa: F401
                                   registry, sha256)


def sha512(data):
    return "sha512:" + hashlib.sha512(data).hexdigest()


def repo():
    return "oci11/r" + uuid.uuid4().hex[:8]


def image_doc(reg, name, digest_fn=sha256):
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer " + uuid.uuid4().bytes
    ds = []
    for data in (config, layer):
        d = digest_fn(data)
        r = reg.req("POST", f"/v2/{name}/blobs/uploads/?digest={d}", data=data,
                    headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == d
        ds.append(d)
    doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
           "config": {"mediaType": MT_OCI_CONFIG, "digest": ds[0], "size": len(config)},
           "layers": [{"mediaType": MT_LAYER, "digest": ds[1], "size": len(layer)}]}
    return json.dumps(doc).encode()


def put(reg, name, ref, body, query=""):
    return reg.req("PUT", f"/v2/{name}/manifests/{ref}{query}", data=body,
                   headers={"Content-Type": MT_OCI_MANIFEST})


def oci_tags(resp):
    return sorted(t.strip() for t in resp.headers.get("OCI-Tag", "").split(",") if t.strip())


def test_push_by_digest_with_tags_creates_them_and_answers_oci_tag(registry):
    name = repo()
    body = image_doc(registry, name)
    d = sha256(body)
    r = put(registry, name, d, body, "?tag=v1&tag=latest&tag=v1.0.0")
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert oci_tags(r) == ["latest", "v1", "v1.0.0"]
    for t in ("v1", "latest", "v1.0.0"):
        g = registry.req("GET", f"/v2/{name}/manifests/{t}", headers={"Accept": MT_OCI_MANIFEST})
        assert g.status_code == 200 and g.headers["Docker-Content-Digest"] == d and g.content == body
    assert sorted(registry.req("GET", f"/v2/{name}/tags/list").json()["tags"]) == ["latest", "v1", "v1.0.0"]
    # a client reads them as any tag
    out = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{name}:v1.0.0"])
    assert out.stdout.encode().strip() == body.strip()
    # without ?tag= a push by digest creates no tag and sends no OCI-Tag
    body2 = image_doc(registry, name)
    r = put(registry, name, sha256(body2), body2)
    assert r.status_code == 201 and "OCI-Tag" not in r.headers


def test_an_invalid_tag_refuses_the_whole_push(registry):
    name = repo()
    body = image_doc(registry, name)
    d = sha256(body)
    r = put(registry, name, d, body, "?tag=good&tag=-bad")
    assert r.status_code == 400 and error_code(r) == "TAG_INVALID"
    assert registry.req("GET", f"/v2/{name}/manifests/{d}").status_code == 404
    assert registry.req("GET", f"/v2/{name}/manifests/good").status_code == 404


def test_manifest_pushed_by_tag_with_a_sha512_digest_is_addressed_by_it(registry):
    name = repo()
    body = image_doc(registry, name)
    d512 = sha512(body)
    r = put(registry, name, "v512", body, f"?digest={d512}")
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d512
    assert r.headers["Location"] == f"/v2/{name}/manifests/{d512}"
    g = registry.req("GET", f"/v2/{name}/manifests/v512", headers={"Accept": MT_OCI_MANIFEST})
    assert g.status_code == 200 and g.headers["Docker-Content-Digest"] == d512 and g.content == body
    g = registry.req("GET", f"/v2/{name}/manifests/{d512}", headers={"Accept": MT_OCI_MANIFEST})
    assert g.status_code == 200 and g.content == body
    # a digest that is not the body's is refused, nothing tagged
    r = put(registry, name, "wrong", body, f"?digest={sha512(body + b' ')}")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert registry.req("GET", f"/v2/{name}/manifests/wrong").status_code == 404
    r = put(registry, name, "bad", body, "?digest=md5:abc")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_sha512_blobs_and_manifest_by_sha512_digest(registry):
    name = repo()
    body = image_doc(registry, name, digest_fn=sha512)
    d512 = sha512(body)
    r = put(registry, name, d512, body, "?tag=s512")
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d512 and oci_tags(r) == ["s512"]
    doc = json.loads(body)
    ld = doc["layers"][0]["digest"]
    g = registry.req("GET", f"/v2/{name}/blobs/{ld}")
    assert g.status_code == 200 and sha512(g.content) == ld
    # chunked upload asking for sha512 up front (regclient's digest-algorithm parameter)
    data = b"chunked " + uuid.uuid4().bytes * 100
    r = registry.req("POST", f"/v2/{name}/blobs/uploads/?digest-algorithm=sha512")
    assert r.status_code == 202
    loc = r.headers["Location"]
    r = registry.req("PATCH", loc, data=data[:500], headers={"Content-Type": "application/octet-stream",
                                                             "Content-Range": f"0-{499}"})
    assert r.status_code == 202
    loc = r.headers["Location"]
    sep = "&" if "?" in loc else "?"
    r = registry.req("PUT", f"{loc}{sep}digest={sha512(data)}", data=data[500:],
                     headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert registry.req("HEAD", f"/v2/{name}/blobs/{sha512(data)}").status_code == 200
