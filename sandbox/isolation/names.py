"""The names `--isolation` takes; light, so that the command line parses without the sandboxes."""

from __future__ import annotations

from typing import Literal

IsolationName = Literal["auto", "docker", "namespace", "none"]
