"""``rllib-legacy:CHECKPOINT@PYTHON``: contest-era (RLlib 2.6, old API stack) checkpoints.

The fast tests read checkpoint folders laid out as ray 2.6 saves them (the
files' contents are not read there) and check the declared observation
conversion on real gymnasium spaces, loading ``runners/populations/rllib_legacy.py`` by
file path as the bridge's child does. The slow tests train tiny checkpoints
in the contest's environment (``.venv-legacy``, ``make legacy-env``) with
``runners/training/rllib_legacy_train.py`` and play them through capprof on short real
episodes; they are skipped, saying why, where that environment is absent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
LEGACY_PYTHON = ROOT / ".venv-legacy" / "bin" / "python"
TRAIN = ROOT / "runners" / "training" / "rllib_legacy_train.py"
COMMONS = "commons_harvest__open__resident_harvester"


def legacy_module():
    path = ROOT / "runners" / "populations" / "rllib_legacy.py"
    spec = importlib.util.spec_from_file_location("rllib_legacy_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def policy_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "policy_state.pkl").write_bytes(b"")
    (path / "rllib_checkpoint.json").write_text('{"type": "Policy", "ray_version": "2.6.1"}')
    return path


def trial(root: Path, players: int = 2, iterations=(1,), scaled=8) -> Path:
    for it in iterations:
        checkpoint = root / f"checkpoint_{it:06d}"
        for i in range(players):
            policy_dir(checkpoint / "policies" / f"agent_{i}")
        (checkpoint / "algorithm_state.pkl").write_bytes(b"")
    if scaled is not None:
        (root / "params.json").write_text(json.dumps({"env_config": {"scaled": scaled}}))
    return root


# ------------------------------------------------------------ fast: routes and refusals


@pytest.mark.parametrize("layout", ["policy", "algorithm", "trial"])
def test_rllib_on_an_old_checkpoint_points_to_rllib_legacy(cli, tmp_path, layout):
    if layout == "policy":
        checkpoint = policy_dir(tmp_path / "policy")
    elif layout == "algorithm":
        checkpoint = trial(tmp_path / "t") / "checkpoint_000001"
    else:
        checkpoint = trial(tmp_path / "t")
    res = cli("run", "--population", f"old=rllib:{checkpoint}", "--scenario", COMMONS, "--episodes", "1",
              "--out", tmp_path / "out")
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "is an old-stack RLlib checkpoint" in lines[0], res.err
    assert f"play it with rllib-legacy:{checkpoint}@{ROOT / '.venv-legacy/bin/python'}" in lines[0]
    assert "`make legacy-env`" in lines[0]


def test_rllib_legacy_without_an_interpreter_asks_for_one(cli, tmp_path):
    checkpoint = trial(tmp_path / "t")
    res = cli("run", "--population", f"old=rllib-legacy:{checkpoint}", "--scenario", COMMONS, "--episodes", "1",
              "--out", tmp_path / "out")
    assert res.code == 2
    assert res.err.strip() == (f'capprof: error: "rllib-legacy:{checkpoint}": rllib-legacy: members play in the '
                               f"contest's interpreter; write rllib-legacy:{checkpoint}@{ROOT / '.venv-legacy/bin/python'} "
                               "(build it with `make legacy-env`) or @ another python with ray 2.x's old API stack")


def test_a_missing_legacy_interpreter_says_how_to_build_it(cli, tmp_path):
    checkpoint = trial(tmp_path / "t")
    missing = tmp_path / ".venv-legacy" / "bin" / "python"
    res = cli("run", "--population", f"old=rllib-legacy:{checkpoint}@{missing}", "--scenario", COMMONS,
              "--episodes", "1", "--out", tmp_path / "out")
    assert res.code == 2
    assert res.err.strip() == (f"capprof: error: interpreter {missing} does not exist; build the contest's "
                               "environment with `make legacy-env` in the capprof checkout, then write "
                               f"@{LEGACY_PYTHON}")


def _make_legacy_env(tmp_path, *variables, env=None):
    venv = tmp_path / "legacy-venv"
    res = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), "legacy-env",
                          f"LEGACY_VENV={venv}", *variables],
                         capture_output=True, text=True, timeout=60, env=env)
    return res, venv


def test_make_legacy_env_refuses_a_python_that_is_not_3_10_in_one_line(tmp_path):
    import sys

    res, venv = _make_legacy_env(tmp_path, f"LEGACY_PYTHON={sys.executable}")
    assert res.returncode == 2
    line = res.stderr.splitlines()[0]
    assert line.startswith("capprof: make legacy-env needs a Python 3.10 interpreter and found none")
    assert f"and {sys.executable} is not 3.10" in line
    assert "pyenv install 3.10.13" in line and "LEGACY_PYTHON=/path/to/python3.10" in line
    assert "Traceback" not in res.stderr and not venv.exists()  # nothing built, nothing half-built


def test_make_legacy_env_without_any_python_3_10_says_how_to_get_one(tmp_path):
    # a PATH with the tools make's recipe uses, and no python3.10; an empty pyenv
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "make", "ls", "sort", "cat", "date", "du", "cut", "rm"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (tools / tool).symlink_to(found)
    env = {"PATH": str(tools), "PYENV_ROOT": str(tmp_path / "no-pyenv"), "HOME": str(tmp_path)}
    res, venv = _make_legacy_env(tmp_path, env=env)
    assert res.returncode == 2
    line = res.stderr.splitlines()[0]
    assert line == ("capprof: make legacy-env needs a Python 3.10 interpreter and found none (no python3.10 on "
                    f"PATH, none under {tmp_path / 'no-pyenv'}/versions/3.10*): install one with 'pyenv install "
                    "3.10.13' (or apt-get install python3.10), or name it: make legacy-env "
                    "LEGACY_PYTHON=/path/to/python3.10")
    assert not venv.exists()


# ------------------------------------------------------------ fast: finding the policies


def test_every_checkpoint_layout_is_found_and_a_trial_plays_its_latest(tmp_path):
    legacy = legacy_module()
    root = trial(tmp_path / "trial", players=3, iterations=(2, 10))
    found = legacy.locate(str(root))
    assert found.kind == "a Tune trial folder (its latest checkpoint, checkpoint_000010)"
    assert found.folder == str(root / "checkpoint_000010")
    assert list(found.policies) == ["agent_0", "agent_1", "agent_2"]
    assert legacy.locate(str(root / "checkpoint_000002")).kind == "an Algorithm checkpoint"
    assert legacy.locate(str(root / "checkpoint_000002" / "policies")).kind == "a policies/ folder"
    single = legacy.locate(str(root / "checkpoint_000002" / "policies" / "agent_1"))
    assert single.kind == "a Policy checkpoint" and list(single.policies) == [None]
    assert list(legacy.select(found, "agent_2", str(root))) == ["agent_2"]
    with pytest.raises(legacy.CheckpointError, match=r'no policy "agent_9" in .*; it holds agent_0, agent_1, agent_2'):
        legacy.select(found, "agent_9", str(root))
    with pytest.raises(legacy.CheckpointError, match=r'is a single Policy checkpoint; drop ":agent_0"'):
        legacy.select(single, "agent_0", "x")


def test_a_folder_that_is_not_a_checkpoint_names_what_it_holds(tmp_path):
    legacy = legacy_module()
    (tmp_path / "weights").mkdir()
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(legacy.CheckpointError) as err:
        legacy.locate(str(tmp_path))
    assert str(err.value) == (f"{tmp_path} is not an RLlib old-API-stack checkpoint: it holds notes.txt, weights/; "
                              "expected policy_state.pkl (a Policy checkpoint), policies/agent_i/ (an Algorithm "
                              "checkpoint) or checkpoint_NNNNNN/ folders (a Tune trial)")
    with pytest.raises(legacy.CheckpointError, match="does not exist; give the folder RLlib saved"):
        legacy.locate(str(tmp_path / "missing"))
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "learner_group").mkdir()
    with pytest.raises(legacy.CheckpointError, match=r"new-API-stack .* in capprof's own interpreter with rllib:"):
        legacy.locate(str(tmp_path / "new"))
    (tmp_path / "empty" / "policies" / "agent_0").mkdir(parents=True)
    with pytest.raises(legacy.CheckpointError, match=r"has a policies/ folder with no policy in it \(found agent_0/\)"):
        legacy.locate(str(tmp_path / "empty"))


def test_the_spec_splits_policy_id_and_play_mode():
    legacy = legacy_module()
    assert legacy.split_spec("rllib-legacy:/nope/ckpt:agent_3#greedy") == ("/nope/ckpt", "agent_3", False)
    assert legacy.split_spec("rllib-legacy:/nope/ckpt#sample") == ("/nope/ckpt", None, True)
    assert legacy.split_spec("rllib-legacy:/nope/ckpt") == ("/nope/ckpt", None, None)
    with pytest.raises(legacy.CheckpointError, match='unknown play mode "#best"; write #greedy'):
        legacy.split_spec("rllib-legacy:/x#best")


# ------------------------------------------------------------ fast: the declared conversion


def dict_space(side=11):
    import gymnasium as gym

    return gym.spaces.Dict({"READY_TO_SHOOT": gym.spaces.Box(-np.inf, np.inf, (), np.float64),
                            "RGB": gym.spaces.Box(0, 255, (side, side, 3), np.uint8)})


def melting_pot_observation(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {"RGB": rng.integers(0, 256, (88, 88, 3), dtype=np.uint8), "READY_TO_SHOOT": np.float64(1.0),
            "WORLD.RGB": np.zeros((144, 192, 3), np.uint8)}


def test_params_json_supplies_the_factor_and_the_space_the_rest(tmp_path):
    import cv2

    legacy = legacy_module()
    root = trial(tmp_path / "t", players=1)
    folder = str(root / "checkpoint_000001" / "policies" / "agent_0")
    conversion = legacy.conversion_for(dict_space(), folder, "ckpt")
    assert conversion.sources["downsample"] == str(root / "params.json") and conversion.downsample == 8
    assert conversion.keys == ["READY_TO_SHOOT", "RGB"] and not conversion.flatten and conversion.scale == "none"
    obs = melting_pot_observation()
    converted = conversion.convert({k: v for k, v in obs.items() if k not in legacy.DROPPED_KEYS})
    assert set(converted) == {"READY_TO_SHOOT", "RGB"}
    # what the contest's downsampling wrapper computed
    np.testing.assert_array_equal(converted["RGB"], cv2.resize(obs["RGB"], (11, 11), interpolation=cv2.INTER_AREA))


def test_a_factor_that_disagrees_with_the_policy_is_one_line_saying_what_it_expected(tmp_path):
    legacy = legacy_module()
    root = trial(tmp_path / "t", players=1, scaled=4)
    folder = str(root / "checkpoint_000001" / "policies" / "agent_0")
    with pytest.raises(legacy.CheckpointError) as err:
        legacy.conversion_for(dict_space(11), folder, "ckpt policy agent_0")
    message = str(err.value)
    assert message.startswith("ckpt policy agent_0: the policy expects RGB as (11, 11, 3), but the conversion (")
    assert "RGB downsampled 4x" in message and f"{root / 'params.json'}: downsample" in message
    assert message.endswith('gives (22, 22, 3); declare "downsample" / "flatten" in capprof_legacy.json beside '
                            "the checkpoint")
    (root / "capprof_legacy.json").write_text('{"downsample": 8}')  # the declaration wins over params.json
    assert legacy.conversion_for(dict_space(11), folder, "x").sources["downsample"] == str(root / "capprof_legacy.json")


def test_a_flat_box_in_minus_one_to_one_is_scaled_and_flattened_without_a_declaration(tmp_path):
    import gymnasium as gym

    legacy = legacy_module()
    folder = policy_dir(tmp_path / "p")
    conversion = legacy.conversion_for(gym.spaces.Box(-1.0, 1.0, (363,), np.float32), str(folder), "p")
    assert (conversion.keys, conversion.downsample, conversion.scale, conversion.flatten) == (None, 8, "-1..1", True)
    obs = melting_pot_observation(1)
    flat = conversion.convert(obs)
    blocks = obs["RGB"].reshape(11, 8, 11, 8, 3).astype(np.float64).mean(axis=(1, 3))
    expected = (np.rint(blocks) / 127.5 - 1).reshape(-1)
    assert flat.dtype == np.float32 and flat.shape == (363,)
    np.testing.assert_allclose(flat, expected, atol=1e-6)
    assert flat.min() >= -1 and flat.max() <= 1


@pytest.mark.parametrize("settings, needle", [
    ('{"scale": "0-1"}', "scale is '0-1'; give one of 'none', '0..1', '-1..1'"),
    ('{"downsample": 2.5}', "downsample is 2.5; give a whole factor >= 1"),
    ('{"resize": 8}', "unknown setting 'resize'; the settings are downsample, interpolation, scale, keys, flatten, "
                      "explore, batch"),
    ('[8]', "holds a list, not a JSON object"),
    ('{"keys": "RGB"}', "keys is 'RGB'; give a list of observation names"),
])
def test_bad_declarations_are_one_line_naming_the_file(tmp_path, settings, needle):
    legacy = legacy_module()
    folder = policy_dir(tmp_path / "p")
    (folder / "capprof_legacy.json").write_text(settings)
    with pytest.raises(legacy.CheckpointError) as err:
        legacy.conversion_for(dict_space(), str(folder), "p")
    assert str(err.value).startswith(str(folder / "capprof_legacy.json")) and needle in str(err.value)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------ slow: trained in the contest's environment


@pytest.fixture(scope="session")
def legacy_python() -> Path:
    if not LEGACY_PYTHON.exists():
        pytest.skip(f"no {LEGACY_PYTHON.relative_to(ROOT)}: the contest's Python 3.10 environment is built by "
                    "`make legacy-env` (about 200 s, 5 GB)")
    return LEGACY_PYTHON


def train(python: Path, out: Path, *flags: str) -> Path:
    done = subprocess.run([str(python), str(TRAIN), str(out), "--players", "7", "--steps", "200", *flags],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def trained(legacy_python, tmp_path_factory) -> dict:
    """Tune-trial folders of a dict-observation MLP, the contest baseline's
    LSTM (previous action in) and a flat [-1, 1] MLP, 7 policies each."""
    root = tmp_path_factory.mktemp("legacy-checkpoints")
    return {"mlp": train(legacy_python, root / "mlp"), "lstm": train(legacy_python, root / "lstm", "--lstm"),
            "flat": train(legacy_python, root / "flat", "--flat")}


@pytest.mark.slow
def test_old_checkpoints_play_real_episodes_in_every_layout(cli, tmp_path, legacy_python, trained):
    out = tmp_path / "out"
    py = legacy_python
    res = cli("run", "--scenario", COMMONS, "--episodes", "1", "--max-steps", "40", "--out", out, "--quiet",
              "--population", f"mlp=rllib-legacy:{trained['mlp']}@{py}",
              "--population", f"lstm=rllib-legacy:{trained['lstm'] / 'checkpoint_000001'}#greedy@{py}",
              "--population", f"one=rllib-legacy:{trained['lstm'] / 'checkpoint_000001'}:agent_3@{py}",
              "--population", f"flat=rllib-legacy:{trained['flat'] / 'policy_agent_0'}@{py}")
    assert res.code == 0, res.err
    notes = [line for line in res.err.splitlines() if line.startswith("capprof: note: rllib-legacy:")]
    assert any(f"a Tune trial folder (its latest checkpoint, checkpoint_000001) at {trained['mlp']}/checkpoint_000001: "
               "policies agent_0 .. agent_6 (7), each focal slot its own id; samples; observation: a dict of "
               "COLLECTIVE_REWARD, READY_TO_SHOOT, RGB; RGB downsampled 8x (area), uint8" in n for n in notes), notes
    assert any("policy agent_3 in every focal slot; samples; observation:" in n for n in notes), notes
    assert any("#greedy" in n and "each focal slot its own id; greedy; observation:" in n for n in notes), notes
    assert any("the RGB view alone; RGB downsampled 8x (area), scaled to -1..1, flattened" in n for n in notes)
    table = pd.read_parquet(out).set_index("team")
    for team in ("mlp", "lstm", "one", "flat"):
        row = table.loc[team]
        assert row["status"] == "ok" and row["steps"] == 40, (team, row["error"])


@pytest.mark.slow
def test_through_the_bridge_the_actions_are_the_contest_evaluations(legacy_python, trained, tmp_path):
    """In the legacy interpreter: the bridge's rllib-legacy policy and the
    contest's own EvalPolicy steps (dropped keys, cv2 INTER_AREA to 11x11,
    compute_single_action with the state, previous action and reward) give
    the same greedy actions and LSTM states over 30 steps."""
    script = tmp_path / "compare.py"
    script.write_text(textwrap.dedent(f"""
        import sys, json
        import cv2, numpy as np, dm_env
        sys.path.insert(0, {str(ROOT / 'runners' / 'populations')!r})
        import rllib_legacy
        from ray.rllib.policy.policy import Policy
        checkpoint = {str(trained['lstm'] / 'checkpoint_000001')!r}
        ours = rllib_legacy.build("rllib-legacy:" + checkpoint + "#greedy", "agent_2", 0)
        theirs = Policy.from_checkpoint(checkpoint + "/policies/agent_2")
        rng = np.random.default_rng(0)
        state, their_state, prev_action = ours.initial_state(), theirs.get_initial_state(), 0
        actions, changed = [], 0
        for t in range(30):
            obs = {{"RGB": rng.integers(0, 256, (88, 88, 3), dtype=np.uint8), "READY_TO_SHOOT": np.float64(t % 2),
                   "COLLECTIVE_REWARD": np.float64(t), "WORLD.RGB": np.zeros((144, 192, 3), np.uint8)}}
            reward = np.float64(t % 3)
            ts = dm_env.transition(reward, obs) if t else dm_env.restart(obs)
            action, state = ours.step(ts, state)
            kept = {{k: v for k, v in obs.items() if k not in ("WORLD.RGB", "INTERACTION_INVENTORIES",
                                                              "NUM_OTHERS_WHO_CLEANED_THIS_STEP")}}
            kept["RGB"] = cv2.resize(kept["RGB"], (11, 11), interpolation=cv2.INTER_AREA)
            their_action, new_state, _ = theirs.compute_single_action(
                kept, their_state, prev_action=prev_action, prev_reward=float(reward) if t else 0.0, explore=False)
            changed += int(not np.allclose(new_state[0], their_state[0]))
            their_state, prev_action = new_state, int(their_action)
            assert action == int(their_action), (t, action, their_action)
            assert all(np.allclose(a, b) for a, b in zip(state[0], their_state)), t
            actions.append(action)
        print(json.dumps({{"actions": actions, "changed": changed}}))
    """))
    done = subprocess.run([str(legacy_python), str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["changed"] == 30  # the recurrent state moves every step: it is carried, not reset


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_the_scenario_is_one_line_before_any_episode(cli, tmp_path, legacy_python,
                                                                                    trained):
    res = cli("run", "--population", f"x=rllib-legacy:{trained['mlp']}@{legacy_python}", "--scenario",
              "clean_up__resident_cleaner", "--episodes", "1", "--out", tmp_path / "out")
    errors = [line for line in res.err.strip().splitlines() if line.startswith("capprof: error:")]
    assert res.code == 2 and len(errors) == 1, res.err
    assert "policy agent_0 has 8 actions but clean_up has 9 (scenario clean_up__resident_cleaner)" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_declared_batch_steps_the_slots_of_one_policy_together_with_the_same_actions(legacy_python, trained,
                                                                                      tmp_path):
    """Six slots of one LSTM policy, 30 greedy steps through the bridge: with
    ``"batch": true`` the child steps them in one compute_actions call (each
    reports an equal share of its time) and they act as with one
    compute_single_action each."""
    import shutil

    import dm_env

    from capprof.errors import CapprofNote
    from capprof.runners.populations import venv_member
    from capprof.runners.populations.populations import policy_slots
    from capprof.runners.populations.substrate_info import SubstrateInfo

    batched = tmp_path / "batched"
    shutil.copytree(trained["lstm"], batched)
    (batched / "capprof_legacy.json").write_text('{"batch": true}')
    info = SubstrateInfo("commons_harvest__open", ({},) * 8, ())
    played = {}
    for name, root in (("single", trained["lstm"]), ("batched", batched)):
        source = venv_member.VenvSource(f"rllib-legacy:{root}:agent_0#greedy", str(legacy_python))
        with pytest.warns(CapprofNote, match="policy agent_0 in every focal slot; greedy"):
            described = source.check()["ok"]["legacy"]["policies"]["agent_0"]
        assert described["batch"] is (name == "batched")
        policies = [source.build(info, 0, slot) for slot in policy_slots(["default"] * 6)]
        states = [p.initial_state() for p in policies]
        rng = np.random.default_rng(0)
        actions, shares = [], []
        try:
            for t in range(30):
                steps = [dm_env.transition(np.float64(t % 2), {
                    "RGB": rng.integers(0, 256, (88, 88, 3), dtype=np.uint8), "READY_TO_SHOOT": np.float64(1.0),
                    "COLLECTIVE_REWARD": np.float64(t)}) for _ in policies]
                for policy, step, state in zip(policies, steps, states):
                    policy.step_ahead(step, state)
                row = []
                for i, policy in enumerate(policies):
                    action, states[i] = policy.step(steps[i], states[i])
                    row.append(action)
                actions.append(row)
                shares.append({p.step_seconds for p in policies})
        finally:
            for policy in policies:
                policy.close()
        played[name] = (actions, shares)
    assert played["batched"][0] == played["single"][0]
    assert all(len(s) == 1 for s in played["batched"][1])  # one call, its time shared equally
    assert sum(len(s) > 1 for s in played["single"][1]) >= 25  # one call each: their times differ


@pytest.mark.slow
def test_an_unchanged_kit_that_loads_its_rllib_checkpoint_by_relative_path_plays(cli, tmp_path, legacy_python,
                                                                                 trained):
    """The contest's starter-kit shape: a meltingpot Policy subclass whose
    constructor takes the policy id and loads checkpoints/policies/<id> by a
    relative path with ray 2.6, stepping as the baseline's EvalPolicy did."""
    import shutil

    kit = tmp_path / "kit"
    shutil.copytree(trained["lstm"] / "checkpoint_000001", kit / "checkpoints")
    (kit / "my_policies").mkdir()
    (kit / "my_policies" / "__init__.py").write_text("")
    (kit / "my_policies" / "user_config.py").write_text(textwrap.dedent("""
        import cv2
        from meltingpot.utils.policies import policy
        from ray.rllib.policy.policy import Policy as RayPolicy

        _IGNORE_KEYS = ["WORLD.RGB", "INTERACTION_INVENTORIES", "NUM_OTHERS_WHO_CLEANED_THIS_STEP"]

        class EvalPolicy(policy.Policy):
            def __init__(self, policy_id):
                self._policy = RayPolicy.from_checkpoint("checkpoints/policies/" + policy_id)
                self._prev_action = 0

            def initial_state(self):
                self._prev_action = 0
                return self._policy.get_initial_state()

            def step(self, timestep, prev_state):
                obs = {k: v for k, v in timestep.observation.items() if k not in _IGNORE_KEYS}
                obs["RGB"] = cv2.resize(obs["RGB"], (11, 11), interpolation=cv2.INTER_AREA)
                action, state, _ = self._policy.compute_single_action(
                    obs, prev_state, prev_action=self._prev_action, prev_reward=timestep.reward)
                self._prev_action = action
                return action, state

            def close(self):
                pass

        SubmissionPolicies = {"commons_harvest__open": EvalPolicy}
        SubmissionRoles = {"commons_harvest__open": {"default": ["agent_%d" % i for i in range(7)]}}
    """))
    out = tmp_path / "out"
    res = cli("run", "--population", f"kit=submission:{kit}@{legacy_python}", "--scenario", COMMONS,
              "--episodes", "1", "--max-steps", "30", "--out", out, "--quiet")
    assert res.code == 0, res.err
    row = pd.read_parquet(out).iloc[0]
    assert row["status"] == "ok" and row["steps"] == 30, row["error"]
