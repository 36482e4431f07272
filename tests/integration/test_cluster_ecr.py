"""Amazon ECR on berth (docs/ecr.md): `berth server --registry` runs the cluster
registry; the aws CLI, boto3 and the docker CLI (against a berth daemon) drive
it. Tokens from GetAuthorizationToken log docker in; lifecycle policies expire
images pushed at simulated times (--registry-clock); scans match a fixture OSV
feed (tests/integration/data/osv). The last test runs a task on a cluster node
whose image was pushed to the cluster registry: the agent pulls it with its
own credentials.

The berth daemon (like docker) trusts a registry's CA through
/etc/docker/certs.d/HOST:PORT/ca.crt: the fixtures create that directory for
their own random port and remove it.
"""
import base64
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest
import requests

import awscli_fast
from engine_daemon import Daemon

AWS = "/usr/bin/aws"
REGION = "us-east-1"
DATA = os.path.join(os.path.dirname(__file__), "data", "osv")
CERTS_D = "/etc/docker/certs.d"
DAY = 86400

DPKG_STATUS = """Package: libssl3
Status: install ok installed
Source: openssl
Version: 3.0.11-1~deb12u1
Description: fixture

Package: zlib1g
Status: install ok installed
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1

Package: bash
Status: install ok installed
Version: 5.2.15-2+b2

Package: gone
Status: deinstall ok config-files
Version: 1.0
"""
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def uid():
    return uuid.uuid4().hex[:8]


class EcrServer:
    """`berth server --registry 127.0.0.1:0` on a private root, stopped by PID."""

    def __init__(self, binary, base):
        self.base = base
        self.root = os.path.join(base, "server")
        self.clock = os.path.join(base, "clock")
        self.feed = os.path.join(base, "feed")
        shutil.copytree(DATA, self.feed)
        self.err = open(os.path.join(base, "server.err"), "w")
        self.proc = subprocess.Popen(
            [binary, "server", "--root", self.root, "--listen", "127.0.0.1:0", "--registry", "127.0.0.1:0",
             "--vuln-feed", self.feed, "--registry-clock", self.clock],
            stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL, text=True)
        out = ""
        while "registry " not in out:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                raise AssertionError("server did not start: " + out + open(self.err.name).read())
            out += line
        self.endpoint = re.search(r"endpoint (https://127\.0\.0\.1:\d+)", out).group(1)
        self.registry = re.search(r"^registry (127\.0\.0\.1:\d+)", out, re.M).group(1)
        self.ca = os.path.join(self.root, "pki", "ca.pem")
        creds = open(os.path.join(self.root, "credentials")).read()
        self.key = re.search(r"aws_access_key_id = (\S+)", creds).group(1)
        self.secret = re.search(r"aws_secret_access_key = (\S+)", creds).group(1)
        self.account = open(os.path.join(self.root, "account-id")).read().strip()
        self.certs_dir = os.path.join(CERTS_D, self.registry)
        os.makedirs(self.certs_dir, exist_ok=True)
        shutil.copy(self.ca, os.path.join(self.certs_dir, "ca.crt"))

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.root, "credentials"), AWS_CONFIG_FILE=os.devnull,
                   AWS_PAGER="")
        return env

    def aws(self, *args, check=True, input=None):
        """`aws ecr ...`: parsed JSON on success, the CompletedProcess otherwise (check=False)."""
        p = awscli_fast.run(["ecr", *args, "--region", REGION, "--endpoint-url", self.endpoint,
                             "--ca-bundle", self.ca, "--output", "json"], env=self.env(), input=input, check=check)
        if p.returncode == 0:
            return json.loads(p.stdout) if p.stdout.strip().startswith(("{", "[")) else p.stdout
        return p

    def boto3(self):
        import boto3
        return boto3.session.Session().client("ecr", region_name=REGION, endpoint_url=self.endpoint,
                                              verify=self.ca, aws_access_key_id=self.key,
                                              aws_secret_access_key=self.secret)

    def set_clock(self, t):
        with open(self.clock + ".tmp", "w") as f:
            f.write(f"{t}\n")
        os.rename(self.clock + ".tmp", self.clock)

    def token_key(self):
        """The HMAC key tokens are signed with (ecr/token.c): derived from the secret access key."""
        return hmac.new(self.secret.encode(), b"berth ecr registry token v1", hashlib.sha256).digest()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.err.close()
        shutil.rmtree(getattr(self, "certs_dir", "/nonexistent"), ignore_errors=True)


@pytest.fixture(scope="module")
def ecr(berth_bin):
    base = tempfile.mkdtemp(prefix="berth-ecr-")
    s = EcrServer(berth_bin, base)
    try:
        yield s
    finally:
        s.stop()
        if os.environ.get("BERTH_TEST_LOGDIR"):
            shutil.copy(os.path.join(base, "server.err"), os.path.join(os.environ["BERTH_TEST_LOGDIR"], "ecr.err"))
        shutil.rmtree(base, ignore_errors=True)


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
def login(ecr, daemon):
    """`aws ecr get-login-password | docker login --username AWS --password-stdin REGISTRY`."""
    config = tempfile.mkdtemp(prefix="berth-ecr-docker-")
    daemon.env["DOCKER_CONFIG"] = config
    pw = ecr.aws("get-login-password")
    p = daemon.docker("login", "--username", "AWS", "--password-stdin", ecr.registry, input=pw)
    assert "Login Succeeded" in p.stdout
    yield config
    daemon.env.pop("DOCKER_CONFIG", None)
    shutil.rmtree(config, ignore_errors=True)


def make_image(daemon, ref, files):
    """`docker import` of a rootfs holding files ({path: text}) as ref."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    path = os.path.join(daemon.base, f"img-{uid()}.tar")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    daemon.docker("import", path, ref)
    os.unlink(path)


def push_new(daemon, ecr, repo, tag, files=None):
    ref = f"{ecr.registry}/{repo}:{tag}"
    make_image(daemon, ref, files or {"marker": uid()})
    p = daemon.docker("push", ref)
    assert "digest: sha256:" in p.stdout, p.stdout + p.stderr
    digest = re.search(r"digest: (sha256:[0-9a-f]{64})", p.stdout).group(1)
    daemon.docker("rmi", ref)
    return digest


def error_code(p):
    m = re.search(r"An error occurred \((\w+)\)", p.stderr)
    return m.group(1) if m else p.stderr


# ---- repositories (aws CLI) ----

def test_repositories_with_the_aws_cli(ecr):
    name = f"team/app-{uid()}"
    r = ecr.aws("create-repository", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE",
                "--image-scanning-configuration", "scanOnPush=true", "--tags", "Key=team,Value=blue")["repository"]
    assert r["repositoryName"] == name
    assert r["repositoryUri"] == f"{ecr.registry}/{name}"
    assert r["repositoryArn"] == f"arn:aws:ecr:{REGION}:{ecr.account}:repository/{name}"
    assert r["imageTagMutability"] == "IMMUTABLE" and r["imageScanningConfiguration"]["scanOnPush"] is True
    assert error_code(ecr.aws("create-repository", "--repository-name", name, check=False)) == \
        "RepositoryAlreadyExistsException"
    for bad in ["a//b"]:
        assert error_code(ecr.aws("create-repository", "--repository-name", bad, check=False)) == \
            "InvalidParameterException", bad
    got = ecr.aws("describe-repositories", "--repository-names", name)["repositories"]
    assert [x["repositoryName"] for x in got] == [name]
    assert name in [x["repositoryName"] for x in ecr.boto3().describe_repositories()["repositories"]]
    p = ecr.aws("describe-repositories", "--repository-names", "no-such-repo", check=False)
    assert error_code(p) == "RepositoryNotFoundException" and "no-such-repo" in p.stderr
    assert ecr.aws("list-tags-for-resource", "--resource-arn", r["repositoryArn"])["tags"] == \
        [{"Key": "team", "Value": "blue"}]
    assert ecr.aws("put-image-tag-mutability", "--repository-name", name, "--image-tag-mutability",
                   "MUTABLE")["imageTagMutability"] == "MUTABLE"
    assert error_code(ecr.aws("put-image-tag-mutability", "--repository-name", name, "--image-tag-mutability",
                              "SOMETIMES", check=False)) == "InvalidParameterException"
    assert ecr.boto3().describe_repositories(repositoryNames=[name])["repositories"][0][
        "imageTagMutability"] == "MUTABLE"
    assert ecr.aws("delete-repository", "--repository-name", name)["repository"]["repositoryName"] == name


# ---- docker login / push / pull with ECR tokens ----

def test_docker_push_pull_and_image_apis(ecr, daemon, login):
    b = ecr.boto3()
    repo = f"web-{uid()}"
    b.create_repository(repositoryName=repo)
    digest = push_new(daemon, ecr, repo, "v1")
    ref = f"{ecr.registry}/{repo}:v1"
    daemon.docker("pull", ref)
    daemon.docker("rmi", ref)
    # the same image gets a second tag; an untagged image by digest... via a tag moved away
    daemon.docker("pull", ref)
    daemon.docker("tag", ref, f"{ecr.registry}/{repo}:latest")
    daemon.docker("push", f"{ecr.registry}/{repo}:latest")
    old = push_new(daemon, ecr, repo, "v2")
    push_new(daemon, ecr, repo, "v2")  # v2 moves: the first v2 image is untagged now
    ids = ecr.aws("list-images", "--repository-name", repo)["imageIds"]
    assert {"imageDigest": digest, "imageTag": "v1"} in ids and {"imageDigest": digest, "imageTag": "latest"} in ids
    assert {"imageDigest": old} in ids
    assert b.list_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["imageIds"] == \
        [{"imageDigest": old}]
    details = ecr.aws("describe-images", "--repository-name", repo, "--image-ids", "imageTag=v1")["imageDetails"]
    d = details[0]
    assert d["imageDigest"] == digest and sorted(d["imageTags"]) == ["latest", "v1"]
    assert d["imageSizeInBytes"] > 0 and d["imagePushedAt"]
    assert d["imageManifestMediaType"] in ("application/vnd.docker.distribution.manifest.v2+json",
                                           "application/vnd.oci.image.manifest.v1+json")
    assert len(b.describe_images(repositoryName=repo)["imageDetails"]) == 3
    got = ecr.aws("batch-get-image", "--repository-name", repo, "--image-ids", "imageTag=v1", "imageTag=nope",
                  f"imageDigest={digest},imageTag=v2")
    assert len(got["images"]) == 1
    assert "sha256:" + hashlib.sha256(got["images"][0]["imageManifest"].encode()).hexdigest() == digest
    assert sorted(f["failureCode"] for f in got["failures"]) == ["ImageNotFound", "ImageTagDoesNotMatchDigest"]
    # acceptedMediaTypes: the image's own type is served, another one is a failure
    mt = d["imageManifestMediaType"]
    ok = b.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}],
                           acceptedMediaTypes=["application/vnd.docker.distribution.manifest.list.v2+json", mt])
    assert len(ok["images"]) == 1 and ok["images"][0]["imageManifestMediaType"] == mt and not ok["failures"]
    no = b.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}],
                           acceptedMediaTypes=["application/vnd.docker.distribution.manifest.v1+json"])
    assert not no["images"] and no["failures"][0]["failureCode"] == "UnsupportedImageType"
    # not empty: refused without force
    assert error_code(ecr.aws("delete-repository", "--repository-name", repo, check=False)) == \
        "RepositoryNotEmptyException"
    # deleting one of two tags keeps the image; the last tag deletes it
    out = ecr.aws("batch-delete-image", "--repository-name", repo, "--image-ids", "imageTag=latest",
                  f"imageDigest={old}", "imageTag=missing")
    assert len(out["imageIds"]) == 2 and out["failures"][0]["failureCode"] == "ImageNotFound"
    tags = {i.get("imageTag") for i in b.list_images(repositoryName=repo)["imageIds"]}
    assert tags == {"v1", "v2"}
    b.delete_repository(repositoryName=repo, force=True)
    p = daemon.docker("pull", ref, check=False)
    assert p.returncode != 0


def test_push_to_a_missing_repository_is_refused(ecr, daemon, login):
    ref = f"{ecr.registry}/never-created-{uid()}:v1"
    make_image(daemon, ref, {"x": "1"})
    p = daemon.docker("push", ref, check=False)
    daemon.docker("rmi", ref)
    assert p.returncode != 0
    assert "does not exist" in p.stdout + p.stderr or "name unknown" in (p.stdout + p.stderr).lower()


def test_tokens_expired_or_tampered_are_refused(ecr):
    v2 = f"https://{ecr.registry}/v2/"
    pw = ecr.aws("get-login-password").strip()
    tok = ecr.aws("get-authorization-token")["authorizationData"][0]
    assert tok["proxyEndpoint"] == f"https://{ecr.registry}"
    user, _, password = base64.b64decode(tok["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and ":" not in password

    def status(user, password):
        return requests.get(v2, auth=(user, password), verify=ecr.ca, timeout=10).status_code

    assert requests.get(v2, verify=ecr.ca, timeout=10).status_code == 401
    assert status("AWS", pw) == 200
    assert status("someone", pw) == 401
    tampered = pw[:-1] + ("0" if pw[-1] != "0" else "1")
    assert status("AWS", tampered) == 401
    later = re.sub(r"^b1\.(\d+)\.", lambda m: f"b1.{int(m.group(1)) + 1000}.", pw)
    assert status("AWS", later) == 401  # a changed expiry breaks the MAC
    # a genuinely signed token whose expiry has passed
    msg = f"b1.{int(time.time()) - 10}.{ecr.account}"
    expired = msg + "." + hmac.new(ecr.token_key(), msg.encode(), hashlib.sha256).hexdigest()
    assert status("AWS", expired) == 401
    msg = f"b1.{int(time.time()) + 600}.{ecr.account}"
    fresh = msg + "." + hmac.new(ecr.token_key(), msg.encode(), hashlib.sha256).hexdigest()
    assert status("AWS", fresh) == 200  # the same construction is accepted while valid


def test_immutable_tags_refuse_a_repush(ecr, daemon, login):
    b = ecr.boto3()
    repo = f"frozen-{uid()}"
    b.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    first = push_new(daemon, ecr, repo, "v1")
    ref = f"{ecr.registry}/{repo}:v1"
    make_image(daemon, ref, {"other": uid()})
    p = daemon.docker("push", ref, check=False)
    assert p.returncode != 0 and "cannot be overwritten" in p.stdout + p.stderr
    # through the API: PutImage of another manifest under the same tag
    other = push_new(daemon, ecr, repo, "v2")
    manifest = b.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": other}])["images"][0][
        "imageManifest"]
    p = ecr.aws("put-image", "--repository-name", repo, "--image-tag", "v1", "--image-manifest", manifest,
                check=False)
    assert error_code(p) == "ImageTagAlreadyExistsException"
    assert b.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])[
        "imageDetails"][0]["imageDigest"] == first
    b.put_image_tag_mutability(repositoryName=repo, imageTagMutability="MUTABLE")
    daemon.docker("push", ref)
    daemon.docker("rmi", ref)
    assert b.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])[
        "imageDetails"][0]["imageDigest"] != first
    b.delete_repository(repositoryName=repo, force=True)


# ---- lifecycle policies over simulated time ----

def test_lifecycle_policy_expires_old_images(ecr, daemon, login):
    b = ecr.boto3()
    repo = f"life-{uid()}"
    b.create_repository(repositoryName=repo)
    now = time.time()
    pushed = {}
    try:
        for tag, age in [("rel-1", 40), ("rel-2", 30), ("rel-3", 20), ("dev-1", 25), ("rel-4", 1)]:
            ecr.set_clock(now - age * DAY)
            pushed[tag] = push_new(daemon, ecr, repo, tag)
    finally:
        os.unlink(ecr.clock)
    assert error_code(ecr.aws("get-lifecycle-policy-preview", "--repository-name", repo, check=False)) == \
        "LifecyclePolicyPreviewNotFoundException"
    bad = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType":
                                                                  "imageCountMoreThan", "countNumber": 2},
                                 "action": {"type": "expire"}}]})
    p = ecr.aws("put-lifecycle-policy", "--repository-name", repo, "--lifecycle-policy-text", bad, check=False)
    assert error_code(p) == "InvalidParameterException" and "tagPrefixList" in p.stderr
    policy = json.dumps({"rules": [
        {"rulePriority": 1, "description": "keep the two newest releases",
         "selection": {"tagStatus": "tagged", "tagPrefixList": ["rel"], "countType": "imageCountMoreThan",
                       "countNumber": 2}, "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "anything older than 3 weeks",
         "selection": {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": 21}, "action": {"type": "expire"}}]})
    start = ecr.aws("start-lifecycle-policy-preview", "--repository-name", repo, "--lifecycle-policy-text", policy)
    assert start["status"] in ("IN_PROGRESS", "COMPLETE")
    prev = ecr.aws("get-lifecycle-policy-preview", "--repository-name", repo)
    assert prev["status"] == "COMPLETE" and prev["summary"]["expiringImageTotalCount"] == 3
    by_rule = {r["imageTags"][0]: r["appliedRulePriority"] for r in prev["previewResults"]}
    assert by_rule == {"rel-1": 1, "rel-2": 1, "dev-1": 2}  # rel-3 is kept by rule 1 and so protected from rule 2
    assert len(b.list_images(repositoryName=repo)["imageIds"]) == 5  # a preview deletes nothing
    ecr.aws("put-lifecycle-policy", "--repository-name", repo, "--lifecycle-policy-text", policy)
    assert json.loads(ecr.aws("get-lifecycle-policy", "--repository-name", repo)["lifecyclePolicyText"]) == \
        json.loads(policy)
    deadline = time.monotonic() + 60
    while True:
        tags = {i.get("imageTag") for i in b.list_images(repositoryName=repo)["imageIds"]}
        if tags == {"rel-3", "rel-4"}:
            break
        assert time.monotonic() < deadline, f"lifecycle did not expire images: {tags}"
        time.sleep(0.3)
    assert b.get_lifecycle_policy(repositoryName=repo).get("lastEvaluatedAt")
    ecr.aws("delete-lifecycle-policy", "--repository-name", repo)
    assert error_code(ecr.aws("delete-lifecycle-policy", "--repository-name", repo, check=False)) == \
        "LifecyclePolicyNotFoundException"
    b.delete_repository(repositoryName=repo, force=True)


# ---- scanning ----

def finding_names(f):
    return sorted(x["name"] for x in f["imageScanFindings"]["findings"])


def wait_scan(ecr, repo, tag):
    b = ecr.boto3()
    deadline = time.monotonic() + 30
    while True:
        try:
            p = b.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": tag})
        except Exception as e:  # noqa: BLE001 - ScanNotFoundException until the first scan is stored
            p = e
        if isinstance(p, dict) and p["imageScanStatus"]["status"] == "COMPLETE":
            return p
        assert time.monotonic() < deadline, f"no scan result: {p}"
        time.sleep(0.2)


def test_scan_on_push_matches_the_feed(ecr, daemon, login):
    b = ecr.boto3()
    repo = f"scanned-{uid()}"
    b.create_repository(repositoryName=repo, imageScanningConfiguration={"scanOnPush": True})
    files = {"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": DPKG_STATUS}
    push_new(daemon, ecr, repo, "v1", files)
    f = wait_scan(ecr, repo, "v1")
    assert finding_names(f) == ["DSA-9001-1", "OSV-FIXTURE-3"]  # zlib is fixed; broken.json is skipped
    first = f["imageScanFindings"]["findings"][0]
    assert first["name"] == "DSA-9001-1" and first["severity"] == "HIGH"
    attrs = {a["key"]: a["value"] for a in first["attributes"]}
    assert attrs == {"package_name": "libssl3", "package_version": "3.0.11-1~deb12u1",
                     "fixed_version": "3.0.11-1~deb12u2", "package_manager": "dpkg"}
    assert f["imageScanFindings"]["findingSeverityCounts"] == {"HIGH": 1, "LOW": 1}
    d = b.describe_images(repositoryName=repo)["imageDetails"][0]
    assert d["imageScanStatus"]["status"] == "COMPLETE"
    assert d["imageScanFindingsSummary"]["findingSeverityCounts"] == {"HIGH": 1, "LOW": 1}
    # the operator adds an advisory: the feed reloads, a new scan finds it
    with open(os.path.join(ecr.feed, "new.json"), "w") as fh:
        json.dump({"id": "DSA-9003-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
                                                     "versions": ["1:1.2.13.dfsg-1"],
                                                     "database_specific": {"severity": "critical"}}]}, fh)
    try:
        s = ecr.aws("start-image-scan", "--repository-name", repo, "--image-id", "imageTag=v1")
        assert s["imageScanStatus"]["status"] == "IN_PROGRESS"
        deadline = time.monotonic() + 30
        while "DSA-9003-1" not in finding_names(wait_scan(ecr, repo, "v1")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert wait_scan(ecr, repo, "v1")["imageScanFindings"]["findings"][0]["severity"] == "CRITICAL"
    finally:
        os.unlink(os.path.join(ecr.feed, "new.json"))
    # an image never scanned (scan on push off for this repository)
    plain = f"plain-{uid()}"
    b.create_repository(repositoryName=plain)
    push_new(daemon, ecr, plain, "v1", files)
    p = ecr.aws("describe-image-scan-findings", "--repository-name", plain, "--image-id", "imageTag=v1", check=False)
    assert error_code(p) == "ScanNotFoundException"
    p = ecr.aws("start-image-scan", "--repository-name", plain, "--image-id", "imageTag=nope", check=False)
    assert error_code(p) == "ImageNotFoundException"
    for r in (repo, plain):
        b.delete_repository(repositoryName=r, force=True)


# ---- boto3: every operation and the errors ----

def test_every_operation_with_boto3(ecr, daemon, login):
    from botocore.exceptions import ClientError
    c = ecr.boto3()

    def code(fn, **kw):
        with pytest.raises(ClientError) as e:
            fn(**kw)
        return e.value.response["Error"]["Code"]

    repo = f"boto-{uid()}"
    r = c.create_repository(repositoryName=repo, imageTagMutability="MUTABLE",
                            imageScanningConfiguration={"scanOnPush": False})["repository"]
    assert r["repositoryUri"].endswith("/" + repo)
    assert code(c.create_repository, repositoryName=repo) == "RepositoryAlreadyExistsException"
    assert code(c.create_repository, repositoryName="Bad Name") == "InvalidParameterException"
    assert code(c.describe_repositories, repositoryNames=["nope-" + uid()]) == "RepositoryNotFoundException"
    auth = c.get_authorization_token()["authorizationData"][0]
    assert base64.b64decode(auth["authorizationToken"]).startswith(b"AWS:")
    digest = push_new(daemon, ecr, repo, "one")
    push_new(daemon, ecr, repo, "two")
    assert len(c.list_images(repositoryName=repo)["imageIds"]) == 2
    page = c.list_images(repositoryName=repo, maxResults=1)
    assert len(page["imageIds"]) == 1 and page["nextToken"]
    assert len(c.list_images(repositoryName=repo, maxResults=1, nextToken=page["nextToken"])["imageIds"]) == 1
    d = c.describe_images(repositoryName=repo, imageIds=[{"imageTag": "one"}])["imageDetails"][0]
    assert d["imageDigest"] == digest and d["imageTags"] == ["one"]
    assert code(c.describe_images, repositoryName=repo, imageIds=[{"imageTag": "zzz"}]) == "ImageNotFoundException"
    img = c.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": digest}])["images"][0]
    assert img["imageId"]["imageDigest"] == digest
    put = c.put_image(repositoryName=repo, imageManifest=img["imageManifest"], imageTag="copy")["image"]
    assert put["imageId"] == {"imageDigest": digest, "imageTag": "copy"}
    assert code(c.put_image, repositoryName=repo, imageManifest=img["imageManifest"], imageTag="copy") == \
        "ImageAlreadyExistsException"
    c.put_image_tag_mutability(repositoryName=repo, imageTagMutability="IMMUTABLE")
    other = c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "two"}])["images"][0]["imageManifest"]
    assert code(c.put_image, repositoryName=repo, imageManifest=other, imageTag="copy") == \
        "ImageTagAlreadyExistsException"
    assert code(c.get_lifecycle_policy, repositoryName=repo) == "LifecyclePolicyNotFoundException"
    policy = json.dumps({"rules": [{"rulePriority": 1, "description": "one image only",
                                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                  "countNumber": 5}, "action": {"type": "expire"}}]})
    assert code(c.put_lifecycle_policy, repositoryName=repo, lifecyclePolicyText=policy.replace("any", "some")) \
        == "InvalidParameterException"
    c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=policy)
    assert c.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"] == policy
    c.start_lifecycle_policy_preview(repositoryName=repo)
    assert c.get_lifecycle_policy_preview(repositoryName=repo)["summary"]["expiringImageTotalCount"] == 0
    c.delete_lifecycle_policy(repositoryName=repo)
    c.put_image_scanning_configuration(repositoryName=repo, imageScanningConfiguration={"scanOnPush": True})
    c.start_image_scan(repositoryName=repo, imageId={"imageTag": "one"})
    deadline = time.monotonic() + 30
    while c.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "one"})[
            "imageScanStatus"]["status"] != "COMPLETE":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    out = c.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "two"}, {"imageTag": "nope"}])
    assert out["imageIds"][0]["imageTag"] == "two" and out["failures"][0]["failureCode"] == "ImageNotFound"
    assert code(c.delete_repository, repositoryName=repo) == "RepositoryNotEmptyException"
    c.delete_repository(repositoryName=repo, force=True)
    assert code(c.list_images, repositoryName=repo) == "RepositoryNotFoundException"


# ---- a cluster node pulls a task image from the cluster registry with its own credentials ----

def apply_builds_pushes_and_deploys(c, node, registry, workdir):
    """`berth apply` of a compose service with build: and no image: built on the engine DOCKER_HOST names,
    pushed to the cluster registry as STACK/SERVICE:build-<image id>, deployed; unchanged -> no changes;
    a changed build arg -> a new image and a new deployment; --dry-run builds but pushes nothing."""
    from cluster_fixture import wait_for
    from conftest import berth_binary
    app = os.path.join(workdir, "app")
    os.makedirs(app)
    with open(os.path.join(app, "Dockerfile.web"), "w") as f:
        f.write("FROM busybox:latest\nARG MSG\nRUN echo \"$MSG\" > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; sleep 300\"]\n")
    certs = os.path.join(CERTS_D, registry)  # the engine pushes over TLS from the cluster CA, as docker push
    os.makedirs(certs, exist_ok=True)
    shutil.copy(c.ca, os.path.join(certs, "ca.crt"))
    env = dict(c.aws_env(), AWS_CA_BUNDLE=c.ca, AWS_ENDPOINT_URL=c.endpoint, AWS_REGION=REGION,
               DOCKER_HOST="unix://" + node.sock)

    def apply(msg, *flags):
        with open(os.path.join(workdir, "stack.yml"), "w") as f:
            f.write("services:\n  web:\n    build:\n      context: ./app\n      dockerfile: Dockerfile.web\n"
                    f"      args: {{MSG: {msg}}}\n    deploy: {{replicas: 1}}\n")
        p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", berth_binary(), "apply", "-f",
                            os.path.join(workdir, "stack.yml"), "--name", "bs", *flags],
                           capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        return p

    def deployed():
        s = c.api("describe_services", services=["bs_web"])["services"][0]
        td = c.api("describe_task_definition", taskDefinition=s["taskDefinition"])["taskDefinition"]
        return s, td["containerDefinitions"][0]["image"]

    def message():
        ts = c.api("describe_tasks", tasks=c.api("list_tasks", serviceName="bs_web")["taskArns"])["tasks"]
        running = [t for t in ts if t["lastStatus"] == "RUNNING"]
        if len(running) != 1 or len(ts) != 1:
            return None
        p = node.docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-arn={running[0]['taskArn']}")
        return p.stdout.split() and node.docker("exec", p.stdout.split()[0], "cat", "/msg").stdout.strip()

    try:
        dry = apply("v1", "--dry-run")
        assert "building services.web" in dry.stderr and "pushing" not in dry.stderr
        assert "bs/web" not in {r["repositoryName"] for r in c.api("describe_repositories", service="ecr")["repositories"]}
        apply("v1", "--wait", "--wait-timeout", "120")
        s, image1 = deployed()
        assert re.fullmatch(re.escape(registry) + r"/bs/web:build-[0-9a-f]{12}", image1), image1
        tags = c.api("list_images", service="ecr", repositoryName="bs/web")["imageIds"]
        assert [t["imageTag"] for t in tags] == [image1.rsplit(":", 1)[1]]
        wait_for(lambda: message() == "v1", 60, "the built image running on the node")
        assert "no changes" in apply("v1").stdout
        apply("v2", "--wait", "--wait-timeout", "120")
        _, image2 = deployed()
        assert image2 != image1 and image2.startswith(f"{registry}/bs/web:build-")
        wait_for(lambda: message() == "v2", 90, "the rebuilt image replacing the first")
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def test_node_runs_a_task_from_the_cluster_registry(busybox):
    from cluster_fixture import Cluster, in_netns, wait_for
    c = Cluster(nodes=1, server_args=["--registry", "192.168.77.1:0"])
    certs = None
    config = tempfile.mkdtemp(prefix="berth-ecr-node-")
    try:
        c.start(busybox=busybox)
        node = c.nodes[0]
        creds = open(os.path.join(c.server_root, "credentials")).read()
        import boto3
        with in_netns(c.vpc):
            e = boto3.session.Session().client(
                "ecr", region_name=REGION, endpoint_url=c.endpoint, verify=c.ca,
                aws_access_key_id=re.search(r"aws_access_key_id = (\S+)", creds).group(1),
                aws_secret_access_key=re.search(r"aws_secret_access_key = (\S+)", creds).group(1))
            uri = e.create_repository(repositoryName="app")["repository"]["repositoryUri"]
            auth = e.get_authorization_token()["authorizationData"][0]
        registry = uri.split("/")[0]
        assert auth["proxyEndpoint"] == "https://" + registry
        password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)[1]
        # push from the node's engine (docker CLI), trusting the CA for the push only
        certs = os.path.join(CERTS_D, registry)
        os.makedirs(certs, exist_ok=True)
        shutil.copy(c.ca, os.path.join(certs, "ca.crt"))
        node.docker("--config", config, "login", "--username", "AWS", "--password", password, registry)
        node.docker("tag", "busybox:latest", f"{uri}:v1")
        node.docker("--config", config, "push", f"{uri}:v1")
        node.docker("rmi", f"{uri}:v1")
        shutil.rmtree(certs)
        certs = None
        # the agent has no login and no /etc/docker/certs.d entry: its own credentials and the cluster CA
        with c.ecs() as ecs:
            ecs.register_task_definition(family="fromreg", networkMode="none", containerDefinitions=[
                {"name": "app", "image": f"{uri}:v1", "memory": 32, "command": ["sleep", "300"]}])
            arn = ecs.run_task(taskDefinition="fromreg")["tasks"][0]["taskArn"]

            def running():
                t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
                assert t["lastStatus"] != "STOPPED", t.get("stoppedReason")
                return t["lastStatus"] == "RUNNING"
            wait_for(running, 90, "the task from the cluster registry to run", every=0.3)
            assert f"{uri}:v1" in node.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
            ecs.stop_task(task=arn)
        apply_builds_pushes_and_deploys(c, node, registry, config)
    finally:
        if certs:
            shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(config, ignore_errors=True)
        c.cleanup()
