"""Pure parsers for what the sink sees: DNS queries, HTTP requests, TLS ClientHellos, IP frames.

Every parser takes bytes an untrusted program sent and never raises on malformed input: it
returns None (or a partial result) instead.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

MAX_BODY = 4096
MAX_PREVIEW = 256
QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
}


@dataclass(frozen=True)
class DnsQuery:
    """The question of a DNS query."""

    id: int
    flags: int
    name: str
    qtype: int
    question: bytes  # the raw question section, echoed back in the answer

    @property
    def type_name(self) -> str:
        """A, AAAA, TXT, ... or the number."""
        return QTYPES.get(self.qtype, str(self.qtype))


def parse_dns_query(data: bytes) -> DnsQuery | None:
    """The first question of a DNS message, or None if it is not a well-formed query."""
    if len(data) < 17:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qdcount < 1:
        return None
    labels, at = [], 12
    while at < len(data) and data[at] != 0:
        length = data[at]
        if length > 63 or at + 1 + length > len(data):
            return None
        labels.append(data[at + 1 : at + 1 + length].decode("ascii", "replace"))
        at += 1 + length
    if at + 5 > len(data):
        return None
    qtype = struct.unpack("!H", data[at + 1 : at + 3])[0]
    return DnsQuery(ident, flags, ".".join(labels).lower(), qtype, data[12 : at + 5])


def dns_answer(query: DnsQuery, address: str | None) -> bytes:
    """A response: one A record for `address`, or no answer (NOERROR) when None."""
    flags = 0x8080 | (query.flags & 0x0100)  # QR + RA, echo RD
    answers = 1 if address else 0
    header = struct.pack("!HHHHHH", query.id, flags, 1, answers, 0, 0)
    if not address:
        return header + query.question
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + ipaddress.IPv4Address(address).packed
    return header + query.question + record


@dataclass(frozen=True)
class HttpRequest:
    """The request line, headers and the start of the body of an HTTP/1 request."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def host(self) -> str:
        """The Host header without a port (`[2001:db8::1]:8080` gives `[2001:db8::1]`)."""
        host = self.headers.get("host", "")
        if host.startswith("["):
            return host[: host.find("]") + 1] if "]" in host else host
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    @property
    def path(self) -> str:
        """The path, also for absolute-form targets (proxy style); the raw target if unparsable."""
        try:
            return urlsplit(self.target).path or "/"
        except ValueError:
            return self.target

    @property
    def query(self) -> str:
        """The query string ('' when the target cannot be parsed)."""
        try:
            return urlsplit(self.target).query
        except ValueError:
            return ""


HTTP_METHODS = (
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"PATCH ",
    b"OPTIONS ",
    b"CONNECT ",
    b"TRACE ",
)


def is_http(data: bytes) -> bool:
    """True when the bytes start like an HTTP/1 request."""
    return data.startswith(HTTP_METHODS)


def has_full_head(data: bytes) -> bool:
    """True once the blank line that ends the headers has arrived."""
    return b"\r\n\r\n" in data or b"\n\n" in data


def parse_http_request(data: bytes) -> HttpRequest | None:
    """Parse an HTTP/1 request head (and up to MAX_BODY bytes of body)."""
    head, body = _split_head(data)
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpRequest(parts[0], parts[1], parts[2], headers, body[:MAX_BODY])


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Head and body, split at the first blank line (CRLF or bare LF); the body is untouched."""
    ends = [(at, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (at := data.find(sep)) >= 0]
    if not ends:
        return data, b""
    at, length = min(ends)
    return data[:at], data[at + length :]


@dataclass(frozen=True)
class ClientHello:
    """What a TLS ClientHello reveals before encryption: server name and protocols."""

    sni: str
    alpn: list[str]


def is_tls(data: bytes) -> bool:
    """True when the bytes start like a TLS handshake record."""
    return len(data) >= 3 and data[0] == 0x16 and data[1] == 0x03


def parse_client_hello(data: bytes) -> ClientHello | None:
    """SNI and ALPN from a ClientHello in the first TLS record, or None if malformed."""
    try:
        return _parse_client_hello(data)
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def _parse_client_hello(data: bytes) -> ClientHello | None:
    if not is_tls(data) or data[5] != 0x01:
        return None
    at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
    at += 1 + data[at]  # session id
    at += 2 + struct.unpack("!H", data[at : at + 2])[0]  # cipher suites
    at += 1 + data[at]  # compression methods
    end = at + 2 + struct.unpack("!H", data[at : at + 2])[0]
    at += 2
    sni, alpn = "", []
    while at + 4 <= min(end, len(data)):
        kind, length = struct.unpack("!HH", data[at : at + 4])
        if at + 4 + length > len(data):
            break  # a cut-off extension would give a cut-off name that looks real
        body = data[at + 4 : at + 4 + length]
        if kind == 0 and len(body) > 5:
            sni = body[5 : 5 + struct.unpack("!H", body[3:5])[0]].decode("ascii")
        elif kind == 16:
            alpn = _alpn_names(body[2:])
        at += 4 + length
    return ClientHello(sni, alpn)


def _alpn_names(body: bytes) -> list[str]:
    names, at = [], 0
    while at < len(body):
        length = body[at]
        names.append(body[at + 1 : at + 1 + length].decode("ascii", "replace"))
        at += 1 + length
    return names


@dataclass(frozen=True)
class Frame:
    """A packet seen on the sandbox's dead-end link (traffic the NAT rules did not take)."""

    version: int  # 4 or 6; 0 for a frame that is not IP (ARP, ...)
    protocol: str  # udp, udplite, sctp, gre, icmp, ... or "ip-<n>", "ethertype-<hex>"
    source: str
    destination: str
    port: int
    payload: bytes
    fragment: bool = False  # the first piece of a fragmented datagram
    extensions: tuple[str, ...] = ()  # IPv6 extension headers it carried


IP_PROTOCOLS = {
    1: "icmp",
    2: "igmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    41: "ipv6-in-ip",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    103: "pim",
    112: "vrrp",
    132: "sctp",
    136: "udplite",
}
PORTED = {6, 17, 132, 136}  # protocols whose header starts with source and destination ports
IPV6_EXTENSIONS = {0: "hop-by-hop", 43: "routing", 44: "fragment", 60: "destination-options"}
ETHERTYPES = {0x0806: "arp", 0x8035: "rarp", 0x88CC: "lldp"}


def parse_frame(frame: bytes) -> Frame | None:
    """Any Ethernet frame: IPv4 or IPv6 (through extension headers and fragments) or other."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack("!H", frame[12:14])[0]
    packet = frame[14:]
    if ethertype == 0x0800 and len(packet) >= 20:
        header = (packet[0] & 0x0F) * 4
        offset = struct.unpack("!H", packet[6:8])[0]
        if offset & 0x1FFF:  # a later fragment: its first piece was recorded
            return None
        more = bool(offset & 0x2000)
        return _frame(4, packet[9], packet[12:16], packet[16:20], packet[header:], more)
    if ethertype == 0x86DD and len(packet) >= 40:
        return _ipv6(packet)
    if ethertype in (0x0800, 0x86DD):
        return None
    name = ETHERTYPES.get(ethertype, f"ethertype-{ethertype:04x}")
    return Frame(0, name, "", "", 0, packet)


def _ipv6(packet: bytes) -> Frame | None:
    proto, at, extensions, fragment = packet[6], 40, [], False
    while proto in IPV6_EXTENSIONS and at + 8 <= len(packet):
        extensions.append(IPV6_EXTENSIONS[proto])
        if proto == 44:
            if struct.unpack("!H", packet[at + 2 : at + 4])[0] & 0xFFF8:
                return None  # a later fragment
            fragment, length = True, 8
        else:
            length = (packet[at + 1] + 1) * 8
        proto, at = packet[at], at + length
    frame = _frame(6, proto, packet[8:24], packet[24:40], packet[at:], fragment)
    return replace(frame, extensions=tuple(extensions))


def _frame(version: int, proto: int, src: bytes, dst: bytes, rest: bytes, fragment: bool) -> Frame:
    address = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    port, payload = 0, rest
    if proto in PORTED and len(rest) >= 4:
        port = struct.unpack("!H", rest[2:4])[0]
        if proto in (17, 136):
            payload = rest[8:]
        elif proto == 6 and len(rest) >= 20:
            payload = rest[(rest[12] >> 4) * 4 :]
        elif proto == 132:
            payload = rest[12:]
    name = IP_PROTOCOLS.get(proto, f"ip-{proto}")
    return Frame(version, name, str(address(src)), str(address(dst)), port, payload, fragment)


def is_neighbour_noise(frame: Frame) -> bool:
    """IPv6 neighbour discovery and multicast listener reports the kernel sends by itself."""
    return frame.protocol == "icmpv6" and frame.payload[:1] in (
        b"\x85",
        b"\x86",
        b"\x87",
        b"\x88",
        b"\x8f",
    )


def preview(data: bytes) -> str:
    """The first bytes as hex, for protocols the sink does not understand."""
    return data[:MAX_PREVIEW].hex()


def preview_text(data: bytes) -> str:
    """The first bytes as a reader sees them: printable ASCII kept, the rest as hex escapes."""
    return "".join(
        chr(b) if 32 <= b < 127 and b != 0x5C else f"\\x{b:02x}" for b in data[:MAX_PREVIEW]
    )
