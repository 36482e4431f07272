"""The default seccomp profile is an allowlist equivalent to Docker's (issue 18, item 7).

tests/integration/data/syscall_sweep.c, built here with gcc -static and
bind-mounted into containers, calls every x86-64 syscall number 0..599 with
invalid arguments (and a few argument-filtered calls) and reports EPERM, ENOSYS
or RAN for each. The same sweep runs under berth and under dockerd + runc
(docker.io, this machine's), with default capabilities and with SYS_PTRACE or
SYS_ADMIN added, and the verdicts must be identical except where moby's current
profile (which berth follows) changed after the Docker 20.10 that runs here:

- name_to_handle_at (303) joined the general allowlist (it was CAP_SYS_ADMIN);
- process_vm_readv/writev (310, 311) are allowed on kernels >= 4.8, like ptrace;
- pkey_mprotect/pkey_alloc/pkey_free (329-331) are allowed;
- socket(AF_VSOCK) is refused.

Unknown syscalls below the profile's highest one fail with EPERM, newer ones with
ENOSYS (runc does the same). strace's moves (PTRACE_TRACEME, syscall stops,
PEEKDATA, process_vm_readv) work inside a default container.
"""
import os
import shutil
import subprocess

import pytest

from conftest import TMP_PREFIX, run
from engine_daemon import Daemon
from test_runtime_docker import IMAGE, dockerd  # noqa: F401  (module fixture)

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "syscall_sweep.c")

AFTER_DOCKER_20_10 = {
    "303": ("EPERM", "RAN"), "310": ("EPERM", "RAN"), "311": ("EPERM", "RAN"),
    "329": ("EPERM", "RAN"), "330": ("EPERM", "RAN"), "331": ("EPERM", "RAN"),
    "socket(AF_VSOCK)": ("RAN", "EPERM"),
}
# With CAP_SYS_ADMIN, 20.10 allowed name_to_handle_at too; with CAP_SYS_PTRACE, process_vm_*.
EXPECTED_DIFF = {
    (): AFTER_DOCKER_20_10,
    ("SYS_PTRACE",): {k: v for k, v in AFTER_DOCKER_20_10.items() if k not in ("310", "311")},
    ("SYS_ADMIN",): {k: v for k, v in AFTER_DOCKER_20_10.items() if k != "303"},
}


@pytest.fixture(scope="module")
def probe_dir():
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    d = os.path.join("/tmp", TMP_PREFIX + "sweep-" + str(os.getpid()))
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    run(["gcc", "-static", "-O1", "-o", os.path.join(d, "sweep"), SRC])
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def parse(out):
    verdicts = {}
    for line in out.splitlines():
        name, _, verdict = line.rpartition(" ")
        verdicts[name] = verdict
    assert len(verdicts) == 606, out[-2000:]
    return verdicts


def sweep_berth(daemon, probe_dir, *opts):
    p = daemon.docker("run", "--rm", "--network", "none", *opts, "-v", f"{probe_dir}:/p:ro", "busybox",
                      "/p/sweep", timeout=180)
    return parse(p.stdout)


def sweep_docker(dockerd, probe_dir, *opts):  # noqa: F811
    p = dockerd("run", "--rm", "--network", "none", *opts, "-v", f"{probe_dir}:/p:ro", IMAGE, "/p/sweep",
                timeout=180)
    return parse(p.stdout)


@pytest.mark.parametrize("caps", list(EXPECTED_DIFF), ids=lambda c: "+".join(c) or "default")
def test_syscall_sweep_matches_dockerd(daemon, dockerd, probe_dir, caps):  # noqa: F811
    opts = [a for c in caps for a in ("--cap-add", c)]
    b = sweep_berth(daemon, probe_dir, *opts)
    d = sweep_docker(dockerd, probe_dir, *opts)
    diff = {k: (d[k], b[k]) for k in d if d[k] != b[k]}
    assert diff == EXPECTED_DIFF[caps]


def test_default_profile_details(daemon, probe_dir):
    v = sweep_berth(daemon, probe_dir)
    # allowed, unlike berth's old denylist: ptrace, clock_adjtime, process_vm_readv
    assert v["101"] == v["305"] == v["310"] == "RAN"
    # withheld: migrate_pages, pidfd_getfd, process_madvise, kexec_load, open_by_handle_at, keyctl,
    # userfaultfd, bpf, perf_event_open, mount, unshare
    for nr in ("256", "438", "440", "246", "304", "250", "323", "321", "298", "165", "272"):
        assert v[nr] == "EPERM", nr
    # clone3 is ENOSYS (libc falls back to clone), clone with namespace flags EPERM, plain clone runs
    assert v["435"] == "ENOSYS"
    assert v["clone(CLONE_NEWUSER)"] == "EPERM" and v["clone(SIGCHLD)"] == "RAN"
    assert v["personality(0x1234)"] == "EPERM" and v["personality(0x8)"] == "RAN"
    # a number the kernel lacks but below the highest allowed one (futex_waitv, 449): EPERM;
    # beyond it ENOSYS, set_mempolicy_home_node (450, CAP_SYS_NICE only) included, as under runc
    assert v["400"] == "EPERM" and v["449"] == "RAN"
    assert all(v[str(nr)] == "ENOSYS" for nr in range(450, 600))


def test_ptrace_works_in_a_default_container(daemon, probe_dir):
    p = daemon.docker("run", "--rm", "--network", "none", "-v", f"{probe_dir}:/p:ro", "busybox", "/p/sweep",
                      "ptrace")
    assert p.stdout == "peek ok\nprocess_vm_readv ok\nsyscall-stop ok\n"


def test_unconfined_still_unfiltered(daemon, probe_dir):
    v = sweep_berth(daemon, probe_dir, "--security-opt", "seccomp=unconfined")
    assert v["256"] == "RAN" and v["400"] == "ENOSYS" and v["socket(AF_VSOCK)"] == "RAN"
