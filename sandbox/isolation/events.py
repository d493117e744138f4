"""What both sandboxes share: reading the sink's event file, and how long its start may take."""

from __future__ import annotations

from pathlib import Path

from sandbox.egress import EgressEvent

READY_TIMEOUT = 20.0  # seconds for a sink to build its rules and bind its listeners


class EventFile:
    """Reads a sink's JSON-lines file incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def take(self) -> list[EgressEvent]:
        """Events written since the last call; a line still being written waits its turn."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        return [EgressEvent.from_line(line) for line in complete.decode().splitlines() if line]
