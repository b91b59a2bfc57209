"""The array sampler (``capprof train --sampler array``, the default) gives
PPO the experience RLlib's own single-agent runner gives it: on a
deterministic fake substrate, played greedily by the same module, every
complete episode of every player has the same observations, actions,
rewards and end; exploring, each stored log-probability is the one its
logits give the action taken."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.runners

PLAYERS = 3


class _CountingSubstrate:
    """A deterministic stand-in for a meltingpot substrate: 3 players; each
    player's view is constant, its colour naming the substrate (red), the
    player (green) and the episode and step (blue), plus the player's last
    action; rewards depend on player and action; the episode terminates
    after ``3 + seed % 3`` steps, so substrates built with different seeds
    end at different steps."""

    def __init__(self, scenario, seed):
        import dm_env

        self.dm_env, self.seed = dm_env, seed
        self.length, self.episode, self.t, self.last = 3 + seed % 3, -1, 0, [0] * PLAYERS

    def action_spec(self):
        import dm_env.specs

        return [dm_env.specs.DiscreteArray(8)] * PLAYERS

    def _obs(self):
        views = []
        for i in range(PLAYERS):
            rgb = np.empty((88, 88, 3), np.uint8)
            rgb[..., 0], rgb[..., 1] = self.seed % 251, i
            rgb[..., 2] = (self.episode * 40 + self.t * 8 + self.last[i]) % 256
            views.append({"RGB": rgb})
        return views

    def reset(self):
        self.episode, self.t, self.last = self.episode + 1, 0, [0] * PLAYERS
        return self.dm_env.restart(self._obs())

    def step(self, actions):
        self.t += 1
        self.last = [int(a) for a in actions]
        rewards = [float((a + i) % 3) for i, a in enumerate(self.last)]
        if self.t >= self.length:
            return self.dm_env.termination(rewards, self._obs())
        return self.dm_env.transition(rewards, self._obs())

    def close(self):
        pass


@pytest.fixture
def fake_substrates(monkeypatch):
    import capprof.meltingpot_import
    from capprof.runners.episode import substrate
    from capprof.runners.scenarios.scenarios import Scenario

    monkeypatch.setattr(capprof.meltingpot_import, "import_meltingpot", lambda: None)
    monkeypatch.setattr(substrate, "build_substrate", _CountingSubstrate)
    monkeypatch.setattr(Scenario, "n_players", property(lambda self: PLAYERS))


def _runner(sampler: str, max_steps: int):
    from capprof.runners.training import rllib_train as lib

    settings = lib.TrainSettings("commons_harvest__open", sampler=sampler, envs_per_runner=3, batch_size=30,
                                 minibatch_size=15, max_episode_steps=max_steps, seed=4,
                                 substrate_processes=0)  # spawned workers would not see the fake substrate
    config = lib.ppo_config(settings, lib.training_scenario(settings))
    return lib._env_runner_class(sampler)(config=config)


def _episodes(runner, calls: int, explore: bool) -> dict:
    """Complete episodes by (substrate, player), in order: each the
    concatenation of its chunks (observations, actions, rewards, ended how)."""
    chunks: dict[str, list] = {}
    order = []
    for _ in range(calls):
        for episode in runner.sample(num_timesteps=9 * 5, explore=explore):
            if episode.id_ not in chunks:
                order.append(episode.id_)
            chunks.setdefault(episode.id_, []).append(episode)
    complete: dict[tuple, list] = {}
    for id_ in order:
        parts = chunks[id_]
        if not parts[-1].is_done:
            continue
        assert [p.t_started for p in parts] == list(np.cumsum([0] + [len(p) for p in parts[:-1]]))
        obs = np.concatenate([parts[0].get_observations()] + [p.get_observations()[1:] for p in parts[1:]])
        colour = np.rint(obs[0, 0, 0] * 255).astype(int)
        complete.setdefault((colour[0], colour[1]), []).append((
            obs, np.concatenate([p.get_actions() for p in parts]),
            np.concatenate([p.get_rewards() for p in parts]), parts[-1].is_terminated, parts[-1].is_truncated,
            np.concatenate([p.get_extra_model_outputs("action_logp") for p in parts]),
            np.concatenate([p.get_extra_model_outputs("action_dist_inputs") for p in parts])))
    return complete


@pytest.mark.parametrize("max_steps", [1000, 4])  # episodes that terminate; some cut at max_steps
def test_the_array_sampler_records_what_rllibs_runner_records(fake_substrates, max_steps):
    array, rllib = _runner("array", max_steps), _runner("vector", max_steps)
    rllib.module.load_state_dict(array.module.state_dict())
    got, want = _episodes(array, 6, explore=False), _episodes(rllib, 6, explore=False)
    assert set(got) == set(want) and len(got) == 3 * PLAYERS  # 3 substrates x 3 players
    for key in want:
        n = min(len(got[key]), len(want[key]))
        assert n >= 3, (key, len(got[key]), len(want[key]))
        for mine, theirs in zip(got[key][:n], want[key][:n]):
            assert np.array_equal(mine[0], theirs[0])  # observations
            assert np.array_equal(mine[1], theirs[1]) and np.array_equal(mine[2], theirs[2])
            assert (mine[3], mine[4]) == (theirs[3], theirs[4])
            assert np.allclose(mine[6], theirs[6], atol=1e-5)  # the logits
    ended = {(e[3], e[4]) for episodes in got.values() for e in episodes}
    assert ended == ({(True, False)} if max_steps == 1000 else {(True, False), (False, True)})
    # the episode metrics count each player's episode, as RLlib's runner does
    lengths = {len(e[1]) for episodes in got.values() for e in episodes}
    metrics = array.get_metrics()
    assert min(lengths) <= metrics["episode_len_mean"].peek() <= max(lengths)
    assert metrics["num_env_steps_sampled_lifetime"].peek() == 6 * 45


def test_exploring_stores_each_actions_log_probability(fake_substrates):
    import torch

    array = _runner("array", 1000)
    episodes = [e for runs in _episodes(array, 4, explore=True).values() for e in runs]
    actions = np.concatenate([e[1] for e in episodes])
    logp = np.concatenate([e[5] for e in episodes])
    logits = np.concatenate([e[6] for e in episodes])
    expected = torch.log_softmax(torch.from_numpy(logits), -1).numpy()[np.arange(len(actions)), actions]
    assert np.allclose(logp, expected, atol=1e-5)
    assert len(set(actions.tolist())) > 1  # drawn, not the greedy choice


def test_substrates_in_worker_processes_step_restart_and_close():
    from capprof.meltingpot_import import import_meltingpot
    from capprof.runners.populations.rllib_obs import ObsConvention
    from capprof.runners.training.rllib_env import resolve_target
    from capprof.runners.training.substrate_processes import SubstrateProcesses

    import_meltingpot()
    scenario = resolve_target("commons_harvest__open")
    workers = SubstrateProcesses(scenario, [1, 2, 3], ObsConvention(), max_steps=3, processes=2)
    try:
        assert [g.stop - g.start for g in workers.groups] == [2, 1]
        assert workers.num_actions == 8  # commons_harvest's action set, as the workers' substrates report it
        first = workers.restart_all().copy()
        assert first.shape == (21, 11, 11, 3) and 0 < first.max() <= 1
        everyone = np.ones(3, dtype=bool)
        for step in range(3):
            rewards, ended = workers.advance(np.zeros((3, 7), dtype=np.int64), everyone)
            assert rewards.shape == (3, 7)
            assert [e.k for e in ended] == ([] if step < 2 else [0, 1, 2])
        assert all(not e.terminated and e.final.shape == (7, 11, 11, 3) for e in ended)  # cut at max_steps
        rewards, ended = workers.advance(np.zeros((3, 7), dtype=np.int64), np.array([True, False, True]))
        assert not rewards[1].any() and not ended
    finally:
        processes = list(workers._processes)
        workers.close()
    assert processes and not any(p.is_alive() for p in processes)


def test_a_reset_prepared_ahead_of_time_plays_the_environment_the_reset_would_have_built():
    """The next lab2d environment, built and started while a substrate is
    idle, is the one its reset would have built (the next of the substrate's
    rebuilds, so the next seed of its sequence): each episode plays on the
    same rebuild, prepared or not, and the worker processes prepare them."""
    import time

    from capprof.meltingpot_import import import_meltingpot
    from capprof.runners.episode.substrate import build_substrate
    from capprof.runners.populations.rllib_obs import ObsConvention
    from capprof.runners.training.rllib_env import resolve_target
    from capprof.runners.training.substrate_processes import LocalSubstrates, SubstrateProcesses

    import_meltingpot()
    scenario, seeds, steps = resolve_target("commons_harvest__open"), [4], 8

    def episodes_played(prepare: bool):
        """Per substrate, which of its rebuilds each episode played on (0:
        the environment built with the substrate), and how many rebuilds."""
        substrates = LocalSubstrates([build_substrate(scenario, s) for s in seeds], 7, ObsConvention(), max_steps=4)
        rebuilt = [[] for _ in seeds]
        assert substrates.prepared_resets() == 0
        for k, p in enumerate(substrates.prepared):
            rebuild = p.wrapper._rebuild_environment

            def counted(rebuild=rebuild, k=k):
                rebuilt[k].append(rebuild())
                return rebuilt[k][-1]
            p.wrapper._rebuild_environment = counted
        assert not substrates.prepare_reset()  # before the first reset: nothing to prepare
        first = substrates.restart_all()
        assert first.max() > 0
        played = [[0] for _ in seeds]
        rng = np.random.default_rng(0)
        for _ in range(steps):
            if prepare:
                while substrates.prepare_reset():
                    pass
                assert all(p.ready is not None for p in substrates.prepared)
            _, ended = substrates.advance(rng.integers(0, 8, (1, 7)), np.ones(1, bool))
            for e in ended:
                env = substrates.prepared[e.k].wrapper._env
                played[e.k].append(next(i + 1 for i, built in enumerate(rebuilt[e.k]) if built is env))
                assert substrates.steps[e.k] == 0 and substrates.obs[e.k * 7:(e.k + 1) * 7].max() > 0
        assert substrates.prepared_resets() == (2 if prepare else 0)
        substrates.close()
        return played, [len(r) for r in rebuilt]

    assert episodes_played(prepare=False) == ([[0, 1, 2]], [2])
    assert episodes_played(prepare=True) == ([[0, 1, 2]], [2])  # the same rebuild for each episode

    workers = SubstrateProcesses(scenario, seeds, ObsConvention(), max_steps=4, processes=1)
    try:  # pauses in which the worker prepares; its episodes still end and restart on time
        workers.restart_all()
        for step in range(8):
            time.sleep(0.6)
            _, ended = workers.advance(np.zeros((1, 7), np.int64), np.ones(1, bool))
            assert [e.k for e in ended] == ([0] if step % 4 == 3 else [])
            assert workers.obs.max() > 0
        assert workers.prepared_resets() == 2  # both restarts took a prepared environment
    finally:
        workers.close()


def test_a_script_that_trains_without_a_main_guard_is_told_how_to_fix_it(tmp_path):
    """Spawned workers import the script that started them; a script that
    builds the substrates at import would build them again in each worker,
    which multiprocessing refuses: the training says what to do."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "train_it.py"
    script.write_text(textwrap.dedent("""
        from capprof.errors import CapprofError
        from capprof.meltingpot_import import import_meltingpot
        from capprof.runners.populations.rllib_obs import ObsConvention
        from capprof.runners.training.rllib_env import resolve_target
        from capprof.runners.training.substrate_processes import SubstrateProcesses

        import_meltingpot()
        try:
            SubstrateProcesses(resolve_target("commons_harvest__open"), [1], ObsConvention(), 3, 1)
        except CapprofError as error:
            print(error)
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    line = res.stdout.strip().splitlines()[-1]
    assert "a substrate worker process" in line and "ended before it was ready (exit code 1)" in line
    assert 'put that code under `if __name__ == "__main__":`' in line and "--substrate-processes 0" in line
