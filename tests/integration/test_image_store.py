"""The image store on its own (`berth image-store`): load/save, snapshots,
list/inspect/tag/rm/prune, import/export/commit, and hostile archives."""
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from conftest import run

MTIME = 1767225600


def store(berth, *args, **kw):
    return berth("image-store", *args, **kw)


def tree(root, attrs=False):
    """{relative path: (type, size, link target[, mode, uid, gid])} without following symlinks.
    mkimage's --rootfs does not keep ownership, so attributes are compared only on request."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            out[rel] = (stat.S_IFMT(st.st_mode), size, link)
            if attrs:
                out[rel] += (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def tar_bytes(members):
    """members: list of (TarInfo, bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in members:
            ti.mtime = MTIME
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def entry(name, type_=tarfile.REGTYPE, mode=0o644, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.linkname = linkname
    return ti


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def docker_archive(path, layers, tag="evil:latest", diff_ids=None, layer_files=None):
    """A docker-save tarball; layer_files overrides the bytes stored for each layer.tar."""
    config = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
              "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(l) for l in layers]}}
    cbytes = json.dumps(config).encode()
    members = [(entry(sha(cbytes)[7:] + ".json"), cbytes)]
    names = []
    for i, l in enumerate(layer_files or layers):
        members.append((entry(f"l{i}/layer.tar"), l))
        names.append(f"l{i}/layer.tar")
    manifest = [{"Config": sha(cbytes)[7:] + ".json", "RepoTags": [tag], "Layers": names}]
    members.append((entry("manifest.json"), json.dumps(manifest).encode()))
    with open(path, "wb") as f:
        f.write(tar_bytes(members))
    return sha(cbytes)


def oci_archive(path, index_bytes=None, manifest=None, blobs=()):
    members = [(entry("oci-layout"), b'{"imageLayoutVersion":"1.0.0"}')]
    for b in blobs:
        members.append((entry("blobs/sha256/" + sha(b)[7:]), b))
    if index_bytes is None:
        mb = json.dumps(manifest).encode()
        members.append((entry("blobs/sha256/" + sha(mb)[7:]), mb))
        index_bytes = json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(mb), "size": len(mb),
             "annotations": {"io.containerd.image.name": "docker.io/library/evil:oci"}}]}).encode()
    members.append((entry("index.json"), index_bytes))
    with open(path, "wb") as f:
        f.write(tar_bytes(members))


@pytest.fixture
def snapshot(berth):
    """Mount helper that always unmounts and removes what it mounted."""
    made = []

    def mount(image, sid="c1"):
        made.append(sid)
        return store(berth, "mount", "--image", image, sid).stdout.strip()
    yield mount
    for sid in made:
        store(berth, "unmount", "--rm", sid, check=False)


@pytest.fixture(scope="session")
def layered(images):
    return images.make(name="layered", tag="layered:1", layers=2, whiteouts=True)


# ---- load / save ----

def test_load_docker_archive_keeps_image_id(berth, busybox):
    p = store(berth, "load", "-q", "-i", busybox["docker_archive"])
    assert p.stdout.strip() == "Loaded image: busybox:latest"
    assert store(berth, "inspect", "busybox").stdout.count(busybox["id"]) == 1


def test_load_oci_archive_keeps_image_id(berth, busybox):
    store(berth, "load", "-q", "-i", busybox["oci_archive"])
    info = json.loads(store(berth, "inspect", "busybox:latest").stdout)[0]
    assert info["Id"] == busybox["id"]
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["RootFS"]["Type"] == "layers"


def test_snapshot_rootfs_matches_flattened_layers_with_whiteouts(berth, layered, snapshot):
    store(berth, "load", "-q", "-i", layered["docker_archive"])
    rootfs = snapshot("layered:1")
    assert tree(rootfs) == tree(layered["rootfs"])
    st = os.lstat(os.path.join(rootfs, "data", "file2"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o640, 1000, 1000, MTIME)
    # a hardlink entry's own metadata applies to the shared inode, as in docker
    st = os.lstat(os.path.join(rootfs, "data", "file1"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o644, 0)
    assert os.path.samestat(st, os.lstat(os.path.join(rootfs, "data", "hardlink")))
    assert os.readlink(os.path.join(rootfs, "data", "link")) == "file1"
    assert not os.path.lexists(os.path.join(rootfs, "data", "victim"))
    assert os.listdir(os.path.join(rootfs, "data", "opaque")) == ["new"]


def test_snapshot_is_writable_and_removed_cleanly(berth, busybox, snapshot):
    store(berth, "load", "-q", "-i", busybox["oci_archive"])
    rootfs = snapshot("busybox", "w1")
    with open(os.path.join(rootfs, "newfile"), "w") as f:
        f.write("x")
    store(berth, "unmount", "--rm", "w1")
    assert not os.path.exists(os.path.join(berth.root, "snapshots", "w1"))


def test_save_then_load_round_trips_between_stores(berth, layered, workdir, snapshot):
    store(berth, "load", "-q", "-i", layered["oci_archive"])
    for fmt in ("docker", "oci"):
        out = os.path.join(workdir, f"saved-{fmt}.tar")
        store(berth, "save", "--format", fmt, "-o", out, "layered:1")
        other = dict(berth.env, BERTH_ROOT=os.path.join(workdir, "other-" + fmt))
        p = run([berth.bin, "image-store", "load", "-q", "-i", out], env=other)
        assert "Loaded image: layered:1" in p.stdout
        info = json.loads(run([berth.bin, "image-store", "inspect", "layered:1"], env=other).stdout)[0]
        assert info["Id"] == layered["id"]


def test_many_layers_mount(berth, images, snapshot):
    img = images.make(name="many", tag="many:1", layers=140)
    store(berth, "load", "-q", "-i", img["oci_archive"])
    rootfs = snapshot("many:1")
    assert tree(rootfs) == tree(img["rootfs"])


# ---- list / tag / rm / prune ----

def test_ls_filters(berth, busybox, layered):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    store(berth, "load", "-q", "-i", layered["docker_archive"])

    def ls(*filters):
        args = [a for f in filters for a in ("--filter", f)]
        return {t for e in json.loads(store(berth, "ls", "--json", *args).stdout) for t in e["RepoTags"]}
    assert ls() == {"busybox:latest", "layered:1"}
    assert ls("reference=busy*") == {"busybox:latest"}
    assert ls("reference=layered:1") == {"layered:1"}
    assert ls("label=org.berth.test=true") == {"busybox:latest", "layered:1"}
    assert ls("label=nope") == set()
    assert ls("dangling=true") == set()
    assert ls("dangling=false") == {"busybox:latest", "layered:1"}
    # both images have the same creation time: neither is strictly before/after the other
    assert ls("before=layered:1") == set() and ls("since=busybox") == set()
    p = store(berth, "ls", "--filter", "before=nope:1", check=False)
    assert p.returncode != 0 and "no such image" in p.stderr
    # docker refuses a dangling value that is not a boolean (it used to mean "false")
    p = store(berth, "ls", "--filter", "dangling=maybe", check=False)
    assert p.returncode != 0 and "dangling=maybe" in p.stderr


def test_tag_then_rm_untags_before_deleting(berth, busybox):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    store(berth, "tag", "busybox", "localhost:5000/x/y:z")
    p = store(berth, "rm", "busybox")
    assert p.stdout.strip() == "Untagged: busybox:latest"
    info = json.loads(store(berth, "inspect", busybox["id"]).stdout)[0]
    assert info["RepoTags"] == ["localhost:5000/x/y:z"]
    p = store(berth, "rm", "localhost:5000/x/y:z")
    assert "Deleted: " + busybox["id"] in p.stdout
    assert store(berth, "inspect", busybox["id"], check=False).returncode != 0
    blobs = os.listdir(os.path.join(berth.root, "content", "blobs", "sha256"))
    assert blobs == []
    assert [d for d in os.listdir(os.path.join(berth.root, "snapshots"))] == []


def test_rm_by_id_with_several_tags_needs_force(berth, busybox):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    store(berth, "tag", "busybox", "other:1")
    p = store(berth, "rm", busybox["id"][7:19], check=False)
    assert p.returncode != 0 and "must be forced" in p.stderr
    store(berth, "rm", "-f", busybox["id"][7:19])
    assert json.loads(store(berth, "ls", "--json").stdout) == []


def test_rm_refuses_image_used_by_snapshot(berth, busybox, snapshot):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    snapshot("busybox", "user1")
    p = store(berth, "rm", "busybox", check=False)
    assert p.returncode != 0 and "(must force)" in p.stderr


def test_shared_layers_survive_removal_of_one_image(berth, busybox, layered, snapshot):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    store(berth, "load", "-q", "-i", layered["docker_archive"])
    store(berth, "rm", "layered:1")
    rootfs = snapshot("busybox", "s2")
    assert os.path.exists(os.path.join(rootfs, "bin", "busybox"))


def test_prune_removes_dangling_only(berth, busybox, layered):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    store(berth, "load", "-q", "-i", layered["docker_archive"])
    store(berth, "rm", "-f", "layered:1")  # last tag: deleted outright
    store(berth, "tag", "busybox", "keep:1")
    out = json.loads(store(berth, "prune").stdout)
    assert out["ImagesDeleted"] == []
    out = json.loads(store(berth, "prune", "-a").stdout)
    assert {"Deleted": busybox["id"]} in out["ImagesDeleted"]


def test_history_lists_layers_newest_first(berth, layered):
    store(berth, "load", "-q", "-i", layered["docker_archive"])
    h = json.loads(store(berth, "history", "layered:1").stdout)
    assert h[0]["Id"] == layered["id"]
    assert h[-1]["CreatedBy"].startswith("mkimage")
    assert h[0]["Tags"] == ["layered:1"]


# ---- import / export / commit ----

def test_import_export_round_trip(berth, busybox, workdir, snapshot):
    src = os.path.join(workdir, "rootfs.tar.gz")
    with tarfile.open(src, "w:gz") as t:
        t.add(busybox["rootfs"], arcname=".")
    iid = store(berth, "import", "--message", "hello", src, "imported:1").stdout.strip()
    assert iid.startswith("sha256:")
    snapshot("imported:1", "ex1")
    out = os.path.join(workdir, "export.tar")
    store(berth, "export", "-o", out, "ex1")
    with tarfile.open(out) as t:
        names = set(n.lstrip("./") for n in t.getnames())
    assert "bin/busybox" in names and "etc/passwd" in names


def test_commit_records_changes_and_whiteouts(berth, busybox, snapshot, workdir):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    rootfs = snapshot("busybox", "cm1")
    with open(os.path.join(rootfs, "added"), "w") as f:
        f.write("data")
    os.unlink(os.path.join(rootfs, "etc", "group"))
    new = store(berth, "commit", "--message", "test", "cm1", "committed:1").stdout.strip()
    info = json.loads(store(berth, "inspect", new).stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 2
    rootfs2 = snapshot("committed:1", "cm2")
    assert open(os.path.join(rootfs2, "added")).read() == "data"
    assert not os.path.exists(os.path.join(rootfs2, "etc", "group"))
    assert os.path.exists(os.path.join(rootfs2, "etc", "passwd"))


# ---- hostile input ----

def test_layer_with_parent_traversal_is_rejected(berth, workdir):
    layer = tar_bytes([(entry("../escape"), b"x")])
    arch = os.path.join(workdir, "a.tar")
    docker_archive(arch, [layer])
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "escapes the layer root" in p.stderr
    assert json.loads(store(berth, "ls", "--json").stdout) == []


def test_layer_absolute_paths_are_contained(berth, workdir, snapshot):
    outside = os.path.join(workdir, "outside")
    os.makedirs(outside)
    layer = tar_bytes([(entry(os.path.join(outside, "abs")), b"y")])
    arch = os.path.join(workdir, "a.tar")
    docker_archive(arch, [layer])
    store(berth, "load", "-q", "-i", arch)
    assert os.listdir(outside) == []
    rootfs = snapshot("evil:latest", "ev1")
    assert open(os.path.join(rootfs, outside.lstrip("/"), "abs")).read() == "y"


def test_layer_symlink_escape_never_writes_outside(berth, workdir):
    outside = os.path.join(workdir, "outside")
    os.makedirs(outside)
    for i, target in enumerate([outside, "../../../../../.." + outside]):
        layer = tar_bytes([
            (entry("link", tarfile.SYMTYPE, 0o777, target), None),
            (entry("link/pwned"), b"x"),
        ])
        arch = os.path.join(workdir, f"a{i}.tar")
        docker_archive(arch, [layer])
        store(berth, "load", "-q", "-i", arch, check=False)
        assert os.listdir(outside) == []


def test_hardlink_outside_layer_is_rejected(berth, workdir):
    layer = tar_bytes([(entry("hl", tarfile.LNKTYPE, 0o644, "../../../../etc/passwd"), None)])
    arch = os.path.join(workdir, "a.tar")
    docker_archive(arch, [layer])
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "escapes the layer root" in p.stderr


def test_wrong_diff_id_is_rejected_and_nothing_tagged(berth, workdir):
    layer = tar_bytes([(entry("f"), b"x")])
    arch = os.path.join(workdir, "a.tar")
    docker_archive(arch, [layer], diff_ids=[sha(b"something else")])
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "diff_id mismatch" in p.stderr
    assert json.loads(store(berth, "ls", "--json").stdout) == []


def test_truncated_gzip_layer_is_detected(berth, workdir):
    layer = tar_bytes([(entry("f"), os.urandom(50000))])
    gz = gzip.compress(layer)
    arch = os.path.join(workdir, "a.tar")
    docker_archive(arch, [layer], layer_files=[gz[: len(gz) // 2]])
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and ("truncated" in p.stderr or "mismatch" in p.stderr)
    assert json.loads(store(berth, "ls", "--json").stdout) == []


def test_oversized_index_is_rejected(berth, workdir):
    arch = os.path.join(workdir, "a.tar")
    oci_archive(arch, index_bytes=b" " * (5 << 20) + b"{}")
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "larger than" in p.stderr


def test_bad_layer_media_type_is_rejected(berth, workdir):
    layer = tar_bytes([(entry("f"), b"x")])
    cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg),
                           "size": len(cfg)},
                "layers": [{"mediaType": "application/x-evil", "digest": sha(layer), "size": len(layer)}]}
    arch = os.path.join(workdir, "a.tar")
    oci_archive(arch, manifest=manifest, blobs=[layer, cfg])
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "unsupported layer media type" in p.stderr


def test_oci_blob_not_matching_its_digest_is_missing(berth, workdir):
    layer = tar_bytes([(entry("f"), b"x")])
    cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg),
                           "size": len(cfg)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(b"other"),
                            "size": 5}]}
    arch = os.path.join(workdir, "a.tar")
    oci_archive(arch, manifest=manifest, blobs=[layer, cfg])
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "missing or corrupt" in p.stderr


def test_invalid_reference_gives_docker_error(berth):
    p = store(berth, "tag", "x", "Upper/Case", check=False)
    assert p.returncode != 0 and "must be lowercase" in p.stderr


def test_bad_options_are_refused(berth):
    """Every verb's options come from one table: unknown options, missing values and stray
    operands are usage errors (exit 2, getopt's message), never ignored."""
    for args, msg in ((["--bogus", "ls"], "image-store: unrecognized option '--bogus'"),
                      (["--root"], "option '--root' requires an argument"),
                      (["prune", "--junk"], "prune: unrecognized option '--junk'"),
                      (["prune", "extra"], "Usage: berth image-store"),
                      (["ls", "extra"], "Usage: berth image-store"),
                      (["ls", "-fq"], "invalid filter 'q'"),
                      (["load", "-i"], "load: option requires an argument -- 'i'"),
                      (["save", "--format", "tar", "x"], "Usage: berth image-store"),
                      (["unmount", "--rm=x", "y"], "option '--rm' doesn't allow an argument"),
                      (["commit", "--bogus", "--config", "{bad", "x"], "commit: unrecognized option '--bogus'")):
        p = store(berth, *args, check=False)
        assert p.returncode == 2 and msg in p.stderr and p.stdout == "", (args, p.stderr)
    # long names of the short options; the value of --config is checked after the scan
    for args, msg in ((["rm", "--force", "nosuch"], "no such image: 'nosuch'"),
                      (["export", "--output", "/dev/null", "nosuch"], "no such snapshot: 'nosuch'"),
                      (["commit", "--config", "{bad", "x"], "parse --config")):
        p = store(berth, *args, check=False)
        assert p.returncode == 1 and msg in p.stderr, (args, p.stderr)


def test_docker_archive_with_symlinked_duplicate_layer(berth, workdir, snapshot):
    layer = tar_bytes([(entry("f"), b"same")])
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(layer)] * 2}}
    cbytes = json.dumps(config).encode()
    members = [(entry(sha(cbytes)[7:] + ".json"), cbytes), (entry("a/layer.tar"), layer),
               (entry("b/layer.tar", tarfile.SYMTYPE, 0o777, "../a/layer.tar"), None),
               (entry("manifest.json"), json.dumps([{"Config": sha(cbytes)[7:] + ".json", "RepoTags": ["dup:1"],
                                                     "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode())]
    arch = os.path.join(workdir, "dup.tar")
    with open(arch, "wb") as f:
        f.write(tar_bytes(members))
    store(berth, "load", "-q", "-i", arch)
    info = json.loads(store(berth, "inspect", "dup:1").stdout)[0]
    assert info["Id"] == sha(cbytes) and len(info["RootFS"]["Layers"]) == 2
    assert open(os.path.join(snapshot("dup:1", "dup"), "f")).read() == "same"


def test_symlink_out_of_archive_is_not_followed(berth, workdir):
    layer = tar_bytes([(entry("f"), b"x")])
    config = {"rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}
    cbytes = json.dumps(config).encode()
    members = [(entry(sha(cbytes)[7:] + ".json"), cbytes),
               (entry("a/layer.tar", tarfile.SYMTYPE, 0o777, "../../../../etc/passwd"), None),
               (entry("manifest.json"), json.dumps([{"Config": sha(cbytes)[7:] + ".json", "RepoTags": ["out:1"],
                                                     "Layers": ["a/layer.tar"]}]).encode())]
    arch = os.path.join(workdir, "out.tar")
    with open(arch, "wb") as f:
        f.write(tar_bytes(members))
    p = store(berth, "load", "-i", arch, check=False)
    assert p.returncode != 0 and "not found in archive" in p.stderr


def test_commit_empty_layer_with_config(berth, busybox, snapshot):
    store(berth, "load", "-q", "-i", busybox["docker_archive"])
    snapshot("busybox", "cfg1")
    new = store(berth, "commit", "--empty-layer", "-a", "me", "--config", '{"Env":["A=1"],"Cmd":["true"]}',
                "cfg1", "cfg:1").stdout.strip()
    info = json.loads(store(berth, "inspect", "cfg:1").stdout)[0]
    assert info["Id"] == new and info["Author"] == "me"
    assert info["Config"] == {"Env": ["A=1"], "Cmd": ["true"]}
    assert len(info["RootFS"]["Layers"]) == 1
    hist = json.loads(store(berth, "history", "cfg:1").stdout)
    assert len(hist) == 2 and hist[0]["Size"] == 0
