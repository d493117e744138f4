"""`sandbox doctor`: which sandboxes work on this host and why not, and what is installed.

Every probe asks the Docker daemon and the kernel what they have and starts nothing that could
reach the network; the only thing it changes is an empty cgroup it makes and removes at once, to
see which limits the kernel accepts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import SandboxError
from sandbox.isolation import cgroups, docker, namespace, seccomp

IMAGE_PREFIX = "localhost/sandbox-"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, whether it is fine, and the detail."""

    topic: str
    ok: bool
    detail: str


def diagnose() -> list[Finding]:
    """Everything the doctor checks, in the order it prints them."""
    return [_namespace(), _seccomp(), *_docker(), _cgroup(), _limits(), _gpu()]


def would_default_fail(findings: list[Finding]) -> bool:
    """True when `--isolation auto` has no sandbox for local models."""
    usable = {f.topic for f in findings if f.ok}
    return not ({"namespace sandbox", "docker sandbox"} & usable)


def _namespace() -> Finding:
    reason = namespace.unavailable_reason()
    return Finding(
        "namespace sandbox",
        reason is None,
        reason or _namespace_mode(),
    )


def _docker() -> list[Finding]:
    facts = docker.daemon_facts(IMAGE_PREFIX)
    if isinstance(facts, str):
        return [Finding("docker sandbox", False, facts)]
    version, runtimes, images = facts
    return [
        Finding("docker daemon", True, f"version {version}, runtimes: {', '.join(runtimes)}"),
        Finding(
            "docker sandbox", bool(images), ", ".join(images) or "no images: run `make images`"
        ),
    ]


def _namespace_mode() -> str:
    if namespace.is_rootless():
        return (
            "rootless: the sink's namespace in a user namespace of yours; the server keeps your "
            "uid without capabilities, in its own pid, mount, ipc and uts namespaces"
        )
    return "as root: bwrap, unshare, nsenter, setpriv, ip and iptables-restore are available"


def _seccomp() -> Finding:
    with tempfile.TemporaryDirectory() as folder:
        try:
            seccomp.write_filter(Path(folder) / "filter.bpf")
        except SandboxError as exc:
            return Finding("seccomp filter", False, str(exc))
    return Finding("seccomp filter", True, "compiled by libseccomp (pyseccomp)")


def _limits() -> Finding:
    """Which of the namespace jail's limits the kernel accepts here."""
    if os.geteuid() != 0:
        return Finding(
            "jail limits", False, "none rootless: memory, pids and cpu limits need root (cgroups)"
        )
    probe = cgroups.CgroupSet(f"sandbox-doctor-{os.getpid()}", cgroups.Limits()).create()
    held = probe.holds()
    probe.close()
    detail = ", ".join(f"{name} {'holds' if ok else 'does not hold'}" for name, ok in held.items())
    return Finding("jail limits", all(held.values()), detail)


def _cgroup() -> Finding:
    unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    return Finding("cgroup", True, "v2 (unified)" if unified else "v1")


def _gpu() -> Finding:
    if shutil.which("nvidia-smi") is None:
        return Finding("gpu", True, "none (nvidia-smi not found); vllm: models need a GPU host")
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return Finding("gpu", done.returncode == 0, done.stdout.strip() or done.stderr.strip())
