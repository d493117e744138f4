"""The sink's services: DNS (UDP and TCP), a TCP catch-all and a sniffer on the dead-end link.

Each observation becomes one numbered JSON line in the events file, and a heartbeat line follows
every HEARTBEAT_S, so the harness can tell a whole record from a cut or stalled one. A TCP
connection is recorded when it is accepted (an `open` line), and what it sent when its opening
is read, within a total deadline (a trickle cannot hold it). Handlers are bounded: past
MAX_CONNECTIONS the connection is still recorded, closed at once, and the flood noted. The
listeners answer plausibly (a fake address for every name, `200 OK` for HTTP) so that a program
goes on to show what it would have sent.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.isolation.sink import protocols
from sandbox.isolation.sink.listeners import (
    Accepted,
    DatagramListener,
    StreamListener,
    original_udp_destination,
    queued,
)
from sandbox.isolation.sink.log import HEARTBEAT_S, EventLog

READ_TIMEOUT = 2.0  # total time a connection's opening may take, however it trickles
MAX_READ = 16384
HTTP_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
FAKE_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")  # half of 198.18.0.0/15: fake answers


class FakeAddresses:
    """A distinct fake IPv4 address per name, so a later connect can be tied to the name."""

    def __init__(self, network: ipaddress.IPv4Network = FAKE_NETWORK) -> None:
        self._hosts = network.hosts()
        self._by_name: dict[str, str] = {}
        self._by_address: dict[str, str] = {}
        self._lock = threading.Lock()

    def address_for(self, name: str) -> str:
        """The address handed out for `name` (allocated on first use); '' once all are used."""
        with self._lock:
            if name not in self._by_name:
                address = str(next(self._hosts, ""))
                if not address:
                    return ""
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
        self._stop = threading.Event()
        self._raw: socket.socket | None = None  # the sniffer's socket on the dead-end link

    def start(self, sniff_interface: str | None = None) -> None:
        """Bind every listener and serve in daemon threads; if one cannot bind, stop them all."""
        hosts = ["127.0.0.1", "::1"] if self.ipv6 else ["127.0.0.1"]
        try:
            for host in hosts:
                self._serve(DatagramListener((host, self.dns_port), self._dns_udp, self.events))
                for port, handle in ((self.dns_port, self._dns_tcp), (self.tcp_port, self._tcp)):
                    listener = StreamListener((host, port), handle, self.events, self._name_for)
                    self._serve(listener)
            if sniff_interface:
                self._raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
                self._raw.bind((sniff_interface, 0))
                self._raw.setblocking(False)
        except OSError:
            self.stop()
            raise
        if self._raw is not None:
            threading.Thread(target=self._sniff, args=(self._raw,), daemon=True).start()
        beat = threading.Thread(target=self.events.beat, args=(self._stop, self._pending))
        beat.daemon = True
        beat.start()

    def _name_for(self, address: str) -> str:
        return self.names.name_for(address)  # late-bound: tests swap the table

    def _pending(self) -> int:
        """Connections, datagrams and frames that are queued but not yet recorded."""
        sockets = [server.socket for server in self._servers]  # type: ignore[attr-defined]
        if self._raw is not None:
            sockets.append(self._raw)
        return sum(queued(sock) for sock in sockets)

    def stop(self) -> None:
        """Stop serving and close every listening socket."""
        self._stop.set()
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for stopper in stoppers:  # together: each shutdown() waits up to a poll interval
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.server_close()
        self._servers.clear()
        if self._raw is not None:
            self._raw.close()

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def _dns_udp(self, data: bytes, client: tuple[str, int]) -> bytes | None:
        return self._answer(data, "udp", resolver=original_udp_destination(client, self.dns_port))

    def _dns_tcp(self, handler: Accepted) -> None:
        """DNS over TCP; anything else sent to port 53 is recorded as the raw TCP it is."""
        conn: socket.socket = handler.request
        data = _read_opening(conn, _is_complete_dns)
        length = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else -1
        query = protocols.parse_dns_query(data[2 : 2 + length]) if length >= 0 else None
        if query is None or len(data) != 2 + length:
            self._raw_tcp(handler, data)
            return
        reply = self._answer(data[2:], "tcp", resolver=handler.destination)
        try:
            if reply:
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass

    def _answer(self, data: bytes, transport: str, resolver: str = "") -> bytes | None:
        query = protocols.parse_dns_query(data)
        if query is None:
            self.events.write(
                "dns",
                transport=transport,
                malformed=protocols.preview(data),
                text=protocols.preview_text(data),
            )
            return None
        address = self.names.address_for(query.name) if query.type_name == "A" else None
        extra = {"resolver": resolver} if resolver else {}
        if address == "":
            extra["overflow"] = "no fake addresses left; answered without one"
        self.events.write(
            "dns",
            transport=transport,
            qname=query.name,
            qtype=query.type_name,
            answer=address or "",
            **extra,
        )
        return protocols.dns_answer(query, address or None)

    def _tcp(self, handler: Accepted) -> None:
        conn: socket.socket = handler.request
        data = _read_opening(conn, _is_complete)
        request = protocols.parse_http_request(data) if protocols.is_http(data) else None
        if request is not None:
            self._http(conn, request, self._fields(handler, data))
        elif protocols.is_tls(data):
            hello = protocols.parse_client_hello(data)
            self.events.write(
                "tls",
                sni=hello.sni if hello else "",
                alpn=hello.alpn if hello else [],
                **self._fields(handler, data),
            )
        else:
            self._raw_tcp(handler, data)

    def _fields(self, handler: Accepted, data: bytes) -> dict[str, Any]:
        return {
            "dst": handler.destination,
            "port": handler.port,
            "host": self.names.name_for(handler.destination),
            "bytes": len(data),
            "conn": handler.connection_id,
        }

    def _raw_tcp(self, handler: Accepted, data: bytes) -> None:
        fields = self._fields(handler, data)
        self.events.write(
            "tcp", preview=protocols.preview(data), text=protocols.preview_text(data), **fields
        )

    def _http(
        self, conn: socket.socket, request: protocols.HttpRequest, fields: dict[str, Any]
    ) -> None:
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

    def _sniff(self, raw: socket.socket) -> None:
        """Record every frame on the dead-end link; a frame that breaks the parser is recorded."""
        while not self._stop.is_set():
            try:
                select.select([raw], [], [], HEARTBEAT_S)
                with self.events.intake:
                    self._record_frame(raw.recv(65535))
            except BlockingIOError:
                continue
            except OSError:
                return  # closed by stop()
            except Exception as exc:  # the harness treats this as a gap in the record
                self.events.write("sink_error", where="sniffer", error=repr(exc)[:300])

    def _record_frame(self, data: bytes) -> None:
        frame = protocols.parse_frame(data)
        if frame is None or protocols.is_neighbour_noise(frame):
            return
        extra: dict[str, Any] = {"fragment": True} if frame.fragment else {}
        if frame.extensions:
            extra["extensions"] = list(frame.extensions)
        self.events.write(
            frame.protocol,
            dst=frame.destination,
            port=frame.port,
            host=self.names.name_for(frame.destination),
            ip_version=frame.version,
            preview=protocols.preview(frame.payload),
            text=protocols.preview_text(frame.payload),
            bytes=len(frame.payload),
            **extra,
        )


def _read_opening(conn: socket.socket, is_complete: Callable[[bytes], bool]) -> bytes:
    """What the client sends first: until `is_complete`, MAX_READ, or READ_TIMEOUT in all."""
    deadline = time.monotonic() + READ_TIMEOUT
    data = b""
    try:
        while len(data) < MAX_READ:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            conn.settimeout(left)
            chunk = conn.recv(MAX_READ - len(data))
            if not chunk:
                break
            data += chunk
            if is_complete(data):
                break
    except OSError:
        pass
    return data


def _is_complete_dns(data: bytes) -> bool:
    return len(data) >= 2 and len(data) >= 2 + struct.unpack("!H", data[:2])[0]


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
