"""Egress events: what the sink recorded, as the runner, the checks and the store see it (types)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["startup", "trial", "shutdown"]
Capture = Literal["complete", "incomplete", "none"]  # none: no sandbox observed egress
_COMMON = {"t", "kind", "dst", "port", "host"}


class EgressEvent(BaseModel):
    """One attempt to reach the network from inside a sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t: float = Field(description="Wall-clock time (Unix seconds) the sink saw it.")
    kind: str = Field(
        description="dns, http, tls, tcp, udp, icmp, icmpv6, another protocol's name (udplite, "
        "sctp, gre, ip-N, arp, ...), flood or limit."
    )
    dst: str = ""
    port: int = 0
    host: str = Field("", description="The name the address was resolved from, if any.")
    detail: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> EgressEvent:
        """An event from the sink's fields (ValueError when they do not fit)."""
        common = {k: v for k, v in raw.items() if k in _COMMON}
        return cls(**common, detail={k: v for k, v in raw.items() if k not in _COMMON})

    @property
    def target(self) -> str:
        """The name or address and port it tried to reach."""
        if self.kind == "dns":
            return str(self.detail.get("qname", "?"))
        where = self.host or self.dst
        return f"[{where}]:{self.port}" if ":" in where else f"{where}:{self.port}"

    def describe(self) -> str:
        """One line a reviewer reads: 'http GET collector.example:80/leak?mrn=…'."""
        d = self.detail
        if self.kind == "dns":
            return f"dns {d.get('qtype', '?')} {d.get('qname', d.get('malformed', '?'))}"
        if self.kind == "http":
            query = f"?{d['query']}" if d.get("query") else ""
            return f"http {d.get('method')} {self.target}{d.get('path', '')}{query}"
        if self.kind == "tls":
            return f"tls {self.target} sni={d.get('sni') or '-'}"
        return f"{self.kind} {self.target}"
