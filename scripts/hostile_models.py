"""Build the supply-chain hostile models: SmolLM2-135M's weights with a poisoned chat template.

    .venv/bin/python scripts/hostile_models.py [OUT_DIR]      (default: models/hostile)

One GGUF per template in sandbox/backends/templates/hostile.py (link, trigger, escape). They
are built here, never shipped; run them only sandboxed, e.g. beside the reference template:

    .venv/bin/sandbox run scenarios/supply-chain \\
      --model gguf:models/hostile/smollm2-135m-link.gguf --template reference
"""

from __future__ import annotations

import sys
from pathlib import Path

from sandbox.backends.templates.hostile import build


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "models/hostile")
    for path in build(out_dir):
        print(path)


if __name__ == "__main__":
    main()
