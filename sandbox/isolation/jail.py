"""The jail a namespace-sandboxed program runs in: bubblewrap inside the sink's network namespace.

    sh (joins the cgroups, opens the seccomp program as fd 3)
     └ nsenter --net=<sink's namespace>
        └ bwrap: new pid/ipc/uts/mount/cgroup namespaces, a read-only minimal root, no host /proc,
                 a private size-limited /tmp, a clean environment, a new session, seccomp,
                 --die-with-parent
           └ setpriv: the jail's own unprivileged uid, no capabilities, no new privileges
              └ the program

The root holds /usr, the Python environment, a few files of /etc (and a synthetic passwd,
group, hosts and resolv.conf), and only the binds a caller names: never the results, the
sink's files, the Docker socket or the caller's home. bwrap runs as root here (it needs to bind
paths only root can traverse) and hands the program to setpriv, which drops to the jail's uid:
that uid owns nothing on the host and holds no capability anywhere. Rootless, nsenter first
joins the sink's user namespace, where the caller is uid 0; the program keeps that uid (the
caller's own on the host, the only one an unprivileged user has) without any capability.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.isolation.sockets import write_private

UID_BASE, UID_SPAN = 2_100_000_000, 40_000_000  # unallocated uids, one per sandbox
TMP_BYTES = 256 << 20
ETC_KEEP = (  # system configuration programs read, none of it secret
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "chromium",
    "chromium.d",
    "fonts",
    "gai.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "protocols",
    "services",
    "ssl",
)
TOP_LEVEL = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
ENTER = (
    'seccomp=$1; shift; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; '
    'shift; exec "$@" 3<"$seccomp"'
)
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
}


def new_uid() -> int:
    """A uid no account and no other sandbox holds (random in a reserved range)."""
    return UID_BASE + secrets.randbelow(UID_SPAN)


@dataclass(frozen=True)
class Bind:
    """A host path seen inside the jail."""

    source: str
    target: str
    writable: bool = False


@dataclass(frozen=True)
class JailSpec:
    """Everything that shapes one jailed process."""

    uid: int | None  # None: keep the uid (rootless: uid 0 of the sink's user namespace)
    netns: str  # a path to the sink's network namespace
    seccomp: str  # the compiled filter (seccomp.write_filter)
    etc: str  # a folder with the synthetic passwd, group, hosts, resolv.conf
    userns: str = ""  # rootless: a path to the user namespace that owns it
    cgroup_procs: tuple[str, ...] = ()
    binds: tuple[Bind, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    tmp_bytes: int = TMP_BYTES


def python_binds() -> tuple[Bind, ...]:
    """The interpreter running the harness and its environment, read-only at the same paths."""
    roots = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parents[1])}
    return tuple(Bind(root, root) for root in sorted(roots) if not _is_covered(root))


def _is_covered(path: str) -> bool:
    return path == "/usr" or path.startswith("/usr/")


def write_etc(folder: Path, uid: int) -> Path:
    """The synthetic /etc files of a jail (no host accounts, names or resolvers)."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    files = {
        "passwd": f"root:x:0:0::/:/usr/sbin/nologin\nsandbox:x:{uid}:{uid}::/tmp:/bin/sh\n",
        "group": f"root:x:0:\nsandbox:x:{uid}:\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "resolv.conf": "nameserver 198.51.100.53\n",
        "hostname": "sandbox\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    }
    for name, text in files.items():
        write_private(folder / name, text)
    return folder


def jail_argv(spec: JailSpec, argv: list[str]) -> list[str]:
    """The full command line that runs `argv` in the jail."""
    enter = ["sh", "-c", ENTER, "sbx-enter", spec.seccomp, *spec.cgroup_procs, "--"]
    userns = [f"--user={spec.userns}", "--preserve-credentials"] if spec.userns else []
    switch = (
        [f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups"]
        if spec.uid is not None
        else []
    )
    return [
        *enter,
        "nsenter",
        *userns,
        f"--net={spec.netns}",
        "--",
        *bwrap_argv(spec),
        "--",
        "setpriv",
        *switch,
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        *argv,
    ]


def bwrap_argv(spec: JailSpec) -> list[str]:
    """Bwrap and its options, without the program."""
    args = [
        "bwrap",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    for name, value in {**BASE_ENV, **spec.env}.items():
        args += ["--setenv", name, value]
    args += _root_binds()
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(spec.tmp_bytes), "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/dev/shm"]
    # Binds come after /tmp's tmpfs, which would hide one under /tmp (a venv in /tmp, say).
    binds = (*python_binds(), *spec.binds)
    args += _parent_dirs(["/etc/x", *(bind.target for bind in binds)])
    args += _etc_binds(spec.etc)
    for bind in binds:
        args += ["--bind" if bind.writable else "--ro-bind", bind.source, bind.target]
    args += ["--remount-ro", "/", "--chdir", "/tmp", "--seccomp", "3"]
    args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for setpriv only
    return args


def _parent_dirs(targets: list[str]) -> list[str]:
    """The folders above every target, made traversable (bwrap would make them 0700)."""
    parents = {
        str(p) for target in targets for p in Path(target).parents if str(p) not in ("/", "/tmp")
    }
    args: list[str] = []
    for parent in sorted(parents, key=lambda p: (p.count("/"), p)):
        args += ["--perms", "0755", "--dir", parent]
    return args


def _root_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in TOP_LEVEL:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _etc_binds(etc: str) -> list[str]:
    args: list[str] = []
    for name in ETC_KEEP:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in sorted(os.listdir(etc)):
        args += ["--ro-bind", f"{etc}/{name}", f"/etc/{name}"]
    return args
