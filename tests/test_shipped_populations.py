"""The trained populations shipped as package data: what they hold, how they
are made from a training directory, and that they play."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from capprof.errors import CapprofError
from capprof.runners.populations.shipped_populations import (SHIPPED_FILES, Selection, ShippedPopulation, played_as, ship,
                                                             shipped_population, shipped_populations)

MAX_SHIPPED_BYTES = 5 * 2**20  # "MBs, not tens of MBs"


def _size(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_each_shipped_population_is_documented_and_small():
    found = shipped_populations()
    assert {p.name for p in found} >= {"open", "no_zap", "scarcity", "farmer", "prosocial"}
    for population in found:
        for relative in SHIPPED_FILES:
            assert (population.directory / relative).exists(), (population.name, relative)
        assert _size(population.directory) < MAX_SHIPPED_BYTES
        assert all(command.startswith("capprof train ") for command in population.commands)
        assert ("--prosocial" in population.commands[0]) == population.prosocial
        curve = pd.read_csv(population.directory / "learning_curve.csv")
        assert curve["env_steps"].iloc[-1] == population.env_steps
        assert len(curve) == population.iterations
        record = json.loads((population.directory / "train.json").read_text())
        assert record["status"] == "done"
        assert f"{population.env_steps:,} env steps of {population.substrate}" in population.describe()
    assert shipped_population("prosocial").prosocial and not shipped_population("open").prosocial


def test_unknown_shipped_population_names_the_shipped_ones():
    with pytest.raises(CapprofError, match='no shipped population "selfsh"; capprof ships: .*open.*prosocial'):
        shipped_population("selfsh")


def test_ship_copies_only_what_plays(tmp_path):
    source = shipped_population("open").directory
    train_dir = tmp_path / "train"
    shutil.copytree(source, train_dir)
    (train_dir / "checkpoints" / "step_000000100").mkdir(parents=True)
    (train_dir / "checkpoints" / "step_000000100" / "state.pkl").write_bytes(b"x" * 1000)
    shipped = ship(train_dir, tmp_path / "out" / "mine", explore=True)
    assert isinstance(shipped, ShippedPopulation) and shipped.name == "mine"
    assert json.loads((tmp_path / "out" / "mine" / "capprof_rllib.json").read_text())["explore"] is True
    assert shipped.explore and shipped.describe().endswith("plays by sampling from its policy")
    assert not (tmp_path / "out" / "mine" / "checkpoints").exists()
    assert shipped.env_steps == shipped_population("open").env_steps
    greedy = played_as(tmp_path / "out" / "mine", tmp_path / "greedy", explore=False)
    assert json.loads((greedy / "capprof_rllib.json").read_text())["explore"] is False
    assert (greedy / "learner_group").resolve() == (tmp_path / "out" / "mine" / "learner_group").resolve()
    with pytest.raises(CapprofError, match="exists; remove it or choose another destination"):
        ship(train_dir, tmp_path / "out" / "mine")
    record = json.loads((train_dir / "train.json").read_text())
    (train_dir / "train.json").write_text(json.dumps({**record, "status": "interrupted"}))
    with pytest.raises(CapprofError, match=r"is not finished \(status 'interrupted'\); continue it with "
                                           r"`capprof train --out .* --resume`"):
        ship(train_dir, tmp_path / "out" / "other")


def test_a_chosen_snapshot_ships_its_modules_with_the_runs_record(tmp_path):
    source = shipped_population("open").directory
    train_dir = tmp_path / "train"
    shutil.copytree(source, train_dir)
    snapshot = train_dir / "snapshots" / "step_000000200"
    shutil.copytree(source / "learner_group", snapshot / "learner_group")
    module = next((snapshot / "learner_group").rglob("*.pt"), None) or next(
        p for p in (snapshot / "learner_group").rglob("*") if p.is_file())
    module.write_bytes(module.read_bytes() + b"\0")  # tell the snapshot's modules from the run's last ones
    convention = json.loads((source / "capprof_rllib.json").read_text())
    (snapshot / "capprof_rllib.json").write_text(json.dumps({**convention, "env_steps": 200}))
    chosen = Selection(snapshot="step_000000200", scenario="commons_harvest__open:regrowth=1",
                       episodes=3, max_steps=1000, seed=1, means={"step_000000100": 1.5, "step_000000200": 2.5})
    shipped = ship(train_dir, tmp_path / "out" / "mine", explore=True, selection=chosen)
    played = tmp_path / "out" / "mine" / module.relative_to(snapshot)
    assert played.read_bytes() == module.read_bytes()
    assert json.loads((tmp_path / "out" / "mine" / "capprof_rllib.json").read_text())["env_steps"] == 200
    assert (tmp_path / "out" / "mine" / "train.json").read_text() == (source / "train.json").read_text()
    assert shipped.selection == chosen
    assert shipped.describe().endswith("plays its checkpoint at 200 env steps, the best of 2 by mean focal "
                                       "per-capita return in 3 episodes per checkpoint on "
                                       "commons_harvest__open:regrowth=1 with run seed 1")
    with pytest.raises(CapprofError, match=r"step_000000300 holds no playable modules \(capprof_rllib.json "
                                           r"missing\); snapshots are written by capprof train"):
        ship(train_dir, tmp_path / "out" / "other", selection=Selection(**{**chosen.__dict__,
                                                                             "snapshot": "step_000000300"}))


def test_a_broken_train_record_is_one_line(tmp_path):
    (tmp_path / "pop").mkdir()
    (tmp_path / "pop" / "train.json").write_text("{}")
    with pytest.raises(CapprofError, match=r"train.json is not a capprof train record \(KeyError"):
        ShippedPopulation.read(tmp_path / "pop")


@pytest.mark.runners
def test_shipped_populations_play_their_substrate(cli, tmp_path):
    pytest.importorskip("meltingpot")
    pytest.importorskip("ray")
    args = ["run", "--scenario", "commons_harvest__open__resident_harvester", "--episodes", "1",
            "--max-steps", "20", "--out", str(tmp_path / "runs"), "--quiet"]
    for population in shipped_populations():
        args += ["--population", f"shipped:{population.name}"]
    args += ["--population", f"by_path={shipped_population('open').spec}"]
    result = cli(*args)
    assert result.code == 0, result.err
    runs = pd.read_parquet(tmp_path / "runs")
    assert set(runs["team"]) == {f"shipped:{p.name}" for p in shipped_populations()} | {"by_path"}
    assert (runs["status"] == "ok").all() and (runs["steps"] == 20).all()
    # the same module by name and by path: the records name the member as given
    members = runs.set_index("team")["focal_members"]
    assert set(members["shipped:open"]) == {"shipped:open"}
    assert set(members["by_path"]) == {shipped_population("open").spec}


def test_an_unknown_shipped_name_is_one_line_exit_2(cli_subprocess, tmp_path):
    result = cli_subprocess("run", "--population", "shipped:selfsh", "--scenario",
                            "commons_harvest__open__resident_harvester", "--episodes", "1", "--out", tmp_path / "r")
    assert result.code == 2 and "Traceback" not in result.err
    assert 'no shipped population "selfsh"; capprof ships: farmer, no_zap, open, prosocial, scarcity' in result.err


def test_a_shipped_population_takes_the_rllib_play_suffix(cli_subprocess, tmp_path):
    from capprof.runners.populations.shipped_populations import source

    assert source("shipped:open#sample=0.5").spec == shipped_population("open").spec + "#sample=0.5"
    assert source("shipped:open#greedy").spec == shipped_population("open").spec + "#greedy"
    assert source("shipped:open").spec == shipped_population("open").spec
    result = cli_subprocess("run", "--population", "shipped:open#hot", "--scenario",
                            "commons_harvest__open__resident_harvester", "--episodes", "1", "--out", tmp_path / "r")
    assert result.code == 2 and "Traceback" not in result.err
    assert '"shipped:open#hot": unknown play mode "#hot"; write #greedy' in result.err
