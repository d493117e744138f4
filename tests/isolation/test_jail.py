"""The jail's bubblewrap command line: what it mounts, in which order, and what it never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.isolation import jail


@pytest.fixture(autouse=True)
def etc(tmp_path: Path) -> None:
    global ETC
    ETC = str(jail.write_etc(tmp_path / "etc", 2_100_000_001))


ETC = ""


def _spec(*binds: jail.Bind, uid: int | None = 2_100_000_001) -> jail.JailSpec:
    return jail.JailSpec(
        uid=uid, netns="/proc/1/fd/9", seccomp="/x/seccomp.bpf", etc=ETC, binds=binds
    )


def test_binds_under_tmp_come_after_the_private_tmp() -> None:
    """A venv or a model under /tmp would be hidden by the jail's own /tmp otherwise."""
    argv = jail.bwrap_argv(_spec(jail.Bind("/tmp/ci/.venv", "/tmp/ci/.venv")))
    tmpfs = argv.index("/tmp", argv.index("--tmpfs"))
    bind = argv.index("/tmp/ci/.venv")
    assert tmpfs < bind


def test_the_jail_sees_synthetic_accounts_not_the_hosts() -> None:
    argv = jail.bwrap_argv(_spec())
    binds = {argv[i + 2]: argv[i + 1] for i, a in enumerate(argv) if a == "--ro-bind"}
    assert binds["/etc/passwd"].startswith(ETC) and "/etc/shadow" not in binds
    assert "sandbox:x:2100000001" in Path(ETC, "passwd").read_text()
    python = {bind.target for bind in jail.python_binds()}  # the interpreter, read-only
    assert not [t for t in binds if t.startswith(("/root", "/home", "/var")) and t not in python]


def test_the_environment_is_only_what_the_jail_sets() -> None:
    argv = jail.bwrap_argv(jail.JailSpec(**{**_spec().__dict__, "env": {"CONFIG_FILE": "/c"}}))
    assert "--clearenv" in argv and argv.index("--clearenv") < argv.index("--setenv")
    names = [argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"]
    assert sorted(names) == ["CONFIG_FILE", "HOME", "LANG", "PATH"]


def test_rootful_jail_switches_uid_and_rootless_keeps_it() -> None:
    rootful = jail.jail_argv(_spec(), ["prog"])
    rootless = jail.jail_argv(jail.JailSpec(**{**_spec(uid=None).__dict__, "userns": "/u"}), ["p"])
    assert "--reuid=2100000001" in rootful and "--user=/u" not in rootful
    assert not [a for a in rootless if a.startswith("--reuid")] and "--user=/u" in rootless
    for argv in (rootful, rootless):
        assert {"--new-session", "--die-with-parent", "--unshare-pid", "--seccomp"} <= set(argv)
        assert "--bounding-set=-all" in argv and "--no-new-privs" in argv
