"""RLlib checkpoints as population members (``rllib:CHECKPOINT_DIR[:MODULE_ID]``).

Fast: the observation convention and one-line errors for bad checkpoint
directories. Slow: a real PPO checkpoint trained for one iteration on
commons_harvest__open by ``capprof train`` and played
by ``capprof run``; a recurrent RLModule saved on its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.runners

ROOT = Path(__file__).resolve().parents[1]
HARVEST = "commons_harvest__open__resident_harvester"


# ------------------------------------------------------------ fast


def test_downsampling_averages_sprite_cells():
    from capprof.runners.populations.rllib_obs import ObsConvention

    rng = np.random.default_rng(0)
    cells = rng.integers(0, 256, size=(11, 11, 3))
    rgb = np.kron(cells, np.ones((8, 8, 1))).astype(np.uint8)  # every 8x8 cell one colour
    rgb[0, 0] = [0, 0, 0]  # one odd pixel moves its cell's mean by 1/64 of its value
    small = ObsConvention(downsample=8, scale=False).convert({"RGB": rgb})
    assert small.shape == (11, 11, 3) and small.dtype == np.uint8
    np.testing.assert_array_equal(small[1:], cells[1:])
    np.testing.assert_array_equal(small[0, 0], np.rint(cells[0, 0] * 63 / 64))
    scaled = ObsConvention(downsample=1, scale=True).convert({"RGB": rgb})
    assert scaled.shape == (88, 88, 3) and scaled.dtype == np.float32
    assert scaled.max() <= 1.0 and scaled[40, 40, 0] == pytest.approx(rgb[40, 40, 0] / 255)


def test_convention_is_inferred_from_the_module_observation_space():
    import gymnasium as gym

    from capprof.errors import CapprofError
    from capprof.runners.populations.rllib_obs import ObsConvention, infer_convention

    assert infer_convention(gym.spaces.Box(0, 255, (11, 11, 3), np.uint8)) == ObsConvention(
        downsample=8, scale=False)
    assert infer_convention(gym.spaces.Box(0.0, 1.0, (88, 88, 3), np.float32)) == ObsConvention(
        downsample=1, scale=True)
    with pytest.raises(CapprofError, match="capprof_rllib.json"):
        infer_convention(gym.spaces.Box(0.0, 1.0, (7,), np.float32))


def _fake_algorithm_checkpoint(root: Path, modules=("shared",)) -> Path:
    for m in modules:
        d = root / "learner_group" / "learner" / "rl_module" / m
        d.mkdir(parents=True)
        (d / "class_and_ctor_args.pkl").write_bytes(b"")
    return root


@pytest.mark.parametrize("make, suffix, needle", [
    (lambda tmp: tmp / "missing", "", "does not exist"),
    (lambda tmp: tmp, "", "is not an RLlib (new API stack) Algorithm checkpoint"),
    (lambda tmp: _fake_algorithm_checkpoint(tmp / "ck", ("a", "b")), "", "pick one with rllib:"),
    (lambda tmp: _fake_algorithm_checkpoint(tmp / "ck", ("a", "b")), ":c", 'no module "c"'),
    (lambda tmp: (_fake_algorithm_checkpoint(tmp / "ck"), (tmp / "ck" / "capprof_rllib.json").write_text("{x"))[0],
     "", "not a valid capprof RLlib convention file"),
])
def test_bad_checkpoint_is_one_line_exit_2(cli, tmp_path, make, suffix, needle):
    checkpoint = make(tmp_path)
    out = tmp_path / "out"
    res = cli("run", "--population", f"team=rllib:{checkpoint}{suffix}", "--scenario", HARVEST,
              "--episodes", "1", "--out", out)
    assert res.code == 2, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capprof: error:") and needle in lines[0], res.err
    assert not out.exists()


def test_missing_checkpoint_in_a_real_process_is_one_line_exit_2(cli_subprocess, tmp_path):
    res = cli_subprocess("run", "--population", f"rllib:{tmp_path / 'nope'}", "--scenario", HARVEST,
                         "--episodes", "1", "--out", tmp_path / "out", timeout=120)
    assert res.code == 2 and res.err.strip().splitlines() == [
        f'capprof: error: "rllib:{tmp_path / "nope"}": checkpoint directory {tmp_path / "nope"} does not exist'], res.err
    assert "Traceback" not in res.err and not (tmp_path / "out").exists()


def test_training_helper_rejects_bad_arguments_in_one_line(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    for args, needle in ((["commons_harvest__opn", "--out", str(tmp_path / "a")], 'did you mean "commons_harvest__open"'),
                         (["commons_harvest__open", "--out", str(tmp_path / "full")], "is not empty"),
                         (["commons_harvest__open", "--out", str(tmp_path / "b"), "--downsample", "3"], "must divide 88")):
        proc = subprocess.run([sys.executable, "-m", "capprof", "train", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and needle in proc.stderr, proc.stderr


def _shipped_policies(mode: str, n: int = 7):
    from capprof.runners.populations import rllib_policy
    from capprof.runners.populations.substrate_info import substrate_info

    spec = f"rllib:{ROOT / 'capprof' / 'data' / 'populations' / 'open'}#{mode}"
    return [rllib_policy.build(spec, substrate_info("commons_harvest__open")) for _ in range(n)]


def _views(seed: int, n: int = 7):
    import dm_env

    rng = np.random.default_rng(seed)
    return [dm_env.transition(0.0, {"RGB": rng.integers(0, 256, (88, 88, 3), dtype=np.uint8)}) for _ in range(n)]


@pytest.mark.parametrize("mode", ["greedy", "sample"])
def test_slots_sharing_a_module_get_one_forward_pass_per_step_and_the_same_actions(mode, monkeypatch):
    """Seven slots of one shipped population: stepped as the episode loop
    steps them (step_ahead for all, then step), the module runs once per
    step, and the actions are those each slot gets on its own (greedy), or
    the same draws from the same seed (sampling, in slot order)."""
    policies = _shipped_policies(mode)
    module = policies[0].module
    calls = []
    forward = module.forward_inference
    monkeypatch.setattr(module, "forward_inference", lambda batch: calls.append(len(batch["obs"])) or forward(batch))
    for seed in range(3):
        views = _views(seed)
        np.random.seed(seed)
        alone = [policy.step(view, ())[0] for policy, view in zip(policies, views)]
        calls.clear()
        np.random.seed(seed)
        for policy, view in zip(policies, views):
            policy.step_ahead(view, ())
        together = [policy.step(view, ())[0] for policy, view in zip(policies, views)]
        assert calls == [7]
        assert together == alone
        assert policies[3].step_seconds > 0


def test_a_closed_slot_leaves_the_batch_and_the_others_still_play():
    policies = _shipped_policies("greedy", 3)
    views = _views(0, 3)
    for policy, view in zip(policies, views):
        policy.step_ahead(view, ())
    policies[1].close()  # an episode that ended mid-step
    assert [policies[i].step(views[i], ())[0] for i in (0, 2)] == [p.step(v, ())[0] for p, v in
                                                                    zip(_shipped_policies("greedy", 2),
                                                                        [views[0], views[2]])]
    assert policies[1] not in policies[0].batch.pending and policies[1] not in policies[0].batch.results


# ------------------------------------------------------------ slow: real RLlib


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real PPO checkpoint: one iteration (400 env steps) on commons_harvest__open."""
    out = tmp_path_factory.mktemp("rllib") / "ckpt"
    proc = subprocess.run(
        [sys.executable, "-m", "capprof", "train", "commons_harvest__open", "--out", str(out),
         "--steps", "400", "--batch-size", "400", "--minibatch-size", "200", "--max-episode-steps", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "iteration 1/1" in proc.stderr
    return out


@pytest.mark.slow
def test_trained_checkpoint_plays_focal_slots(trained, cli_subprocess, tmp_path):
    import pandas as pd

    convention = json.loads((trained / "capprof_rllib.json").read_text())
    assert convention["downsample"] == 8 and convention["substrate"] == "commons_harvest__open"
    out = tmp_path / "out"
    res = cli_subprocess("run", "--population", f"team=rllib:{trained}", "--scenario", HARVEST,
                         "--scenario", "clean_up__visitor_cleaner", "--episodes", "1", "--max-steps", "60",
                         "--out", out, "--quiet", timeout=300)
    assert res.code == 0, res.err[-3000:]
    table = pd.read_parquet(out).set_index("scenario")
    row = table.loc[HARVEST]
    assert row["status"] == "ok", row["error"]
    assert row["steps"] == 60 and np.isfinite(row["focal_per_capita_return"])
    assert list(row["focal_members"]) == [f"rllib:{trained}"] * sum(row["is_focal"])
    # Trained on commons_harvest (8 actions): clean_up (9 actions) is refused per episode, clearly.
    wrong = table.loc["clean_up__visitor_cleaner"]
    assert wrong["status"] == "error" and "trained on another substrate" in wrong["error"]
    assert "commons_harvest__open" in wrong["error"]


@pytest.mark.slow
def test_policy_takes_the_modules_greedy_action(trained):
    """The Policy's action is the argmax of the module's logits on the
    downsampled observation of a real substrate."""
    import torch

    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    from capprof.runners.populations import rllib_policy
    from capprof.runners.populations.substrate_info import substrate_info

    # capprof train's directories sample by default; #greedy plays the most likely action
    policy = rllib_policy.build(f"rllib:{trained}#greedy", substrate_info("commons_harvest__open"))
    env = mp_substrate.build("commons_harvest__open", roles=mp_substrate.get_config(
        "commons_harvest__open").default_player_roles)
    try:
        timestep = env.reset()
        actions = set()
        for _ in range(15):
            for player in range(3):
                obs = timestep.observation[player]
                small = policy.convention.convert(obs)
                assert small.shape == (11, 11, 3)
                logits = policy.module.forward_inference({"obs": torch.from_numpy(small)[None]})["action_dist_inputs"]
                action, state = policy.step(timestep._replace(observation=obs, reward=0.0), policy.initial_state())
                assert action == int(torch.argmax(logits)) and state == ()
                actions.add(action)
            timestep = env.step([0] * 7)
    finally:
        env.close()
    assert all(0 <= a < 8 for a in actions)


@pytest.mark.slow
def test_recurrent_single_module_checkpoint_keeps_state_per_slot(tmp_path, cli):
    """An RLModule saved on its own (RLModule.save_to_path) with an LSTM: the
    recurrent state lives in the Policy state and changes as it steps."""
    import gymnasium as gym
    import torch
    from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from capprof.runners.populations import rllib_policy
    from capprof.runners.populations.substrate_info import substrate_info

    torch.manual_seed(0)
    module = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule, catalog_class=PPOCatalog,
        observation_space=gym.spaces.Box(0, 255, (11, 11, 3), np.uint8), action_space=gym.spaces.Discrete(8),
        model_config={"conv_filters": [[8, [3, 3], 2]], "use_lstm": True, "lstm_cell_size": 16},
    ).build()
    path = tmp_path / "lstm"
    module.save_to_path(str(path))
    policy = rllib_policy.build(f"rllib:{path}", substrate_info("commons_harvest__open"))
    assert policy.stateful and not policy.convention.scale and policy.convention.downsample == 8
    rng = np.random.default_rng(1)
    state = first = policy.initial_state()
    import dm_env

    for _ in range(3):
        obs = {"RGB": rng.integers(0, 256, (88, 88, 3), dtype=np.uint8)}
        action, state = policy.step(dm_env.transition(0.0, obs), state)
        assert 0 <= action < 8
    flat = lambda s: torch.cat([torch.as_tensor(v).reshape(-1) for v in s.values()])  # noqa: E731
    assert flat(first).abs().sum() == 0 and flat(state).abs().sum() > 0
    assert flat(policy.initial_state()).abs().sum() == 0  # a new slot starts fresh

    out = tmp_path / "out"
    res = cli("run", "--population", f"lstm=rllib:{path}", "--scenario", HARVEST, "--episodes", "1",
              "--max-steps", "30", "--out", out, "--quiet")
    assert res.code == 0, res.err
    import pandas as pd

    row = pd.read_parquet(out).iloc[0]
    assert row["status"] == "ok" and row["steps"] == 30, row["error"]


@pytest.mark.slow
def test_explore_samples_from_the_module_distribution_reproducibly(trained, tmp_path):
    """With "explore": true the action is drawn from the module's distribution
    with NumPy's global generator (capprof seeds it per episode)."""
    import shutil

    import dm_env

    from capprof.runners.populations import rllib_policy
    from capprof.runners.populations.substrate_info import substrate_info

    obs = {"RGB": np.random.default_rng(3).integers(0, 256, (88, 88, 3), dtype=np.uint8)}
    timestep = dm_env.transition(0.0, obs)

    def draws(policy, seed):
        np.random.seed(seed)
        return [policy.step(timestep, ())[0] for _ in range(40)]

    def draws_of(policy):
        return draws(policy, 0)

    assert json.loads((trained / "capprof_rllib.json").read_text())["explore"] is True  # as capprof train records
    copy = tmp_path / "greedy"
    shutil.copytree(trained, copy)
    convention = json.loads((copy / "capprof_rllib.json").read_text())
    (copy / "capprof_rllib.json").write_text(json.dumps({**convention, "explore": False}))
    info = substrate_info("commons_harvest__open")
    greedy = rllib_policy.build(f"rllib:{copy}", info)
    sampling = rllib_policy.build(f"rllib:{trained}", info)
    assert len(set(draws_of(rllib_policy.build(f"rllib:{trained}#greedy", info)))) == 1  # the override
    assert len(set(draws_of(rllib_policy.build(f"rllib:{copy}#sample", info)))) > 1
    assert len(set(draws(greedy, 0))) == 1  # greedy: one action for one observation
    assert len(set(draws(sampling, 0))) > 1  # a one-iteration policy is far from deterministic
    assert draws(sampling, 5) == draws(sampling, 5)
    # a temperature sharpens the distribution: towards greedy below 1, towards uniform above
    greedy_action = draws(greedy, 0)[0]
    cold, hot = (rllib_policy.build(f"rllib:{trained}#sample={t}", info) for t in (0.05, 50))
    assert draws(cold, 0).count(greedy_action) > draws(sampling, 0).count(greedy_action)
    assert len(set(draws(hot, 0))) > len(set(draws(cold, 0)))
    (copy / "capprof_rllib.json").write_text(json.dumps({**convention, "explore": True, "temperature": 0.05}))
    assert draws(rllib_policy.build(f"rllib:{copy}", info), 0) == draws(cold, 0)  # as the directory says
