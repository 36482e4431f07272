"""ECR with several server replicas on etcd (docs/ecr.md "Several servers"): only replica 0 runs the
registry (--registry), yet replica 1 answers every ECR call: the aws CLI and boto3 against replica 1
create a repository and get a token (store-only calls, answered there, with the registry's endpoint
found in replica 0's registration), `docker login` + push to the registry work with that token, and
the image calls (DescribeImages, ListImages, BatchGetImage; forwarded to replica 0) show the pushed
image, errors included. With no replica running a registry, ECR calls get a clear ServerException.

One cluster: 2 servers on etcd (replica 0 with --registry), 1 node whose engine pushes.
"""
import base64
import os
import shutil
import tempfile

from cluster_fixture import Cluster

CERTS_D = "/etc/docker/certs.d"


class RegistryOnZero(Cluster):
    """Cluster whose replica 0 alone runs the registry."""

    def start_server(self, i=None):
        i = self.current if i is None else i
        saved = self.server_args
        if i == 0:
            self.server_args = saved + ["--registry", "192.168.77.1:0"]
        try:
            return super().start_server(i)
        finally:
            self.server_args = saved


def ecr(c, *args, check=True):
    return c.aws_cli("ecr", *args, check=check)


def test_every_replica_answers_ecr(busybox):
    from botocore.exceptions import ClientError
    c = RegistryOnZero(nodes=1, servers=2)
    certs = None
    config = tempfile.mkdtemp(prefix="berth-ecr-ha-")
    try:
        c.start(busybox=busybox)
        node = c.nodes[0]
        c.current = 1  # the replica WITHOUT --registry
        repo = ecr(c, "create-repository", "--repository-name", "ha/app")["repository"]
        registry, name = repo["repositoryUri"].split("/", 1)
        assert name == "ha/app" and registry.startswith("192.168.77.1:"), repo
        assert [r["repositoryName"] for r in ecr(c, "describe-repositories")["repositories"]] == ["ha/app"]
        auth = c.api("get_authorization_token", service="ecr")["authorizationData"][0]
        assert auth["proxyEndpoint"] == "https://" + registry
        password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)[1]

        # the registry trusts the token replica 1 issued; the engine trusts the cluster CA for the push
        certs = os.path.join(CERTS_D, registry)
        os.makedirs(certs, exist_ok=True)
        shutil.copy(c.ca, os.path.join(certs, "ca.crt"))
        uri = repo["repositoryUri"]
        p = node.docker("--config", config, "login", "--username", "AWS", "--password", password, registry)
        assert "Login Succeeded" in p.stdout, p.stdout + p.stderr
        node.docker("tag", "busybox:latest", f"{uri}:v1")
        p = node.docker("--config", config, "push", f"{uri}:v1")
        assert "digest: sha256:" in p.stdout, p.stdout + p.stderr
        digest = p.stdout.split("digest: ", 1)[1].split()[0]

        # image calls through replica 1 (forwarded to replica 0, which holds the registry)
        imgs = ecr(c, "describe-images", "--repository-name", "ha/app")["imageDetails"]
        assert [(i["imageDigest"], i["imageTags"]) for i in imgs] == [(digest, ["v1"])], imgs
        assert imgs[0]["imageSizeInBytes"] > 0 and imgs[0]["registryId"] == repo["registryId"]
        ids = c.api("list_images", service="ecr", repositoryName="ha/app")["imageIds"]
        assert ids == [{"imageDigest": digest, "imageTag": "v1"}]
        got = c.api("batch_get_image", service="ecr", repositoryName="ha/app", imageIds=[{"imageTag": "v1"}])
        assert got["images"][0]["imageId"]["imageDigest"] == digest and not got["failures"]
        # the callee's errors come back as ECR's
        p = ecr(c, "describe-images", "--repository-name", "ha/none", check=False)
        assert p.returncode != 0 and "RepositoryNotFoundException" in p.stderr, p.stderr
        try:
            c.api("describe_images", service="ecr", repositoryName="ha/app", imageIds=[{"imageTag": "v9"}])
            raise AssertionError("ImageNotFoundException expected")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ImageNotFoundException", e.response
        # the same answer on replica 0
        c.current = 0
        assert c.api("describe_images", service="ecr", repositoryName="ha/app")["imageDetails"][0][
            "imageDigest"] == digest

        # no replica runs a registry (replica 0's registration goes with a clean stop): a clear error
        c.stop_server(i=0)
        c.current = 1
        p = ecr(c, "describe-repositories", check=False)
        assert p.returncode != 0 and "ServerException" in p.stderr and "--registry" in p.stderr, p.stderr
    finally:
        if certs:
            shutil.rmtree(certs, ignore_errors=True)
        shutil.rmtree(config, ignore_errors=True)
        c.cleanup()
