"""The sink's listeners: DNS (UDP and TCP), a TCP catch-all and a sniffer on the dead-end link.

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
READ_TIMEOUT = 2.0  # total time a connection's opening may take, however it trickles
HEARTBEAT_S = 0.2
MAX_CONNECTIONS = 64  # handlers at once, per listener
MAX_READ = 16384
HTTP_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
FAKE_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")  # half of 198.18.0.0/15: fake answers


class EventLog:
    """Appends numbered JSON lines, flushed at once (a crash loses nothing written)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._seq = 0
        self._connections = 0

    def write(self, kind: str, **fields: Any) -> None:
        """Record one event with a wall-clock timestamp and the next sequence number."""
        with self._lock:
            record = {"t": time.time(), "kind": kind, **fields, "seq": self._seq}
            self._file.write(json.dumps(record, sort_keys=True) + "\n")
            self._file.flush()
            self._seq += 1

    def next_connection(self) -> int:
        """A new connection id (ties a connection's `open` line to what it sent)."""
        with self._lock:
            self._connections += 1
            return self._connections

    def beat(self, stop: threading.Event) -> None:
        """Write a heartbeat every HEARTBEAT_S until `stop` is set."""
        while not stop.wait(HEARTBEAT_S):
            self.write("heartbeat")

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


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

    def start(self, sniff_interface: str | None = None) -> None:
        """Bind every listener and serve in daemon threads; if one cannot bind, stop them all."""
        hosts = ["127.0.0.1", "::1"] if self.ipv6 else ["127.0.0.1"]
        udp, tcp = socketserver.ThreadingUDPServer, socketserver.ThreadingTCPServer
        try:
            for host in hosts:
                self._serve(_server(udp, host, self.dns_port, self._dns_udp, self.events))
                self._serve(_server(tcp, host, self.dns_port, self._dns_tcp, self.events))
                self._serve(_server(tcp, host, self.tcp_port, self._tcp, self.events))
        except OSError:
            self.stop()
            raise
        if sniff_interface:
            threading.Thread(target=self._sniff, args=(sniff_interface,), daemon=True).start()
        threading.Thread(target=self.events.beat, args=(self._stop,), daemon=True).start()

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

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def _dns_udp(self, handler: socketserver.BaseRequestHandler) -> None:
        data, sock = handler.request
        reply = self._answer(data, "udp")
        if reply:
            sock.sendto(reply, handler.client_address)

    def _dns_tcp(self, handler: socketserver.BaseRequestHandler) -> None:
        """DNS over TCP; anything else sent to port 53 is recorded as the raw TCP it is."""
        conn: socket.socket = handler.request
        data = _read_opening(conn, _is_complete_dns)
        length = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else -1
        query = protocols.parse_dns_query(data[2 : 2 + length]) if length >= 0 else None
        if query is None or len(data) != 2 + length:
            self._raw_tcp(handler, data)
            return
        reply = self._answer(data[2:], "tcp", resolver=handler.destination)  # type: ignore[attr-defined]
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

    def _tcp(self, handler: socketserver.BaseRequestHandler) -> None:
        conn: socket.socket = handler.request
        data = _read_opening(conn, _is_complete)
        fields = self._fields(handler, data)
        if protocols.is_http(data):
            self._http(conn, data, fields)
        elif protocols.is_tls(data):
            hello = protocols.parse_client_hello(data)
            self.events.write(
                "tls", sni=hello.sni if hello else "", alpn=hello.alpn if hello else [], **fields
            )
        else:
            self._raw_tcp(handler, data)

    def _fields(self, handler: socketserver.BaseRequestHandler, data: bytes) -> dict[str, Any]:
        destination, port = handler.destination, handler.port  # type: ignore[attr-defined]
        return {
            "dst": destination,
            "port": port,
            "host": self.names.name_for(destination),
            "bytes": len(data),
            "conn": handler.connection_id,  # type: ignore[attr-defined]
        }

    def _raw_tcp(self, handler: socketserver.BaseRequestHandler, data: bytes) -> None:
        fields = self._fields(handler, data)
        self.events.write(
            "tcp", preview=protocols.preview(data), text=protocols.preview_text(data), **fields
        )

    def _http(self, conn: socket.socket, data: bytes, fields: dict[str, Any]) -> None:
        request = protocols.parse_http_request(data)
        if request is None:
            self.events.write(
                "tcp", preview=protocols.preview(data), text=protocols.preview_text(data), **fields
            )
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


def _server(
    kind: type[socketserver.BaseServer], host: str, port: int, handle: Any, events: EventLog
) -> socketserver.BaseServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            handle(self)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    stream = issubclass(kind, socketserver.TCPServer) and not issubclass(
        kind, socketserver.UDPServer
    )
    server_class = type(
        "SinkServer",
        (_Bounded, kind) if stream else (kind,),
        {
            "address_family": family,
            "allow_reuse_address": True,
            "daemon_threads": True,
            "request_queue_size": 128,  # a burst of connects must not wait for a retry
            "events": events,
            "slots": threading.BoundedSemaphore(MAX_CONNECTIONS),
            "flooding": False,
        },
    )
    return cast(socketserver.BaseServer, server_class((host, port), Handler))


class _Bounded:
    """A threading TCP server that records each connection as accepted and bounds handlers."""

    events: EventLog
    slots: threading.BoundedSemaphore
    flooding: bool

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Record the accepted connection, then hand it to a handler if a slot is free."""
        destination, port = original_destination(request)
        connection = self.events.next_connection()
        self.events.write("open", dst=destination, port=port, conn=connection)
        if not self.slots.acquire(blocking=False):
            if not self.flooding:
                self.events.write("flood", limit=MAX_CONNECTIONS, dst=destination, port=port)
            self.flooding = True
            request.close()
            return
        self.flooding = False
        threading.Thread(
            target=self._handle,
            args=(request, client_address, destination, port, connection),
            daemon=True,
        ).start()

    def _handle(
        self, request: socket.socket, address: Any, destination: str, port: int, connection: int
    ) -> None:
        try:
            handler_class = self.RequestHandlerClass  # type: ignore[attr-defined]
            handler = handler_class.__new__(handler_class)
            handler.request, handler.client_address, handler.server = request, address, self
            handler.destination, handler.port, handler.connection_id = destination, port, connection
            try:
                handler.handle()
            finally:
                self.shutdown_request(request)  # type: ignore[attr-defined]
        except Exception:  # one connection's failure must not stop the sink
            pass
        finally:
            self.slots.release()


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


def _read_opening(conn: socket.socket, is_complete: Any) -> bytes:
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
