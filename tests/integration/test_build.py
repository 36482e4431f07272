"""`berth build-tool`: the Dockerfile parser, build plan and build context,
checked against a fixture corpus and, where dockerd's classic builder can
build the fixture offline (FROM scratch, no RUN), against the image config
docker itself produces."""
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import REPO, TMP_PREFIX, run

FIXTURES = os.path.join(REPO, "tests", "fixtures", "dockerfiles")
CONFIG_KEYS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
               "Healthcheck", "StopSignal", "Shell", "OnBuild"]


def fixtures():
    return sorted(d for d in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, d)))


def expect_of(name):
    with open(os.path.join(FIXTURES, name, "expect.json")) as f:
        return json.load(f)


def tool(berth_bin, *args, check=True, **kw):
    return run([berth_bin, "build-tool", *map(str, args)], check=check, **kw)


def image_config_file(busybox, workdir):
    """The generated busybox image's config, as `--image` wants it."""
    with tarfile.open(busybox["docker_archive"]) as t:
        manifest = json.load(t.extractfile("manifest.json"))
        config = t.extractfile(manifest[0]["Config"]).read()
    path = os.path.join(workdir, "busybox-config.json")
    with open(path, "wb") as f:
        f.write(config)
    return path


@pytest.fixture(scope="session")
def base_images(busybox):
    d = tempfile.mkdtemp(prefix=TMP_PREFIX + "build-images-")
    try:
        yield {"busybox:latest": image_config_file(busybox, d)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def plan_of(berth_bin, name, extra=(), images=None):
    exp = expect_of(name)
    args = []
    for a in exp.get("build_args", []):
        args += ["--build-arg", a]
    for ref in exp.get("images", []):
        args += ["--image", f"{ref}={images[ref]}"]
    p = tool(berth_bin, "plan", *args, *extra, os.path.join(FIXTURES, name))
    return json.loads(p.stdout)


def target_stage(plan):
    return plan["stages"][plan["target"]]


# --- the corpus against documented semantics ---------------------------------

@pytest.mark.parametrize("name", fixtures())
def test_fixture_plan_matches_expectation(berth_bin, request, name):
    exp = expect_of(name)
    images = request.getfixturevalue("base_images") if exp.get("images") else None
    plan = plan_of(berth_bin, name, images=images)
    stage = target_stage(plan)
    for key, want in exp.get("config", {}).items():
        assert stage["config"].get(key) == want, f"{name}: config {key}"
    if "waves" in exp:
        assert plan["waves"] == exp["waves"]
    if "needed" in exp:
        assert [s["needed"] for s in plan["stages"]] == exp["needed"]
    if "total_steps" in exp:
        assert plan["total_steps"] == exp["total_steps"]
    if "texts" in exp:
        assert [s["text"] for s in stage["steps"]][-len(exp["texts"]):] == exp["texts"]
    if "unused_build_args" in exp:
        assert plan["unused_build_args"] == exp["unused_build_args"]
    if "author" in exp:
        assert stage["author"] == exp["author"]
    if "copies" in exp:
        copies = [s["copy"] for s in stage["steps"] if s["op"] == "copy"]
        assert len(copies) == len(exp["copies"])
        for got, want in zip(copies, exp["copies"]):
            for k, v in want.items():
                assert got.get(k) == v, f"{name}: copy {k}"
    if "inline" in exp:
        inline = [s["copy"]["inline"] for s in stage["steps"] if s["op"] == "copy"]
        assert inline == [dict((k if k != "/etc/greeting" else "EOF", v) for k, v in d.items())
                          for d in exp["inline"]]
    if "argv" in exp:
        assert [s["run"]["argv"] for s in stage["steps"] if s["op"] == "run"] == exp["argv"]


@pytest.mark.parametrize("name", fixtures())
def test_fixture_parses_with_stable_output(berth_bin, name):
    path = os.path.join(FIXTURES, name, "Dockerfile")
    a = tool(berth_bin, "parse", path).stdout
    b = tool(berth_bin, "parse", "-f", path).stdout
    assert a == b
    doc = json.loads(a)
    for w in expect_of(name).get("warnings", []):
        assert any(w in x for x in doc["warnings"]), doc["warnings"]


def test_base_image_config_is_inherited(berth_bin, base_images):
    plan = plan_of(berth_bin, "inherit", images=base_images)
    stage = target_stage(plan)
    assert stage["base_id"].startswith("sha256:")
    env = stage["config"]["Env"]
    assert env[-1] == "EXTRA=1" or "EXTRA=1" in env
    path = [e for e in env if e.startswith("PATH=")]
    assert len(path) == 1 and path[0].startswith("PATH=/opt/bin:/")
    assert stage["config"]["Labels"]["path"] == path[0][len("PATH="):]


def test_plan_keys_are_deterministic(berth_bin):
    a = plan_of(berth_bin, "multistage")
    b = plan_of(berth_bin, "multistage")
    assert [s["key"] for s in target_stage(a)["steps"]] == [s["key"] for s in target_stage(b)["steps"]]


def test_plan_key_changes_with_copied_content(berth_bin, workdir):
    ctx = os.path.join(workdir, "ctx")
    shutil.copytree(os.path.join(FIXTURES, "multistage"), ctx)
    before = json.loads(tool(berth_bin, "plan", ctx).stdout)
    with open(os.path.join(ctx, "tools.txt"), "w") as f:
        f.write("changed\n")
    after = json.loads(tool(berth_bin, "plan", ctx).stdout)
    assert before["stages"][0]["key"] == after["stages"][0]["key"]      # deps: untouched
    assert before["stages"][1]["key"] != after["stages"][1]["key"]      # tools: copies the file
    assert before["stages"][4]["key"] != after["stages"][4]["key"]      # final: depends on it


def test_target_prunes_stages(berth_bin):
    plan = plan_of(berth_bin, "multistage", extra=("--target", "tools"))
    assert [s["needed"] for s in plan["stages"]] == [False, True, False, False, False]
    assert plan["waves"] == [[1]]


def test_labels_option_sets_final_labels(berth_bin):
    plan = plan_of(berth_bin, "metadata", extra=("--label", "extra=1"))
    assert target_stage(plan)["config"]["Labels"]["extra"] == "1"


def test_dockerignore_context_listing(berth_bin):
    exp = expect_of("dockerignore")
    out = json.loads(tool(berth_bin, "context", os.path.join(FIXTURES, "dockerignore")).stdout)
    assert [e["path"] for e in out["entries"]] == exp["context"]
    assert [e["path"] for e in out["entries"] if e.get("build_only")] == exp["build_only"]
    plan = plan_of(berth_bin, "dockerignore")
    files = target_stage(plan)["steps"][0]["copy"]["files"]
    assert files == exp["files"]


def test_context_from_tar_on_stdin(berth_bin):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(os.path.join(FIXTURES, "dockerignore"), arcname=".")
    p = run([berth_bin, "build-tool", "context", "-"], input=buf.getvalue(), text=False)
    paths = [e["path"] for e in json.loads(p.stdout)["entries"]]
    assert paths == expect_of("dockerignore")["context"]
    p = run([berth_bin, "build-tool", "plan", "-"], input=buf.getvalue(), text=False)
    plan = json.loads(p.stdout)
    assert plan["stages"][0]["steps"][0]["copy"]["files"] == expect_of("dockerignore")["files"]


def test_tar_entries_escaping_the_context_are_rejected(berth_bin):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    p = run([berth_bin, "build-tool", "context", "-"], input=buf.getvalue(), text=False, check=False)
    assert p.returncode == 1
    assert b"escapes the build context" in p.stderr


# --- every error class, with file:line ----------------------------------------

ERRORS = [
    ("FROM scratch\n\n\n\n\n\nRUNN true\n", "Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM scratch\nFROM a b\n", "Dockerfile:2: FROM requires either one or three arguments"),
    ("FROM scratch\nCOPY --chwon=1 a /b\n", "Dockerfile:2: unknown flag: chwon"),
    ("FROM scratch\nRUN --mount=type=nfs,target=/x true\n", "Dockerfile:2: unsupported mount type \"nfs\""),
    ("FROM scratch\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc"),
    ("FROM scratch\nSHELL sh -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM scratch\nCMD [\"a\", 1]\n", "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
    ("# escape=x\nFROM scratch\n", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
    ("FROM scratch\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n", "Dockerfile:2: --retries cannot be negative (-1)"),
    ("ENV A=1\nFROM scratch\n", "Dockerfile:1: no build stage in current context"),
]

PLAN_ERRORS = [
    ("FROM scratch\nCOPY --from=nosuchstage /a /b\n", "resolve"),  # an unknown stage is an image reference
    ("FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\nCOPY --from=a /x /y\n",
     "Dockerfile:2: circular dependency detected on stage: a"),
    ("FROM scratch\nCOPY ../outside /x\n", "Dockerfile:2: forbidden path outside the build context: '../outside'"),
    ("FROM scratch\nCOPY missing.txt /x\n", "Dockerfile:2: COPY: 'missing.txt': not found in build context"),
    ("FROM scratch\nEXPOSE 99999\n", "Dockerfile:2: invalid containerPort: 99999"),
    ("FROM scratch\nENV A=\"${NOPE:?is required}\"\n", "Dockerfile:2: NOPE: is required"),
]


@pytest.mark.parametrize("text,message", ERRORS, ids=[m.split(": ", 1)[1][:40] for _, m in ERRORS])
def test_parse_errors_name_file_and_line(berth_bin, workdir, text, message):
    path = os.path.join(workdir, "Dockerfile")
    with open(path, "w") as f:
        f.write(text)
    p = tool(berth_bin, "parse", path, check=False)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == f"berth build-tool: {message}\n"


@pytest.mark.parametrize("text,message", PLAN_ERRORS, ids=[m[:40] for _, m in PLAN_ERRORS])
def test_plan_errors_are_clear(berth_bin, workdir, text, message):
    with open(os.path.join(workdir, "Dockerfile"), "w") as f:
        f.write(text)
    p = tool(berth_bin, "plan", workdir, check=False)
    if message == "resolve":
        # without an image store, an unknown name is taken as an image reference
        assert p.returncode == 0
        assert json.loads(p.stdout)["stages"][0]["steps"][0]["copy"]["kind"] == "image"
        return
    assert p.returncode == 1
    assert message in p.stderr
    assert p.stderr.startswith("berth build-tool: ")


def test_missing_target_is_an_error(berth_bin):
    p = tool(berth_bin, "plan", "--target", "nope", os.path.join(FIXTURES, "multistage"), check=False)
    assert p.returncode == 1
    assert "target stage 'nope' could not be found" in p.stderr


def test_usage_errors(berth_bin):
    assert tool(berth_bin, check=False).returncode == 2
    assert tool(berth_bin, "frob", check=False).returncode == 2
    assert tool(berth_bin, "plan", check=False).returncode == 2
    assert tool(berth_bin, "--help").stdout.startswith("Usage: berth build-tool")
    ctx = os.path.join(FIXTURES, "multistage")
    for args, err in ((["plan", "--image", "busybox", ctx], "berth build-tool: --image expects REF=FILE, got 'busybox'\n"),
                      (["plan", "--bogus", ctx], "plan: unrecognized option '--bogus'\nUsage: berth build-tool"),
                      (["plan", "-f"], "plan: option requires an argument -- 'f'\nUsage: berth build-tool"),
                      (["plan", ctx, "extra"], "berth build-tool: unexpected argument 'extra'\n")):
        p = tool(berth_bin, *args, check=False)
        assert p.returncode == 2 and p.stderr.startswith(err) and p.stdout == "", (args, p.stderr)
    assert tool(berth_bin, "parse", "-h").stdout.startswith("Usage: berth build-tool")


def test_build_tool_is_hidden_from_help(berth_bin):
    assert "build-tool" not in run([berth_bin, "--help"]).stdout


# --- docker as the oracle -------------------------------------------------------

@pytest.fixture(scope="session")
def dockerd():
    """One dockerd for the session (classic builder, no network needed for FROM scratch).
    The leak check runs at session finish, after this is stopped."""
    if not shutil.which("dockerd"):
        pytest.skip("dockerd not installed")
    import docker
    base = tempfile.mkdtemp(prefix=TMP_PREFIX + "build-dockerd-")
    sock = os.path.join(base, "d.sock")
    log = open(os.path.join(base, "log"), "w")
    proc = subprocess.Popen(
        ["dockerd", "--data-root", os.path.join(base, "data"), "--exec-root", os.path.join(base, "exec"),
         "-H", "unix://" + sock, "--pidfile", os.path.join(base, "d.pid"), "--bridge=none",
         "--iptables=false", "--ip6tables=false"], stdout=log, stderr=subprocess.STDOUT)
    try:
        client = docker.APIClient(base_url="unix://" + sock, version="1.41", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("dockerd did not start")
                time.sleep(0.2)
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for sub in ("exec", "data"):
            subprocess.run(["umount", "-R", os.path.join(base, sub)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def docker_build(client, path, buildargs):
    out = b"".join(client.build(path=path, rm=True, forcerm=True, buildargs=buildargs, decode=False))
    image_id = None
    for line in out.decode().splitlines():
        msg = json.loads(line)
        if "errorDetail" in msg:
            raise AssertionError(msg["errorDetail"]["message"])
        if "aux" in msg:
            image_id = msg["aux"]["ID"]
    assert image_id, out
    return client.inspect_image(image_id)["Config"]


def normalise(config):
    """docker omits empty values; compare only what is set."""
    out = {}
    for k in CONFIG_KEYS:
        v = config.get(k)
        if v in (None, "", [], {}):
            continue
        out[k] = v
    return out


ORACLE = [n for n in fixtures() if expect_of(n).get("oracle")]


@pytest.mark.parametrize("name", ORACLE)
def test_fixture_config_matches_docker(berth_bin, dockerd, request, name):
    exp = expect_of(name)
    images = None
    if exp.get("images"):
        images = request.getfixturevalue("base_images")
        busybox = request.getfixturevalue("busybox")
        with open(busybox["docker_archive"], "rb") as f:
            list(dockerd.load_image(f.read()))
    buildargs = dict(a.split("=", 1) for a in exp.get("build_args", []))
    want = normalise(docker_build(dockerd, os.path.join(FIXTURES, name), buildargs))
    got = normalise(target_stage(plan_of(berth_bin, name, images=images))["config"])
    if "WorkingDir" not in want and got.get("WorkingDir") == "/":
        got.pop("WorkingDir")  # BuildKit sets "/" on scratch; the classic builder leaves it empty
    assert got == want
