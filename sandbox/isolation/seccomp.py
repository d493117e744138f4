"""The seccomp filter a jailed model server runs under, compiled by libseccomp (pyseccomp).

Modelled on Flatpak's: everything a model server needs is allowed; what only serves an escape or
a kernel exploit fails with EPERM: new namespaces (so no nested user namespace), keyrings,
kernel modules and kexec, BPF, perf, userfaultfd, io_uring, mounts, ptrace, handle-based opens,
and the terminal ioctls that inject keystrokes (TIOCSTI, TIOCLINUX). `clone3` answers ENOSYS so
the C library falls back to `clone`, whose flags the filter can see. Syscalls of a foreign
architecture (32-bit entry on x86-64) kill the process: libseccomp's default.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxStartError

DENIED = (
    "acct",
    "add_key",
    "bpf",
    "chroot",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "swapoff",
    "swapon",
    "syslog",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "vhangup",
)
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
TIOCSTI, TIOCLINUX = 0x5412, 0x541C


def _library() -> Any:
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:  # OSError: libseccomp.so.2 itself is missing
        raise SandboxStartError(
            f"the seccomp filter cannot be compiled: {exc}.",
            hint="Install libseccomp (Debian: libseccomp2) and `pip install pyseccomp`.",
        ) from exc
    return pyseccomp


def write_filter(path: Path) -> Path:
    """Compile the filter to a BPF program file (what `bwrap --seccomp FD` reads)."""
    sc = _library()
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED:
        try:
            rules.add_rule(sc.ERRNO(errno.EPERM), name)
        except (OSError, RuntimeError):  # a syscall this architecture does not have
            continue
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for bit in (1 << n for n in range(32) if NAMESPACE_FLAGS & (1 << n)):
        rules.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, bit, bit))
    for request in (TIOCSTI, TIOCLINUX):
        only = sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request)
        rules.add_rule(sc.ERRNO(errno.EPERM), "ioctl", only)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        rules.export_bpf(handle)
    return path
