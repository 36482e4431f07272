"""A tiny client of berth server's agent protocol (docs/cluster.md), for tests.

It does what `berth agent` does on the wire, nothing more: fetch the CA and
check it against the join token's hash, send a CSR with the token, keep the
node certificate, then register, heartbeat, long-poll desired tasks and
report task status over mutual TLS.
"""
import hashlib
import os

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class AgentError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class AgentClient:
    def __init__(self, endpoint, workdir):
        self.endpoint = endpoint.rstrip("/")
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.ca = os.path.join(workdir, "ca.pem")
        self.cert = os.path.join(workdir, "node.pem")
        self.key = os.path.join(workdir, "node-key.pem")
        self.node_id = None
        self.instance_arn = None

    def _check(self, r):
        try:
            body = r.json()
        except ValueError:
            body = r.text
        if r.status_code != 200:
            raise AgentError(r.status_code, body)
        return body

    def join(self, token):
        """Pin the CA by the token's hash, then trade a CSR for a node certificate."""
        assert token.startswith("K10") and "::" in token, token
        want = token[3:67]
        ca = requests.get(self.endpoint + "/agent/v1/ca", verify=False, timeout=10).text
        if hashlib.sha256(ca.encode()).hexdigest() != want:
            raise AgentError(0, "CA does not match the join token")
        with open(self.ca, "w") as f:
            f.write(ca)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-node")]))
               .sign(key, hashes.SHA256()))
        r = requests.post(self.endpoint + "/agent/v1/join", verify=self.ca, timeout=10,
                          json={"token": token, "csr": csr.public_bytes(serialization.Encoding.PEM).decode(),
                                "hostname": "fake-node"})
        body = self._check(r)
        with open(self.cert, "w") as f:
            f.write(body["certificate"])
        with open(self.key, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.node_id = body["nodeId"]
        return body

    def call(self, method, path, json=None, params=None, timeout=70, cert=True):
        r = requests.request(method, self.endpoint + "/agent/v1/" + path, json=json, params=params,
                             verify=self.ca, cert=(self.cert, self.key) if cert else None, timeout=timeout)
        return self._check(r)

    def register(self, cluster="default", cpu=2048, memory=4096, attributes=None, version="test-1",
                 labels=None, taints=None):
        """taints: [{"key", "value", "effect"}] as `berth agent --taint K=V:EFFECT` sends them."""
        body = self.call("POST", "register", {
            "cluster": cluster, "agentVersion": version,
            "resources": {"cpu": cpu, "memory": memory, "ports": [22], "portsUdp": []},
            "attributes": attributes or {}, "labels": labels or {}, "taints": taints or []})
        self.instance_arn = body["containerInstanceArn"]
        return body

    def heartbeat(self):
        return self.call("POST", "heartbeat", {})

    def tasks(self, since=0, wait=0):
        return self.call("GET", "tasks", params={"since": since, "wait": wait})

    def report(self, *reports):
        return self.call("POST", "status", {"tasks": list(reports)})
