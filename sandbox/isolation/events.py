"""What both sandboxes share: reading the sink's event file and judging whether it is whole.

The sink numbers every line (`seq`) and writes a `heartbeat` line every HEARTBEAT_S, saying how
much input is still queued. A window of egress (start-up, one trial) is complete only when every
number arrived in order, every line parsed, and a heartbeat written after the window's end with
nothing queued was read: then the sink was alive and caught up when the window closed. A
stopped, starved, killed or lagging sink gives `incomplete`, never `complete`. An event belongs
to the window whose closing heartbeat follows it in the log (so by the time the sink took it
in, never by who reads next).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sandbox.egress import Capture, EgressEvent
from sandbox.isolation.sink.log import HEARTBEAT_S

READY_TIMEOUT = 20.0  # seconds for a sink to build its rules and bind its listeners
CATCH_UP_S = 3.0  # how long a window waits for the heartbeat that closes it
OPENING_S = 2.5  # the sink records what a connection sent within this of accepting it
MAX_READ_BYTES = 8 << 20  # bytes read per poll: a flood cannot fill the harness's memory


class EventFile:
    """Reads a sink's JSON-lines file incrementally and checks its continuity."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._next_seq = 0
        self._last_beat = 0.0
        self._pending: list[EgressEvent] = []
        self._taken = 0  # events handed out by earlier windows: the position of _pending[0]
        self._opened: dict[object, tuple[int, float]] = {}  # connection → its `open`: position, t
        self._beats: list[tuple[float, int]] = []  # caught-up heartbeats: time, events before
        self._suppressed = 0  # events the sink counted but no longer wrote out (a flood)
        self.problems: list[str] = []  # why the current window is incomplete
        self.last_problems: list[str] = []  # why the last window taken was incomplete

    def _poll(self) -> None:
        """Read what was appended since the last poll (whole lines only)."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read(MAX_READ_BYTES)
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            if line.strip():
                self._accept(line)

    def _accept(self, line: bytes) -> None:
        try:
            raw = json.loads(line)
            seq = int(raw.pop("seq"))
        except (ValueError, KeyError, TypeError):
            self._problem("the sink's log has a line that is not one of its events")
            return
        if seq != self._next_seq:
            self._problem(f"the sink's log skips from event {self._next_seq} to {seq}")
        self._next_seq = seq + 1
        if raw.get("kind") == "heartbeat":  # counts once nothing sent before it is still queued
            suppressed = int(raw.get("suppressed", 0) or 0)
            if suppressed > self._suppressed:
                self._problem(
                    f"the sink stopped recording details: {suppressed} more events were only "
                    "counted"
                )
                self._suppressed = suppressed
            if raw.get("pending", 0) == 0:
                self._last_beat = max(self._last_beat, float(raw.get("t", 0.0)))
                self._beats.append((self._last_beat, self._taken + len(self._pending)))
            return
        if raw.get("kind") == "limit":
            self._problem(f"the sink wrote its last detailed event after {raw.get('after')}")
        if raw.get("kind") == "sink_error":
            self._problem(f"the sink failed to record something: {raw.get('error', '?')}")
            return
        if raw.get("kind") == "open":  # stands for the connection until its content arrives
            raw.update(kind="tcp", bytes=0, opened_only=True)
        try:
            event = EgressEvent.from_raw(raw)
        except ValueError:
            self._problem("the sink's log has an event that does not parse")
            return
        self._add(event)

    def _add(self, event: EgressEvent) -> None:
        """Append an event; what a connection sent replaces its `open` line in the same window."""
        connection = event.detail.get("conn")
        if event.detail.get("opened_only"):
            self._opened[connection] = (self._taken + len(self._pending), event.t)
        elif connection is not None and connection in self._opened:
            position, opened_at = self._opened.pop(connection)
            if position >= self._taken:  # its window is still open
                self._pending[position - self._taken] = event.model_copy(update={"t": opened_at})
                return
        self._pending.append(event)

    def _is_waiting(self, until: float) -> bool:
        """True while a connection opened in the window may still say what it sent."""
        now = time.time()
        return any(t <= until and now < t + OPENING_S for _, t in self._opened.values())

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _cut(self, until: float) -> list[EgressEvent]:
        """The events recorded before the first caught-up heartbeat at or after `until`."""
        closing = next(((t, n) for t, n in self._beats if t >= until), None)
        cut = closing[1] - self._taken if closing else len(self._pending)
        events, self._pending = self._pending[:cut], self._pending[cut:]
        self._taken += cut
        after = closing[0] if closing else float("inf")
        self._beats = [(t, n) for t, n in self._beats if t > after]
        stale = time.time() - 10 * OPENING_S
        self._opened = {k: (p, t) for k, (p, t) in self._opened.items() if t > stale}
        return events

    def take(
        self,
        until: float | None = None,
        is_alive: Callable[[], bool] = lambda: True,
        catch_up_s: float = CATCH_UP_S,
    ) -> tuple[list[EgressEvent], Capture]:
        """The events of the window that ends at `until` (default: now), and whether it is whole.

        The window closes at the first heartbeat written at or after `until` with nothing
        queued: what the sink recorded before it belongs to this window, the rest to the next.
        Waits up to `catch_up_s` for that heartbeat (and for what connections opened in the
        window send).
        """
        until = time.time() if until is None else until
        deadline = time.monotonic() + catch_up_s
        self._poll()
        while (
            (self._last_beat < until or self._is_waiting(until))
            and time.monotonic() < deadline
            and is_alive()
        ):
            time.sleep(HEARTBEAT_S / 4)
            self._poll()
        if not is_alive():
            self._problem("the sink is not running")
        elif self._last_beat < until:
            self._problem(f"the sink wrote no heartbeat for {time.time() - self._last_beat:.1f} s")
        events = self._cut(until)
        capture: Capture = "incomplete" if self.problems else "complete"
        self.last_problems, self.problems = self.problems, []
        return events, capture


class SinkRecord(Protocol):
    """What a sandbox offers about its sink (both sandboxes)."""

    def take_events(self, until: float | None = None) -> tuple[list[EgressEvent], Capture]:
        """The events of the window that ends at `until`, and whether it is whole."""

    def is_capturing(self) -> bool:
        """True while the sink runs."""


class WindowedEgress:
    """`take_egress` and `capture` of a model server whose sandbox has a sink."""

    sandbox: SinkRecord
    _capture: Capture = "complete"

    def take_egress(self) -> list[EgressEvent]:
        """What the sink recorded up to now; capture() says whether that record is whole."""
        events, self._capture = self.sandbox.take_events()
        return events

    def capture(self) -> Capture:
        """Whether the last window taken was recorded whole (sink alive, caught up, unbroken)."""
        return self._capture if self.sandbox.is_capturing() else "incomplete"
