"""`capprof demo`: the main job on an embedded default.

Chain: load the published Melting Pot 2.0 results (local copy or download),
normalise per scenario, and summarise per team.
"""

from __future__ import annotations

import sys
from pathlib import Path

from capprof.scores import PUBLISHED_NAME, PUBLISHED_URL

# Where the published results sit beside a checkout (../shared/data), tried
# before downloading them.
LOCAL_CANDIDATES = (
    Path("..") / "shared" / "data" / PUBLISHED_NAME,
    Path(__file__).resolve().parents[2] / "shared" / "data" / PUBLISHED_NAME,
)


def find_published(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    for candidate in LOCAL_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    return PUBLISHED_URL


def run_demo(published: str | None = None, out=sys.stdout) -> int:
    from capprof.profiling.normalise import aggregate, normalise
    from capprof.scores import load_scores
    from capprof.tagging.demands import known_scenarios

    source = find_published(published)
    print(f"capprof demo: published Melting Pot 2.0 results from {source}", file=out)
    scores = normalise(load_scores(source, known_scenarios=known_scenarios(), min_teams=2), "minmax")
    by_substrate = aggregate(scores, "substrate").pivot(index="level", columns="team", values="score")
    overall = aggregate(scores, "overall").set_index("team")["score"].sort_values(ascending=False)
    print("\nOverall (contest aggregate of per-scenario min-max scores):", file=out)
    print(overall.to_string(float_format=lambda v: f"{v:.3f}"), file=out)
    print("\nPer substrate:", file=out)
    print(by_substrate.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-"), file=out)
    print("(- : the team has no scores on that substrate)", file=out)
    return 0
