"""Registry client against real peers: Debian's docker-registry (plain, htpasswd
basic auth, token auth with a tiny token server here) fed and read by skopeo,
and a fake registry in this file for dropped connections and hostile answers."""
import base64
import datetime
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import run
from test_image_store import store, tree

USER, PASSWORD = "berth", "s3cret-pass"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("registry exited early")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("registry did not start")


class Registry:
    def __init__(self, base, auth_yaml="", tls=None):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="berth-it-reg-", dir=base)
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: {self.host}\n")
            if tls:
                f.write(f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n")
            f.write(auth_yaml)
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log, stderr=self.log)
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def regbase():
    d = tempfile.mkdtemp(prefix="berth-it-regs-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(regbase):
    r = Registry(regbase)
    yield r
    r.stop()


@pytest.fixture(scope="session")
def registry_basic(regbase):
    htp = os.path.join(regbase, "htpasswd")
    run(["htpasswd", "-Bbc", htp, USER, PASSWORD])
    r = Registry(regbase, f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htp}\n")
    yield r
    r.stop()


# ---- token auth: a minimal token server (RS256 JWT with x5c) ----

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, base):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-token-test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = os.path.join(base, "token-root.pem")
        with open(self.bundle, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.requests = []
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.requests.append(self.path)
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                from urllib.parse import parse_qs, urlparse
                q = parse_qs(urlparse(self.path).query)
                access = []
                for sc in q.get("scope", []):
                    typ, name, actions = sc.split(":")
                    access.append({"type": typ, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": srv.token(q.get("service", [""])[0], access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self, service, access):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": "berth-test-issuer", "sub": USER, "aud": service, "exp": now + 600, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing + "." + b64url(sig)

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture(scope="session")
def registry_token(regbase):
    ts = TokenServer(regbase)
    r = Registry(regbase, f"auth:\n  token:\n    realm: http://127.0.0.1:{ts.port}/token\n"
                          f"    service: berth-registry\n    issuer: berth-test-issuer\n"
                          f"    rootcertbundle: {ts.bundle}\n")
    r.tokens = ts
    yield r
    r.stop()
    ts.stop()


@pytest.fixture
def docker_config(berth, workdir):
    """Point DOCKER_CONFIG at a private config.json holding credentials."""
    def write(host):
        d = os.path.join(workdir, "docker-config")
        os.makedirs(d, exist_ok=True)
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"auths": {f"http://{host}": {"auth": auth}}}, f)
        berth.env["DOCKER_CONFIG"] = d
    return write


def skopeo_push(src, dest, creds=None):
    cmd = ["skopeo", "copy", "--dest-tls-verify=false", src, "docker://" + dest]
    if creds:
        cmd[2:2] = ["--dest-creds", creds]
    run(cmd)


@pytest.fixture(scope="session")
def seeded(registry, images):
    """Generated images pushed into the plain registry once per session."""
    layered = images.make(name="layered", tag="layered:1", layers=2, whiteouts=True)
    skopeo_push("oci-archive:" + layered["oci_archive"], f"{registry.host}/test/layered:1")
    zstd = images.make(name="zstd", tag="zstd:1", compression="zstd", layers=1)
    skopeo_push("oci:" + zstd["oci"], f"{registry.host}/test/zstd:1")
    return {"layered": layered, "zstd": zstd}


# ---- pull ----

def test_pull_unpacks_same_filesystem(berth, registry, seeded, workdir):
    p = store(berth, "pull", f"{registry.host}/test/layered:1")
    assert p.stdout.strip() == seeded["layered"]["id"]
    assert "Pull complete" in p.stderr and "Status: Downloaded newer image" in p.stderr
    sid = "pull1"
    rootfs = store(berth, "mount", "--image", f"{registry.host}/test/layered:1", sid).stdout.strip()
    try:
        assert tree(rootfs) == tree(seeded["layered"]["rootfs"])
    finally:
        store(berth, "unmount", "--rm", sid)
    info = json.loads(store(berth, "inspect", f"{registry.host}/test/layered:1").stdout)[0]
    assert info["RepoDigests"][0].startswith(f"{registry.host}/test/layered@sha256:")


def test_pull_twice_reports_up_to_date(berth, registry, seeded):
    store(berth, "pull", f"{registry.host}/test/layered:1")
    p = store(berth, "pull", f"{registry.host}/test/layered:1")
    assert "Already exists" in p.stderr and "Image is up to date" in p.stderr


def test_pull_zstd_layers(berth, registry, seeded):
    p = store(berth, "pull", f"{registry.host}/test/zstd:1")
    assert p.stdout.strip() == seeded["zstd"]["id"]


def test_pull_by_digest(berth, registry, seeded):
    out = run(["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/test/layered:1"]).stdout
    digest = json.loads(out)["Digest"]
    p = store(berth, "pull", f"{registry.host}/test/layered@{digest}")
    assert p.stdout.strip() == seeded["layered"]["id"]


def test_pull_unknown_tag_fails_clearly(berth, registry, seeded):
    p = store(berth, "pull", f"{registry.host}/test/layered:nope", check=False)
    assert p.returncode != 0 and "not found" in p.stderr
    assert json.loads(store(berth, "ls", "--json").stdout) == []


# ---- push ----

def test_push_is_readable_by_skopeo(berth, registry, busybox, workdir):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    dest = f"{registry.host}/pushed/busybox:v1"
    store(berth, "tag", "busybox", dest)
    p = store(berth, "push", dest)
    assert "Pushed" in p.stderr
    info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "docker://" + dest]).stdout)
    assert info["Digest"] == p.stdout.strip()
    out = os.path.join(workdir, "copy")
    run(["skopeo", "copy", "--src-tls-verify=false", "docker://" + dest, "oci:" + out + ":v1"])
    with open(os.path.join(out, "index.json")) as f:
        m = json.load(f)["manifests"][0]
    with open(os.path.join(out, "blobs", "sha256", m["digest"][7:])) as f:
        assert json.load(f)["config"]["digest"] == busybox["id"]


def test_push_again_mounts_or_skips_blobs(berth, registry, busybox):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    store(berth, "tag", "busybox", f"{registry.host}/a/bb:1")
    store(berth, "push", f"{registry.host}/a/bb:1")
    p = store(berth, "push", f"{registry.host}/a/bb:1")
    assert "Layer already exists" in p.stderr and "Pushing" not in p.stderr
    store(berth, "tag", "busybox", f"{registry.host}/b/bb:1")
    p = store(berth, "push", f"{registry.host}/b/bb:1")
    assert "Mounted from a/bb" in p.stderr


def test_push_large_layer_uses_chunks(berth, registry, images):
    img = images.make(name="big", tag="big:1", size=36 << 20)  # one gzip layer of ~19 MB
    store(berth, "load", "-q", "-i", img["oci_archive"])
    dest = f"{registry.host}/big/img:1"
    store(berth, "tag", "big:1", dest)
    p = store(berth, "push", dest)
    assert f"Pushing {16 << 20}/" in p.stderr  # a first 16 MiB chunk was PATCHed
    info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "docker://" + dest]).stdout)
    assert len(info["Layers"]) >= 2
    other = dict(berth.env, BERTH_ROOT=os.path.join(berth.base, "other"))
    p = run([berth.bin, "image-store", "pull", dest], env=other)
    assert p.stdout.strip() == img["id"]


# ---- auth ----

def test_basic_auth_without_credentials_is_refused(berth, registry_basic, busybox):
    p = store(berth, "pull", f"{registry_basic.host}/x/y:1", check=False)
    assert p.returncode != 0 and "unauthorized" in p.stderr


def test_basic_auth_from_docker_config(berth, registry_basic, busybox, docker_config):
    skopeo_push("oci-archive:" + busybox["oci_archive"], f"{registry_basic.host}/auth/bb:1",
                f"{USER}:{PASSWORD}")
    docker_config(registry_basic.host)
    p = store(berth, "pull", f"{registry_basic.host}/auth/bb:1")
    assert p.stdout.strip() == busybox["id"]
    store(berth, "tag", p.stdout.strip(), f"{registry_basic.host}/auth/pushed:2")
    store(berth, "push", f"{registry_basic.host}/auth/pushed:2")


def test_token_auth_pull_and_push(berth, registry_token, busybox, docker_config):
    skopeo_push("oci-archive:" + busybox["oci_archive"], f"{registry_token.host}/tok/bb:1",
                f"{USER}:{PASSWORD}")
    docker_config(registry_token.host)
    p = store(berth, "pull", f"{registry_token.host}/tok/bb:1")
    assert p.stdout.strip() == busybox["id"]
    assert any("scope=repository%3Atok%2Fbb%3Apull" in r for r in registry_token.tokens.requests)
    store(berth, "tag", busybox["id"], f"{registry_token.host}/tok/pushed:1")
    store(berth, "push", f"{registry_token.host}/tok/pushed:1")
    out = run(["skopeo", "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
               f"docker://{registry_token.host}/tok/pushed:1"]).stdout
    assert json.loads(out)["Layers"]


def test_token_auth_without_credentials_fails(berth, registry_token):
    p = store(berth, "pull", f"{registry_token.host}/tok/bb:1", check=False)
    assert p.returncode != 0 and ("unauthorized" in p.stderr or "token" in p.stderr)


# ---- a fake registry: dropped connections and hostile answers ----

class FakeRegistry:
    """Serves an OCI layout; `drop` blobs are cut half-way on their first GET."""

    def __init__(self, oci_dir):
        self.blobs = {}
        bdir = os.path.join(oci_dir, "blobs", "sha256")
        for name in os.listdir(bdir):
            with open(os.path.join(bdir, name), "rb") as f:
                self.blobs["sha256:" + name] = f.read()
        with open(os.path.join(oci_dir, "index.json")) as f:
            d = json.load(f)["manifests"][0]["digest"]
        self.manifests = {"good": (self.blobs[d], "application/vnd.oci.image.manifest.v1+json")}
        self.drop = set()
        self.ranges = []
        self.ignore_range = False
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, code, body=b"", ctype="application/octet-stream", extra=()):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                parts = self.path.split("/")
                if self.path == "/v2/":
                    return self.send(200, b"{}", "application/json")
                if len(parts) >= 5 and parts[-2] == "manifests":
                    m = srv.manifests.get(parts[-1])
                    if not m:
                        return self.send(404, b'{"errors":[{"message":"manifest unknown"}]}')
                    return self.send(200, m[0], m[1])
                if len(parts) >= 5 and parts[-2] == "blobs":
                    b = srv.blobs.get(parts[-1])
                    if b is None:
                        return self.send(404)
                    rng = self.headers.get("Range")
                    if rng and not srv.ignore_range:
                        srv.ranges.append(rng)
                        start = int(rng.split("=")[1].split("-")[0])
                        return self.send(206, b[start:], extra=[("Content-Range",
                                                                  f"bytes {start}-{len(b) - 1}/{len(b)}")])
                    if parts[-1] in srv.drop:
                        srv.drop.discard(parts[-1])
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(b)))
                        self.end_headers()
                        self.wfile.write(b[: len(b) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    return self.send(200, b)
                self.send(404)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def layer_digests(self):
        m = json.loads(self.manifests["good"][0])
        return [l["digest"] for l in m["layers"]]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake(images):
    img = images.make(name="fakesrc", tag="fakesrc:1", size=2 << 20)
    f = FakeRegistry(img["oci"])
    f.image = img
    yield f
    f.stop()


def test_pull_resumes_dropped_connection_with_range(berth, fake):
    big = max(fake.layer_digests(), key=lambda d: len(fake.blobs[d]))
    fake.drop.add(big)
    p = store(berth, "pull", f"{fake.host}/x/img:good")
    assert p.stdout.strip() == fake.image["id"]
    assert fake.ranges and fake.ranges[0].startswith("bytes=")


def test_pull_restarts_when_server_ignores_range(berth, fake):
    big = max(fake.layer_digests(), key=lambda d: len(fake.blobs[d]))
    fake.drop.add(big)
    fake.ignore_range = True
    p = store(berth, "pull", f"{fake.host}/x/img:good")
    assert p.stdout.strip() == fake.image["id"]


def test_pull_wrong_blob_digest_is_rejected(berth, fake):
    d = fake.layer_digests()[0]
    fake.blobs[d] = fake.blobs[d][:-1] + bytes([fake.blobs[d][-1] ^ 1])
    p = store(berth, "pull", f"{fake.host}/x/img:good", check=False)
    assert p.returncode != 0 and "digest mismatch" in p.stderr
    assert json.loads(store(berth, "ls", "--json").stdout) == []
    assert os.listdir(os.path.join(berth.root, "content", "ingest")) == []


def test_pull_truncated_blob_is_rejected(berth, fake):
    d = fake.layer_digests()[0]
    fake.blobs[d] = fake.blobs[d][:10]
    p = store(berth, "pull", f"{fake.host}/x/img:good", check=False)
    assert p.returncode != 0
    assert json.loads(store(berth, "ls", "--json").stdout) == []


def test_pull_schema1_is_refused(berth, fake):
    fake.manifests["s1"] = (json.dumps({"schemaVersion": 1, "name": "x/img", "tag": "s1",
                                        "fsLayers": []}).encode(),
                            "application/vnd.docker.distribution.manifest.v1+prettyjws")
    p = store(berth, "pull", f"{fake.host}/x/img:s1", check=False)
    assert p.returncode != 0 and "schema 1" in p.stderr


def test_pull_oversized_manifest_is_refused(berth, fake):
    fake.manifests["huge"] = (b" " * (5 << 20), "application/vnd.oci.image.manifest.v1+json")
    p = store(berth, "pull", f"{fake.host}/x/img:huge", check=False)
    assert p.returncode != 0 and "larger than" in p.stderr


def test_pull_bad_media_type_is_refused(berth, fake):
    fake.manifests["html"] = (b"<html></html>", "text/html")
    p = store(berth, "pull", f"{fake.host}/x/img:html", check=False)
    assert p.returncode != 0


def test_pull_platform_from_index(berth, fake):
    good = fake.manifests["good"][0]
    arm = json.loads(good)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + hashlib.sha256(good).hexdigest(), "size": len(good),
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    fake.blobs["sha256:" + hashlib.sha256(good).hexdigest()] = good
    fake.manifests["sha256:" + hashlib.sha256(good).hexdigest()] = (good, "application/vnd.oci.image.manifest.v1+json")
    fake.manifests["multi"] = (json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json")
    p = store(berth, "pull", "--platform", "linux/arm64", f"{fake.host}/x/img:multi", check=False)
    assert p.returncode != 0 and "no matching manifest for linux/arm64" in p.stderr
    p = store(berth, "pull", f"{fake.host}/x/img:multi")
    assert p.stdout.strip() == fake.image["id"]
    del arm


# ---- TLS with a private CA (docker's certs.d layout) ----

@pytest.fixture(scope="session")
def registry_tls(regbase):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    tdir = os.path.join(regbase, "tls")
    os.makedirs(tdir)
    certp, keyp = os.path.join(tdir, "cert.pem"), os.path.join(tdir, "key.pem")
    with open(certp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(keyp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    r = Registry(regbase, "", tls=(certp, keyp))
    r.certs = os.path.join(tdir, "certs.d")
    os.makedirs(os.path.join(r.certs, r.host))
    shutil.copy(certp, os.path.join(r.certs, r.host, "ca.crt"))
    yield r
    r.stop()


def test_tls_registry_with_private_ca(berth, registry_tls, busybox):
    run(["skopeo", "copy", "--dest-cert-dir", os.path.join(registry_tls.certs, registry_tls.host),
         "oci-archive:" + busybox["oci_archive"], f"docker://{registry_tls.host}/tls/bb:1"])
    p = store(berth, "pull", "--certs-dir", registry_tls.certs, f"{registry_tls.host}/tls/bb:1")
    assert p.stdout.strip() == busybox["id"]
    # a loopback registry is one of docker's insecure registries (127.0.0.0/8): HTTPS without
    # verification, then HTTP, so its self-signed certificate needs no certs.d (as with dockerd)
    store(berth, "rm", f"{registry_tls.host}/tls/bb:1")
    p = store(berth, "pull", f"{registry_tls.host}/tls/bb:1")
    assert p.stdout.strip() == busybox["id"]


def test_concurrent_pulls_into_one_store(berth, registry, seeded):
    ref = f"{registry.host}/test/layered:1"
    procs = [subprocess.Popen([berth.bin, "image-store", "pull", ref], env=berth.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    assert {o[0].strip() for o in outs} == {seeded["layered"]["id"]}
    listed = json.loads(store(berth, "ls", "--json").stdout)
    assert [e["Id"] for e in listed] == [seeded["layered"]["id"]]
    rootfs = store(berth, "mount", "--image", ref, "conc").stdout.strip()
    try:
        assert tree(rootfs) == tree(seeded["layered"]["rootfs"])
    finally:
        store(berth, "unmount", "--rm", "conc")


def test_login_checks_and_stores_credentials_then_logout(berth, registry_basic, busybox, workdir):
    skopeo_push("oci-archive:" + busybox["oci_archive"], f"{registry_basic.host}/login/bb:1",
                f"{USER}:{PASSWORD}")
    berth.env["DOCKER_CONFIG"] = os.path.join(workdir, "login-config")
    p = store(berth, "login", "-u", USER, "-p", "wrong", registry_basic.host, check=False)
    assert p.returncode != 0 and "unauthorized" in p.stderr
    assert not os.path.exists(os.path.join(workdir, "login-config", "config.json"))
    p = store(berth, "login", "-u", USER, "--password-stdin", registry_basic.host, input=PASSWORD + "\n")
    assert "Login Succeeded" in p.stdout
    cfg = os.path.join(workdir, "login-config", "config.json")
    assert oct(os.stat(cfg).st_mode & 0o777) == "0o600"
    assert store(berth, "pull", f"{registry_basic.host}/login/bb:1").stdout.strip() == busybox["id"]
    store(berth, "logout", registry_basic.host)
    with open(cfg) as f:
        assert json.load(f)["auths"] == {}
    p = store(berth, "pull", f"{registry_basic.host}/login/bb:1", check=False)
    assert p.returncode != 0 and "unauthorized" in p.stderr
