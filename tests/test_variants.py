"""Declarative substrate variants: ``SUBSTRATE:key=value[,key=value...]``."""

from __future__ import annotations

import pytest

from capprof.errors import CapprofError
from capprof.runners.scenarios.scenarios import ComponentKwarg, DisableAction, get_scenario


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
    ("commons_harvest__open:farmr=1", 'unknown key "farmr" (did you mean "farmer"?); allowed keys: regrowth: '
                                      "multiplier"),
    ("commons_harvest__open:farmer=-0.1", "farmer=-0.1 is out of range; farmer is the extra reward per apple"),
    ("commons_harvest__open:farmer", "farmer needs a value"),
    ("commons_harvest__open:prosocial=yes", "prosocial takes no value"),
    ("commons_harvest__open:focal=3", "focal needs background=MEMBER"),
    ("commons_harvest__open:background=rando", 'background=rando is not a built-in or shipped:NAME (did you mean '
                                               '"random"?)'),
    ("commons_harvest__open:background=random,focal=7", "focal=7 is out of range; commons_harvest__open has 7 "
                                                        "players, so focal is from 1 to 6"),
    ("allelopathic_harvest__open:farmer=0.01", "allelopathic_harvest__open has no apples, so farmer does not apply"),
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
    from capprof.runners.scenarios.scenarios import own_scenario_demands
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


def test_farmer_and_prosocial_are_reward_shaping_variants():
    from capprof.runners.scenarios.scenarios import MeanReward, VisibleObjectReward

    v = get_scenario("commons_harvest__open:prosocial,farmer=0.010,regrowth=0.5")
    assert v.name == "commons_harvest__open:regrowth=0.5,farmer=0.01,prosocial"
    assert v.overrides[1:] == (VisibleObjectReward("apple", 0.01), MeanReward())
    assert "per apple in a player's view" in v.description and "mean reward of all" in v.description


def _apple_view(cells):
    """An 88x88 view of grass with meltingpot's apple sprite drawn in ``cells``."""
    import numpy as np
    from meltingpot.configs.substrates import commons_harvest__open as config_module
    from meltingpot.utils.substrates import shapes

    palette = {"x": (100, 180, 80), "*": (214, 88, 88), "#": (194, 79, 79), "o": (53, 132, 49), "|": (102, 51, 61)}
    rows = [r for r in shapes.APPLE.strip("\n").split("\n")]
    sprite = np.array([[palette[c] for c in r] for r in rows], dtype=np.uint8)
    view = np.empty((88, 88, 3), np.uint8)
    view[:] = palette["x"]
    for i, j in cells:
        view[8 * i:8 * i + 8, 8 * j:8 * j + 8] = sprite
    assert config_module  # the palette above is the one commons_harvest__open draws apples with
    return view


def test_farmer_counts_the_apples_in_each_players_view():
    import numpy as np
    from capprof.meltingpot_import import import_meltingpot
    from meltingpot import substrate as mp_substrate

    from capprof.runners.episode.substrate import count_visible, sprite_probe

    import_meltingpot()
    config = mp_substrate.get_config("commons_harvest__open")
    probe = sprite_probe(config.lab2d_settings_builder(roles=config.default_player_roles, config=config), "apple")
    assert probe.colour == (214, 88, 88) and probe.cell == 8
    views = np.stack([_apple_view([(0, 0), (3, 4), (10, 10)]), _apple_view([]), _apple_view([(5, 5)])])
    assert count_visible(views, probe).tolist() == [3, 0, 1]
    # a view turned with its player shows the sprite rotated: still counted
    for turns in (1, 2, 3):
        assert count_visible(np.rot90(views, turns, axes=(1, 2)), probe).tolist() == [3, 0, 1]
    # a cell that shows the red only at its rim (another sprite's edge) is not an apple
    rim = _apple_view([])
    rim[8:16, 8] = (214, 88, 88)
    assert count_visible(rim[None], probe).tolist() == [0]


def test_farmer_and_prosocial_shape_the_rewards_a_real_substrate_pays():
    """Players 0 and 1 of commons_harvest__open start beside the apples, so a
    farmer pays them from the first step; prosocial pays everyone the mean."""
    import numpy as np
    from capprof.meltingpot_import import import_meltingpot
    from capprof.runners.episode.substrate import build_substrate

    import_meltingpot()
    farmer = build_substrate(get_scenario("commons_harvest__open:farmer=0.5"), 3)
    farmer.reset()
    first = np.array(farmer.step(np.zeros(7, int)).reward, float)
    assert first[0] > 0 and first[1] > 0 and np.allclose(first * 2, np.round(first * 2))  # 0.5 per apple
    both = build_substrate(get_scenario("commons_harvest__open:farmer=0.5,prosocial"), 3)
    both.reset()
    shared = np.array(both.step(np.zeros(7, int)).reward, float)
    assert shared.min() == shared.max() > 0


def test_a_background_variant_puts_focal_players_first_beside_the_named_member():
    v = get_scenario("commons_harvest__open:background=harvester,regrowth=0.5")
    assert v.name == "commons_harvest__open:regrowth=0.5,background=harvester,focal=5"
    assert v.is_focal == (True,) * 5 + (False,) * 2 and v.background == (("default", ("harvester",)),)
    assert v.mode == "resident" and get_scenario(v.name) == v


def test_a_runs_demands_file_describes_its_declarative_variants(tmp_path):
    from capprof.runners.execution.execute import plan, write_run_demands
    from capprof.tagging.demands import load_custom_demands

    name = "commons_harvest__open:regrowth=0.25,background=random"
    path = write_run_demands(plan(["random"], [name], 1), tmp_path)
    demands = load_custom_demands(path)
    assert demands.loc[get_scenario(name).name, "scarcity"] == 1.0


def test_a_background_that_is_not_shipped_fails_when_the_run_is_planned():
    from capprof.runners.execution.execute import plan

    with pytest.raises(CapprofError) as err:
        plan(["random"], ["commons_harvest__open:background=shipped:nobody"], 1)
    assert 'no shipped population "nobody"' in str(err.value) and "\n" not in str(err.value)
