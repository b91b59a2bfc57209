"""End-to-end on the published Melting Pot 2.0 results (slow: real sampling)."""

from __future__ import annotations

import io

import pandas as pd
import pytest


@pytest.mark.slow
def test_layout_beats_aggmean_on_published_random_cells(cli, published_path):
    r = cli("evaluate", published_path, "--models", "aggmean,assessor,layout-joint", "--repeats", "1",
            "--seed", "3", "--format", "csv", "--quiet")
    assert r.code == 0, r.err
    table = pd.read_csv(io.StringIO(r.out))
    pooled = table[table["team"] == "ALL"].set_index("model")["mse"]
    assert pooled["layout-joint"] < 0.6 * pooled["aggmean"], pooled
    assert pooled["layout-joint"] < 1.2 * pooled["assessor"], pooled
    # every MAPLA gets a per-team row
    assert table.loc[table["model"] == "layout-joint", "team"].nunique() >= 8
