"""`berth daemon -H tcp://... --tlsverify`: TLS with required client certificates,
driven by the docker CLI, docker-py's TLSConfig and berth's own CLI
(DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH). Certificates are made here
with openssl: a CA, a server certificate for 127.0.0.1, a client certificate,
and a client certificate from another CA (must be rejected).
"""
import os
import pty
import select
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import run
from engine_daemon import Daemon, wait_for

DOCKER = "/usr/bin/docker"


def openssl(*args, cwd):
    run(["openssl", *args], cwd=cwd)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def make_cert(d, name, ca, ext):
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    make_ca(d, "ca")
    make_ca(d, "rogue-ca")
    make_cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    make_cert(d, "rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n")
    # docker's DOCKER_CERT_PATH layout
    certdir = os.path.join(d, "client-dir")
    os.mkdir(certdir)
    for src, dst in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client-key.pem", "key.pem")):
        os.symlink(os.path.join(d, src), os.path.join(certdir, dst))
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox, certs):
    d = Daemon(berth_bin)
    d.port = free_port()
    d.extra_args = ["-H", "unix://" + d.sock, "-H", f"tcp://127.0.0.1:{d.port}", "--tlsverify",
                    "--tlscacert", os.path.join(certs, "ca.pem"),
                    "--tlscert", os.path.join(certs, "server.pem"),
                    "--tlskey", os.path.join(certs, "server-key.pem")]
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def docker_tls(daemon, certs, *args, client="client", check=True, **kw):
    c = os.path.join(certs, client)
    return run([DOCKER, "--tlsverify", "--tlscacert", os.path.join(certs, "ca.pem"), "--tlscert", c + ".pem",
                "--tlskey", c + "-key.pem", "-H", f"tcp://127.0.0.1:{daemon.port}", *map(str, args)],
               check=check, timeout=60, **kw)


def docker_cmd(daemon, certs, *args):
    return [DOCKER, "--tlsverify", "--tlscacert", os.path.join(certs, "ca.pem"), "--tlscert",
            os.path.join(certs, "client.pem"), "--tlskey", os.path.join(certs, "client-key.pem"),
            "-H", f"tcp://127.0.0.1:{daemon.port}", *args]


def in_pty(cmd, timeout=60):
    """Run cmd on a new pseudo-terminal; return what it wrote."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 1)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return out.decode(errors="replace")


def handshake(daemon, certs, client=None):
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    if client:
        ctx.load_cert_chain(os.path.join(certs, client + ".pem"), os.path.join(certs, client + "-key.pem"))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data


def test_client_with_certificate_gets_answers(daemon, certs):
    assert handshake(daemon, certs, "client").startswith(b"HTTP/1.1 200")


def test_client_without_certificate_is_rejected(daemon, certs):
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(daemon, certs, None)


def test_client_certificate_from_another_ca_is_rejected(daemon, certs):
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        handshake(daemon, certs, "rogue")
    p = docker_tls(daemon, certs, "ps", client="rogue", check=False)
    assert p.returncode != 0


def test_docker_cli_ps_run_logs_follow_and_exec_over_tls(daemon, certs):
    assert docker_tls(daemon, certs, "run", "--rm", "busybox", "echo", "hi-tls").stdout == "hi-tls\n"
    name = "tls" + uuid.uuid4().hex[:8]
    docker_tls(daemon, certs, "run", "-d", "--name", name, "busybox", "sh", "-c",
               "echo one; sleep 1; echo two; sleep 600")
    try:
        assert name in docker_tls(daemon, certs, "ps").stdout
        p = subprocess.Popen(docker_cmd(daemon, certs, "logs", "-f", name), stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline() == "one\n"
            assert p.stdout.readline() == "two\n"
        finally:
            p.kill()
            p.wait()
        # exec -i: stdin through the hijacked TLS stream, its EOF (close_notify) ends cat
        out = docker_tls(daemon, certs, "exec", "-i", name, "cat", input="through tls\n").stdout
        assert out == "through tls\n"
        # a terminal session over TLS (run -it: tty + stdin through the hijacked stream)
        out = in_pty(docker_cmd(daemon, certs, "run", "-it", "--rm", "busybox", "sh", "-c", "echo tty-$(tty)"))
        assert "tty-/dev/pts/0" in out
    finally:
        docker_tls(daemon, certs, "rm", "-f", name)


def test_docker_py_tls_config(daemon, certs, monkeypatch):
    import docker
    # requests lets these override the session's CA (psf/requests#3829)
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    tls = docker.tls.TLSConfig(client_cert=(os.path.join(certs, "client.pem"),
                                            os.path.join(certs, "client-key.pem")),
                               ca_cert=os.path.join(certs, "ca.pem"), verify=True)
    client = docker.DockerClient(base_url=f"https://127.0.0.1:{daemon.port}", tls=tls, version="1.41")
    try:
        assert client.ping()
        assert client.containers.run("busybox", ["echo", "py-tls"], remove=True) == b"py-tls\n"
    finally:
        client.close()


def test_berth_cli_honours_docker_host_and_tls_env(daemon, certs):
    env = {k: v for k, v in daemon.env.items() if k not in ("BERTH_EXEC_ROOT", "BERTH_HOST")}
    env.update(DOCKER_HOST=f"tcp://127.0.0.1:{daemon.port}", DOCKER_TLS_VERIFY="1",
               DOCKER_CERT_PATH=os.path.join(certs, "client-dir"))
    assert "CONTAINER ID" in run([daemon.bin, "ps"], env=env).stdout
    assert run([daemon.bin, "run", "--rm", "busybox", "echo", "berth-tls"], env=env,
               timeout=60).stdout == "berth-tls\n"
    # stdin through the TLS relay; its EOF must not cut the output that follows
    assert run([daemon.bin, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo after-eof"], env=env,
               input="in\n", timeout=60).stdout == "in\nafter-eof\n"
    env["DOCKER_TLS_VERIFY"] = ""
    p = run([daemon.bin, "ps"], env=env, check=False)  # plain HTTP to a TLS port
    assert p.returncode != 0


def test_tcp_without_tlsverify_is_refused(berth_bin, tmp_path):
    p = run([berth_bin, "daemon", "--root", str(tmp_path / "root"), "--exec-root", str(tmp_path / "run"),
             "--bridge", "none", "-H", f"tcp://127.0.0.1:{free_port()}"], check=False, timeout=30)
    assert p.returncode == 1
    assert "refusing to listen on 'tcp://127.0.0.1:" in p.stderr


def test_insecure_tcp_needs_the_explicit_flag_and_warns(berth_bin):
    d = Daemon(berth_bin)
    port = free_port()
    d.extra_args = ["-H", "unix://" + d.sock, "-H", f"tcp://127.0.0.1:{port}", "--allow-insecure-tcp"]
    try:
        d.start()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        wait_for(lambda: "WARNING" in open(d.logpath).read())
    finally:
        d.cleanup()
