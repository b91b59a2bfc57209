"""Declarative substrate variants: ``SUBSTRATE:key=value[,key=value...]``."""

from __future__ import annotations

import pytest

from capprof.errors import CapprofError
from capprof.runners.scenarios import ComponentKwarg, DisableAction, get_scenario


def test_every_spelling_of_a_variant_is_one_canonical_scenario():
    a = get_scenario("commons_harvest__open:zap_cooldown=10,regrowth=0.316")
    b = get_scenario("commons_harvest__open: regrowth=3.16e-1 ,zap_cooldown=10")
    assert a == b and a.name == "commons_harvest__open:regrowth=0.316,zap_cooldown=10"
    assert a.overrides == (ComponentKwarg("DensityRegrow", "regrowthProbabilities", scale=0.316),
                           ComponentKwarg("Zapper", "cooldownTime", value=10))
    assert a.n_background == 0 and a.n_focal == 7
    assert set(a.tags) == {"scarcity", "restraint"}
    assert "x0.316" in a.description and "once every 10 steps" in a.description


@pytest.mark.parametrize("spelling, suite_name", [
    ("commons_harvest__open:regrowth=0.01", "commons_harvest__open__regrowth_x0p01"),
    ("commons_harvest__open:regrowth=10", "commons_harvest__open__regrowth_x10"),
    ("commons_harvest__open:no_zap", "commons_harvest__open__no_zap"),
])
def test_the_variants_suite_scenarios_are_spellings_of_the_declarative_form(spelling, suite_name):
    assert get_scenario(spelling) == get_scenario(suite_name)


def test_abundance_is_not_tagged_scarce_and_no_zap_is_restraint():
    assert get_scenario("commons_harvest__open:regrowth=100").tags == ()
    assert get_scenario("commons_harvest__open:regrowth=2,no_zap").overrides[-1] == DisableAction("fireZap")


@pytest.mark.parametrize("spec, needle", [
    ("commons_harvest__open:regrow=2", 'unknown key "regrow" (did you mean "regrowth"?); allowed keys: regrowth'),
    ("commons_harvest__open:farmer=1", "allowed keys: regrowth: multiplier"),
    ("commons_harvest__open:regrowth=0", "regrowth=0 is out of range"),
    ("commons_harvest__open:regrowth=inf", "regrowth=inf is out of range"),
    ("commons_harvest__open:regrowth=lots", "regrowth=lots is not valid"),
    ("commons_harvest__open:zap_cooldown=1.5", "zap_cooldown=1.5 is not valid; zap_cooldown is the steps between"),
    ("commons_harvest__open:zap_cooldown", "zap_cooldown needs a value"),
    ("commons_harvest__open:no_zap=1", "no_zap takes no value"),
    ("commons_harvest__open:no_zap,zap_cooldown=2", "no_zap and zap_cooldown contradict each other"),
    ("commons_harvest__open:regrowth=2,regrowth=3", "regrowth is given twice"),
    ("commons_harvest__opn:regrowth=2", 'unknown substrate "commons_harvest__opn" (did you mean '
                                        '"commons_harvest__open"?)'),
    ("clean_up:regrowth=2", "clean_up has no DensityRegrow component, so regrowth does not apply to it"),
    ("commons_harvest__open:", "an empty key"),
])
def test_bad_variants_are_one_line_naming_the_allowed_keys_and_ranges(spec, needle):
    with pytest.raises(CapprofError) as err:
        get_scenario(spec)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_run_and_train_refuse_a_bad_variant_with_one_line(cli, tmp_path):
    for res in (cli("run", "--population", "random", "--scenario", "commons_harvest__open:regrowth=-2", "--episodes", "1",
                    "--out", tmp_path / "r"),
                cli("train", "commons_harvest__open:regrowth=-2", "--out", tmp_path / "t")):
        lines = res.err.strip().splitlines()
        assert res.code == 2 and len(lines) == 1, res.err
        assert "regrowth=-2 is out of range" in lines[0]


def test_a_profile_knows_the_demands_of_capprofs_own_scenarios():
    """predict, on a profile fitted elsewhere, finds the offline suite's and
    the variants' demands as capprof runs them (they are not in the catalog)."""
    from capprof.profiling.predictors import MeasurementLayout
    from capprof.profiling.profile import Profile
    from capprof.runners.scenarios import own_scenario_demands
    from capprof.tagging.catalog import load_catalog
    from capprof.tagging.demands import demand_matrix

    catalog = load_catalog()
    fitted_on = [n for n in catalog.index if n.startswith("commons_harvest__open")][:4]
    demands = demand_matrix(fitted_on, tags="all", catalog=catalog, drop_unused=False)
    import arviz as az
    import numpy as np

    teams, rng = ["a", "b"], np.random.default_rng(0)
    posterior = az.from_dict(
        posterior={"ability": rng.normal(1.5, 0.3, (2, 20, 2, demands.shape[1])),
                   "noise": rng.uniform(0.02, 0.08, (2, 20)), "precision": rng.lognormal(3, 0.1, (2, 20, 2))},
        coords={"team": teams, "demand": list(demands.columns)},
        dims={"ability": ["team", "demand"], "precision": ["team"]},
        sample_stats={"diverging": np.zeros((2, 20), dtype=bool)})
    layout = MeasurementLayout.from_posterior(posterior, demands, mode="joint", seed=0)
    profile = Profile(layout=layout, demands=demands,
                      metadata={"normalisation": "minmax", "tags": "all", "dropped_scenarios": []})
    names = ["clean_up__resident_cleaner", "commons_harvest__open:regrowth=0.5", fitted_on[0]]
    got = profile.scenario_demands(names)
    assert list(got.index) == names
    own = own_scenario_demands(names[:2])
    for name in names[:2]:
        placed = {d for d, v in own.loc[name].drop("substrate").items() if v}
        assert placed and all(got.loc[name, d] == 1.0 for d in placed if d in got.columns), (name, placed)
    assert got.loc["commons_harvest__open:regrowth=0.5", "scarcity"] == 1.0
    with pytest.raises(CapprofError, match='unknown scenario "clean_up__nowhere"'):
        profile.scenario_demands(["clean_up__nowhere"])
