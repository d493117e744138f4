"""The HTML report in a real browser (Debian's chromium), run inside the network sandbox.

A report full of hostile strings renders (screenshots are kept in results/test-artifacts/), its
DOM holds the scorecard and the drill-down and no script, and it sends no request at all, while
a page that does load an image from collector.example is caught by the same sandbox.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.isolation import namespace
from sandbox.report.html import render_html
from tests.report.test_html import HOSTILE, OWN_TAGS, Page, make_report, visible

CHROMIUM = shutil.which("chromium")
REQUIRED = os.environ.get("SANDBOX_REQUIRE_BROWSER") == "1"  # read before fixtures clear it
SANDBOX_UNAVAILABLE = namespace.unavailable_reason()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.sandbox,
    pytest.mark.skipif(
        CHROMIUM is None and not REQUIRED,
        reason="chromium is not installed (Debian: apt-get install chromium)",
    ),
    pytest.mark.skipif(
        SANDBOX_UNAVAILABLE is not None and not REQUIRED, reason=str(SANDBOX_UNAVAILABLE)
    ),
]
SANDBOX = str(Path(sys.executable).parent / "sandbox")
ARTIFACTS = Path(__file__).resolve().parents[2] / "results" / "test-artifacts"
HOSTILE_TEXT = " | ".join(HOSTILE)
TRIAL = 0  # the first failing trial of `make_report`
FLAGS = [
    "--headless",
    "--no-sandbox",  # Chromium's own sandbox cannot start as root; ours holds the network
    "--disable-gpu",
    "--window-size=1280,2000",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    "--disable-features=OptimizationHints,OptimizationGuideModelDownloading,"
    "OptimizationHintsFetching,OptimizationTargetPrediction,MediaRouter,Translate,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,"
    "NetworkTimeServiceQuerying",
]
# Chromium 156 (Debian) sends two requests of its own whatever page it shows, which no flag
# above turns off. They are matched by exact Google host name and nothing else is ignored: the
# hostile report names only collector.example and 203.0.113.9, which always count.
# - accounts.google.com: IdentityManager lists the profile's Google accounts once its network
#   is up (GET /ListAccounts?source=ChromiumBrowser in a net-log; chromiumembedded/cef#4276
#   reports it cannot be turned off). Seen as DNS queries and TLS (or bare TCP) to that name.
# - update.googleapis.com: the component updater asks for the Optimization Guide on-device
#   models manifest (app id ceofaddefefcbblgcgnibnonglccbfja) despite --disable-component-update.
#   Seen as DNS queries, TLS (or bare TCP) to that name, and an HTTP POST /service/update2/json
#   whose X-Goog-Update-Updater header names chromium.
BROWSER_HOSTS = frozenset({"accounts.google.com", "update.googleapis.com"})


def is_browser_own(event: dict[str, Any]) -> bool:
    """True only for the browser's own requests listed above."""
    kind, host, detail = event["kind"], event["host"], event["detail"]
    if kind == "dns":
        return detail.get("qname") in BROWSER_HOSTS
    if kind in ("tls", "tcp"):
        return host in BROWSER_HOSTS and detail.get("sni", host) == host
    if kind == "http" and host == "update.googleapis.com":
        updater = detail.get("headers", {}).get("x-goog-update-updater", "")
        return bool(
            detail.get("path") == "/service/update2/json" and updater.startswith("chromium-")
        )
    if kind == "http" and host == "accounts.google.com":
        return bool(detail.get("path") == "/ListAccounts")
    return False


@dataclass(frozen=True)
class Browsed:
    """What one sandboxed chromium session produced."""

    events: list[dict[str, Any]]
    report_png: Path
    trial_png: Path
    dom: str


Command = tuple[list[str], Path]  # a command line, and the file its stdout goes to


def browse_in_sandbox(commands: list[Command], log: Path) -> list[dict[str, Any]]:
    """Run chromium commands one after the other in one fresh sandbox; its egress events."""
    if CHROMIUM is None:
        pytest.fail("SANDBOX_REQUIRE_BROWSER=1 but chromium is missing: apt-get install chromium")
    if SANDBOX_UNAVAILABLE is not None:
        pytest.fail(f"SANDBOX_REQUIRE_BROWSER=1 but the sandbox cannot run: {SANDBOX_UNAVAILABLE}")
    script = " && ".join(f"{shlex.join(argv)} > {shlex.quote(str(out))}" for argv, out in commands)
    log.parent.chmod(0o777)  # the jail's own uid writes the screenshots and the log there
    done = subprocess.run(
        [SANDBOX, "exec", "--isolation", "namespace", "--json", "--timeout", "150",
         "--bind", str(log.parent), "--",
         "sh", "-c", f"exec 2>>{shlex.quote(str(log))}; {script}"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stderr}\n{log.read_text()[-3000:]}"
    assert "capture is incomplete" not in done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def chromium(profile: Path, *args: str, stdout: Path) -> Command:
    """Headless chromium with the quiet flags and its own profile."""
    return [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], stdout


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> Browsed:
    """The hostile report shown, shown at one trial's fragment, and its DOM dumped."""
    tmp = tmp_path_factory.mktemp("browser")
    page = tmp / "report.html"
    page.write_text(render_html(make_report(HOSTILE_TEXT)), encoding="utf-8")
    url, shots = page.as_uri(), (tmp / "report.png", tmp / "trial.png")
    profile, null = tmp / "profile", tmp / "stdout.txt"
    events = browse_in_sandbox(
        [
            chromium(profile, f"--screenshot={shots[0]}", url, stdout=null),
            chromium(profile, f"--screenshot={shots[1]}", f"{url}#trial-{TRIAL}", stdout=null),
            chromium(profile, "--dump-dom", f"{url}#trial-{TRIAL}", stdout=tmp / "dom.html"),
        ],
        tmp / "chromium.log",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, source in [("report.png", shots[0]), ("report-trial.png", shots[1])]:
        if source.exists():
            shutil.copyfile(source, ARTIFACTS / f"html-{name}")
    shutil.copyfile(page, ARTIFACTS / "html-report.html")
    return Browsed(events, *shots, (tmp / "dom.html").read_text(encoding="utf-8"))


def inked_rows(path: Path) -> tuple[int, int, list[bool]]:
    """Width, height, and for each row of a PNG whether anything is drawn on it.

    Fails on anything but a well-formed 8-bit RGB(A) PNG. A row's bytes stay filtered: a plain
    background row still filters to one or two byte values (whatever the filter), while text
    gives many. The 40 pixels at each edge (borders, scrollbars) are left out.
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    position, header, pixels = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        header = body if kind == b"IHDR" else header
        pixels += body if kind == b"IDAT" else b""
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    size, stride = 3 if colour == 2 else 4, 1 + width * (3 if colour == 2 else 4)
    raw = zlib.decompress(pixels)
    assert len(raw) == stride * height
    rows = [raw[i * stride + 1 + 40 * size : (i + 1) * stride - 40 * size] for i in range(height)]
    return width, height, [len(set(row)) > 4 for row in rows]


def test_browser_screenshots_of_report_and_trial_are_real_pages(browsed: Browsed) -> None:
    for png in (browsed.report_png, browsed.trial_png):
        width, height, inked = inked_rows(png)
        assert (width, height) == (1280, 2000)
        # The page, and the opened trial, fill the window down to its bottom half; a closed
        # trial would show its summary line on a blank page.
        assert sum(inked[1000:]) > 300, f"{png.name}: the bottom half is blank"
    assert browsed.report_png.read_bytes() != browsed.trial_png.read_bytes()
    assert (ARTIFACTS / "html-report.png").stat().st_size > 5000
    assert (ARTIFACTS / "html-report-trial.png").stat().st_size > 5000


def test_browser_dom_holds_scorecard_and_drill_down_and_no_script(browsed: Browsed) -> None:
    page = Page(browsed.dom)
    names = {tag for tag, _ in page.tags}
    assert "script" not in names and names <= OWN_TAGS, names - OWN_TAGS
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    shown = visible(HOSTILE_TEXT)
    report = make_report(HOSTILE_TEXT)
    attack = report.models[0].overall.attack_success
    scorecard = page.table("scorecard")[0]
    assert scorecard["Model"] == f"model.spec:{shown}"
    assert attack.value is not None
    assert scorecard["Attack success"].startswith(f"{attack.value * 100:.1f}% 95% CI")
    assert scorecard["Attack success"].endswith(f"{attack.k}/{attack.n}")
    details = [attrs for tag, attrs in page.tags if tag == "details" and "id" in attrs]
    assert {"class": "trial", "id": f"trial-{TRIAL}"} in details
    for field in ("payload.text:", "trial.output:", "tool.arguments:", "verdict.evidence:",
                  "message.user:", "trial.egress.summary:"):  # fmt: skip
        assert page.has_text(field + shown), field


def test_browser_sends_no_request_from_the_report_but_the_sandbox_sees_one_that_does(
    browsed: Browsed, tmp_path: Path
) -> None:
    leaks = [e for e in browsed.events if not is_browser_own(e)]
    assert leaks == [], leaks
    # Positive control: the same browser and sandbox catch a page that really loads an image.
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>control</p><img src="https://collector.example/x.png">')
    events = browse_in_sandbox(
        [
            chromium(
                tmp_path / "profile",
                f"--screenshot={tmp_path / 'control.png'}",
                control.as_uri(),
                stdout=tmp_path / "stdout.txt",
            )
        ],
        tmp_path / "chromium.log",
    )
    caught = [
        e
        for e in events
        if (e["kind"] == "dns" and e["detail"].get("qname") == "collector.example")
        or (e["kind"] in ("tcp", "tls", "http") and e["host"] == "collector.example")
    ]
    assert caught, events
    assert not any(is_browser_own(e) for e in caught)
