"""The sink's log: numbered JSON lines, flushed at once, and the heartbeat that proves liveness.

A flood cannot fill the host's disk through it: past MAX_EVENTS lines of events the sink writes
one `limit` line and from then on only counts what it saw, in every heartbeat (`suppressed`).
The harness marks the windows that lost detail this way incomplete.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEARTBEAT_S = 0.1
MAX_EVENTS = 200_000  # about 60 MB of lines


class EventLog:
    """Appends numbered JSON lines, flushed at once (a crash loses nothing written)."""

    def __init__(self, path: Path, max_events: int = MAX_EVENTS) -> None:
        self._file = path.open("a", encoding="utf-8")
        self.max_events, self._events, self.suppressed = max_events, 0, 0
        self._lock = threading.Lock()
        self.intake = threading.Lock()  # taking input off a queue and recording it (listeners.py)
        self._seq = 0
        self._connections = 0

    def write(self, kind: str, **fields: Any) -> None:
        """Record one event with a wall-clock timestamp and the next sequence number."""
        with self._lock:
            if kind != "heartbeat":
                self._events += 1
                if self._events > self.max_events + 1:
                    self.suppressed += 1
                    return
                if self._events > self.max_events:
                    kind, fields = "limit", {"after": self.max_events}
            else:
                fields = {**fields, "suppressed": self.suppressed}
            record = {"t": time.time(), "kind": kind, **fields, "seq": self._seq}
            self._file.write(json.dumps(record, sort_keys=True) + "\n")
            self._file.flush()
            self._seq += 1

    def next_connection(self) -> int:
        """A new connection id (ties a connection's `open` line to what it sent)."""
        with self._lock:
            self._connections += 1
            return self._connections

    def beat(self, stop: threading.Event, pending: Callable[[], int]) -> None:
        """Write a heartbeat every HEARTBEAT_S until `stop` is set, with what is still queued."""
        while not stop.wait(HEARTBEAT_S):
            with self.intake:
                try:
                    waiting = pending()
                except OSError:
                    waiting = -1  # unknown: the harness does not count this beat
                self.write("heartbeat", pending=waiting)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()
