"""Runner throughput, printed as ratios measured in this one run.

1. capprof's episode loop vs raw stepping of the same substrate with the same
   random policies (target >= 0.95); build/reset time is excluded from both.
2. capprof vs meltingpot's own ``evaluation.evaluate_population`` on the
   noop-bot official scenario territory__rooms_2 (target >= 1.0), whole
   episodes including build, same random focal policy.
3. Ray with 2 workers vs 1 worker on the same episodes (target >= 1.8), after
   warming the workers (importing meltingpot takes seconds per worker), and
   the mean episode wall time under Ray vs serial.
4. In-episode overhead: seconds per step outside the substrate and the
   policies (timed by wrapping their ``step``), in capprof's loop and in the
   raw loop, each inside its own episodes, so the differences between
   episodes (dmlab2d does not replay a seed) drop out; the implied ratio is
   (shared + raw own) / (shared + capprof own).
5. Isolation: whole-episode wall time in-process vs through ``--isolate``'s
   watched child process (started beforehand, as a run reuses it), same
   episodes, medians of interleaved repetitions (target >= 0.95).
6. Replay: how many distinct initial states repeated builds of each offline
   substrate give with one fixed env seed, through meltingpot's own builder
   (1 would mean dmlab2d replays an episode from its seed; it does not yet).
7. Loop cost on a stub substrate (``--stub-only`` runs only this): CPU
   microseconds per step of capprof's whole episode (loop, observers, guards)
   and of a raw meltingpot-style loop, with a substrate that returns a fixed
   timestep and 7 focal noop players. CPU time, no substrate work: the
   loop's own cost, stable on a loaded machine.

Usage: .venv/bin/python bench/bench_runners.py [--steps N] [--reps R] [--quick] [--ray-only] [--stub-only]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def raw_episode(substrate: str, steps: int, seed: int = 0, totals: dict | None = None) -> tuple[int, float]:
    """Steps and stepping seconds of one raw episode: meltingpot's substrate
    and capprof's random policy, no capprof loop. With ``totals``, the
    substrate's and policies' ``step`` add their time to it (see _Timed)."""
    from meltingpot import substrate as mp_substrate

    from capprof.runners.populations.populations import parse_population

    from capprof.runners.populations.substrate_info import substrate_info

    config = mp_substrate.get_config(substrate)
    roles = config.default_player_roles
    env = mp_substrate.build(substrate, roles=roles)
    info = substrate_info(substrate)
    member = parse_population("random").members[0]
    policies = [member.build(info, seed + i) for i in range(len(roles))]
    if totals is not None:
        _Timed(env, "step", totals, "env")
        for policy in policies:
            _Timed(policy, "step", totals, "policy")
    states = [p.initial_state() for p in policies]
    timestep = env.reset()
    start = time.perf_counter()
    done = 0
    # Stop where the episode ends, as capprof does: stepping a finished
    # episode makes dmlab2d restart it, which on clean_up can abort the process.
    while done < steps and not timestep.last():
        actions = []
        for i, policy in enumerate(policies):
            a, states[i] = policy.step(timestep._replace(observation=timestep.observation[i],
                                                         reward=timestep.reward[i]), states[i])
            actions.append(a)
        timestep = env.step(actions)
        done += 1
    elapsed = time.perf_counter() - start
    env.close()
    return done, elapsed


def raw_steps_per_second(substrate: str, steps: int, seed: int = 0) -> float:
    done, elapsed = raw_episode(substrate, steps, seed)
    return done / elapsed


def capprof_steps_per_second(substrate: str, steps: int, tmp) -> float:
    from meltingpot import substrate as mp_substrate

    from capprof.runners.execution.execute import execute, plan
    from capprof.runners.execution.results import read_results
    from capprof.runners.scenarios.scenarios import Scenario

    roles = tuple(mp_substrate.get_config(substrate).default_player_roles)
    scenario = Scenario(name=f"{substrate}__all_focal", substrate=substrate, roles=roles,
                        is_focal=(True,) * len(roles), suite="bench")
    tasks = plan(["random"], [scenario], episodes=1, max_steps=steps)
    execute(tasks, tmp, quiet=True)
    return float(read_results(tmp)["steps_per_second"].iloc[0])


def meltingpot_vs_capprof_episode(tmp) -> tuple[float, float]:
    """Steps per wall second of a whole territory__rooms_2 episode, meltingpot's
    evaluate_population vs capprof (both include substrate build and reset)."""
    from meltingpot.utils.evaluation import evaluation

    from capprof.runners.execution.execute import execute, plan
    from capprof.runners.populations.populations import parse_population
    from capprof.runners.populations.substrate_info import substrate_info
    from capprof.runners.execution.results import read_results

    info = substrate_info("territory__rooms")
    policy = parse_population("random").members[0].build(info, 0)
    start = time.perf_counter()
    frame = evaluation.evaluate_population(
        population={"random": policy}, names_by_role={"default": ["random"]},
        scenario="territory__rooms_2", num_episodes=1)
    mp_seconds = time.perf_counter() - start
    del frame
    tasks = plan(["random"], ["territory__rooms_2"], episodes=1)
    execute(tasks, tmp, quiet=True)
    row = read_results(tmp).iloc[0]
    steps = int(row["steps"])
    return steps / mp_seconds, steps / float(row["wall_seconds"])


def ray_speedup(tmp, episodes: int, steps: int) -> tuple[float, float, float]:
    """Episodes per second with 1 and 2 Ray workers (wall time of the whole
    run after warm-up), and the mean episode wall time under Ray."""
    import ray

    from capprof.runners.context import ExecutionContext
    from capprof.runners.execution.execute import execute, plan
    from capprof.runners.execution.results import read_results

    rates, episode_seconds = {}, []
    for workers in (1, 2):
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            # one context for both runs: the warm-up starts the episode actors
            # (each imports meltingpot in its child process) and the measured
            # run reuses them
            with ExecutionContext():
                warm = plan(["random"], ["prisoners_dilemma_in_the_matrix__arena__visitor_defector"],
                            episodes=workers * 2, max_steps=5, run_id="warm", seed=99)
                execute(warm, tmp / f"warm{workers}", backend="ray", quiet=True)
                tasks = plan(["random"], ["clean_up__visitor_cleaner"], episodes=episodes, max_steps=steps)
                start = time.perf_counter()
                execute(tasks, tmp / f"ray{workers}", backend="ray", quiet=True)
                rates[workers] = episodes / (time.perf_counter() - start)
            episode_seconds += list(read_results(tmp / f"ray{workers}")["wall_seconds"])
        finally:
            ray.shutdown()
    return rates[1], rates[2], float(np.mean(episode_seconds))


REPLAY_SUBSTRATES = ("commons_harvest__open", "clean_up", "prisoners_dilemma_in_the_matrix__arena",
                     "allelopathic_harvest__open", "territory__rooms")


def distinct_initial_states(substrate: str, builds: int, env_seed: int = 123) -> int:
    """Distinct hashes of all observations at reset over ``builds`` builds
    with the same ``env_seed`` (meltingpot's builder, no capprof code)."""
    import hashlib

    from meltingpot import substrate as mp_substrate
    from meltingpot.utils.substrates import builder

    config = mp_substrate.get_config(substrate)
    settings = config.lab2d_settings_builder(roles=config.default_player_roles, config=config)
    hashes = set()
    for _ in range(builds):
        env = builder.builder(settings, env_seed=env_seed)
        try:
            env.reset()
            observation = env.observation()
            hashes.add(hashlib.sha1(b"".join(np.asarray(observation[k]).tobytes()
                                             for k in sorted(observation))).hexdigest())
        finally:
            env.close()
    return len(hashes)


class _Timed:
    """Wraps ``obj.method`` to add its wall time to ``totals[key]``."""

    def __init__(self, obj, method: str, totals: dict, key: str):
        inner = getattr(obj, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                totals[key] += time.perf_counter() - start

        setattr(obj, method, timed)


def in_episode_overhead(substrate: str, steps: int, reps: int) -> tuple[float, float, float]:
    """Seconds per step spent outside the substrate and the policies: in
    capprof's episode loop and in the raw loop, each measured inside its own
    episodes (so the differences between episodes drop out), plus the
    substrate + policy seconds per step the two loops share."""
    from meltingpot import substrate as mp_substrate

    import capprof.runners.episode.episode as episode
    import capprof.runners.episode.slots as slots
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.scenarios.scenarios import Scenario

    roles = tuple(mp_substrate.get_config(substrate).default_player_roles)
    scenario = Scenario(name=f"{substrate}__all_focal", substrate=substrate, roles=roles,
                        is_focal=(True,) * len(roles), suite="bench")
    build_substrate, build_member = episode.build_substrate, slots.build_policy
    ours_own, raw_own, shared = [], [], []
    try:
        for rep in range(reps):
            totals = {"env": 0.0, "policy": 0.0}

            def timed_substrate(*args, **kwargs):
                env = build_substrate(*args, **kwargs)
                _Timed(env, "step", totals, "env")
                return env

            def timed_member(*args, **kwargs):
                policy = build_member(*args, **kwargs)
                _Timed(policy, "step", totals, "policy")
                return policy

            episode.build_substrate, slots.build_policy = timed_substrate, timed_member
            record = run_episode(EpisodeTask(run_id="bench", population="random", team="random",
                                             scenario=scenario, episode=rep, seed=0, max_steps=steps))
            episode.build_substrate, slots.build_policy = build_substrate, build_member
            loop = record.steps / record.steps_per_second
            ours_own.append((loop - totals["env"] - totals["policy"]) / record.steps)
            shared.append((totals["env"] + totals["policy"]) / record.steps)

            # the raw loop, timed the same way
            totals = {"env": 0.0, "policy": 0.0}
            done, loop = raw_episode(substrate, steps, rep * 100, totals)
            raw_own.append((loop - totals["env"] - totals["policy"]) / done)
            shared.append((totals["env"] + totals["policy"]) / done)
    finally:
        episode.build_substrate, slots.build_policy = build_substrate, build_member
    return float(np.median(ours_own)), float(np.median(raw_own)), float(np.median(shared))


def isolation_ratio(substrate: str, steps: int, reps: int) -> tuple[float, float]:
    """Median seconds per episode in-process and in the watched child."""
    from meltingpot import substrate as mp_substrate

    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.execution.isolation import EpisodeProcess
    from capprof.runners.scenarios.scenarios import Scenario

    roles = tuple(mp_substrate.get_config(substrate).default_player_roles)
    scenario = Scenario(name=f"{substrate}__all_focal", substrate=substrate, roles=roles,
                        is_focal=(True,) * len(roles), suite="bench")
    process = EpisodeProcess()
    inside, isolated = [], []
    try:
        for rep in range(reps):
            task = EpisodeTask(run_id="bench", population="random", team="random", scenario=scenario,
                               episode=rep, seed=0, max_steps=steps)
            start = time.perf_counter()
            run_episode(task)
            inside.append(time.perf_counter() - start)
            start = time.perf_counter()
            process.run(task)
            isolated.append(time.perf_counter() - start)
    finally:
        process.close()
    return float(np.median(inside)), float(np.median(isolated))


def serial_episode_seconds(tmp, episodes: int, steps: int) -> float:
    from capprof.runners.execution.execute import execute, plan
    from capprof.runners.execution.results import read_results

    execute(plan(["random"], ["clean_up__visitor_cleaner"], episodes=episodes, max_steps=steps), tmp, quiet=True)
    return float(read_results(tmp)["wall_seconds"].mean())


class _StubSubstrate:
    """A substrate that returns one fixed timestep (clean_up-sized views)."""

    def __init__(self, players: int):
        import dm_env

        view = {"RGB": np.zeros((88, 88, 3), np.uint8), "READY_TO_SHOOT": np.float64(1.0),
                "WORLD.RGB": np.zeros((168, 240, 3), np.uint8)}
        self.first = dm_env.restart([dict(view) for _ in range(players)])
        self.mid = dm_env.transition(reward=[0.0] * players, observation=[dict(view) for _ in range(players)])
        self.players = players

    def action_spec(self):
        import dm_env.specs

        return [dm_env.specs.DiscreteArray(9)] * self.players

    def reset(self):
        return self.first

    def step(self, actions):
        return self.mid

    def close(self):
        pass


def stub_loop_cost(players: int = 7, steps: int = 3000, reps: int = 10) -> tuple[float, float]:
    """Median CPU seconds per step of capprof's episode and of a raw loop on
    ``_StubSubstrate`` with noop focal players (interleaved repetitions)."""
    from meltingpot.scenario import PERMITTED_OBSERVATIONS

    import capprof.runners.episode.episode as episode
    from capprof.runners.episode.episode import EpisodeTask, run_episode
    from capprof.runners.populations.populations import parse_population, policy_slots
    from capprof.runners.populations.substrate_info import substrate_info
    from capprof.runners.scenarios.scenarios import Scenario

    scenario = Scenario(name="clean_up__stub", substrate="clean_up", roles=("default",) * players,
                        is_focal=(True,) * players, suite="bench")
    build_substrate = episode.build_substrate
    ours, raw = [], []
    try:
        episode.build_substrate = lambda scenario, env_seed: _StubSubstrate(players)
        info = substrate_info("clean_up")
        member = parse_population("noop").members[0]
        for rep in range(reps):
            start = time.process_time()
            record = run_episode(EpisodeTask(run_id="bench", population="noop", team="noop", scenario=scenario,
                                             episode=rep, seed=0, max_steps=steps))
            ours.append((time.process_time() - start) / record.steps)

            start = time.process_time()
            env = _StubSubstrate(players)
            policies = [member.build(info, rep, slot) for slot in policy_slots(scenario.roles)]
            timestep = env.reset()
            states = [p.initial_state() for p in policies]
            keys = tuple(k for k in timestep.observation[0] if k in PERMITTED_OBSERVATIONS)
            actions = [0] * players
            for _ in range(steps):
                for i, policy in enumerate(policies):
                    obs = {k: timestep.observation[i][k] for k in keys}
                    reward = 0.0 if timestep.reward is None else timestep.reward[i]
                    actions[i], states[i] = policy.step(timestep._replace(observation=obs, reward=reward), states[i])
                timestep = env.step(actions)
            raw.append((time.process_time() - start) / steps)
    finally:
        episode.build_substrate = build_substrate
    return float(np.median(ours)), float(np.median(raw))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=10, help="interleaved repetitions of the overhead comparison")
    parser.add_argument("--quick", action="store_true", help="skip the meltingpot and Ray comparisons")
    parser.add_argument("--ray-only", action="store_true", help="only the Ray comparison")
    parser.add_argument("--stub-only", action="store_true", help="only the loop cost on a stub substrate")
    args = parser.parse_args(argv)

    import tempfile
    from pathlib import Path

    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    if args.stub_only:
        ours, raw = stub_loop_cost(reps=args.reps)
        print(f"stub loop: capprof {ours * 1e6:.1f} us/step, raw loop {raw * 1e6:.1f} us/step (CPU time; "
              "stub substrate, 7 focal noop players, 3000 steps)")
        return 0
    if not args.ray_only:
        builds = 4
        for name in REPLAY_SUBSTRATES:
            print(f"replay    {name}: {distinct_initial_states(name, builds)} distinct initial states "
                  f"in {builds} builds with one env seed (1 = replayable)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        substrate = "clean_up"
        if not args.ray_only:
            # Interleaved repetitions, medians: single runs move by +-10% on a
            # shared 2-core machine, more than the effect being measured.
            raw_rates, our_rates = [], []
            for i in range(args.reps):
                raw_rates.append(raw_steps_per_second(substrate, args.steps, i))
                our_rates.append(capprof_steps_per_second(substrate, args.steps, tmp / f"ours{i}"))
            # The ratio is the median of per-pair ratios: each pair runs back to
            # back, so slow drifts of a shared machine cancel within a pair.
            raw, ours = np.median(raw_rates), np.median(our_rates)
            # Episodes differ (dmlab2d does not replay a seed), so each ratio is
            # noisy; the 95% interval is a percentile bootstrap of the median.
            ratios = np.asarray(our_rates) / np.asarray(raw_rates)
            paired = np.median(ratios)
            resampled = np.random.default_rng(0).choice(ratios, size=(2000, len(ratios)))
            low, high = np.percentile(np.median(resampled, axis=1), [2.5, 97.5])
            print(f"overhead  {substrate}: capprof {ours:.0f} steps/s, raw {raw:.0f} steps/s, paired ratio "
                  f"{paired:.3f} [95% CI {low:.3f}-{high:.3f}] over {args.reps} pairs (target >= 0.95)")
        if not args.ray_only:
            ours_own, raw_own, shared = in_episode_overhead(substrate, args.steps, max(3, args.reps // 2))
            print(f"in-episode {substrate}: substrate + policies {shared * 1e6:.0f} us/step; loop's own work: "
                  f"capprof {ours_own * 1e6:.1f} us/step, raw {raw_own * 1e6:.1f} us/step; implied ratio "
                  f"{(shared + raw_own) / (shared + ours_own):.3f} (target >= 0.95)")
            inside, isolated = isolation_ratio(substrate, args.steps, max(3, args.reps))
            print(f"isolate   {substrate}: {inside:.2f} s per episode in-process, {isolated:.2f} s in the "
                  f"watched child, ratio {inside / isolated:.3f} (target >= 0.95)")
        if not args.quick and not args.ray_only:
            mp_rate, our_rate = meltingpot_vs_capprof_episode(tmp / "episode")
            print(f"vs meltingpot territory__rooms_2 (whole episode incl. build): capprof {our_rate:.0f} "
                  f"steps/s, evaluate_population {mp_rate:.0f} steps/s, ratio {our_rate / mp_rate:.3f} "
                  "(target >= 1.0)")
        if not args.quick:
            one, two, ray_episode = ray_speedup(tmp, episodes=8, steps=args.steps)
            serial_episode = serial_episode_seconds(tmp / "serial", episodes=3, steps=args.steps)
            print(f"ray       clean_up: 1 worker {one:.3f} ep/s, 2 workers {two:.3f} ep/s, "
                  f"ratio {two / one:.3f} (target >= 1.8); mean episode {ray_episode:.2f} s under Ray, "
                  f"{serial_episode:.2f} s serial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
