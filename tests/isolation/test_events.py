"""The harness's reading of a sink's log: continuity, liveness, windows by time, openings."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from sandbox.isolation.events import EventFile


class Log:
    """Writes sink-style lines by hand, numbering them unless told otherwise."""

    def __init__(self, path: Path) -> None:
        self.path, self.seq = path, 0

    def write(
        self, kind: str, t: float | None = None, seq: int | None = None, **fields: object
    ) -> None:
        line = {"t": time.time() if t is None else t, "kind": kind, **fields}
        line["seq"] = self.seq if seq is None else seq
        self.seq = int(line["seq"]) + 1  # type: ignore[call-overload]
        with self.path.open("a") as handle:
            handle.write(json.dumps(line) + "\n")

    def beat(self, t: float | None = None) -> None:
        """A heartbeat, by default one the sink writes just after the window closes."""
        self.write("heartbeat", t=time.time() + 1 if t is None else t)


def test_a_whole_window_is_complete_and_keeps_heartbeats_out(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.write("udp", dst="198.51.100.7", port=9)
    log.beat()

    taken, capture = events.take(catch_up_s=0.5)

    assert capture == "complete"
    assert [(e.kind, e.dst) for e in taken] == [("udp", "198.51.100.7")]


def test_a_gap_in_the_numbers_makes_the_window_incomplete(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.write("udp", dst="198.51.100.7", port=9)
    log.write("udp", dst="198.51.100.8", port=9, seq=5)  # lines 1-4 were cut out
    log.beat()

    _, capture = events.take(catch_up_s=0.5)

    assert capture == "incomplete"
    assert "skips from event 1 to 5" in events.last_problems[0]
    log.write("udp", dst="198.51.100.9", port=9)
    log.beat()
    assert events.take(catch_up_s=0.5)[1] == "complete"  # the next window is whole again


def test_a_line_the_sink_did_not_write_makes_the_window_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    log, events = Log(path), EventFile(path)
    with path.open("a") as handle:
        handle.write('{"kind": "udp", "t": 1}\n')  # no sequence number
    log.beat()

    assert events.take(catch_up_s=0.5)[1] == "incomplete"


def test_a_silent_sink_makes_the_window_incomplete_after_waiting(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.beat(t=time.time() - 10)  # its last sign of life, long ago (a stopped sink)
    started = time.monotonic()

    _, capture = events.take(catch_up_s=0.4)

    assert capture == "incomplete" and time.monotonic() - started >= 0.4
    assert "no heartbeat" in events.last_problems[0]


def test_a_dead_sink_makes_the_window_incomplete_at_once(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.beat(t=time.time() - 10)
    started = time.monotonic()

    _, capture = events.take(is_alive=lambda: False, catch_up_s=5)

    assert capture == "incomplete" and time.monotonic() - started < 1
    assert events.last_problems == ["the sink is not running"]


def test_events_go_to_the_window_whose_closing_heartbeat_follows_them(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    now = time.time()
    log.write("udp", t=now - 2, dst="198.51.100.1", port=1)
    log.beat(t=now - 1)
    log.write("udp", t=now - 0.5, dst="198.51.100.2", port=2)
    log.write("heartbeat", t=now, pending=3)  # still catching up: does not close a window
    log.write("udp", t=now, dst="198.51.100.3", port=3)
    log.beat(t=now + 0.1)

    first, _ = events.take(until=now - 1.5, catch_up_s=0.1)
    second, _ = events.take(until=now, catch_up_s=0.1)

    assert [e.dst for e in first] == ["198.51.100.1"]
    assert [e.dst for e in second] == ["198.51.100.2", "198.51.100.3"]


def test_what_a_connection_sent_replaces_its_opening(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    opened = time.time() - 1
    log.write("open", t=opened, dst="203.0.113.9", port=80, conn=7)
    log.write("http", dst="203.0.113.9", port=80, conn=7, path="/leak", method="GET")
    log.beat()

    taken, capture = events.take(catch_up_s=0.5)

    assert capture == "complete"
    assert [(e.kind, e.detail["path"], e.t) for e in taken] == [("http", "/leak", opened)]


def test_a_connection_that_never_speaks_is_recorded_as_opened(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.write("open", t=time.time() - 5, dst="203.0.113.9", port=443, conn=1)
    log.beat()

    taken, _ = events.take(catch_up_s=0.5)

    assert [(e.kind, e.dst, e.detail["bytes"]) for e in taken] == [("tcp", "203.0.113.9", 0)]


def test_a_window_waits_for_what_an_open_connection_sends(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.write("open", dst="203.0.113.9", port=80, conn=3)
    log.beat()

    # The content arrives while the harness waits (the sink's read deadline runs).
    def speak() -> None:
        time.sleep(0.3)
        log.write("tcp", dst="203.0.113.9", port=80, conn=3, text="mrn=MRN-1", bytes=9)
        log.beat()

    writer = threading.Thread(target=speak)
    writer.start()
    taken, capture = events.take(catch_up_s=2)
    writer.join()

    assert capture == "complete"
    assert [(e.kind, e.detail.get("text")) for e in taken] == [("tcp", "mrn=MRN-1")]


def test_a_sink_that_only_counts_a_flood_makes_the_window_incomplete(tmp_path: Path) -> None:
    log, events = Log(tmp_path / "e.jsonl"), EventFile(tmp_path / "e.jsonl")
    log.write("limit", after=200000)
    log.write("heartbeat", t=time.time() + 1, suppressed=5000)

    _, capture = events.take(catch_up_s=0.5)

    assert capture == "incomplete"
    assert any("5000 more events were only counted" in p for p in events.last_problems)
    log.write("heartbeat", t=time.time() + 2, suppressed=5000)  # nothing new was lost
    assert events.take(until=time.time() + 1.5, catch_up_s=0.5)[1] == "complete"
