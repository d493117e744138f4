"""`python -m sandbox.isolation.sink`: set up the namespace, serve, and say when ready.

The ready file is written only after the rules are loaded and every listener is bound; a
sandbox must not start anything before it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from sandbox.isolation.sink import network
from sandbox.isolation.sink.log import EventLog
from sandbox.isolation.sink.server import Sink


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, set up, write the ready file, then serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.isolation.sink")
    parser.add_argument("--events", type=Path, required=True, help="JSON-lines event file")
    parser.add_argument("--ready", type=Path, required=True, help="written once serving")
    parser.add_argument("--dns-port", type=int, default=15353)
    parser.add_argument("--tcp-port", type=int, default=15001)
    parser.add_argument("--setup-network", action="store_true", help="apply the recipe first")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        ipv6 = network.set_up(args.dns_port, args.tcp_port) if args.setup_network else False
        if args.setup_network and not network.is_closed():
            raise network.NetworkSetupError(
                f"refusing to serve: unexpected interfaces {network.interfaces()}"
            )
        sink = Sink(EventLog(args.events), args.dns_port, args.tcp_port, ipv6)
        sink.start(network.PEER if args.setup_network else None)
    except (OSError, network.NetworkSetupError) as exc:
        print(f"sink: {exc}", file=sys.stderr, flush=True)
        return 2
    ready = {
        "pid": os.getpid(),
        "ipv6": ipv6,
        "dns_port": args.dns_port,
        "tcp_port": args.tcp_port,
        "interfaces": network.interfaces() if args.setup_network else [],
    }
    partial = args.ready.with_name(args.ready.name + ".tmp")
    partial.write_text(json.dumps(ready))
    os.replace(partial, args.ready)  # readers never see a half-written file
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
