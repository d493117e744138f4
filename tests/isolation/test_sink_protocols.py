"""The sink's parsers on real wire bytes: DNS, HTTP/1, TLS ClientHello, Ethernet frames."""

from __future__ import annotations

import ipaddress
import random
import ssl
import struct

import pytest

from sandbox.isolation.sink import protocols
from sandbox.isolation.sink.protocols import (
    MAX_BODY,
    MAX_PREVIEW,
    ClientHello,
    DnsQuery,
    Frame,
    dns_answer,
    is_http,
    is_neighbour_noise,
    is_tls,
    parse_client_hello,
    parse_dns_query,
    parse_frame,
    parse_http_request,
    preview,
    preview_text,
)

QTYPE = {"A": 1, "AAAA": 28, "TXT": 16}
SNI = "stats.vllm.example"


def build_query(name: str, qtype: int = 1, ident: int = 0x1234, rd: bool = True) -> bytes:
    """A DNS query as a stub resolver sends it: header, labels, qtype, class IN."""
    header = struct.pack("!HHHHHH", ident, 0x0100 if rd else 0, 1, 0, 0, 0)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".") if part)
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def read_answer(reply: bytes) -> tuple[int, int, int, int, list[str]]:
    """ID, flags, question count, answer count and the A addresses of a DNS response."""
    ident, flags, qdcount, ancount = struct.unpack("!HHHH", reply[:8])
    at = 12
    while reply[at] != 0:
        at += 1 + reply[at]
    at += 5  # the root label, qtype, qclass
    addresses = []
    for _ in range(ancount):
        rtype, _, _, rdlength = struct.unpack("!HHIH", reply[at + 2 : at + 12])
        rdata = reply[at + 12 : at + 12 + rdlength]
        if rtype == 1:
            addresses.append(str(ipaddress.IPv4Address(rdata)))
        at += 12 + rdlength
    assert at == len(reply), "trailing bytes after the answer section"
    return ident, flags, qdcount, ancount, addresses


def client_hello(server_hostname: str | None = SNI, alpn: list[str] | None = None) -> bytes:
    """The first flight of a real TLS client (Python's ssl module), never sent anywhere."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_hostname is None:
        context.check_hostname = False
    if alpn:
        context.set_alpn_protocols(alpn)
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# --- DNS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("qtype", ["A", "AAAA", "TXT"])
def test_parse_dns_query_reads_name_type_and_id(qtype: str) -> None:
    query = parse_dns_query(build_query("stats.vllm.example", QTYPE[qtype], ident=0xBEEF))

    assert query is not None
    assert (query.id, query.name, query.qtype, query.type_name) == (
        0xBEEF,
        "stats.vllm.example",
        QTYPE[qtype],
        qtype,
    )
    assert query.flags & 0x0100  # recursion desired


def test_parse_dns_query_reads_names_with_many_and_long_labels() -> None:
    name = ".".join(f"l{i}" for i in range(40)) + "." + "x" * 63 + ".example"

    query = parse_dns_query(build_query(name))

    assert query is not None
    assert query.name == name


def test_parse_dns_query_folds_the_name_to_lower_case() -> None:
    query = parse_dns_query(build_query("HuggingFace.Example"))

    assert query is not None
    assert query.name == "huggingface.example"


def test_parse_dns_query_names_unknown_types_by_number() -> None:
    query = parse_dns_query(build_query("x.example", qtype=99))

    assert query is not None
    assert query.type_name == "99"


def test_parse_dns_query_ignores_an_edns_record_after_the_question() -> None:
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    data = bytearray(build_query("x.example") + opt)
    data[11] = 1  # ARCOUNT

    query = parse_dns_query(bytes(data))

    assert query is not None
    assert query.name == "x.example"
    assert query.question == build_query("x.example")[12:]


@pytest.mark.parametrize("rd", [True, False])
def test_dns_answer_for_a_returns_one_record_with_the_address(rd: bool) -> None:
    query = parse_dns_query(build_query("stats.vllm.example", ident=0x4242, rd=rd))
    assert query is not None

    ident, flags, qdcount, ancount, addresses = read_answer(dns_answer(query, "198.18.0.7"))

    assert ident == 0x4242
    assert flags & 0x8000  # QR: a response
    assert bool(flags & 0x0100) == rd  # RD echoed
    assert flags & 0x000F == 0  # NOERROR
    assert (qdcount, ancount, addresses) == (1, 1, ["198.18.0.7"])


def test_dns_answer_without_address_is_noerror_with_no_records() -> None:
    query = parse_dns_query(build_query("stats.vllm.example", QTYPE["AAAA"]))
    assert query is not None

    reply = dns_answer(query, None)
    ident, flags, qdcount, ancount, addresses = read_answer(reply)

    assert (ident, flags & 0x800F, qdcount, ancount, addresses) == (0x1234, 0x8000, 1, 0, [])
    assert reply[12:] == query.question


def test_dns_answer_is_accepted_by_a_real_resolver_library() -> None:
    dns_message = pytest.importorskip("dns.message")
    import dns.flags
    import dns.rcode
    import dns.rdatatype

    for rdtype, address in (("A", "198.18.3.4"), ("AAAA", None)):
        sent = dns_message.make_query("Stats.VLLM.example", rdtype, use_edns=0, id=777)
        query = parse_dns_query(sent.to_wire())
        assert query is not None

        reply = dns_message.from_wire(dns_answer(query, address))

        assert sent.is_response(reply)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.RD
        if address:
            (rrset,) = reply.answer
            assert rrset.rdtype == dns.rdatatype.A
            assert [r.address for r in rrset] == [address]
        else:
            assert reply.answer == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        build_query("x.example")[:12],
        build_query("stats.vllm.example")[:20],  # cut inside a label
        build_query("stats.vllm.example")[:-2],  # cut inside qtype/qclass
        bytes([0x12, 0x34, 0x81, 0x80]) + build_query("x.example")[4:],  # a response
        build_query("x.example")[:4] + b"\x00\x00" + build_query("x.example")[6:],  # no question
        build_query("a.example")[:12] + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",  # label 64
        build_query("a.example")[:12] + b"\xc0\x0c\x00\x00\x01\x00\x01",  # compression pointer
    ],
    ids=[
        "empty",
        "header-only",
        "cut-label",
        "cut-qtype",
        "response",
        "qdcount-0",
        "label-64",
        "pointer",
    ],
)
def test_parse_dns_query_rejects_malformed_messages(data: bytes) -> None:
    assert parse_dns_query(data) is None


# --- HTTP --------------------------------------------------------------------------------


def test_parse_http_request_reads_absolute_form_get() -> None:
    data = (
        b"GET http://stats.vllm.example/leak?mrn=12345&x=1 HTTP/1.1\r\n"
        b"Host: stats.vllm.example\r\nAccept: */*\r\n\r\n"
    )

    request = parse_http_request(data)

    assert request is not None
    assert (request.method, request.version) == ("GET", "HTTP/1.1")
    assert (request.path, request.query) == ("/leak", "mrn=12345&x=1")
    assert request.host == "stats.vllm.example"
    assert request.body == b""


def test_parse_http_request_reads_origin_form_without_path() -> None:
    request = parse_http_request(b"GET ?q=1 HTTP/1.0\r\n\r\n")

    assert request is not None
    assert (request.path, request.query) == ("/", "q=1")


def test_parse_http_request_reads_post_body_and_folds_header_names() -> None:
    body = b'{"mrn": "MRN-48213", "finding": "nodule"}'
    data = (
        b"POST /v1/collect?case=7 HTTP/1.1\r\nHOST: telemetry.example:8080\r\n"
        b"Content-Type:   application/json  \r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body

    request = parse_http_request(data)

    assert request is not None
    assert request.method == "POST"
    assert request.headers == {
        "host": "telemetry.example:8080",
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    assert request.host == "telemetry.example"
    assert request.body == body


def test_parse_http_request_accepts_bare_newlines() -> None:
    request = parse_http_request(b"PUT /a HTTP/1.1\nHost: h.example\nX-Case: 9\n\npayload")

    assert request is not None
    assert (request.method, request.path, request.host) == ("PUT", "/a", "h.example")
    assert request.headers["x-case"] == "9"
    assert request.body == b"payload"


def test_parse_http_request_bounds_the_body() -> None:
    data = b"POST / HTTP/1.1\r\nContent-Length: 9000\r\n\r\n" + b"a" * 9000

    request = parse_http_request(data)

    assert request is not None
    assert request.body == b"a" * MAX_BODY


def test_http_host_keeps_a_bracketed_ipv6_literal_without_port() -> None:
    request = parse_http_request(b"GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n")

    assert request is not None
    assert request.host == "[2001:db8::1]"


def test_http_host_strips_the_port_from_an_ipv6_literal() -> None:
    request = parse_http_request(b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n")

    assert request is not None
    assert request.host in ("[2001:db8::1]", "2001:db8::1")


def test_parse_http_request_keeps_crlf_inside_the_body() -> None:
    body = b"--b\r\nContent-Disposition: form-data\r\n\r\nMRN-48213\r\n--b--\r\n"
    data = b"POST /up HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    request = parse_http_request(data)

    assert request is not None
    assert request.body == body


@pytest.mark.parametrize("target", [b"http://[::1/leak?mrn=1", b"http://[bad]/leak?mrn=1"])
def test_http_path_of_a_malformed_absolute_target_does_not_raise(target: bytes) -> None:
    request = parse_http_request(b"GET " + target + b" HTTP/1.1\r\n\r\n")

    assert request is not None
    assert isinstance(request.path, str) and isinstance(request.query, str)


@pytest.mark.parametrize(
    "data",
    [b"", b"GET /\r\n\r\n", b"GET  / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello"],
    ids=["empty", "two-parts", "double-space", "tls"],
)
def test_parse_http_request_rejects_a_malformed_request_line(data: bytes) -> None:
    assert parse_http_request(data) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", True),
        (b"POST /x HTTP/1.1\r\n", True),
        (b"CONNECT h.example:443 HTTP/1.1\r\n", True),
        (b"get / HTTP/1.1\r\n", False),
        (b"GETX / HTTP/1.1\r\n", False),
        (b"SSH-2.0-OpenSSH_9.6\r\n", False),
        (b"", False),
    ],
)
def test_is_http_recognises_request_methods(data: bytes, expected: bool) -> None:
    assert is_http(data) is expected


# --- TLS ---------------------------------------------------------------------------------


def test_parse_client_hello_reads_sni_and_alpn_from_a_real_hello() -> None:
    data = client_hello(SNI, ["h2", "http/1.1"])

    assert is_tls(data) and not is_http(data)
    assert parse_client_hello(data) == ClientHello(SNI, ["h2", "http/1.1"])


def test_parse_client_hello_without_sni_or_alpn() -> None:
    assert parse_client_hello(client_hello(None)) == ClientHello("", [])


def test_parse_client_hello_survives_every_truncation() -> None:
    data = client_hello(SNI, ["h2", "http/1.1"])

    for length in range(len(data)):
        hello = parse_client_hello(data[:length])
        # A cut hello is either rejected or yields what was there (a name may be cut short).
        assert hello is None or (SNI.startswith(hello.sni) and len(hello.alpn) <= 2)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x16\x03", b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", b"GET / HTTP/1.1\r\n\r\n"],
    ids=["empty", "two-bytes", "server-hello", "http"],
)
def test_parse_client_hello_rejects_what_is_not_a_client_hello(data: bytes) -> None:
    assert parse_client_hello(data) is None


# --- Frames ------------------------------------------------------------------------------

MACS = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")


def ipv4(proto: int, src: str, dst: str, payload: bytes, options: bytes = b"") -> bytes:
    header_words = 5 + len(options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | header_words,
        0,
        header_words * 4 + len(payload),
        1,
        0,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return MACS + b"\x08\x00" + header + options + payload


def ipv6(next_header: int, src: str, dst: str, payload: bytes) -> bytes:
    header = struct.pack("!IHBB", 0x60000000, len(payload), next_header, 64)
    addresses = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    return MACS + b"\x86\xdd" + header + addresses + payload


def udp(dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload


def test_parse_frame_reads_ipv4_udp() -> None:
    frame = parse_frame(ipv4(17, "198.19.255.253", "203.0.113.9", udp(123, b"ntp?")))

    assert frame == Frame(4, "udp", "198.19.255.253", "203.0.113.9", 123, b"ntp?")


def test_parse_frame_honours_ipv4_options() -> None:
    frame = parse_frame(ipv4(17, "198.51.100.1", "203.0.113.9", udp(9, b"x"), options=b"\x01" * 4))

    assert frame is not None
    assert (frame.port, frame.payload) == (9, b"x")


def test_parse_frame_reads_ipv6_udp() -> None:
    frame = parse_frame(ipv6(17, "fd5b:5b::1", "2001:db8::53", udp(443, b"quic")))

    assert frame == Frame(6, "udp", "fd5b:5b::1", "2001:db8::53", 443, b"quic")


def test_parse_frame_reads_tcp_past_its_header() -> None:
    tcp = struct.pack("!HHIIBBHHH", 40000, 8443, 0, 0, 6 << 4, 0x02, 1024, 0, 0)
    tcp += b"\x02\x04\x05\xb4" + b"data"  # one option word, then data

    frame = parse_frame(ipv4(6, "198.51.100.1", "203.0.113.9", tcp))

    assert frame is not None
    assert (frame.protocol, frame.port, frame.payload) == ("tcp", 8443, b"data")


def test_parse_frame_reads_ipv4_icmp_without_port() -> None:
    echo = b"\x08\x00\x00\x00\x00\x01\x00\x01ping"

    frame = parse_frame(ipv4(1, "198.19.255.253", "169.254.169.254", echo))

    assert frame == Frame(4, "icmp", "198.19.255.253", "169.254.169.254", 0, echo)
    assert not is_neighbour_noise(frame)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        ipv4(17, "198.51.100.1", "203.0.113.9", b"")[:30],  # IPv4 header cut short
        ipv6(17, "fd5b:5b::1", "2001:db8::1", b"")[:50],  # IPv6 header cut short
    ],
    ids=["empty", "short-ipv4", "short-ipv6"],
)
def test_parse_frame_ignores_what_cannot_be_a_packet(data: bytes) -> None:
    assert parse_frame(data) is None


@pytest.mark.parametrize(
    ("data", "protocol", "port"),
    [
        (ipv4(47, "198.51.100.1", "203.0.113.9", b"gre"), "gre", 0),
        (ipv4(136, "198.51.100.1", "203.0.113.9", udp(5000, b"lite")), "udplite", 5000),
        (ipv4(132, "198.51.100.1", "203.0.113.9", udp(3868, b"\x00" * 4 + b"sctp")), "sctp", 3868),
        (ipv4(253, "198.51.100.1", "203.0.113.9", b"exp"), "ip-253", 0),
        (MACS + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20), "arp", 0),
        (MACS + b"\x88\xb5" + b"local-experimental", "ethertype-88b5", 0),
    ],
    ids=["gre", "udplite", "sctp", "unassigned", "arp", "other-ethertype"],
)
def test_parse_frame_names_every_protocol(data: bytes, protocol: str, port: int) -> None:
    frame = parse_frame(data)

    assert frame is not None and (frame.protocol, frame.port) == (protocol, port)


def test_parse_frame_walks_ipv6_extension_headers_to_the_payload() -> None:
    routing = bytes([44, 0, 0, 0]) + bytes(4)  # next: fragment; 8 bytes in all
    fragment = bytes([17, 0]) + struct.pack("!H", 0x0001) + bytes(4)  # first piece, more follow
    packet = ipv6(43, "fd5b:5b::1", "2001:db8::7", routing + fragment + udp(4242, b"mrn=MRN-1"))

    frame = parse_frame(packet)

    assert frame is not None
    assert (frame.protocol, frame.destination, frame.port) == ("udp", "2001:db8::7", 4242)
    assert frame.payload == b"mrn=MRN-1" and frame.fragment
    assert frame.extensions == ("routing", "fragment")


def test_parse_frame_skips_later_fragments_of_a_recorded_datagram() -> None:
    later = bytes([17, 0]) + struct.pack("!H", 8 << 3) + bytes(4)  # offset 64 bytes
    assert parse_frame(ipv6(44, "fd5b:5b::1", "2001:db8::7", later + b"rest")) is None
    first = ipv4(17, "198.51.100.1", "203.0.113.9", udp(9, b"x"))
    piece = first[:20] + struct.pack("!H", 0x0010) + first[22:]  # IPv4 flags/offset field
    assert parse_frame(piece) is None


def test_preview_text_shows_printable_bytes_and_escapes_the_rest() -> None:
    assert preview_text(b"mrn=MRN-12345\x00\xff\\") == "mrn=MRN-12345\\x00\\xff\\x5c"


def test_neighbour_solicitation_is_noise_but_echo_request_is_not() -> None:
    solicitation = b"\x87\x00\x00\x00\x00\x00\x00\x00" + bytes(16)
    echo = b"\x80\x00\x00\x00\x00\x01\x00\x01"

    noise = parse_frame(ipv6(58, "fe80::1", "ff02::1:ff00:1", solicitation))
    ping = parse_frame(ipv6(58, "fd5b:5b::1", "2001:db8::1", echo))

    assert noise is not None and ping is not None
    assert noise.protocol == ping.protocol == "icmpv6"
    assert is_neighbour_noise(noise)
    assert not is_neighbour_noise(ping)


def test_preview_is_bounded_hex() -> None:
    data = bytes(range(200))

    assert preview(data) == data[:MAX_PREVIEW].hex()
    assert preview(b"") == ""


# --- Fuzz --------------------------------------------------------------------------------

SEEDS = [
    build_query("stats.vllm.example"),
    b"POST /x?y=1 HTTP/1.1\r\nHost: h.example:80\r\nContent-Length: 3\r\n\r\nabc",
    client_hello(SNI, ["h2", "http/1.1"]),
    ipv4(17, "198.51.100.1", "203.0.113.9", udp(53, b"q")),
    ipv6(58, "fe80::1", "ff02::1", b"\x87\x00"),
    ipv4(6, "198.51.100.1", "203.0.113.9", bytes(24)),
]


def fuzz_inputs(rng: random.Random, count: int) -> list[bytes]:
    """Random bytes, valid messages with random bytes flipped, and valid messages cut short."""
    inputs = []
    for i in range(count):
        seed = rng.choice(SEEDS)
        if i % 3 == 0:
            inputs.append(rng.randbytes(rng.randrange(0, 300)))
        elif i % 3 == 1:
            data = bytearray(seed)
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            inputs.append(bytes(data))
        else:
            inputs.append(seed[: rng.randrange(len(seed))] + rng.randbytes(rng.randrange(0, 8)))
    return inputs


def test_parsers_never_raise_on_arbitrary_bytes() -> None:
    for data in fuzz_inputs(random.Random(0), 4000):
        query = parse_dns_query(data)
        if query is not None:
            assert isinstance(query, DnsQuery)
            dns_answer(query, "198.18.0.1")
            dns_answer(query, None)
        request = parse_http_request(data)
        if request is not None:
            assert isinstance(request.host + request.path + request.query, str)
        is_http(data)
        is_tls(data)
        assert parse_client_hello(data) is None or isinstance(parse_client_hello(data), ClientHello)
        frame = parse_frame(data)
        if frame is not None:
            is_neighbour_noise(frame)
        assert len(preview(data)) <= 2 * protocols.MAX_PREVIEW
