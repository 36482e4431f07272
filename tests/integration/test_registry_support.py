"""Shared helpers for the registry tests: start/stop `berth registry serve`,
build blobs and manifests, talk the distribution API with requests.

Imported by test_registry*.py; holds no tests itself.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import TMP_PREFIX, berth_binary, traced_env

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_EMPTY = "application/vnd.oci.empty.v1+json"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """One `berth registry serve` process on 127.0.0.1:<free port>."""

    def __init__(self, base, args=(), config=None, root=None, wrapper=()):
        self.base = base
        self.wrapper = list(wrapper)  # e.g. ["strace", "-f", ...]: runs the server under it
        self.root = root or os.path.join(base, "store")
        self.args = list(args)
        self.config = None
        if config is not None:
            self.config = os.path.join(base, "config.yml")
            with open(self.config, "w") as f:
                f.write(config)
        self.proc = None
        self.port = None
        self.log = os.path.join(base, "registry.log")

    def start(self):
        port_file = os.path.join(self.base, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        cmd = [*self.wrapper, berth_binary(), "registry", "serve", "--root", self.root, "--addr", "127.0.0.1:0",
               "--port-file", port_file, *self.args]
        if self.config:
            cmd += ["--config", self.config]
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, env=traced_env() if self.wrapper else None)
        logf.close()
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise AssertionError(f"registry exited {self.proc.returncode}:\n{self.read_log()}")
            if time.monotonic() > deadline:
                raise AssertionError("registry did not start:\n" + self.read_log())
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        return self

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        scheme = "https" if "--tls-cert" in self.args else "http"
        return f"{scheme}://{self.host}"

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    # --- API helpers -------------------------------------------------------
    def req(self, method, path, **kw):
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        kw.setdefault("verify", False)
        return requests.request(method, self.url + path, **kw)

    def push_blob(self, repo, data, **kw):
        d = sha256(data)
        r = self.req("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data=data,
                     headers={"Content-Type": "application/octet-stream"}, **kw)
        assert r.status_code == 201, r.text
        return d

    def push_manifest(self, repo, ref, doc, media_type=MT_OCI_MANIFEST, **kw):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return self.req("PUT", f"/v2/{repo}/manifests/{ref}", data=body,
                        headers={"Content-Type": media_type}, **kw)

    def push_image(self, repo, tag, layer=b"layer-bytes", config=b"{}", **kw):
        """Push a small image; returns (manifest digest, manifest dict)."""
        cd = self.push_blob(repo, config, **kw)
        ld = self.push_blob(repo, layer, **kw)
        doc = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
               "config": {"mediaType": MT_OCI_CONFIG, "digest": cd, "size": len(config)},
               "layers": [{"mediaType": MT_LAYER, "digest": ld, "size": len(layer)}]}
        r = self.push_manifest(repo, tag, doc, **kw)
        assert r.status_code == 201, r.text
        return r.headers["Docker-Content-Digest"], doc


def error_code(resp):
    return resp.json()["errors"][0]["code"]


def tmpdir(tag):
    return tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{tag}-")


class RegistryFactory:
    def __init__(self):
        self.started = []
        self.dirs = []

    def __call__(self, args=(), config=None, start=True, wrapper=()):
        d = tmpdir("reg")
        self.dirs.append(d)
        reg = Registry(d, args=args, config=config, wrapper=wrapper)
        self.started.append(reg)
        return reg.start() if start else reg

    def close(self):
        for reg in self.started:
            reg.stop()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_registry():
    f = RegistryFactory()
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="session")
def registry():
    """A shared registry without auth, deletes enabled."""
    f = RegistryFactory()
    try:
        yield f()
    finally:
        f.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")
