"""The namespace sandbox without root: `sandbox exec` and `sandbox run` as an unprivileged user.

The user is `nobody` (uid 65534), in a private mount namespace whose /root shows only the
Python installation (this machine keeps it under root's home, which nobody may enter); nothing
of the host changes. The sink's network namespace then lives in a user namespace of nobody's,
and the jail keeps nobody's uid without any capability.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.isolation import namespace
from tests.helpers import SCENARIOS
from tests.isolation.probes import PROBES

NOBODY = 65534
SANDBOX = str(Path(sys.executable).parent / "sandbox")
VIEW = """
mount --bind /root "$VIEW/root"
mount -t tmpfs -o mode=0755 rootless-view /root
for path in "$@"; do
  case "$path" in /root/*) mkdir -p "$path"; mount --bind "$VIEW/root${path#/root}" "$path";; esac
done
"""


def _unprivileged_problem() -> str | None:
    if os.geteuid() != 0:
        return "making the unprivileged user's view needs root"
    probe = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe += ["unshare", "--user", "--map-root-user", "--net", "true"]
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        return "unprivileged user namespaces are not allowed here"
    return namespace.unavailable_reason()


pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(_unprivileged_problem() is not None, reason=str(_unprivileged_problem())),
]


@pytest.fixture
def home() -> Iterator[Path]:
    """A home for nobody (pytest's tmp_path is root's, closed to others)."""
    folder = Path(tempfile.mkdtemp(prefix="sbx-rootless-"))
    (folder / "home").mkdir()
    (folder / "root").mkdir()
    os.chown(folder / "home", NOBODY, NOBODY)
    folder.chmod(0o755)
    try:
        yield folder / "home"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_nobody(home: Path, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run argv as nobody with only the Python installation visible under /root."""
    python_roots = sorted({sys.base_prefix, str(Path(sys.executable).resolve().parents[1])})
    script = VIEW + (
        f"cd {home} && exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
        "--inh-caps=-all --bounding-set=-all -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin "
        f"HOME={home} SANDBOX_RESULTS_DIR={home}/results {' '.join(argv)}"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "view"]
        + python_roots,
        env={**os.environ, "VIEW": str(home.parent)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_rootless_exec_records_egress_and_hides_the_users_files(home: Path) -> None:
    secret = home / "notes.txt"
    secret.write_text("nobody's own file")
    os.chown(secret, NOBODY, NOBODY)
    probe = PROBES + (
        f"\ntry:\n    open({str(secret)!r}).read()\n    sys.exit('read the user file')\n"
        "except OSError:\n    pass\nprint(__import__('os').getuid(), file=sys.stderr)\n"
    )
    probe_file = home / "probe.py"
    probe_file.write_text(probe)
    os.chown(probe_file, NOBODY, NOBODY)

    done = as_nobody(
        home, SANDBOX, "exec", "--json", "--", sys.executable, "-c", f'"$(cat {probe_file})"'
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "0"  # uid 0 of nobody's user namespace
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    http = [e for e in events if e["kind"] == "http" and e["host"] == "collector.example"]
    assert http and http[0]["detail"]["query"] == "mrn=MRN-48213"
    kinds = {(e["kind"], e["dst"]) for e in events}
    assert {("tcp", "203.0.113.9"), ("udp", "198.51.100.7"), ("tcp", "2001:db8::9")} <= kinds


@pytest.mark.slow
def test_rootless_run_evaluates_the_embedded_model(home: Path) -> None:
    scenario = SCENARIOS / "exfiltration" / "dicom-private-tag-triage-beacon.yaml"
    db = f"sqlite:///{home}/r.db"

    done = as_nobody(
        home,
        SANDBOX,
        "run",
        str(scenario),
        "--isolation",
        "namespace",
        "--db",
        db,
        "--timeout",
        "120",
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; c = sqlite3.connect('{home}/r.db'); "
            'print(c.execute("select status, capture from trials").fetchall())',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert rows.stdout.strip() == "[('ok', 'complete'), ('ok', 'complete')]"


@pytest.mark.slow
def test_hostile_suite_holds_rootless(home: Path) -> None:
    """Every attack of test_hostile_server.py, with the sandbox made by nobody."""
    repo = Path(__file__).resolve().parents[2]
    done = as_nobody(
        home,
        f"PYTHONDONTWRITEBYTECODE=1 {sys.executable} -m pytest -q -rs -p no:cacheprovider",
        f"--rootdir={repo} --basetemp={home}/pytest -k 'namespace and not docker'",
        str(repo / "tests" / "isolation" / "test_hostile_server.py"),
        timeout=600,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
