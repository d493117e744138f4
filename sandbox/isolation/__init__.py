"""Sandboxes for model servers: the egress sink, the network rules, the isolation backends.

This file imports nothing: the sink (`sandbox.isolation.sink`) must start in a bare container
with only the standard library. Import the backends from `sandbox.isolation.select`.
"""
