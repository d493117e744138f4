"""The network recipe (DESIGN.md §4.1), applied from inside the sandbox's network namespace.

A veth pair whose both ends stay in the namespace carries the default routes (IPv4 and IPv6), so
`connect()` to any address reaches netfilter instead of failing with ENETUNREACH. NAT rules on
OUTPUT send DNS to the sink's resolver and every other TCP flow to its catch-all port; other
packets (UDP, ICMP) travel the veth to its dead end, where the sink sniffs them. Nothing in the
namespace leads off the host.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

LINK, PEER = "sbx0", "sbx1"
LINK_V4, GATEWAY_V4 = "198.19.255.253/30", "198.19.255.254"
LINK_V6, GATEWAY_V6 = "fd5b:5b::1/64", "fe80::5b"


class NetworkSetupError(RuntimeError):
    """A command of the recipe failed; the message carries its output."""


def run(*argv: str) -> str:
    """Run one command; raise NetworkSetupError with its output when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkSetupError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def nat_rules(dns_port: int, tcp_port: int) -> str:
    """iptables-restore input: DNS to the resolver, other TCP to the catch-all, lo untouched."""
    return "\n".join(
        [
            "*nat",
            ":PREROUTING ACCEPT [0:0]",
            ":INPUT ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]",
            f"-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports {dns_port}",
            f"-A OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports {dns_port}",
            "-A OUTPUT -o lo -j RETURN",
            f"-A OUTPUT -p tcp -j REDIRECT --to-ports {tcp_port}",
            "COMMIT",
            "",
        ]
    )


def has_ipv6() -> bool:
    """True when IPv6 is enabled in this namespace."""
    flag = Path("/proc/sys/net/ipv6/conf/all/disable_ipv6")
    return flag.exists() and flag.read_text().strip() == "0"


def set_up(dns_port: int, tcp_port: int) -> bool:
    """Build the dead-end link, the routes and the NAT rules; returns whether IPv6 is covered."""
    run("ip", "link", "set", "lo", "up")
    run("ip", "link", "add", LINK, "type", "veth", "peer", "name", PEER)
    run("ip", "link", "set", PEER, "up")
    run("ip", "link", "set", LINK, "up")
    peer_mac = _links()[PEER]
    run("ip", "addr", "add", LINK_V4, "dev", LINK)
    run("ip", "neigh", "replace", GATEWAY_V4, "lladdr", peer_mac, "dev", LINK, "nud", "permanent")
    run("ip", "route", "replace", "default", "via", GATEWAY_V4, "dev", LINK)
    _load("iptables-restore", nat_rules(dns_port, tcp_port))
    ipv6 = has_ipv6()
    if ipv6:
        run("ip", "-6", "addr", "add", LINK_V6, "dev", LINK, "nodad")
        run(
            "ip",
            "-6",
            "neigh",
            "replace",
            GATEWAY_V6,
            "lladdr",
            peer_mac,
            "dev",
            LINK,
            "nud",
            "permanent",
        )
        run("ip", "-6", "route", "replace", "default", "via", GATEWAY_V6, "dev", LINK)
        _load("ip6tables-restore", nat_rules(dns_port, tcp_port))
    return ipv6


def _load(command: str, rules: str) -> None:
    done = subprocess.run([command], input=rules, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkSetupError(f"{command} failed: {done.stderr.strip()}")


def _links() -> dict[str, str]:
    """Interface name → MAC address in this namespace (not /sys: that shows the mount's)."""
    return {link["ifname"]: link.get("address", "") for link in json.loads(run("ip", "-j", "link"))}


def interfaces() -> list[str]:
    """The network interfaces this namespace has."""
    return sorted(_links())


def is_closed() -> bool:
    """True when the only interfaces are loopback and the dead-end pair."""
    return set(interfaces()) <= {"lo", LINK, PEER}
