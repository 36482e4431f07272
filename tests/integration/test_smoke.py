"""The binary starts, dispatches and reports errors the way a CLI should."""
import json
import os
import subprocess

from conftest import MKIMAGE, run


def test_version_flag_prints_version(berth):
    p = berth("--version")
    assert p.stdout.startswith("berth version ")


def test_version_command_matches_flag(berth):
    assert berth("version").stdout == berth("--version").stdout


def test_help_lists_commands(berth):
    p = berth("--help")
    assert p.stdout.startswith("Usage: berth")
    assert "version" in p.stdout


def test_no_arguments_prints_usage_and_fails(berth):
    p = berth(check=False)
    assert p.returncode == 2
    assert "Usage: berth" in p.stderr


def test_unknown_command_is_an_error(berth):
    p = berth("frobnicate", check=False)
    assert p.returncode == 2
    assert "'frobnicate' is not a berth command" in p.stderr
    assert p.stdout == ""


def test_help_for_unknown_topic_fails(berth):
    p = berth("help", "nothing", check=False)
    assert p.returncode == 2


def test_mkimage_oci_layout_is_valid(busybox):
    with open(os.path.join(busybox["oci"], "index.json")) as f:
        index = json.load(f)
    assert index["schemaVersion"] == 2
    p = run(["skopeo", "inspect", "--raw", f"oci:{busybox['oci']}:latest"])
    manifest = json.loads(p.stdout)
    assert manifest["config"]["digest"] == busybox["id"]
    assert len(manifest["layers"]) == 1


def test_mkimage_docker_archive_is_readable_by_skopeo(busybox):
    p = run(["skopeo", "inspect", "--config", f"docker-archive:{busybox['docker_archive']}"])
    config = json.loads(p.stdout)
    assert config["config"]["Cmd"] == ["sh"]


def test_mkimage_rootfs_runs_busybox(busybox):
    sh = os.path.join(busybox["rootfs"], "bin", "sh")
    assert os.path.islink(sh)
    p = run(["chroot", busybox["rootfs"], "/bin/sh", "-c", "echo ok; cat /etc/hostname"])
    assert p.stdout == "ok\nberth\n"


def test_mkimage_whiteouts_apply_in_rootfs(images):
    img = images.make("wh", tag="wh:latest", layers=2, whiteouts=True)
    data = os.path.join(img["rootfs"], "data")
    assert not os.path.exists(os.path.join(data, "victim"))
    assert os.listdir(os.path.join(data, "opaque")) == ["new"]
    assert os.path.exists(os.path.join(data, "file2"))


def test_mkimage_is_deterministic(images, workdir):
    a = run([MKIMAGE, "--layers", "1", "--oci", os.path.join(workdir, "a")]).stdout
    b = run([MKIMAGE, "--layers", "1", "--oci", os.path.join(workdir, "b")]).stdout
    assert a == b


def test_mkimage_rejects_bad_options(workdir):
    p = run([MKIMAGE], check=False)
    assert p.returncode == 2
    p = run([MKIMAGE, "--layers", "-1", "--oci", os.path.join(workdir, "x")], check=False)
    assert p.returncode == 2


def test_netns_fixture_gives_isolated_loopback(netns):
    p = run(["ip", "-n", netns, "-o", "link"])
    links = [l.split(":")[1].strip() for l in p.stdout.splitlines()]
    assert links == ["lo"]
    p = run(["nsenter", f"--net=/run/netns/{netns}", "/bin/busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"])
    assert p.returncode == 0
