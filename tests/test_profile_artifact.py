"""The profile as a Python object: fit, save, load, predict without the CLI,
and a directory that is either a whole profile or refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.profiling.predictors import Assessor, MeasurementLayout
from capprof.profiling.profile import PROFILE_FILES, Profile, read_scenarios_file

TEAMS = ["team_a", "team_b", "team_c"]
DEMANDS = ["d1", "d2", "d3"]


def _demands(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.integers(0, 3, (n, len(DEMANDS))).astype(float), columns=DEMANDS,
                        index=pd.Index([f"s{i:02d}" for i in range(n)], name="scenario"))


def _scores(demands, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(t, s, "sub", 0, float(np.clip(0.3 * i + 0.1 * demands.loc[s].sum() / 3 + rng.normal(0, 0.05), 0, 1)))
            for i, t in enumerate(TEAMS) for s in demands.index]
    return pd.DataFrame(rows, columns=["team", "scenario", "substrate", "replicate", "score"])


def _posterior(seed=0, chains=2, draws=40):
    """A layout posterior with the layout's variables and dims, drawn directly
    (no sampling): what `Profile` stores and predicts from."""
    import arviz as az

    rng = np.random.default_rng(seed)
    return az.from_dict(
        posterior={
            "ability": rng.normal(1.5, 0.3, (chains, draws, len(TEAMS), len(DEMANDS))),
            "noise": rng.uniform(0.02, 0.08, (chains, draws)),
            "precision": rng.lognormal(np.log(20), 0.1, (chains, draws, len(TEAMS))),
        },
        coords={"team": TEAMS, "demand": DEMANDS},
        dims={"ability": ["team", "demand"], "precision": ["team"]},
        sample_stats={"diverging": np.zeros((chains, draws), dtype=bool)},
    )


@pytest.fixture(scope="module")
def profile():
    demands = _demands()
    layout = MeasurementLayout.from_posterior(_posterior(), demands, mode="joint", seed=0)
    assessor = Assessor(n_estimators=20).fit(_scores(demands), demands)
    return Profile(layout=layout, demands=demands, assessor=assessor,
                   metadata={"normalisation": "minmax", "tags": "all", "dropped_scenarios": []})


def test_save_then_load_gives_the_same_predictions_abilities_and_metadata(profile, tmp_path):
    out = profile.save(tmp_path / "prof")
    assert {p.name for p in out.iterdir()} == set(PROFILE_FILES.values())
    meta = json.loads((out / "model.json").read_text())
    assert meta["complete"] is True and meta["layout"]["name"] == "layout-joint"

    loaded = Profile.load(out)
    assert loaded.teams == TEAMS and loaded.metadata["normalisation"] == "minmax"
    pd.testing.assert_frame_equal(loaded.demands, profile.demands, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.abilities, profile.abilities, atol=1e-5, check_dtype=False)
    before = profile.predict(scenarios=["s00", "s05"])
    after = loaded.predict(scenarios=["s00", "s05"])
    assert list(after.columns) == ["team", "scenario", "model", "predicted", "low", "high"]
    assert set(after["model"]) == {"layout-joint", "assessor"} and len(after) == 2 * 3 * 2
    pd.testing.assert_frame_equal(before, after, atol=1e-6)
    layout = after[after["model"] == "layout-joint"]
    assert ((layout["low"] <= layout["predicted"]) & (layout["predicted"] <= layout["high"])).all()
    assert loaded.importances is not None and set(loaded.importances.columns) == {"feature", "importance"}


def test_predict_new_scenarios_described_by_their_demands(profile):
    new = pd.DataFrame({"d1": [3.0], "d2": [0.0]}, index=pd.Index(["brand_new"], name="scenario"))
    out = profile.predict(scenarios=["brand_new"], demands=new, models=["layout"])
    assert set(out["scenario"]) == {"brand_new"} and set(out["model"]) == {"layout-joint"}
    assert out["predicted"].between(0, 1).all()


def test_predict_names_the_layout_this_profile_holds(profile):
    with pytest.raises(CapprofError, match="holds layout-joint .* use --models layout-joint"):
        profile.predict(scenarios=["s00"], models=["layout-per-team"])
    with pytest.raises(CapprofError, match='unknown model "asessor" \\(did you mean "assessor"\\?\\)'):
        profile.predict(scenarios=["s00"], models=["asessor"])


def test_a_profile_without_assessor_saves_loads_and_predicts_with_the_layout_alone(profile, tmp_path):
    bare = Profile(layout=profile.layout, demands=profile.demands, metadata={"tags": "all"})
    out = bare.save(tmp_path / "bare")
    assert not (out / "assessor.json").exists() and not (out / "importances.csv").exists()
    loaded = Profile.load(out)
    assert loaded.assessor is None and loaded.importances is None
    assert set(loaded.predict(scenarios=["s01"])["model"]) == {"layout-joint"}


def test_save_replaces_an_old_profile_and_keeps_other_files(profile, tmp_path):
    out = tmp_path / "prof"
    profile.save(out)
    (out / "evaluate.csv").write_text("model,mse\naggmean,0.1\n")
    (out / "evaluation" / "nested").mkdir(parents=True)  # e.g. a saved `capprof evaluate --save`
    (out / "evaluation" / "nested" / "summary.parquet").write_bytes(b"kept")
    (out / "profiles.csv").write_text("stale\n")
    profile.save(out)
    assert (out / "evaluate.csv").read_text().startswith("model,mse")
    assert (out / "evaluation" / "nested" / "summary.parquet").read_bytes() == b"kept"
    assert pd.read_csv(out / "profiles.csv").columns[0] == "team"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prof"]  # no temporary directory left


def test_interrupted_save_leaves_the_old_profile_whole(profile, tmp_path, monkeypatch):
    out = tmp_path / "prof"
    profile.save(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(self, directory):
        self.abilities.iloc[:1].to_csv(directory / PROFILE_FILES["profiles"])
        raise KeyboardInterrupt

    monkeypatch.setattr(Profile, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        profile.save(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prof"]
    with pytest.raises(KeyboardInterrupt):
        profile.save(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / "posterior.nc").unlink(), "posterior.nc is missing or empty"),
    (lambda d: (d / "demands.csv").unlink(), "demands.csv is missing or empty"),
    (lambda d: (d / "assessor.json").unlink(), "assessor.json is missing or empty"),
    (lambda d: (d / "model.json").write_text('{"format": 2, "comp'), "model.json is truncated or not JSON"),
    (lambda d: (d / "model.json").write_bytes(b"\x89PNG\x00\x01"), "model.json is truncated or not JSON"),
    (lambda d: (d / "model.json").write_text(json.dumps({**json.loads((d / "model.json").read_text()),
                                                         "complete": False})), "is not marked complete"),
    (lambda d: (d / "model.json").unlink(), "holds no profile (model.json missing)"),
    (lambda d: (d / "posterior.nc").write_bytes((d / "posterior.nc").read_bytes()[:200]),
     "posterior.nc is not a readable posterior"),
    (lambda d: (d / "assessor.json").write_text('{"learner": '), "assessor.json is not a readable XGBoost model"),
])
def test_load_refuses_a_damaged_profile_in_one_line(profile, tmp_path, damage, words):
    out = profile.save(tmp_path / "prof")
    damage(out)
    with pytest.raises(CapprofError) as info:
        Profile.load(out)
    message = str(info.value)
    assert words in message and len(message.splitlines()) == 1
    assert "capprof profile" in message  # the fix


def test_scenarios_file_that_is_binary_empty_or_a_directory_is_refused(tmp_path):
    binary = tmp_path / "names.txt"
    binary.write_bytes(b"\x00\x01\xff\xfe" * 10)
    with pytest.raises(CapprofError, match="is not UTF-8 text"):
        read_scenarios_file(binary)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(CapprofError, match="is empty; list one scenario per line"):
        read_scenarios_file(empty)
    with pytest.raises(CapprofError, match="is a directory"):
        read_scenarios_file(tmp_path)
    names = tmp_path / "ok.txt"
    names.write_text("# a comment\nclean_up_0\n\nclean_up_1\n")
    assert read_scenarios_file(names) == (["clean_up_0", "clean_up_1"], None)


@pytest.mark.slow
def test_fit_save_load_predict_from_python(tmp_path):
    """The whole job from Python, with a tiny real sampler run."""
    demands = _demands(n=10)
    fitted = Profile.fit(_scores(demands), demands, draws=20, tune=20, seed=1, metadata={"tags": "all"})
    assert fitted.posterior.posterior.sizes["draw"] == 20
    loaded = Profile.load(fitted.save(tmp_path / "prof"))
    out = loaded.predict(["team_a", "team_b"], ["s00"])
    assert len(out) == 2 * 2 and out["predicted"].notna().all()


def test_an_assessor_on_other_teams_than_the_layout_predicts_the_same_after_load(tmp_path):
    # The assessor's one-hot team columns follow its own team list: a profile
    # whose assessor saw only some of the layout's teams (in another order of
    # fitting) must not be reloaded with the layout's list.
    demands = _demands()
    layout = MeasurementLayout.from_posterior(_posterior(), demands, mode="joint", seed=0)
    scores = _scores(demands)
    assessor = Assessor(n_estimators=20).fit(scores[scores["team"] != "team_a"], demands)
    profile = Profile(layout=layout, demands=demands, assessor=assessor, metadata={"normalisation": "minmax"})
    profile.save(tmp_path / "p")
    loaded = Profile.load(tmp_path / "p")
    assert loaded.assessor.teams_ == ["team_b", "team_c"]
    before = assessor.predict(["team_c", "team_b"], ["s00", "s01"], demands)
    after = loaded.assessor.predict(["team_c", "team_b"], ["s00", "s01"], demands)
    pd.testing.assert_frame_equal(before, after)


def test_a_profile_whose_assessor_entry_lacks_teams_is_one_line(profile, tmp_path):
    profile.save(tmp_path / "p")
    meta_path = tmp_path / "p" / PROFILE_FILES["meta"]
    meta = json.loads(meta_path.read_text())
    del meta["assessor"]["teams"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CapprofError, match="lacks the assessor's teams; ") as err:
        Profile.load(tmp_path / "p")
    assert "\n" not in str(err.value)


def test_team_contrasts_are_per_draw_differences_against_informed_teams_only():
    import arviz as az

    from capprof.profiling.profile import team_contrasts

    rng = np.random.default_rng(0)
    draws = np.empty((2, 500, 3, 2))
    draws[..., 0, :] = 3.0 + rng.normal(0, 0.1, (2, 500, 2))  # a
    draws[..., 1, :] = 1.0 + rng.normal(0, 0.1, (2, 500, 2))  # b
    draws[..., 2, :] = 1.0 + rng.normal(0, 3.0, (2, 500, 2))  # c: a wide prior
    idata = az.from_dict(posterior={"ability": draws}, coords={"team": ["a", "b", "c"], "demand": ["x", "y"]},
                         dims={"ability": ["team", "demand"]})
    every = team_contrasts(idata).set_index(["team", "ability"])
    assert every.loc[("a", "x"), "lead"] == pytest.approx(2.0, abs=0.2)
    assert every.loc[("a", "x"), "n_others"] == 2
    # c's cells do not inform y: a on y is compared with b alone, and c on y is left out
    informed = pd.DataFrame({"x": [True, True, True], "y": [True, True, False]}, index=["a", "b", "c"])
    some = team_contrasts(idata, informed=informed).set_index(["team", "ability"])
    assert ("c", "y") not in some.index and some.loc[("a", "y"), "n_others"] == 1
    row = some.loc[("a", "y")]
    assert row["lead"] == pytest.approx(2.0, abs=0.05) and row["lead_low"] > 1.5 and row["clear"]
    # the interval is the contrast's own: c's wide prior makes a's lead on x unclear where it was sharp on y
    assert (every.loc[("a", "x"), "lead_high"] - every.loc[("a", "x"), "lead_low"]) > 3 * (row["lead_high"] - row["lead_low"])
