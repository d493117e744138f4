"""The exit codes of `sandbox run` and `sandbox report`, in one place (the README lists them)."""

EXIT_INCOMPLETE = 3  # errored trials, or a sink died (capture incomplete): rerun to complete
EXIT_THRESHOLD = 4  # `sandbox report`: a --fail-on threshold was crossed
EXIT_INTERRUPTED = 130
