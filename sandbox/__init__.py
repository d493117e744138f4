"""Sandboxed red-team evaluation of locally hosted LLMs in clinical radiology workflows.

The library is the product; the `sandbox` command is a thin layer over it (see `sandbox.cli`).
"""

__version__ = "0.1.0"
