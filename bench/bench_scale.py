"""How `capprof compare` and `capprof scores` scale with rows.

Builds synthetic score tables of 10k / 100k / 1M rows (10 teams x 40 catalog
scenarios x replicates), times `compare --reps 200` and `scores` on each in
this process, and prints seconds and seconds per 10k rows (near-linear
scaling keeps the last column flat). Usage: python bench/bench_scale.py [ROWS ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from capprof.profiling.normalise import aggregate, normalise
from capprof.reports.compare import compare_teams
from capprof.scores import validate_scores
from capprof.tagging.catalog import load_catalog

TEAMS, SCENARIOS, REPS = 10, 40, 200


def table(rows: int) -> pd.DataFrame:
    catalog = load_catalog()[["scenario", "substrate"]].head(SCENARIOS)
    replicates = max(1, rows // (TEAMS * SCENARIOS))
    frame = pd.MultiIndex.from_product([[f"team{i}" for i in range(TEAMS)], catalog["scenario"], range(replicates)],
                                       names=["team", "scenario", "replicate"]).to_frame(index=False)
    frame["substrate"] = frame["scenario"].map(dict(zip(catalog["scenario"], catalog["substrate"])))
    frame["score"] = np.random.default_rng(0).normal(size=len(frame)).round(3)  # ties, as real returns have
    return frame


def main(sizes) -> None:
    print(f"{'rows':>9} {'scores s':>9} {'compare s':>10} {'compare s/10k rows':>19}")
    for rows in sizes:
        raw = table(rows)
        start = time.perf_counter()
        scores = validate_scores(raw)
        aggregate(normalise(scores, "minmax"), "overall")
        t_scores = time.perf_counter() - start
        start = time.perf_counter()
        compare_teams(normalise(scores, "minmax"), reps=REPS, progress=False)
        t_compare = time.perf_counter() - start
        print(f"{len(raw):>9} {t_scores:>9.2f} {t_compare:>10.2f} {t_compare / len(raw) * 1e4:>19.3f}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
