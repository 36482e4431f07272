"""The `berth` CLI's image, registry, volume and system verbs and the management
groups, against one berth daemon (engine_daemon.Daemon) and one `berth registry
serve` with htpasswd auth on a free 127.0.0.1 port.

Every CLI call gets its own DOCKER_CONFIG directory (the credentials file
docker's CLI and `berth login` share), so tests do not see each other's logins.
"""
import json
import os
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from conftest import run
from engine_daemon import Daemon

USER, PASSWORD = "alice", "alice-pw"


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


class Registry:
    def __init__(self, binary, base):
        self.base = base
        htpasswd = os.path.join(base, "htpasswd")
        run(["htpasswd", "-cbB", htpasswd, USER, PASSWORD])
        port_file = os.path.join(base, "port")
        self.log = open(os.path.join(base, "registry.log"), "w")
        self.proc = subprocess.Popen([binary, "registry", "serve", "--root", os.path.join(base, "data"),
                                      "--addr", "127.0.0.1:0", "--port-file", port_file,
                                      "--htpasswd", htpasswd, "--no-access-log"],
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("registry did not start: " + open(self.log.name).read())
            time.sleep(0.02)
        self.host = "127.0.0.1:" + open(port_file).read().strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def registry(berth_bin):
    base = tempfile.mkdtemp(prefix="berth-cli-reg-")
    r = Registry(berth_bin, base)
    try:
        yield r
    finally:
        r.stop()
        subprocess.run(["rm", "-rf", base])


@pytest.fixture
def config(tmp_path):
    """A private DOCKER_CONFIG directory."""
    d = tmp_path / "docker-config"
    d.mkdir()
    return str(d)


def cli(daemon, *args, config=None, check=True, docker=False, **kw):
    env = dict(daemon.env)
    if config:
        env["DOCKER_CONFIG"] = config
    binary = "/usr/bin/docker" if docker else daemon.bin
    return run([binary, *map(str, args)], check=check, env=env, timeout=120, **kw)


def login(daemon, registry, config, docker=False):
    return cli(daemon, "login", "-u", USER, "--password-stdin", registry.host, config=config,
               input=PASSWORD + "\n", docker=docker)


def uid():
    return uuid.uuid4().hex[:8]


# ---- login / logout ----

def test_login_with_wrong_password_fails_and_stores_nothing(daemon, registry, config):
    p = cli(daemon, "login", "-u", USER, "--password-stdin", registry.host, config=config,
            input="wrong\n", check=False)
    assert p.returncode == 1
    assert "Error response from daemon" in p.stderr
    assert not os.path.exists(os.path.join(config, "config.json"))


def test_login_writes_docker_auths_and_logout_removes_them(daemon, registry, config):
    p = login(daemon, registry, config)
    assert "Login Succeeded" in p.stdout
    path = os.path.join(config, "config.json")
    auths = json.load(open(path))["auths"]
    assert registry.host in auths
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    p = cli(daemon, "logout", registry.host, config=config)
    assert f"Removing login credentials for {registry.host}" in p.stdout
    assert registry.host not in json.load(open(path))["auths"]
    assert "Not logged in" in cli(daemon, "logout", registry.host, config=config).stdout


def test_docker_cli_login_and_push_through_the_daemon(daemon, registry, config):
    assert "Login Succeeded" in login(daemon, registry, config, docker=True).stdout
    assert registry.host in json.load(open(os.path.join(config, "config.json")))["auths"]
    ref = f"{registry.host}/t/fromdocker:{uid()}"
    cli(daemon, "tag", "busybox:latest", ref)
    try:
        p = cli(daemon, "push", ref, config=config, docker=True)  # X-Registry-Auth from docker's config
        assert "digest: sha256:" in p.stdout
    finally:
        cli(daemon, "rmi", ref)


# ---- push / pull ----

def test_push_without_credentials_is_denied(daemon, registry, config):
    ref = f"{registry.host}/t/denied:{uid()}"
    cli(daemon, "tag", "busybox:latest", ref)
    try:
        p = cli(daemon, "push", ref, config=config, check=False)
        assert p.returncode == 1
        assert "401" in p.stderr or "unauthorized" in p.stderr.lower()
    finally:
        cli(daemon, "rmi", ref)


def test_push_then_pull_round_trip_with_progress(daemon, registry, config):
    login(daemon, registry, config)
    tag = uid()
    ref = f"{registry.host}/t/busybox:{tag}"
    cli(daemon, "tag", "busybox:latest", ref)
    p = cli(daemon, "push", ref, config=config)
    assert f"The push refers to repository [{registry.host}/t/busybox]" in p.stdout
    assert any(s in p.stdout for s in (": Pushed", ": Layer already exists", ": Mounted from"))
    assert f"{tag}: digest: sha256:" in p.stdout
    cli(daemon, "rmi", ref)
    p = cli(daemon, "pull", ref, config=config)
    assert f"{tag}: Pulling from t/busybox" in p.stdout
    assert "Digest: sha256:" in p.stdout
    assert p.stdout.strip().splitlines()[-1] == ref
    assert cli(daemon, "pull", "-q", ref, config=config).stdout == ref + "\n"
    assert cli(daemon, "image", "inspect", "-f", "{{.Id}}", ref).stdout.startswith("sha256:")
    cli(daemon, "rmi", ref)


def test_push_without_tag_pushes_every_local_tag(daemon, registry, config):
    login(daemon, registry, config)
    repo = f"{registry.host}/t/alltags{uid()}"
    for t in ("a", "b"):
        cli(daemon, "tag", "busybox:latest", f"{repo}:{t}")
    try:
        out = cli(daemon, "push", "-q", repo, config=config).stdout.split()
        assert sorted(out) == [f"{repo}:a", f"{repo}:b"]
    finally:
        cli(daemon, "rmi", f"{repo}:a", f"{repo}:b")


def test_pull_of_unknown_image_fails_with_daemon_error(daemon, registry, config):
    login(daemon, registry, config)
    p = cli(daemon, "pull", f"{registry.host}/t/nothere:1", config=config, check=False)
    assert p.returncode == 1
    assert p.stderr.strip()


def test_pull_rejects_invalid_reference(daemon):
    p = cli(daemon, "pull", "bad//name", check=False)
    assert p.returncode == 1
    assert "invalid reference format" in p.stderr


# ---- save / load / history ----

def test_save_and_load_round_trip(daemon, tmp_path):
    ref = f"saved{uid()}:1"
    cli(daemon, "tag", "busybox:latest", ref)
    out = str(tmp_path / "img.tar")
    cli(daemon, "save", "-o", out, ref)
    with tarfile.open(out) as t:
        assert "manifest.json" in t.getnames()
    cli(daemon, "rmi", ref)
    assert f"Loaded image: {ref}" in cli(daemon, "load", "-i", out).stdout
    cli(daemon, "rmi", ref)
    with open(out, "rb") as f:
        p = cli(daemon, "load", "-q", stdin=f)
    assert f"Loaded image: {ref}" in p.stdout
    cli(daemon, "rmi", ref)


@pytest.mark.parametrize("client", ["berth", "docker"])
def test_save_of_several_images_keeps_every_tag(daemon, tmp_path, client):
    refs = [f"multi{uid()}:a", f"multi{uid()}:b"]
    for r in refs:
        cli(daemon, "tag", "busybox:latest", r)
    out = str(tmp_path / "multi.tar")
    if client == "berth":
        cli(daemon, "save", "-o", out, *refs)
    else:
        daemon.docker("save", "-o", out, *refs)
    with tarfile.open(out) as t:
        tags = {tag for m in json.load(t.extractfile("manifest.json")) for tag in m["RepoTags"] or []}
    assert set(refs) <= tags
    for r in refs:
        cli(daemon, "rmi", r)
    loaded = cli(daemon, "load", "-i", out).stdout
    assert all(f"Loaded image: {r}" in loaded for r in refs)
    for r in refs:
        cli(daemon, "rmi", r)


def test_save_of_unknown_image_fails_without_writing(daemon, tmp_path):
    out = str(tmp_path / "none.tar")
    p = cli(daemon, "save", "-o", out, "nosuchimage:1", check=False)
    assert p.returncode == 1
    assert not os.path.exists(out)


def test_history_table_quiet_and_format(daemon):
    p = cli(daemon, "history", "busybox:latest")
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert len(lines) >= 2
    ids = cli(daemon, "history", "--format", "{{.ID}}|{{.Size}}", "busybox").stdout.splitlines()
    assert len(ids) == len(lines) - 1 and all("|" in i for i in ids)
    full = cli(daemon, "history", "--no-trunc", "-q", "busybox").stdout.split()
    assert all(i.startswith("sha256:") for i in full)
    assert cli(daemon, "history", "nosuch:img", check=False).returncode == 1


# ---- volumes ----

def test_volume_create_ls_inspect_rm(daemon):
    name = "v" + uid()
    assert cli(daemon, "volume", "create", "--label", "team=a", name).stdout.strip() == name
    ls = cli(daemon, "volume", "ls", "-q", "-f", "label=team=a").stdout.split()
    assert name in ls
    assert name not in cli(daemon, "volume", "ls", "-q", "-f", "label=team=b").stdout.split()
    assert f"local|{name}" in cli(daemon, "volume", "ls", "--format", "{{.Driver}}|{{.Name}}").stdout
    info = json.loads(cli(daemon, "volume", "inspect", name).stdout)
    assert info[0]["Labels"] == {"team": "a"}
    assert cli(daemon, "volume", "inspect", "-f", "{{.Driver}}", name).stdout.strip() == "local"
    assert cli(daemon, "volume", "rm", name).stdout.strip() == name
    p = cli(daemon, "volume", "inspect", name, check=False)
    assert p.returncode == 1 and "No such volume" in p.stderr


def test_volume_prune_keeps_volumes_in_use(daemon):
    used, unused = "u" + uid(), "n" + uid()
    for v in (used, unused):
        cli(daemon, "volume", "create", v)
    cid = cli(daemon, "create", "-v", f"{used}:/data", "busybox", "true").stdout.strip()
    try:
        assert cli(daemon, "volume", "ls", "-q", "-f", "dangling=true").stdout.split().count(used) == 0
        p = cli(daemon, "volume", "prune", "-f")
        assert unused in p.stdout and used not in p.stdout
        assert "Total reclaimed space:" in p.stdout
        assert used in cli(daemon, "volume", "ls", "-q").stdout.split()
    finally:
        cli(daemon, "rm", "-f", cid)
        cli(daemon, "volume", "rm", "-f", used)


# ---- system / image prune ----

def test_system_df_with_berth_and_docker_cli(daemon):
    p = cli(daemon, "system", "df")
    rows = {l.split("  ")[0]: l for l in p.stdout.splitlines()[1:]}
    assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}
    d = cli(daemon, "system", "df", docker=True)
    assert d.stdout.splitlines()[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert "Images space usage" in cli(daemon, "system", "df", "-v", docker=True).stdout
    st, df = daemon.json("GET", "/system/df")
    assert st == 200 and {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"} <= set(df)
    assert all("UsageData" in v for v in df["Volumes"])
    assert cli(daemon, "system", "df", "--format", "{{.Type}}").stdout.split("\n")[0] == "Images"


def test_image_prune_removes_dangling_images_only(daemon, tmp_path):
    tar = tmp_path / "one.tar"
    f = tmp_path / "f"
    f.write_text(uid())
    with tarfile.open(tar, "w") as t:
        t.add(f, arcname="f")
    dangling = cli(daemon, "import", str(tar)).stdout.strip()
    p = cli(daemon, "image", "prune", "-f")
    assert "Deleted Images:" in p.stdout and dangling in p.stdout
    assert cli(daemon, "image", "inspect", dangling, check=False).returncode == 1
    assert cli(daemon, "image", "inspect", "busybox").returncode == 0
    st, body = daemon.json("POST", '/images/prune?filters={"dangling":{"maybe":true}}')
    assert st == 400


def test_docker_cli_image_and_volume_prune_against_berth(daemon):
    name = "d" + uid()
    cli(daemon, "volume", "create", name)
    p = cli(daemon, "volume", "prune", "-f", "--filter", "all=1", docker=True)
    assert name in p.stdout
    assert "Total reclaimed space" in cli(daemon, "image", "prune", "-f", docker=True).stdout


# ---- management groups, help, exit codes ----

def test_container_and_image_groups_dispatch(daemon):
    cid = cli(daemon, "container", "create", "busybox", "true").stdout.strip()
    try:
        assert cid[:12] in cli(daemon, "container", "ls", "-a", "-q").stdout
        assert cli(daemon, "container", "inspect", "-f", "{{.Id}}", cid).stdout.strip() == cid
        p = cli(daemon, "container", "inspect", "busybox", check=False)
        assert p.returncode == 1
    finally:
        cli(daemon, "container", "rm", cid)
    assert "busybox" in cli(daemon, "image", "ls").stdout
    p = cli(daemon, "container", "prune", "-f")
    assert "Total reclaimed space" in p.stdout


@pytest.mark.parametrize("verb", [["pull"], ["push"], ["save"], ["load"], ["history"], ["login"], ["logout"],
                                  ["volume"], ["volume", "create"], ["volume", "prune"], ["system"],
                                  ["system", "df"], ["system", "prune"], ["container"], ["image"],
                                  ["image", "prune"], ["container", "prune"]])
def test_help_exits_zero_and_bad_usage_exits_125(daemon, verb):
    p = cli(daemon, *verb, "--help")
    assert p.returncode == 0 and p.stdout.startswith("Usage: berth ")
    p = cli(daemon, *verb, "--no-such-flag", check=False)
    assert p.returncode == 125 and "Usage:" in p.stderr


# ---- bash completion ----

COMPLETION = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "completion", "berth.bash")


def complete(daemon, *words):
    env = dict(daemon.env, PATH=os.path.dirname(daemon.bin) + ":" + os.environ["PATH"])
    script = (f"source {COMPLETION}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
              f"COMP_CWORD={len(words) - 1}; _berth; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    return run(["bash", "-c", script], env=env).stdout.split()


def test_bash_completion_of_verbs_flags_and_names(daemon):
    assert complete(daemon, "berth", "vol") == ["volume"]
    assert {"pull", "push", "save", "load", "history", "login", "logout", "system", "container",
            "image"} <= set(complete(daemon, "berth", ""))
    assert set(complete(daemon, "berth", "system", "")) >= {"df", "prune", "info", "events"}
    assert "--password-stdin" in complete(daemon, "berth", "login", "--pa")
    name = "comp" + uid()
    cli(daemon, "volume", "create", name)
    try:
        assert name in complete(daemon, "berth", "volume", "rm", "comp")
    finally:
        cli(daemon, "volume", "rm", name)
    assert "busybox:latest" in complete(daemon, "berth", "image", "history", "busy")
