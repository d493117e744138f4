"""Memory, process and CPU limits for a jailed server: one cgroup per sandbox, v1 or v2.

The jail's first process writes its own pid into `procs_files()` before it execs anything, so
every descendant is limited from its first instruction. `holds()` says which limits the kernel
actually accepted (a v2 hierarchy that does not delegate a controller refuses it); `sandbox
doctor` reports the same.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_FILES = {
    "memory": ("memory", "memory.limit_in_bytes"),
    "pids": ("pids", "pids.max"),
    "cpu": ("cpu", "cpu.cfs_quota_us"),
}
V2_FILES = {"memory": "memory.max", "pids": "pids.max", "cpu": "cpu.max"}
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use."""

    memory_bytes: int = 8 << 30
    pids: int = 512
    cpus: float = float(os.cpu_count() or 1)


def is_unified() -> bool:
    """True on a cgroup v2 (unified) hierarchy."""
    return (ROOT / "cgroup.controllers").exists()


def _own_path(controller: str) -> str:
    """This process's cgroup path for a v1 controller ('' for v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if (controller == "" and names == "") or controller in names.split(","):
            return path.lstrip("/")
    return ""


class CgroupSet:
    """The cgroups of one sandbox; created on `create()`, removed (processes killed) on close."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name, self.limits = name, limits
        self.dirs: list[Path] = []
        self.held: dict[str, bool] = {key: False for key in V2_FILES}

    def create(self) -> CgroupSet:
        """Make the cgroups and write the limits; a limit the kernel refuses is not held."""
        values = self._values()
        if is_unified():
            self._create_v2(values)
        else:
            self._create_v1(values)
        return self

    def _values(self) -> dict[str, str]:
        quota = int(self.limits.cpus * CPU_PERIOD_US)
        return {
            "memory": str(self.limits.memory_bytes),
            "pids": str(self.limits.pids),
            "cpu": f"{quota} {CPU_PERIOD_US}" if is_unified() else str(quota),
        }

    def _create_v1(self, values: dict[str, str]) -> None:
        for key, (controller, limit_file) in V1_FILES.items():
            base = ROOT / controller
            if not base.is_dir():
                continue
            self.held[key] = self._make(
                base / _own_path(controller) / self.name, limit_file, values[key]
            )
            if key == "cpu" and self.held[key]:
                _write(self.dirs[-1] / "cpu.cfs_period_us", str(CPU_PERIOD_US))

    def _create_v2(self, values: dict[str, str]) -> None:
        parent = ROOT / _own_path("")
        wanted = " ".join(f"+{key}" for key in V2_FILES)
        _write(parent / "cgroup.subtree_control", wanted)  # refused when the parent is busy
        cgroup = parent / self.name
        for key, limit_file in V2_FILES.items():
            self.held[key] = self._make(cgroup, limit_file, values[key])

    def _make(self, cgroup: Path, limit_file: str, value: str) -> bool:
        try:
            cgroup.mkdir(exist_ok=True)
        except OSError:
            return False
        if cgroup not in self.dirs:
            self.dirs.append(cgroup)
        return _write(cgroup / limit_file, value)

    def procs_files(self) -> list[str]:
        """Where a process writes its pid to enter every cgroup of this set."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def holds(self) -> dict[str, bool]:
        """Which limits the kernel accepted: memory, pids, cpu."""
        return dict(self.held)

    def close(self) -> None:
        """Kill what is left inside, then remove the cgroups."""
        for cgroup in self.dirs:
            _kill_members(cgroup)
        for cgroup in reversed(self.dirs):
            for _ in range(50):  # a killed process leaves its cgroup a moment later
                try:
                    cgroup.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs.clear()


def _kill_members(cgroup: Path) -> None:
    if (cgroup / "cgroup.kill").exists():
        _write(cgroup / "cgroup.kill", "1")
        return
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True
