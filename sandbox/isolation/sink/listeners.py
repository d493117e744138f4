"""The sink's sockets, which record what they take off their queues, and the queues' length.

Stream listeners record each connection as they accept it and bound their handlers; datagram
listeners record as they receive.

Taking a connection or datagram off its queue and writing its line happen under the log's
`intake` lock, and the heartbeat measures the queues under the same lock: a heartbeat that says
`pending: 0` proves that everything sent before it is in the log.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import socketserver
import struct
import termios
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.isolation.sink.log import EventLog

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h; the same number for IPv6 (IP6T_SO_ORIGINAL_DST)
MAX_CONNECTIONS = 128  # handlers at once, per listener
TCPI_UNACKED = 24  # offset of tcpi_unacked in struct tcp_info: a listener's accept queue


def queued(sock: socket.socket) -> int:
    """Connections waiting to be accepted, or 1 when a datagram or frame waits to be read."""
    if sock.type == socket.SOCK_STREAM:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return int(struct.unpack_from("I", info, TCPI_UNACKED)[0])
    waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return 1 if struct.unpack("i", waiting)[0] > 0 else 0


class StreamListener(socketserver.ThreadingTCPServer):
    """A TCP listener: records `open` on accept, then hands the connection to a bounded handler.

    Past MAX_CONNECTIONS handlers the connection is still recorded, then closed, and the flood
    is recorded once per burst.
    """

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096  # a burst of connects must queue, not wait for a retry

    def __init__(
        self,
        address: tuple[str, int],
        handle: Callable[..., None],
        events: EventLog,
        name_for: Callable[[str], str] = lambda _: "",
    ):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.events, self.handle, self.name_for = events, handle, name_for
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.flooding = False
        self._accepted: tuple[str, int, int] = ("", 0, 0)
        super().__init__(address, socketserver.BaseRequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept and record in one step (see the module docstring)."""
        with self.events.intake:
            request, address = self.socket.accept()
            destination, port = original_destination(request)
            connection = self.events.next_connection()
            host = self.name_for(destination)
            self.events.write("open", dst=destination, port=port, host=host, conn=connection)
        self._accepted = (destination, port, connection)
        return request, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a handler thread if a slot is free; else close it."""
        destination, port, connection = self._accepted
        if not self.slots.acquire(blocking=False):
            if not self.flooding:
                self.events.write("flood", limit=MAX_CONNECTIONS, dst=destination, port=port)
                self.flooding = True
            self.shutdown_request(request)
            return
        self.flooding = False
        accepted = Accepted(request, destination, port, connection)
        threading.Thread(target=self._serve, args=(accepted,), daemon=True).start()

    def _serve(self, accepted: Accepted) -> None:
        try:
            self.handle(accepted)
        except Exception:  # one connection's failure must not stop the sink
            pass
        finally:
            self.shutdown_request(accepted.request)
            self.slots.release()


class Accepted:
    """One accepted connection and where it meant to go."""

    def __init__(self, request: socket.socket, destination: str, port: int, connection: int):
        self.request, self.destination, self.port = request, destination, port
        self.connection_id = connection


class DatagramListener(socketserver.UDPServer):
    """A UDP listener that records each datagram as it takes it off the queue, then answers."""

    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        record: Callable[[bytes, tuple[str, int]], bytes | None],
        events: EventLog,
    ):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.events, self.record = events, record
        super().__init__(address, socketserver.BaseRequestHandler)

    def get_request(self) -> tuple[Any, Any]:
        """Receive and record in one step; the reply is sent after."""
        with self.events.intake:
            data, address = self.socket.recvfrom(self.max_packet_size)
            reply = self.record(data, address)
        return (reply, self.socket), address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Send the answer the record step prepared."""
        reply, sock = request
        if reply:
            try:
                sock.sendto(reply, client_address)
            except OSError:
                pass


def original_udp_destination(client: tuple[str, int], port: int) -> str:
    """Where a redirected UDP datagram was sent (a resolver's address), from conntrack; or ''.

    SO_ORIGINAL_DST answers for TCP only; for UDP the connection tracking table of this
    namespace holds the original tuple: `src=CLIENT dst=ORIGINAL ... src=... sport=PORT`.
    """
    try:
        table = Path("/proc/self/net/nf_conntrack").read_text()
    except OSError:
        return ""
    host, client_port = str(ipaddress.ip_address(client[0].split("%")[0])), client[1]
    for line in table.splitlines():
        fields = [f.split("=", 1) for f in line.split() if "=" in f]
        values = [value for _, value in fields]
        names = [name for name, _ in fields]
        if names[:4] != ["src", "dst", "sport", "dport"] or len(values) < 8:
            continue
        src, dst, sport, _dport, _, _, reply_sport, reply_dport = values[:8]
        if (
            _same(src, host)
            and sport == str(client_port)
            and reply_sport == str(port)
            and reply_dport == str(client_port)
        ):
            return str(ipaddress.ip_address(dst))
    return ""


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


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
