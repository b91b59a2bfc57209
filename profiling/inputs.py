"""The profiling stage's inputs: a score table, normalised, and the demand
matrix of its scenarios (``capprof evaluate``, ``profile``, the demo and the
study all start here)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from capprof.errors import CapprofError


@dataclass(frozen=True)
class ScoredDemands:
    """Scores (the tidy table of docs/schema.md, normalised by
    ``normalisation``, or raw when it is None), the demand matrix of the
    scored scenarios (scenario x demand), the scenarios normalisation left
    out (a zero range) and where the scores and demands came from."""

    scores: pd.DataFrame
    demands: pd.DataFrame
    dropped: list[str]
    normalisation: str | None
    tags: str
    demands_file: str | None

    def metadata(self) -> dict:
        """What a profile records about its inputs (model.json)."""
        return {"normalisation": self.normalisation, "tags": self.tags, "demands_file": self.demands_file,
                "dropped_scenarios": self.dropped}


def load_scores_and_demands(scores_path, demands_file=None, tags: str = "all",
                            normalisation: str | None = "minmax") -> ScoredDemands:
    """Scores (validated against the catalog and custom scenarios),
    normalised by ``normalisation`` (None: left raw, for `evaluate`, which
    normalises per fold from training rows only), and the demands of the
    scored scenarios. One CapprofError line when nothing is left."""
    from capprof.profiling.normalise import dropped_scenarios, normalise
    from capprof.scores import load_scores
    from capprof.tagging.catalog import load_catalog
    from capprof.tagging.demands import custom_demands_for, demand_matrix, known_scenarios, resolve_tag_set

    catalog = load_catalog()
    resolve_tag_set(tags, catalog)  # a bad --tags is one line before the scores are read (and noted on)
    custom = custom_demands_for(scores_path, demands_file, catalog)
    scores = load_scores(scores_path, known_scenarios=known_scenarios(custom, catalog), min_teams=2)
    dropped = []
    if normalisation is not None:
        dropped = dropped_scenarios(scores, normalisation)
        scores = normalise(scores, normalisation)
        if scores.empty:
            raise CapprofError(f"{scores_path}: no scores remain after {normalisation} normalisation; every "
                               "scenario was degenerate (all teams tied)")
    demands = demand_matrix(sorted(scores["scenario"].unique()), tags=tags, custom=custom, catalog=catalog)
    return ScoredDemands(scores, demands, dropped, normalisation, tags,
                         str(demands_file) if demands_file else None)
