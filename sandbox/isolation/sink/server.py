"""The sink's listeners: DNS (UDP and TCP), a TCP catch-all and a sniffer on the dead-end link.

Each finished observation becomes one JSON line in the events file. The listeners answer
plausibly (a fake address for every name, `200 OK` for HTTP) so that a program goes on to show
what it would have sent.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import struct
import threading
import time
from pathlib import Path
from typing import Any, cast

from sandbox.isolation.sink import protocols

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; the same number for IPv6 (IP6T_SO_ORIGINAL_DST)
READ_TIMEOUT = 2.0
MAX_READ = 16384
HTTP_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
FAKE_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")  # half of 198.18.0.0/15: fake answers


class EventLog:
    """Appends JSON lines, one per event, flushed at once (a crash loses nothing written)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, kind: str, **fields: Any) -> None:
        """Record one event with a wall-clock timestamp."""
        line = json.dumps({"t": time.time(), "kind": kind, **fields}, sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


class FakeAddresses:
    """A distinct fake IPv4 address per name, so a later connect can be tied to the name."""

    def __init__(self) -> None:
        self._hosts = FAKE_NETWORK.hosts()
        self._by_name: dict[str, str] = {}
        self._by_address: dict[str, str] = {}
        self._lock = threading.Lock()

    def address_for(self, name: str) -> str:
        """The address handed out for `name` (allocated on first use)."""
        with self._lock:
            if name not in self._by_name:
                address = str(next(self._hosts))
                self._by_name[name], self._by_address[address] = address, name
            return self._by_name[name]

    def name_for(self, address: str) -> str:
        """The name a fake address was handed out for, or ''."""
        with self._lock:
            return self._by_address.get(address, "")


class Sink:
    """All listeners of one sandbox, sharing the event log and the fake address table."""

    def __init__(self, events: EventLog, dns_port: int, tcp_port: int, ipv6: bool) -> None:
        self.events, self.names = events, FakeAddresses()
        self.dns_port, self.tcp_port, self.ipv6 = dns_port, tcp_port, ipv6
        self._servers: list[socketserver.BaseServer] = []

    def start(self, sniff_interface: str | None = None) -> None:
        """Bind every listener and serve in daemon threads; if one cannot bind, stop them all."""
        hosts = ["127.0.0.1", "::1"] if self.ipv6 else ["127.0.0.1"]
        udp, tcp = socketserver.ThreadingUDPServer, socketserver.ThreadingTCPServer
        try:
            for host in hosts:
                self._serve(_server(udp, host, self.dns_port, self._dns_udp))
                self._serve(_server(tcp, host, self.dns_port, self._dns_tcp))
                self._serve(_server(tcp, host, self.tcp_port, self._tcp))
        except OSError:
            self.stop()
            raise
        if sniff_interface:
            threading.Thread(target=self._sniff, args=(sniff_interface,), daemon=True).start()

    def stop(self) -> None:
        """Stop serving and close every listening socket."""
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for stopper in stoppers:  # together: each shutdown() waits up to a poll interval
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.server_close()
        self._servers.clear()

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def _dns_udp(self, handler: socketserver.BaseRequestHandler) -> None:
        data, sock = handler.request
        reply = self._answer(data, "udp")
        if reply:
            sock.sendto(reply, handler.client_address)

    def _dns_tcp(self, handler: socketserver.BaseRequestHandler) -> None:
        conn: socket.socket = handler.request
        conn.settimeout(READ_TIMEOUT)
        try:
            length = struct.unpack("!H", _read_exactly(conn, 2))[0]
            reply = self._answer(_read_exactly(conn, length), "tcp")
            if reply:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except (OSError, struct.error):
            pass

    def _answer(self, data: bytes, transport: str) -> bytes | None:
        query = protocols.parse_dns_query(data)
        if query is None:
            self.events.write("dns", transport=transport, malformed=protocols.preview(data))
            return None
        address = self.names.address_for(query.name) if query.type_name == "A" else None
        self.events.write(
            "dns",
            transport=transport,
            qname=query.name,
            qtype=query.type_name,
            answer=address or "",
        )
        return protocols.dns_answer(query, address)

    def _tcp(self, handler: socketserver.BaseRequestHandler) -> None:
        conn: socket.socket = handler.request
        destination, port = original_destination(conn)
        data = _read_opening(conn)
        fields = {
            "dst": destination,
            "port": port,
            "host": self.names.name_for(destination),
            "bytes": len(data),
        }
        if protocols.is_http(data):
            self._http(conn, data, fields)
        elif protocols.is_tls(data):
            hello = protocols.parse_client_hello(data)
            self.events.write(
                "tls", sni=hello.sni if hello else "", alpn=hello.alpn if hello else [], **fields
            )
        else:
            self.events.write("tcp", preview=protocols.preview(data), **fields)

    def _http(self, conn: socket.socket, data: bytes, fields: dict[str, Any]) -> None:
        request = protocols.parse_http_request(data)
        if request is None:
            self.events.write("tcp", preview=protocols.preview(data), **fields)
            return
        self.events.write(
            "http",
            method=request.method,
            path=request.path,
            query=request.query,
            http_host=request.host,
            headers=request.headers,
            body=request.body.decode("utf-8", "replace"),
            **fields,
        )
        try:
            conn.sendall(HTTP_REPLY)
        except OSError:
            pass

    def _sniff(self, interface: str) -> None:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        raw.bind((interface, 0))
        while True:
            frame = protocols.parse_frame(raw.recv(65535))
            if frame is None or protocols.is_neighbour_noise(frame):
                continue
            self.events.write(
                frame.protocol if frame.protocol in ("udp", "icmp", "icmpv6") else "packet",
                dst=frame.destination,
                port=frame.port,
                host=self.names.name_for(frame.destination),
                ip_version=frame.version,
                preview=protocols.preview(frame.payload),
                bytes=len(frame.payload),
            )


def _server(
    kind: type[socketserver.BaseServer], host: str, port: int, handle: Any
) -> socketserver.BaseServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            handle(self)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type(
        "SinkServer",
        (kind,),
        {
            "address_family": family,
            "allow_reuse_address": True,
            "daemon_threads": True,
            "request_queue_size": 128,  # a burst of connects must not wait for a retry
        },
    )
    return cast(socketserver.BaseServer, server_class((host, port), Handler))


def original_destination(conn: socket.socket) -> tuple[str, int]:
    """Where the program meant to connect, before the NAT rule redirected it here."""
    try:
        if conn.family == socket.AF_INET6:
            raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
            return str(ipaddress.IPv6Address(raw[8:24])), struct.unpack("!H", raw[2:4])[0]
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        return socket.inet_ntoa(raw[4:8]), struct.unpack("!H", raw[2:4])[0]
    except OSError:  # not redirected (a direct connection to the sink's own port)
        host, port = conn.getsockname()[:2]
        return str(host), int(port)


def _read_opening(conn: socket.socket) -> bytes:
    """What the client sends first: until an HTTP head is complete, MAX_READ, or a pause."""
    conn.settimeout(READ_TIMEOUT)
    data = b""
    try:
        while len(data) < MAX_READ:
            chunk = conn.recv(MAX_READ - len(data))
            if not chunk:
                break
            data += chunk
            if _is_complete(data):
                break
    except OSError:
        pass
    return data


def _is_complete(data: bytes) -> bool:
    if protocols.is_tls(data):
        return len(data) >= 5 and len(data) >= 5 + struct.unpack("!H", data[3:5])[0]
    if not protocols.is_http(data) or not protocols.has_full_head(data):
        return False
    request = protocols.parse_http_request(data)
    if request is None:
        return True
    length = request.headers.get("content-length", "0")
    wanted = int(length) if length.isdigit() else 0
    return len(request.body) >= min(wanted, protocols.MAX_BODY)


def _read_exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data
