"""berth registry security: htpasswd Basic auth, built-in token auth, per-repository
permissions, anonymous pull of public repositories, TLS."""
import base64
import json
import os

import pytest
import urllib3

from conftest import run
from test_registry_support import error_code, make_registry, sha256  # noqa: F401

urllib3.disable_warnings()


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory):
    d = tmp_path_factory.mktemp("htpasswd")
    path = str(d / "htpasswd")
    run(["htpasswd", "-cbB", path, "alice", "alice-pw"])
    run(["htpasswd", "-bB", path, "bob", "bob-pw"])
    return path


def auth_config(htpasswd, token=False):
    return (f"auth:\n  htpasswd: {htpasswd}\n"
            + ("  token:\n    enabled: true\n    expiration: 5m\n" if token else "")
            + "  access:\n"
              "    - user: alice\n      repository: \"*\"\n      actions: [pull, push, delete]\n"
              "    - user: bob\n      repository: \"bob/*\"\n      actions: [pull, push]\n"
              "    - user: bob\n      repository: \"shared/*\"\n      actions: [pull]\n"
              "repositories:\n  - name: \"pub/*\"\n    public: true\n")


def skopeo(*args, check=True):
    return run(["skopeo", "--command-timeout", "60s", *args], check=check, timeout=90)


def test_basic_auth_challenges_and_accepts_valid_credentials(make_registry, htpasswd):
    reg = make_registry(config=auth_config(htpasswd))
    r = reg.req("GET", "/v2/")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    assert error_code(r) == "UNAUTHORIZED"
    assert reg.req("GET", "/v2/", auth=("alice", "wrong")).status_code == 401
    assert reg.req("GET", "/v2/", auth=("mallory", "alice-pw")).status_code == 401
    assert reg.req("GET", "/v2/", auth=("alice", "alice-pw")).status_code == 200


def test_basic_auth_per_repository_permissions(make_registry, htpasswd):
    reg = make_registry(config=auth_config(htpasswd))
    alice, bob = ("alice", "alice-pw"), ("bob", "bob-pw")
    reg.push_image("shared/app", "v1", auth=alice)
    reg.push_image("bob/app", "v1", auth=bob)
    assert reg.req("GET", "/v2/shared/app/manifests/v1", auth=bob).status_code == 200
    r = reg.req("POST", "/v2/shared/app/blobs/uploads/", auth=bob)
    assert r.status_code == 403 and error_code(r) == "DENIED"
    r = reg.req("GET", "/v2/alice/private/tags/list", auth=bob)
    assert r.status_code == 403
    r = reg.req("DELETE", "/v2/bob/app/manifests/v1", auth=bob)
    assert r.status_code == 403
    assert reg.req("DELETE", "/v2/bob/app/manifests/v1", auth=alice).status_code == 202
    repos = reg.req("GET", "/v2/_catalog", auth=bob).json()["repositories"]
    assert repos == ["bob/app", "shared/app"]


def test_anonymous_pull_of_public_repository_only(make_registry, htpasswd):
    reg = make_registry(config=auth_config(htpasswd))
    digest, _ = reg.push_image("pub/tool", "v1", auth=("alice", "alice-pw"))
    reg.push_image("priv/tool", "v1", auth=("alice", "alice-pw"))
    assert reg.req("GET", "/v2/pub/tool/manifests/v1").status_code == 200
    assert reg.req("GET", "/v2/priv/tool/manifests/v1").status_code == 401
    assert reg.req("POST", "/v2/pub/tool/blobs/uploads/").status_code == 401
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/pub/tool:v1",
                             check=True).stdout)
    assert info["Digest"] == digest


def test_skopeo_with_basic_auth(make_registry, htpasswd, busybox):
    reg = make_registry(config=auth_config(htpasswd))
    dest = f"docker://{reg.host}/bob/busybox:v1"
    p = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:nope", f"oci:{busybox['oci']}", dest,
               check=False)
    assert p.returncode != 0
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:bob-pw", f"oci:{busybox['oci']}", dest)
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", "--creds", "bob:bob-pw",
                             f"docker://{reg.host}/bob/busybox").stdout)
    assert tags["Tags"] == ["v1"]


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_token_endpoint_issues_scoped_short_lived_tokens(make_registry, htpasswd):
    reg = make_registry(config=auth_config(htpasswd, token=True))
    r = reg.req("GET", "/v2/")
    chal = r.headers["WWW-Authenticate"]
    assert r.status_code == 401 and chal.startswith("Bearer realm=") and 'service="berth-registry"' in chal
    r = reg.req("GET", "/auth/token?service=berth-registry&scope=repository:bob/app:pull,push,delete"
                "&scope=repository:other/x:pull", auth=("bob", "bob-pw"))
    assert r.status_code == 200
    body = r.json()
    claims = jwt_claims(body["token"])
    assert claims["sub"] == "bob" and claims["exp"] - claims["iat"] == 300
    access = {a["name"]: a["actions"] for a in claims["access"]}
    assert access == {"bob/app": ["pull", "push"], "other/x": []}
    hdr = {"Authorization": f"Bearer {body['token']}"}
    assert reg.req("GET", "/v2/", headers=hdr).status_code == 200
    r = reg.req("POST", "/v2/bob/app/blobs/uploads/", headers=hdr)
    assert r.status_code == 202
    r = reg.req("GET", "/v2/other/x/tags/list", headers=hdr)
    assert r.status_code == 401 and 'scope="repository:other/x:pull"' in r.headers["WWW-Authenticate"]
    # a forged token (signature of another payload) is refused
    parts = body["token"].split(".")
    forged = base64.urlsafe_b64encode(json.dumps(dict(claims, sub="alice")).encode()).decode().rstrip("=")
    r = reg.req("GET", "/v2/", headers={"Authorization": f"Bearer {parts[0]}.{forged}.{parts[2]}"})
    assert r.status_code == 401
    assert reg.req("GET", "/auth/token?scope=repository:bob/app:pull", auth=("bob", "bad")).status_code == 401
    r = reg.req("GET", "/v2/_catalog")
    assert r.status_code == 401 and 'scope="registry:catalog:*"' in r.headers["WWW-Authenticate"]
    tok = reg.req("GET", "/auth/token?scope=registry:catalog:*", auth=("bob", "bob-pw")).json()["token"]
    r = reg.req("GET", "/v2/_catalog", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and "repositories" in r.json()


def test_skopeo_with_token_auth_and_anonymous_public_pull(make_registry, htpasswd, busybox):
    reg = make_registry(config=auth_config(htpasswd, token=True))
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pw", f"oci:{busybox['oci']}",
           f"docker://{reg.host}/pub/busybox:v1")
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/pub/busybox:v1").stdout)
    assert info["Architecture"] == "amd64"
    p = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:bob-pw", f"oci:{busybox['oci']}",
               f"docker://{reg.host}/pub/busybox:v2", check=False)
    assert p.returncode != 0


def test_tls_with_certificate_and_key(make_registry, workdir, busybox):
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"])
    reg = make_registry(args=["--tls-cert", cert, "--tls-key", key])
    assert reg.url.startswith("https://")
    r = reg.req("GET", "/v2/", verify=cert)
    assert r.status_code == 200
    skopeo("copy", "--dest-cert-dir", workdir, "--dest-tls-verify=false", f"oci:{busybox['oci']}",
           f"docker://{reg.host}/tls/busybox:v1")
    assert reg.req("GET", "/v2/tls/busybox/tags/list", verify=cert).json()["tags"] == ["v1"]
