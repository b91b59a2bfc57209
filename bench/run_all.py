"""Run every bench/bench_*.py script in turn; each prints its own table."""

import runpy
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
scripts = sorted(p for p in here.glob("bench_*.py"))
only = set(sys.argv[1:])
for script in scripts:
    if only and script.stem not in only:
        continue
    print(f"\n=== {script.name} ===", flush=True)
    runpy.run_path(str(script), run_name="__main__")
