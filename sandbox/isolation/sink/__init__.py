"""The egress sink: runs inside a sandbox's network namespace and records every connection.

Standard library only, so the same code runs on the host (namespace backend) and in a minimal
container (docker backend). Start it with `python -m sandbox.isolation.sink`.
"""
