"""`make bench`: every benchmark script in turn; each writes its section of bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    for script in ("capacity.py", "intake.py", "rebuild.py"):
        print(f"== {script}", flush=True)
        code = subprocess.call([sys.executable, str(BENCH / script)])
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
