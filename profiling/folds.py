"""K-fold partitions and the per-fold normalisation protocol of
``evaluate`` (docs/evaluation.md).

``distinct_partitions`` and ``kfold_assignments`` deal the split's groups
into folds (every group held out exactly once per repeat, repeats that
cannot differ refused); ``default_anchors`` and ``fold_targets`` scale each
fold's rows with constants from reference rows that hold no test cell.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling.normalise import apply_constants, floor_spans, scale_constants

# Ranges below this share of the median range of the scenario's substrate
# are raised to it (normalise.floor_spans).
RANGE_FLOOR = 0.1


def distinct_partitions(n: int, k: int) -> int:
    """How many different ways ``n`` labelled groups can be dealt into ``k``
    unlabelled folds whose sizes differ by at most one:
    n! / (prod_f size_f! * prod_s m_s!), where m_s counts the folds of size s
    (folds of equal size are interchangeable). 1 when k >= n (leave one out)."""
    k = min(k, n)
    if k <= 1 or k >= n:
        return 1
    small, extra = divmod(n, k)
    sizes = {small + 1: extra, small: k - extra}
    denominator = 1
    for size, count in sizes.items():
        if count:
            denominator *= math.factorial(size) ** count * math.factorial(count)
    return math.factorial(n) // denominator


def kfold_assignments(groups: Sequence, folds: int, repeats: int, seed: int, unit: str = "group"
                      ) -> list[np.ndarray]:
    """Per repeat, the fold (0..K-1) of every element of ``groups``, with
    K = min(folds, distinct groups): the distinct groups are shuffled with a
    generator seeded by ``seed`` and dealt round-robin into the K folds, so
    every group is held out exactly once per repeat. Repeats get different
    shuffles and, where possible, different partitions; asking for more
    repeats than there are distinct partitions is a CapprofError naming the
    number of distinct groups (``unit`` names them in the message)."""
    labels = pd.Index(pd.unique(np.asarray(groups, dtype=object)))
    n = len(labels)
    if n < 2:
        raise CapprofError(f"cross-validation needs at least two {unit}s to hold out; these scores have {n}")
    if folds < 2:
        raise CapprofError(f"--folds must be at least 2 (got {folds})")
    if repeats < 1:
        raise CapprofError(f"--repeats must be at least 1 (got {repeats})")
    k = min(folds, n)
    possible = distinct_partitions(n, k)
    if repeats > possible:
        what = (f"{k}-fold cross-validation over {n} {unit}s is leave-one-{unit}-out: every repeat holds out "
                f"the same {n} folds" if k == n else
                f"{n} {unit}s have only {possible} distinct {k}-fold partitions")
        raise CapprofError(f"--repeats {repeats} cannot give different repeats: {what}; "
                           f"use --repeats {possible}" + ("" if k < 3 else " or fewer --folds"))
    codes = labels.get_indexer(np.asarray(groups, dtype=object))
    rng = np.random.default_rng(seed)
    seen: set = set()
    out = []
    while len(out) < repeats:
        order = rng.permutation(n)
        fold_of_group = np.empty(n, dtype=int)
        fold_of_group[order] = np.arange(n) % k
        if possible < 10**6:  # small spaces: make sure the repeats differ
            key = frozenset(frozenset(np.flatnonzero(fold_of_group == f)) for f in range(k))
            if key in seen:
                continue
            seen.add(key)
        out.append(fold_of_group[codes])
    return out



def default_anchors(teams: Sequence[str]) -> list[str]:
    """The anchor teams found among ``teams``: ``random`` and every team whose
    name starts with ``exploiter`` (the Melting Pot reference policies)."""
    return sorted(t for t in set(teams) if t == "random" or str(t).startswith("exploiter"))


def fold_targets(train_rows: pd.DataFrame, test_rows: pd.DataFrame, reference_rows: pd.DataFrame,
                 method: str, substrate_of: pd.Series, range_floor: float = RANGE_FLOOR
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalised training rows and test rows of one fold, with constants
    computed from ``reference_rows`` only (which must hold no test row):
    constants = floor_spans(scale_constants(reference_rows, method)), then
    s' = clip((s - low) / (high - low), 0, 1) for training and test rows
    (no clipping and no scaling for ``none``). Rows of scenarios without
    usable constants are left out of both."""
    if method == "none":
        return train_rows.assign(raw_score=train_rows["score"]), test_rows.assign(raw_score=test_rows["score"])
    constants = floor_spans(scale_constants(reference_rows, method), substrate_of, range_floor)
    return apply_constants(train_rows, constants, clip=True), apply_constants(test_rows, constants, clip=True)
