"""The sink's listeners over loopback (no namespace, no NAT, no root), and its entry point."""

from __future__ import annotations

import ast
import contextlib
import ipaddress
import json
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.isolation.sink import server as sink_server
from sandbox.isolation.sink.listeners import MAX_CONNECTIONS, original_destination
from sandbox.isolation.sink.log import HEARTBEAT_S, EventLog
from sandbox.isolation.sink.server import FAKE_NETWORK, READ_TIMEOUT, FakeAddresses, Sink

ROOT = Path(__file__).resolve().parents[2]
SINK_PACKAGE = ROOT / "sandbox" / "isolation" / "sink"
SNI = "stats.vllm.example"


@dataclass
class RunningSink:
    sink: Sink
    events_path: Path

    @property
    def dns(self) -> tuple[str, int]:
        return ("127.0.0.1", self.sink.dns_port)

    @property
    def tcp(self) -> tuple[str, int]:
        return ("127.0.0.1", self.sink.tcp_port)


def free_ports() -> tuple[int, int]:
    """A port free for both UDP and TCP (DNS), and a different free TCP port."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            tcp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            other = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            other.bind(("127.0.0.1", 0))
            return port, other.getsockname()[1]
    raise RuntimeError("no port free for both UDP and TCP")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningSink]:
    before = set(threading.enumerate())
    dns_port, tcp_port = free_ports()
    events = EventLog(tmp_path / "events.jsonl")
    sink = Sink(events, dns_port, tcp_port, ipv6=False)
    sink.start(None)
    yield RunningSink(sink, tmp_path / "events.jsonl")
    sink.stop()
    deadline = time.monotonic() + READ_TIMEOUT + 3
    started = set(threading.enumerate()) - before
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    events.close()
    assert not [thread for thread in started if thread.is_alive()], "sink threads outlived it"


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line the sink wrote, heartbeats and connection openings included."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_events(path: Path) -> list[dict[str, Any]]:
    """What the sink observed, without its bookkeeping (heartbeats, openings, numbers)."""
    lines = [e for e in read_lines(path) if e["kind"] not in ("heartbeat", "open")]
    for line in lines:
        line.pop("seq")
        line.pop("conn", None)
    return lines


def wait_for_events(path: Path, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_events(path)
        if len(events) >= count:
            return events
        time.sleep(0.02)
    raise AssertionError(f"{count} events expected, got {read_events(path)}")


def build_query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def answer_addresses(reply: bytes) -> list[str]:
    """The A records of a response to one question (rcode checked)."""
    flags, _, ancount = struct.unpack("!HHH", reply[2:8])
    assert flags & 0x8000 and flags & 0x000F == 0, f"not a NOERROR response: {flags:#06x}"
    at = 12
    while reply[at] != 0:
        at += 1 + reply[at]
    at += 5
    addresses = []
    for _ in range(ancount):
        rdlength = struct.unpack("!H", reply[at + 10 : at + 12])[0]
        addresses.append(str(ipaddress.IPv4Address(reply[at + 12 : at + 12 + rdlength])))
        at += 12 + rdlength
    return addresses


def ask_udp(address: tuple[str, int], query: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, address)
        return sock.recv(4096)


def ask_tcp(address: tuple[str, int], query: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        length = struct.unpack("!H", receive_all(sock)[:2])[0]
        return receive_all_after(sock, length)


def receive_all(sock: socket.socket, count: int = 2) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def receive_all_after(sock: socket.socket, count: int) -> bytes:
    data = receive_all(sock, count)
    assert len(data) == count
    return data


def send_and_read_until_closed(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        return reply


def client_hello() -> bytes:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(["h2", "http/1.1"])
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=SNI)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def http_post(path: str, body: bytes, host: str = "telemetry.example") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --- DNS ---------------------------------------------------------------------------------


def test_sink_dns_gives_each_name_its_own_stable_fake_address(running: RunningSink) -> None:
    names = ["stats.vllm.example", "huggingface.example", "metadata.invalid"]

    first = [answer_addresses(ask_udp(running.dns, build_query(name))) for name in names]
    again = [answer_addresses(ask_udp(running.dns, build_query(name))) for name in names]
    over_tcp = [answer_addresses(ask_tcp(running.dns, build_query(name))) for name in names]

    assert all(len(answer) == 1 for answer in first)
    addresses = [answer[0] for answer in first]
    assert len(set(addresses)) == len(names)
    assert all(ipaddress.IPv4Address(a) in FAKE_NETWORK for a in addresses)
    assert again == first and over_tcp == first


def test_sink_dns_treats_names_case_insensitively(running: RunningSink) -> None:
    lower = answer_addresses(ask_udp(running.dns, build_query("stats.vllm.example")))
    mixed = answer_addresses(ask_udp(running.dns, build_query("Stats.VLLM.Example")))

    assert lower == mixed


def test_sink_dns_echoes_the_query_id(running: RunningSink) -> None:
    reply = ask_tcp(running.dns, build_query("x.example", ident=0xCAFE))

    assert reply[:2] == b"\xca\xfe"


def test_sink_dns_records_one_json_line_per_query(running: RunningSink) -> None:
    address = answer_addresses(ask_udp(running.dns, build_query("stats.vllm.example")))[0]
    aaaa = ask_tcp(running.dns, build_query("stats.vllm.example", qtype=28))
    txt = ask_udp(running.dns, build_query("leak.invalid", qtype=16))

    events = wait_for_events(running.events_path, 3)

    assert answer_addresses(aaaa) == [] and answer_addresses(txt) == []
    # Where a conntrack table exists (as root), UDP names the resolver too; TCP always does.
    assert all(e.get("resolver", "127.0.0.1") == "127.0.0.1" for e in events)
    assert events[1]["resolver"] == "127.0.0.1"
    assert [{k: v for k, v in e.items() if k not in ("t", "resolver")} for e in events] == [
        {
            "kind": "dns",
            "qname": "stats.vllm.example",
            "qtype": "A",
            "answer": address,
            "transport": "udp",
        },
        {
            "kind": "dns",
            "qname": "stats.vllm.example",
            "qtype": "AAAA",
            "answer": "",
            "transport": "tcp",
        },
        {"kind": "dns", "qname": "leak.invalid", "qtype": "TXT", "answer": "", "transport": "udp"},
    ]
    assert all(abs(e["t"] - time.time()) < 60 for e in events)


def test_sink_dns_records_a_malformed_query_without_answering(running: RunningSink) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(b"\x00\x01garbage", running.dns)
        with pytest.raises(TimeoutError):
            sock.recv(4096)

    (event,) = wait_for_events(running.events_path, 1)

    assert event["kind"] == "dns" and event["transport"] == "udp"
    assert event["malformed"] == b"\x00\x01garbage".hex()


# --- TCP catch-all -----------------------------------------------------------------------


def test_sink_tcp_answers_http_and_records_the_request(running: RunningSink) -> None:
    body = json.dumps({"patient": "MRN-48213", "finding": "nodule"}).encode()

    reply = send_and_read_until_closed(running.tcp, http_post("/v1/collect?case=7", body))

    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    (event,) = wait_for_events(running.events_path, 1)
    assert event["kind"] == "http"
    assert (event["method"], event["path"], event["query"]) == ("POST", "/v1/collect", "case=7")
    assert event["http_host"] == "telemetry.example"
    assert event["headers"]["content-type"] == "application/json"
    assert "MRN-48213" in event["body"]
    assert json.loads(event["body"]) == {"patient": "MRN-48213", "finding": "nodule"}
    # A direct connection was not redirected: the destination is the sink's own address.
    assert (event["dst"], event["port"], event["host"]) == ("127.0.0.1", running.sink.tcp_port, "")


def test_sink_tcp_records_the_sni_of_a_tls_client(running: RunningSink) -> None:
    hello = client_hello()

    send_and_read_until_closed(running.tcp, hello)

    (event,) = wait_for_events(running.events_path, 1)
    assert event["kind"] == "tls"
    assert (event["sni"], event["alpn"]) == (SNI, ["h2", "http/1.1"])
    assert event["bytes"] == len(hello)


def test_sink_tcp_records_unknown_bytes_as_hex_and_text(running: RunningSink) -> None:
    data = b"\x00" + random.Random(0).randbytes(99)  # not TLS, not an HTTP method

    with socket.create_connection(running.tcp, timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""

    (event,) = wait_for_events(running.events_path, 1)
    assert event["kind"] == "tcp"
    assert event["preview"] == data[:256].hex()
    assert event["text"].startswith("\\x00") and event["bytes"] == 100


def test_sink_tcp_gives_up_on_a_silent_client(running: RunningSink) -> None:
    started = time.monotonic()
    with socket.create_connection(running.tcp, timeout=READ_TIMEOUT + 3) as sock:
        assert sock.recv(1) == b""  # the sink hangs up instead of waiting forever
        (event,) = wait_for_events(running.events_path, 1, timeout=READ_TIMEOUT + 3)

    assert time.monotonic() - started < READ_TIMEOUT + 3
    assert (event["kind"], event["bytes"], event["preview"]) == ("tcp", 0, "")


def test_sink_tcp_writes_whole_lines_for_concurrent_clients(running: RunningSink) -> None:
    def post(index: int) -> bytes:
        body = json.dumps({"client": index, "pad": "x" * 2000}).encode()
        return send_and_read_until_closed(running.tcp, http_post(f"/c/{index}", body))

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(post, range(20)))

    assert all(reply.startswith(b"HTTP/1.1 200 OK") for reply in replies)
    events = wait_for_events(running.events_path, 20)
    lines = read_lines(running.events_path)  # json.loads fails on a torn line
    assert len(events) == 20 == len([line for line in lines if line["kind"] == "open"])
    assert sorted(e["path"] for e in events) == sorted(f"/c/{i}" for i in range(20))
    assert sorted(json.loads(e["body"])["client"] for e in events) == list(range(20))


def test_sink_tcp_records_http_with_a_malformed_target(running: RunningSink) -> None:
    request = b"GET http://[::1/leak?mrn=MRN-48213 HTTP/1.1\r\nHost: x.example\r\n\r\n"

    send_and_read_until_closed(running.tcp, request)

    # The sink hung up, so whatever it was going to write is written.
    (event,) = wait_for_events(running.events_path, 1, timeout=0.5)
    assert "MRN-48213" in json.dumps(event)


def test_sink_tcp_answers_a_multipart_post_at_once(running: RunningSink) -> None:
    body = b"--b\r\nContent-Disposition: form-data\r\n\r\nMRN-48213\r\n--b--\r\n"
    started = time.monotonic()

    send_and_read_until_closed(running.tcp, http_post("/upload", body))

    assert time.monotonic() - started < READ_TIMEOUT / 2


def test_original_destination_falls_back_to_the_socket_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = listener.accept()
            with conn:
                assert original_destination(conn) == ("127.0.0.1", port)


def test_fake_addresses_map_back_to_their_names() -> None:
    names = FakeAddresses()

    first, second = names.address_for("a.example"), names.address_for("b.example")

    assert first != second and names.address_for("a.example") == first
    assert (names.name_for(first), names.name_for(second)) == ("a.example", "b.example")
    assert names.name_for("203.0.113.9") == ""


def test_event_log_appends_sorted_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "earlier"}\n')
    log = EventLog(path)
    try:
        log.write("dns", qname="x.example", answer="198.18.0.1")
        # Flushed at once: a reader sees the line while the log is still open.
        lines = path.read_text().splitlines()
    finally:
        log.close()

    assert len(lines) == 2
    event = json.loads(lines[1])
    assert (event["kind"], event["qname"], event["answer"]) == ("dns", "x.example", "198.18.0.1")
    assert list(event) == sorted(event)


# --- Entry point -------------------------------------------------------------------------


def test_sink_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    events_path, ready_path = tmp_path / "events.jsonl", tmp_path / "ready.json"
    dns_port, tcp_port = free_ports()
    argv = [
        sys.executable,
        "-m",
        "sandbox.isolation.sink",
        "--events",
        str(events_path),
        "--ready",
        str(ready_path),
        "--dns-port",
        str(dns_port),
        "--tcp-port",
        str(tcp_port),
    ]
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as process:
        try:
            ready = wait_for_ready(ready_path, process)
            assert (ready["pid"], ready["dns_port"], ready["tcp_port"]) == (
                process.pid,
                dns_port,
                tcp_port,
            )
            reply = ask_udp(("127.0.0.1", dns_port), build_query("stats.vllm.example"))
            (event,) = wait_for_events(events_path, 1)

            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    assert process.returncode == 0, stderr.decode()
    assert (event["qname"], event["answer"]) == ("stats.vllm.example", answer_addresses(reply)[0])
    assert read_events(events_path) == [event]


def wait_for_ready(path: Path, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sink exited before it was ready"
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return dict(json.loads(path.read_text()))
        time.sleep(0.05)
    raise AssertionError("the sink never wrote its ready file")


def test_sink_modules_import_only_the_standard_library() -> None:
    foreign = []
    for path in sorted(SINK_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                own = module == "sandbox.isolation.sink" or module.startswith(
                    "sandbox.isolation.sink."
                )
                if not own and module.split(".")[0] not in sys.stdlib_module_names:
                    foreign.append(f"{path.name}: {module}")

    assert foreign == []
    assert sink_server.__name__ == "sandbox.isolation.sink.server"


def test_sink_entry_point_starts_without_site_packages() -> None:
    # -S: no site-packages, as in a bare container holding only the standard library.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "sandbox.isolation.sink", "--help"],
        cwd=ROOT,
        capture_output=True,
        check=False,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr.decode()[-2000:]


# --- what a hostile client tries against the sink ------------------------------------------


def test_sink_records_a_connection_when_it_is_accepted(running: RunningSink) -> None:
    with socket.create_connection(running.tcp, timeout=5):
        (opened,) = [
            e for e in wait_for_lines(running.events_path, "open", 1, timeout=2) if e["conn"]
        ]  # before a byte was sent
    assert opened["port"] == running.sink.tcp_port


def test_sink_numbers_every_line_and_beats(running: RunningSink) -> None:
    send_and_read_until_closed(running.tcp, http_post("/x", b"{}"))
    beats = wait_for_lines(running.events_path, "heartbeat", 2, timeout=2)
    lines = read_lines(running.events_path)

    assert [line["seq"] for line in lines] == list(range(len(lines)))
    assert beats[1]["t"] - beats[0]["t"] == pytest.approx(HEARTBEAT_S, abs=0.15)


def test_sink_ends_a_trickled_opening_at_its_deadline(running: RunningSink) -> None:
    started = time.monotonic()
    with socket.create_connection(running.tcp, timeout=10) as sock:
        sock.sendall(b"mrn=MRN-12345 ")
        for _ in range(int(READ_TIMEOUT / 0.25) + 8):  # one byte every 0.25 s, past the deadline
            try:
                sock.sendall(b"x")
            except OSError:
                break
            time.sleep(0.25)
            if read_events(running.events_path):
                break
    (event,) = wait_for_events(running.events_path, 1, timeout=1)

    assert time.monotonic() - started < READ_TIMEOUT + 1.5
    assert event["kind"] == "tcp" and event["text"].startswith("mrn=MRN-12345 x")


def test_sink_records_a_flood_and_every_connection_in_it(running: RunningSink) -> None:
    flood = MAX_CONNECTIONS + 20
    idle = [socket.create_connection(running.tcp, timeout=5) for _ in range(flood)]
    try:
        opened = wait_for_lines(running.events_path, "open", flood, timeout=5)
        floods = wait_for_lines(running.events_path, "flood", 1, timeout=2)
    finally:
        for sock in idle:
            sock.close()
    assert len(opened) == flood and floods[0]["limit"] == MAX_CONNECTIONS
    time.sleep(READ_TIMEOUT + 0.5)  # the idle handlers give up and free their slots
    send_and_read_until_closed(running.tcp, http_post("/after-the-flood", b"{}"))
    after = [e for e in wait_for_events(running.events_path, 1) if e["kind"] == "http"]
    assert after and after[0]["path"] == "/after-the-flood"


def test_sink_records_tcp_to_port_53_that_is_not_dns_as_raw_tcp(running: RunningSink) -> None:
    send_and_read_until_closed(running.dns, b"POST /x HTTP/1.1\r\n\r\nmrn=MRN-48213")

    (event,) = wait_for_events(running.events_path, 1)

    assert event["kind"] == "tcp" and "mrn=MRN-48213" in event["text"]


def test_sink_records_names_past_its_fake_addresses(running: RunningSink) -> None:
    running.sink.names = FakeAddresses(ipaddress.IPv4Network("198.18.0.0/30"))  # 2 addresses
    for name in ("a.example", "b.example", "c.example"):
        ask_udp(running.dns, build_query(name))

    events = wait_for_events(running.events_path, 3)

    assert [e["qname"] for e in events] == ["a.example", "b.example", "c.example"]
    assert events[2]["answer"] == "" and "no fake addresses left" in events[2]["overflow"]


def wait_for_lines(path: Path, kind: str, count: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in read_lines(path) if line["kind"] == kind]
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"{count} {kind} lines expected, got {read_lines(path)}")


def test_sink_log_stops_writing_details_past_its_limit_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "e.jsonl", max_events=3)
    for n in range(6):
        log.write("udp", dst="198.51.100.1", port=n)
    log.write("heartbeat", pending=0)
    log.close()

    lines = read_lines(tmp_path / "e.jsonl")

    assert [line["kind"] for line in lines] == ["udp", "udp", "udp", "limit", "heartbeat"]
    assert lines[3]["after"] == 3 and lines[4]["suppressed"] == 2
    assert [line["seq"] for line in lines] == list(range(5))
