"""``capprof train``: one clear line for bad input (fast), and a real tiny
training run on commons_harvest__open that is interrupted with Ctrl-C,
resumed, and then played by ``capprof run`` (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capprof.errors import CapprofError

pytestmark = pytest.mark.runners

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(res, *needles):
    assert res.code == 2, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error:"), res.err
    for needle in needles:
        assert needle in lines[0], res.err
    return lines[0]


def _fake_run(root: Path, env_steps: int = 400, settings=None) -> Path:
    """A training directory as capprof train leaves it (without the weights)."""
    (root / "checkpoints" / f"step_{env_steps:09d}").mkdir(parents=True)
    (root / "checkpoints" / f"step_{env_steps:09d}" / "capprof_checkpoint.json").write_text(
        json.dumps({"iteration": 2, "env_steps": env_steps, "wall_seconds": 60.0}))
    (root / "train.json").write_text(json.dumps({
        "target": "commons_harvest__open", "budget_env_steps": env_steps, "sessions": [],
        "settings": {"target": "commons_harvest__open", "batch_size": 200, "minibatch_size": 100,
                     **(settings or {})}}))
    return root


# ------------------------------------------------------------ fast: bad input


def test_unknown_substrate_suggests_the_close_name(cli, tmp_path):
    _one_error_line(cli("train", "commons_harvest__opn", "--out", tmp_path / "a"),
                    'unknown substrate or scenario "commons_harvest__opn"', 'did you mean "commons_harvest__open"')
    _one_error_line(cli("train", "commons_harvest__open__no_zp", "--out", tmp_path / "a"),
                    'did you mean "commons_harvest__open__no_zap"')
    assert not (tmp_path / "a").exists()


def test_a_scenario_with_background_players_is_refused_naming_the_variants(cli, tmp_path):
    _one_error_line(cli("train", "commons_harvest__open__resident_harvester", "--out", tmp_path / "a"),
                    "has 1 background player(s)", "commons_harvest__open__no_zap",
                    "commons_harvest__open__regrowth_x0p1")


def test_budget_below_one_iteration_names_the_minimum(cli, tmp_path):
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "a", "--steps", "100"),
                    "--steps 100 is below one iteration (2000 env steps", "give --steps 2000 or more")
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "a", "--steps", "300",
                        "--batch-size", "400", "--minibatch-size", "100"), "give --steps 400 or more")


def test_non_empty_out_without_resume_is_refused(cli, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "full"),
                    "is not empty", "add --resume")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_resume_without_a_checkpoint_is_refused(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "missing"):
        _one_error_line(cli("train", "commons_harvest__open", "--out", out, "--resume"),
                        "holds no capprof train checkpoint", "drop --resume")


def test_resume_keeps_the_recorded_settings(cli, tmp_path):
    run = _fake_run(tmp_path / "run")
    _one_error_line(cli("train", "--out", run, "--resume", "--batch-size", "400"),
                    "was trained with --batch-size 200, not 400", "drop --batch-size")
    _one_error_line(cli("train", "clean_up", "--out", run, "--resume"),
                    "trains on commons_harvest__open, not clean_up")


def test_resume_at_the_budget_says_there_is_nothing_to_do(cli, tmp_path):
    run = _fake_run(tmp_path / "run", env_steps=400)
    res = cli("train", "--out", run, "--resume", "--steps", "400")
    assert res.code == 0, res.err
    assert "capprof: note:" in res.err and "already holds 400 env steps" in res.err and "raise --steps" in res.err


def test_an_interrupted_run_resumed_at_its_steps_is_finished_there(cli, tmp_path):
    # Training to a time budget: stop it (SIGTERM saves a checkpoint), then
    # resume with --steps at what it reached; the run is done there, so it ships.
    run = _fake_run(tmp_path / "run", env_steps=400)
    record = json.loads((run / "train.json").read_text())
    (run / "train.json").write_text(json.dumps({**record, "budget_env_steps": 2000, "status": "interrupted"}))
    res = cli("train", "--out", run, "--resume", "--steps", "400")
    assert res.code == 0, res.err
    assert "holds 400 env steps of training (budget 400): finished at its last checkpoint" in res.err
    record = json.loads((run / "train.json").read_text())
    assert record["status"] == "done" and record["budget_env_steps"] == 400
    assert record["sessions"][-1]["finished_at_checkpoint"] is True
    assert record["sessions"][-1]["command"][-2:] == ["--steps", "400"]


@pytest.mark.parametrize("args, needle", [
    (["--seed", "-1"], "argument --seed: -1 is outside the seeds capprof takes"),
    (["--steps", "0"], "argument --steps: 0 is below 1"),
    (["--checkpoint-every", "x"], 'argument --checkpoint-every: "x" is not a whole number'),
    (["--gamma", "1.5"], "argument --gamma: 1.5 is above 1"),
    (["--downsample", "3"], "--downsample must divide 88 (got 3)"),
    (["--batch-size", "200", "--minibatch-size", "500"], "--minibatch-size 500 exceeds --batch-size 200"),
    (["--seed", str(2**32)], "argument --seed: 4294967296 is outside the seeds capprof takes"),
])
def test_bad_option_values_are_one_line(cli, tmp_path, args, needle):
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "a", *args), needle)


def test_a_name_is_required_without_resume(cli, tmp_path):
    _one_error_line(cli("train", "--out", tmp_path / "a"), "name a substrate or scenario to train on")


# ------------------------------------------------------------ the environment (a fake substrate)


class _FakeSubstrate:
    """Stands in for a meltingpot substrate: 3 players, fixed rewards."""

    def __init__(self, scenario, seed):
        import dm_env
        import numpy as np

        self.scenario, self.seed, self.dm_env, self.np = scenario, seed, dm_env, np
        self.actions = []

    def action_spec(self):
        import dm_env.specs

        return [dm_env.specs.DiscreteArray(8)] * 3

    def _obs(self):
        return [{"RGB": self.np.zeros((88, 88, 3), self.np.uint8)} for _ in range(3)]

    def reset(self):
        return self.dm_env.restart(self._obs())

    def step(self, actions):
        self.actions.append(list(actions))
        return self.dm_env.transition([3.0, 0.0, 0.0], self._obs())

    def close(self):
        pass


def test_prosocial_training_is_the_prosocial_variants_shaping():
    from capprof.runners.training.rllib_train import TrainSettings, training_scenario
    from capprof.runners.scenarios.scenarios import MeanReward, get_scenario

    assert training_scenario(TrainSettings("commons_harvest__open__no_zap", prosocial=True)).overrides[-1] == \
        MeanReward()
    assert training_scenario(TrainSettings("commons_harvest__open:prosocial", prosocial=True)).overrides == \
        get_scenario("commons_harvest__open:prosocial").overrides  # shaped once, not twice
    assert MeanReward() not in training_scenario(TrainSettings("commons_harvest__open")).overrides


def test_shaped_rewards_pay_every_player_the_mean():
    import numpy as np

    from capprof.runners.episode.substrate import ShapedRewards

    shaped = ShapedRewards(_FakeSubstrate(None, 1), visible=[], mean=True)
    shaped.reset()
    assert [float(r) for r in shaped.step([0, 0, 0]).reward] == [1.0, 1.0, 1.0]
    assert shaped.actions == [[0, 0, 0]]  # everything else is the substrate's own
    assert isinstance(shaped.step([1, 1, 1]).reward[0], np.ndarray)


@pytest.mark.parametrize("rewards", [[3.0, 0.0, 0.0]])
def test_the_env_plays_the_variant_substrate_as_capprof_run_builds_it(monkeypatch, rewards):
    from capprof.runners.training import rllib_env
    from capprof.runners.episode import substrate
    from capprof.runners.scenarios.scenarios import DisableAction, get_scenario

    import capprof.meltingpot_import

    built = []
    monkeypatch.setattr(capprof.meltingpot_import, "import_meltingpot", lambda: None)  # the fake needs none
    monkeypatch.setattr(substrate, "build_substrate", lambda sc, seed: built.append(_FakeSubstrate(sc, seed))
                        or built[-1])
    scenario = get_scenario("commons_harvest__open__no_zap")
    env = rllib_env._env_class()({"scenario": scenario, "max_steps": 2, "seed": 1})
    assert built[0].scenario.overrides == (DisableAction("fireZap"),)  # the variant, as capprof run builds it
    env.agents = env.agents[:3]  # the fake has 3 players
    obs, _ = env.reset()
    assert obs["player_0"].shape == (11, 11, 3)
    _, got, terminated, truncated, _ = env.step({"player_0": 7, "player_1": 1, "player_2": 2})
    assert [got[a] for a in env.agents] == rewards
    assert built[0].actions == [[7, 1, 2]] and not truncated["__all__"]
    _, _, _, truncated, _ = env.step({})
    assert truncated["__all__"] and not terminated["__all__"]  # cut at max_steps


# ------------------------------------------------------------ slow: real RLlib


def _train_process(*args) -> subprocess.Popen:
    # Its own session, so SIGINT reaches the whole group as a terminal's Ctrl-C does;
    # SIGINT's default action restored, since a test runner started in the background
    # by a non-interactive shell passes SIGINT down ignored.
    return subprocess.Popen([sys.executable, "-m", "capprof", "train", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_train_interrupt_resume_and_play(tmp_path, cli_subprocess):
    """Trains on commons_harvest__open, is interrupted by Ctrl-C after its
    first iteration (a checkpoint is saved, exit 130), resumes to its budget
    (the step count and the curve continue) and plays one short episode."""
    import pandas as pd

    out = tmp_path / "ppo"
    proc = _train_process("commons_harvest__open", "--out", out, "--steps", "20000", "--batch-size", "200",
                          "--minibatch-size", "100", "--max-episode-steps", "100", "--seed", "3")
    lines = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("iteration 1/100:"):
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest_out, rest_err = proc.communicate(timeout=300)
    err = "".join(lines) + rest_err
    assert proc.returncode == 130, err[-3000:]
    assert "capprof: interrupted at" in err and "--resume" in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    record = json.loads((out / "train.json").read_text())
    assert record["status"] == "interrupted" and record["settings"]["seed"] == 3
    assert record["sessions"][0]["command"][:3] == ["capprof", "train", "commons_harvest__open"]
    assert record["sessions"][0]["versions"]["ray"] == "2.60.0"
    interrupted_at = record["env_steps"]
    assert interrupted_at in (200, 400)  # the first iteration, or the second if it finished first

    res = cli_subprocess("train", "--out", out, "--resume", "--steps", interrupted_at + 200, timeout=600)
    assert res.code == 0, res.err[-3000:]
    assert f"resuming at iteration {interrupted_at // 200}, {interrupted_at} env steps" in res.err
    curve = pd.read_csv(out / "learning_curve.csv")
    assert list(curve["iteration"]) == list(range(1, interrupted_at // 200 + 2))
    assert list(curve["env_steps"]) == list(range(200, interrupted_at + 201, 200))
    assert curve["wall_seconds"].is_monotonic_increasing
    assert {"episode_return_mean", "per_capita_return_mean", "entropy"} <= set(curve.columns)
    record = json.loads((out / "train.json").read_text())
    assert record["status"] == "done" and len(record["sessions"]) == 2
    assert record["env_steps"] == interrupted_at + 200
    assert (out / record["checkpoint"] / "capprof_checkpoint.json").exists()
    # What resuming (restore_from_path: the state files) and playing (the
    # exported modules) read names no capprof module, so checkpoints outlive a
    # move of capprof's modules; only the class_and_ctor_args.pkl files of the
    # algorithm's parts name them (the env class), which only
    # Algorithm.from_checkpoint reads, and capprof never calls it.
    read = [*(out / record["checkpoint"]).rglob("*state.pkl"), *(out / "learner_group").rglob("*.pkl")]
    assert read and not [p for p in read if b"capprof" in p.read_bytes()]
    convention = json.loads((out / "capprof_rllib.json").read_text())
    assert convention["substrate"] == "commons_harvest__open" and convention["modules"] == ["shared"]
    assert convention["explore"] is True  # plays sampling from its policy, as PPO acted while it learnt
    assert record["settings"]["sampler"] == "array" and record["settings"]["envs_per_runner"] == 8
    assert record["settings"]["substrate_processes"] == 2

    # every checkpoint leaves a playable snapshot, kept when the checkpoint is pruned
    snapshots = sorted(p.name for p in (out / "snapshots").iterdir())
    assert snapshots == [f"step_{interrupted_at:09d}", f"step_{interrupted_at + 200:09d}"]
    first = out / "snapshots" / snapshots[0]
    assert json.loads((first / "capprof_rllib.json").read_text())["env_steps"] == interrupted_at

    runs = tmp_path / "runs"
    res = cli_subprocess("run", "--population", f"ppo=rllib:{out}", "--population", f"early=rllib:{first}",
                         "--scenario", "commons_harvest__open__resident_harvester", "--episodes", "1",
                         "--max-steps", "40", "--out", runs, "--quiet", timeout=300)
    assert res.code == 0, res.err[-3000:]
    rows = pd.read_parquet(runs).set_index("team")
    assert (rows["status"] == "ok").all() and (rows["steps"] == 40).all(), rows["error"]
    assert set(rows.loc["ppo", "focal_members"]) == {f"rllib:{out}"}


# ------------------------------------------------------------ the vectorised sampler (a fake substrate)


@pytest.mark.parametrize("rewards", [[3.0, 0.0, 0.0]])
def test_vector_env_presents_each_player_as_a_sub_env_and_restarts_a_finished_substrate(monkeypatch, rewards):
    import numpy as np

    from capprof.runners.training import rllib_env
    from capprof.runners.episode import substrate
    from capprof.runners.scenarios.scenarios import get_scenario

    import capprof.meltingpot_import

    built = []
    monkeypatch.setattr(capprof.meltingpot_import, "import_meltingpot", lambda: None)
    monkeypatch.setattr(substrate, "build_substrate", lambda sc, seed: built.append(_FakeSubstrate(sc, seed))
                        or built[-1])
    scenario = get_scenario("commons_harvest__open__no_zap")
    monkeypatch.setattr(type(scenario), "n_players", property(lambda self: 3))  # the fake has 3 players
    env = rllib_env._vector_env_class()({"scenario": scenario, "max_steps": 2,
                                          "seed": 1, "num_envs": 6})
    assert env.num_envs == 6 and len(built) == 2 and built[0].seed != built[1].seed
    obs, _ = env.reset()
    assert obs.shape == (6, 11, 11, 3) and obs.dtype == np.float32
    _, got, terminated, truncated, _ = env.step(np.array([7, 1, 2, 0, 3, 4]))
    assert built[0].actions == [[7, 1, 2]] and built[1].actions == [[0, 3, 4]]
    assert list(got) == rewards * 2 and not truncated.any()
    _, _, terminated, truncated, _ = env.step(np.zeros(6, int))
    assert truncated.all() and not terminated.any()  # cut at max_steps, every player of both substrates
    _, got, terminated, truncated, _ = env.step(np.zeros(6, int))  # NEXT_STEP autoreset: a new episode
    assert len(built[0].actions) == 2 and not got.any() and not truncated.any()


def test_vector_conversion_is_the_conversion_rllib_members_play_with():
    import numpy as np

    from capprof.runners.populations.rllib_obs import ObsConvention

    rng = np.random.default_rng(0)
    observations = [{"RGB": rng.integers(0, 256, (88, 88, 3), dtype=np.uint8)} for _ in range(4)]
    for convention in (ObsConvention(), ObsConvention(downsample=4, scale=False), ObsConvention(downsample=1)):
        batch = convention.convert_many(observations)
        for i, observation in enumerate(observations):
            assert np.array_equal(batch[i], convention.convert(observation))
    # the block mean, written out for one pixel of one player
    block = observations[1]["RGB"][8:16, 16:24].astype(np.float64)
    expected = (block.reshape(-1, 3).sum(axis=0) / 64.0 / 255.0).astype(np.float32)
    assert np.array_equal(ObsConvention().convert_many(observations)[1, 1, 2], expected)


def test_sampler_defaults_and_refusals(cli, tmp_path):
    from capprof.runners.training.rllib_train import TrainSettings

    shared = TrainSettings("commons_harvest__open")
    assert (shared.sampler, shared.envs_per_runner, shared.substrate_processes) == ("array", 8, 2)
    per_player = TrainSettings("commons_harvest__open", per_player=True)
    assert (per_player.sampler, per_player.envs_per_runner) == ("multi-agent", 1)
    # runs recorded before the vectorised sampler resume with the sampler they used
    assert TrainSettings.from_dict({"target": "commons_harvest__open", "envs_per_runner": 1}).sampler == "multi-agent"
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "a", "--per-player",
                        "--sampler", "vector"), "--per-player trains one module per player, which needs --sampler "
                                                "multi-agent")
    assert TrainSettings("commons_harvest__open", sampler="vector").substrate_processes == 0
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "c", "--sampler", "multi-agent",
                        "--substrate-processes", "2"), "--substrate-processes needs --sampler array or vector")
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "d", "--substrate-processes", "-1"),
                    "--substrate-processes")
    _one_error_line(cli("train", "commons_harvest__open", "--out", tmp_path / "b", "--batch-size", "2001"),
                    "--batch-size 2001 is not a multiple of --envs-per-runner 8")


def test_play_mode_suffix_overrides_how_the_directory_plays(cli, tmp_path):
    from capprof.runners.populations.rllib_policy import play_mode, split_spec

    assert play_mode("rllib:/pops/open#greedy") == ("rllib:/pops/open", 0.0)
    assert play_mode("rllib:/pops/open:shared#sample") == ("rllib:/pops/open:shared", 1.0)
    assert play_mode("rllib:/pops/open#sample=0.5") == ("rllib:/pops/open", 0.5)
    assert play_mode("rllib:/pops/open") == ("rllib:/pops/open", None)
    assert split_spec("rllib:/pops/open:shared#greedy") == ("/pops/open", "shared")
    assert split_spec("rllib:/pops/open:shared#sample=0.7") == ("/pops/open", "shared")
    for suffix, words in (("#fast", ('unknown play mode "#fast"; write #greedy', "#sample=T (at temperature T")),
                          ("#greedy=2", ('unknown play mode "#greedy=2"',)),
                          ("#sample=hot", ("temperature 'hot' is not a number in (0, 100]",)),
                          ("#sample=0", ("temperature '0' is not a number in (0, 100]", "below 1 is sharper"))):
        res = cli("run", "--population", f"ppo=rllib:{tmp_path}{suffix}", "--scenario",
                  "commons_harvest__open__resident_harvester", "--episodes", "1", "--out", tmp_path / "r")
        _one_error_line(res, *words)


@pytest.mark.parametrize("code, reason, remedy", [
    ("ENOSPC", "no space left on device", "free space there"),
    ("EROFS", "read-only file system", "fix that"),
])
def test_a_disk_that_fills_mid_training_names_the_resume_command(monkeypatch, tmp_path, cli, code, reason, remedy):
    """The library fails with ENOSPC (or the file system turns read-only)
    after a checkpoint exists: one line, the directory, the reason, the
    remedy and the --resume command."""
    import errno

    from capprof.runners.training import rllib_train, rllib_train_dir

    out = tmp_path / "run"

    def full(settings, out_dir, steps, **kwargs):
        (out_dir / "checkpoints" / "step_000002000").mkdir(parents=True)
        raise OSError(getattr(errno, code), reason, str(out_dir / "learning_curve.csv"))

    monkeypatch.setattr(rllib_train, "train", full)
    monkeypatch.setattr(rllib_train_dir, "checkpoints", lambda d: [(None, d / "checkpoints" / "step_000002000")])
    res = cli("train", "commons_harvest__open", "--out", out, "--steps", "4000", "--quiet")
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1, res.err
    assert reason in lines[0].lower() and str(out) in lines[0]
    assert f"the last checkpoint is kept: {remedy}, then continue with `capprof train --out {out} --resume`" \
        in lines[0]


def test_a_variant_with_background_players_is_refused_with_its_all_focal_spelling(cli, tmp_path):
    _one_error_line(cli("train", "commons_harvest__open:regrowth=0.5,background=random,focal=3",
                        "--out", tmp_path / "a"),
                    "has 4 background player(s); capprof train takes an all-focal variant",
                    "e.g. commons_harvest__open:regrowth=0.5")
    assert not (tmp_path / "a").exists()


def test_a_run_that_stopped_before_its_first_checkpoint_does_not_block_a_new_one(tmp_path):
    from capprof.runners.training.rllib_train_dir import check_out

    out = tmp_path / "run"
    out.mkdir()
    (out / "train.json").write_text("{}")
    assert check_out(out, resume=False) is None
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CapprofError, match="is not empty; choose a new directory"):
        check_out(out, resume=False)
