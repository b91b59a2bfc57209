"""Train a PPO population on a Melting Pot substrate (or a capprof substrate
variant) with RLlib's new API stack, into a directory that
``capprof run --population TEAM=rllib:DIR`` plays.

This is the library behind ``capprof train`` (``capprof.runners.training.train_cli``); it
never prints. The substrate is wrapped as an RLlib ``MultiAgentEnv`` (agents
``player_0`` .. ``player_{n-1}``, one per slot of the substrate's default
roles), each agent observing its RGB view through
``capprof.runners.populations.rllib_obs.ObsConvention`` (by default downsampled x8 to
11x11x3 and scaled to [0, 1]). All agents share one module (``shared``) unless
``per_player`` gives each its own. The model is a tiny CNN (with ``lstm``,
followed by a 32-cell LSTM). With ``prosocial`` every player is rewarded with
the mean reward of all players (Melting Pot 2.0's ``_prosocial`` baselines):
the ``prosocial`` variant key's shaping (``training_scenario``).

The output directory::

    DIR/train.json                 command(s), versions, settings, budget, progress
    DIR/learning_curve.csv         one row per training iteration
    DIR/checkpoints/step_<N>/      full Algorithm checkpoints (resume from the last)
    DIR/snapshots/step_<N>/        every checkpoint's playable part (rllib:DIR/snapshots/step_<N>)
    DIR/learner_group/learner/rl_module/<module>/   the latest modules (what plays)
    DIR/capprof_rllib.json         the observation convention (what plays)

Only the last two are needed to play the population; ``checkpoints/`` is for
resuming and may be deleted afterwards.

This module holds the settings, the PPO config, the training loop and
checkpoint saving; the environment (and what a name trains on) is in
``capprof.runners.training.rllib_env``, the directory's files (train.json, the
learning curve, finding checkpoints to resume) in
``capprof.runners.training.rllib_train_dir``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

from capprof.errors import CapprofError, note
from capprof.io import atomic_write_text, clean_stale_in, replace_directory, temporary_directory, temporary_name
from capprof.runners.training.rllib_env import _env_class, _vector_env_class, resolve_target, torch_only_rllib
from capprof.runners.populations.rllib_obs import (
    CONVENTION_FILE, MODULES_SUBDIR, RGB_SIZE, SNAPSHOTS, TRAIN_FILE, ObsConvention, read_train_file)
from capprof.runners.training.rllib_train_dir import (
    CHECKPOINT_MARKER, CHECKPOINTS, Progress, _append_curve, _curve_row, _read_curve, _write_curve, _write_json,
    check_out, checkpoints, versions)

SHARED_MODULE = "shared"
KEEP_CHECKPOINTS = 2
# RLlib's id for a single-agent module: the vectorised sampler trains one, and
# the playable export renames it to SHARED_MODULE.
SINGLE_AGENT_MODULE = "default_policy"
SAMPLERS = ("array", "vector", "multi-agent")
# The samplers that train one single-agent module on every player's experience.
SINGLE_AGENT_SAMPLERS = ("array", "vector")
# Substrates the vectorised sampler steps together by default: more batch the
# forward pass over more players and amortise RLlib's per-step work
# (a short timing script beside bench/bench_train_throughput.py: 1 -> ~310, 2 -> ~390, 4 -> ~455,
# 8 -> ~525 env steps/s on 2 cores, resets included).
VECTOR_SUBSTRATES = 8
# Worker processes stepping the array sampler's substrates by default: one per
# core of the 2-core machine the bench ran on (bench/bench_train_throughput.py).
DEFAULT_SUBSTRATE_PROCESSES = 2


# ------------------------------------------------------------ settings


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes a training run (recorded in train.json; a resumed
    run keeps them). ``batch_size`` and ``minibatch_size`` count env steps
    (each env step gives one agent step per player)."""

    target: str  # substrate or all-focal scenario name
    per_player: bool = False
    prosocial: bool = False
    seed: int = 0
    batch_size: int = 2000
    minibatch_size: int = 500
    epochs: int = 2
    lr: float = 3e-4
    entropy_coeff: float = 0.01
    gamma: float = 0.99
    max_episode_steps: int = 1000
    downsample: int = 8
    scale: bool = True
    lstm: bool = False
    env_runners: int = 0
    envs_per_runner: int = 0  # 0 = the sampler's default (VECTOR_SUBSTRATES or 1)
    # "vector": the players of each substrate as a vector of single-agent envs
    # (one shared module; RLlib's single-agent runner batches their forward
    # passes); "multi-agent": RLlib's multi-agent runner (needed by --per-player).
    sampler: str = ""  # "" = the default for the module layout (default_sampler)
    # Torch's intra-op threads in the training process (0 = torch's default,
    # one per core). The CNN is small: with a thread per core each forward
    # pass spends more time handing work between threads than computing,
    # and two runs on 2 cores fight over them (docs/training.md, "Threads").
    torch_threads: int = 1
    # Worker processes stepping the substrates of the single-agent samplers
    # (0: the sampler steps them itself): the substrates step on every core
    # while the sampler's process computes actions and learns
    # (capprof.runners.training.substrate_processes).
    substrate_processes: int = -1  # -1 = the sampler's default (DEFAULT_SUBSTRATE_PROCESSES or 0)

    def __post_init__(self):
        if not self.sampler:
            object.__setattr__(self, "sampler", default_sampler(self.per_player))
        if not self.envs_per_runner:
            object.__setattr__(self, "envs_per_runner", VECTOR_SUBSTRATES if self.sampler in SINGLE_AGENT_SAMPLERS else 1)
        if self.substrate_processes < 0:
            object.__setattr__(self, "substrate_processes", DEFAULT_SUBSTRATE_PROCESSES if self.sampler == "array"
                               else 0)

    def check(self) -> None:
        if self.sampler not in SAMPLERS:
            raise CapprofError(f"--sampler {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if self.per_player and self.sampler in SINGLE_AGENT_SAMPLERS:
            raise CapprofError("--per-player trains one module per player, which needs --sampler multi-agent; "
                               "add --sampler multi-agent or drop --per-player")
        if self.downsample < 1 or RGB_SIZE % self.downsample:
            raise CapprofError(f"--downsample must divide {RGB_SIZE} (got {self.downsample}); use 1, 2, 4, 8 or 11")
        if self.torch_threads < 0:
            raise CapprofError(f"--torch-threads must be 0 (one per core) or more (got {self.torch_threads})")
        if self.substrate_processes < 0:
            raise CapprofError(f"--substrate-processes must be 0 (step the substrates in the sampler) or more "
                               f"(got {self.substrate_processes})")
        if self.substrate_processes and self.sampler not in SINGLE_AGENT_SAMPLERS:
            raise CapprofError(f"--substrate-processes needs --sampler {' or '.join(SINGLE_AGENT_SAMPLERS)} "
                               f"(got --sampler {self.sampler}); drop it, or choose one of those samplers")
        if self.minibatch_size > self.batch_size:
            raise CapprofError(f"--minibatch-size {self.minibatch_size} exceeds --batch-size {self.batch_size}; "
                               "lower it or raise --batch-size")
        if self.batch_size % self.envs_per_runner:
            raise CapprofError(f"--batch-size {self.batch_size} is not a multiple of --envs-per-runner "
                               f"{self.envs_per_runner} (substrates sampled together); give a batch size that "
                               "is, or another --envs-per-runner")

    @classmethod
    def from_dict(cls, data: dict) -> "TrainSettings":
        names = {f.name for f in fields(cls)}
        # Runs recorded before the vectorised sampler existed used the multi-agent one.
        data = {"sampler": "multi-agent", **data}
        return cls(**{k: v for k, v in data.items() if k in names})


def training_scenario(settings: TrainSettings):
    """The all-focal scenario ``settings`` train on: the target, and with
    ``prosocial`` the ``prosocial`` variant's shaping (every player paid the
    mean), as ``capprof run`` builds a ``SUBSTRATE:prosocial`` variant."""
    import dataclasses

    from capprof.runners.scenarios.scenarios import MeanReward

    scenario = resolve_target(settings.target)
    if settings.prosocial and MeanReward() not in scenario.overrides:
        scenario = dataclasses.replace(scenario, overrides=scenario.overrides + (MeanReward(),))
    return scenario


def trains_prosocial(scenario) -> bool:
    from capprof.runners.scenarios.scenarios import MeanReward

    return MeanReward() in scenario.overrides


def set_torch_threads(threads: int) -> None:
    """Torch's intra-op threads for this process (0: one per core)."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


def default_sampler(per_player: bool) -> str:
    """The sampler a new run uses unless told: the array sampler for one shared module."""
    return "multi-agent" if per_player else "array"


def minimum_steps(settings: TrainSettings) -> int:
    """The smallest budget: one iteration (one training batch of env steps)."""
    return settings.batch_size


# ------------------------------------------------------------ the algorithm


def module_ids(settings: TrainSettings, n_players: int) -> list[str]:
    """The modules the trained directory plays (its export's names)."""
    return [f"player_{i}" for i in range(n_players)] if settings.per_player else [SHARED_MODULE]


def trained_module_ids(settings: TrainSettings, n_players: int) -> list[str]:
    """The modules as RLlib names them while training."""
    return [SINGLE_AGENT_MODULE] if settings.sampler in SINGLE_AGENT_SAMPLERS else module_ids(settings, n_players)


def _shared_mapping(agent_id, episode, **kwargs):
    return SHARED_MODULE


def _own_mapping(agent_id, episode, **kwargs):
    return agent_id


def ppo_config(settings: TrainSettings, scenario):
    """A PPO config (new API stack, torch) with a tiny CNN."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    modules = module_ids(settings, scenario.n_players)
    side = ObsConvention(downsample=settings.downsample).shape()[0]
    # Two strided 3x3 convolutions (11x11 -> 6x6 -> 3x3) for downsampled views;
    # full 88x88 views get a larger first stride.
    first_stride = 1 if side <= 22 else 4
    model = DefaultModelConfig(
        conv_filters=[[16, [3, 3], 2 * first_stride], [32, [3, 3], 2]],
        head_fcnet_hiddens=[64], vf_share_layers=True,
        use_lstm=settings.lstm, lstm_cell_size=32, max_seq_len=20)
    env_config = {"scenario": scenario, "downsample": settings.downsample, "scale": settings.scale,
                  "max_steps": settings.max_episode_steps, "seed": settings.seed,
                  "processes": settings.substrate_processes}
    if settings.sampler in SINGLE_AGENT_SAMPLERS:
        n = scenario.n_players
        # Sizes count agent steps here (one sub-env per player): scaled so that
        # --batch-size and --minibatch-size keep meaning env steps.
        return (
            PPOConfig()
            .environment(_vector_env_class(), env_config=env_config, disable_env_checking=True)
            .framework("torch")
            .env_runners(num_env_runners=settings.env_runners, num_envs_per_env_runner=settings.envs_per_runner * n,
                         gym_env_vectorize_mode="vector_entry_point", rollout_fragment_length="auto",
                         num_cpus_per_env_runner=1, env_runner_cls=_env_runner_class(settings.sampler))
            .learners(num_learners=0)
            .rl_module(rl_module_spec=RLModuleSpec(model_config=model))
            .training(train_batch_size_per_learner=settings.batch_size * n, minibatch_size=settings.minibatch_size * n,
                      num_epochs=settings.epochs, lr=settings.lr, entropy_coeff=settings.entropy_coeff,
                      gamma=settings.gamma)
            .reporting(metrics_num_episodes_for_smoothing=episodes_per_iteration(settings) * n)
            .debugging(seed=settings.seed, log_level="ERROR")
        )
    return (
        PPOConfig()
        .environment(_env_class(), env_config=env_config, disable_env_checking=True)
        .framework("torch")
        .env_runners(num_env_runners=settings.env_runners, num_envs_per_env_runner=settings.envs_per_runner,
                     rollout_fragment_length="auto", num_cpus_per_env_runner=1)
        .learners(num_learners=0)
        .multi_agent(policies=set(modules),
                     policy_mapping_fn=_own_mapping if settings.per_player else _shared_mapping)
        .rl_module(rl_module_spec=MultiRLModuleSpec(
            rl_module_specs={m: RLModuleSpec(model_config=model) for m in modules}))
        .training(train_batch_size_per_learner=settings.batch_size, minibatch_size=settings.minibatch_size,
                  num_epochs=settings.epochs, lr=settings.lr, entropy_coeff=settings.entropy_coeff,
                  gamma=settings.gamma)
        # The curve's episode_return_mean: the mean over about one iteration's
        # worth of the latest episodes (RLlib's default window is 100 episodes).
        .reporting(metrics_num_episodes_for_smoothing=episodes_per_iteration(settings))
        .debugging(seed=settings.seed, log_level="ERROR")
    )


def _env_runner_class(sampler: str):
    """RLlib's single-agent runner, or for ``sampler="array"`` the one whose
    sampling keeps experience in arrays (``rllib_sampler.ArraySampler``)."""
    if sampler == "array":
        from capprof.runners.training.rllib_sampler import ArraySampler

        return ArraySampler
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    return SingleAgentEnvRunner


def episodes_per_iteration(settings: TrainSettings) -> int:
    """Episodes an iteration completes when episodes run to --max-episode-steps."""
    return max(1, settings.batch_size // settings.max_episode_steps)


# ------------------------------------------------------------ results


@dataclass(frozen=True)
class TrainResult:
    out: Path
    checkpoint: Path
    progress: Progress
    interrupted: bool = False
    curve: list = field(default_factory=list)  # this session's rows


# ------------------------------------------------------------ training


def _save(algo, out: Path, progress: Progress, settings: TrainSettings, scenario, num_actions: int) -> Path:
    """Save a full checkpoint (atomically: written under a temporary name,
    marked complete, renamed), keep the last ``KEEP_CHECKPOINTS``, and export
    its modules and convention to ``out`` so it plays as ``rllib:out``, and
    to ``out/snapshots/step_<N>/`` (kept, a few hundred KB each) so any
    checkpoint of the run plays as ``rllib:out/snapshots/step_<N>``."""
    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{progress.env_steps:09d}"
    clean_stale_in(root)  # temporaries of saves a kill -9 cut short
    tmp = temporary_name(final)
    algo.save_to_path(str(tmp.resolve()))
    _write_json(tmp / CHECKPOINT_MARKER, asdict(progress))
    replace_directory(tmp, final)
    snapshots = out / SNAPSHOTS
    snapshots.mkdir(exist_ok=True)
    clean_stale_in(snapshots)
    for destination in (snapshots / final.name, out):
        _export(final, destination, progress, settings, scenario, num_actions)
    for _, path in checkpoints(out)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(path, ignore_errors=True)
    return final


def _export(checkpoint: Path, destination: Path, progress: Progress, settings: TrainSettings, scenario,
            num_actions: int) -> None:
    """The playable part of ``checkpoint`` (its modules and the observation
    convention) into ``destination``, swapped in by renames: a reader sees
    the old or the new modules at every instant."""
    target = destination / MODULES_SUBDIR
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_directory(target)
    shutil.copytree(checkpoint / MODULES_SUBDIR, staging, dirs_exist_ok=True)
    if settings.sampler in SINGLE_AGENT_SAMPLERS:  # RLlib's single-agent module plays as the shared one
        os.replace(staging / SINGLE_AGENT_MODULE, staging / SHARED_MODULE)
    replace_directory(staging, target)
    convention = ObsConvention(downsample=settings.downsample, scale=settings.scale)
    atomic_write_text(destination / CONVENTION_FILE, convention.to_json(
        substrate=scenario.substrate, trained_on=scenario.name, num_actions=num_actions,
        modules=module_ids(settings, scenario.n_players), env_steps=progress.env_steps,
        prosocial=trains_prosocial(scenario),
        # PPO acted by sampling from its policy while it learnt; greedy play of
        # a policy that is still far from deterministic is another, weaker policy.
        explore=True))


def _ray_init():
    torch_only_rllib()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    if ray.is_initialized():
        return False
    # address="local": always a private instance, never a cluster someone else
    # started on this machine (ray.init() alone would join it).
    ray.init(address="local", num_cpus=max(1, os.cpu_count() or 1), include_dashboard=False,
             log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"RLLIB_TEST_NO_TF_IMPORT": "1"}})
    return True


def train(settings: TrainSettings, out: Path, steps: int, *, checkpoint_every: int | None = None,
          resume: bool = False, command: list[str] | None = None,
          on_start: Callable[[Progress], None] | None = None,
          on_iteration: Callable[[dict], None] | None = None,
          on_ready: Callable[[], None] | None = None) -> TrainResult:
    """Train PPO until ``steps`` env steps in all (counting earlier sessions
    when ``resume``), checkpointing every ``checkpoint_every`` env steps
    (rounded up to whole iterations) and at the end.

    With ``resume`` the settings recorded in ``out/train.json`` are used (pass
    them as ``settings``: see ``resume_settings``) and the step count and the
    learning curve continue from the last checkpoint. A KeyboardInterrupt
    saves a checkpoint of the last completed iteration's counts and returns a
    result with ``interrupted`` set. ``on_start(progress)`` and
    ``on_iteration(row)`` report progress (the CLI draws its bar with them);
    ``on_ready()`` runs once Ray is up and the algorithm built (Ray replaces
    the SIGTERM handler when it starts; the CLI installs its own there).
    """
    settings.check()
    out = Path(out).resolve()
    found = check_out(out, resume)
    _check_budget(settings, steps)
    scenario = training_scenario(settings)
    progress, checkpoint = found or (Progress(), None)
    session = _Session(settings, scenario, out, steps, progress, checkpoint, resumed=found is not None)
    if session.resumed and progress.env_steps >= steps:
        return _finish_at_budget(session, command)
    record = _open_session(session, command)
    if on_start:
        on_start(session.progress)
    with _ray_running():
        _train_session(session, checkpoint_every, on_iteration, on_ready)
    _close_session(session, record)
    return TrainResult(out, session.checkpoint, session.progress, session.interrupted, session.rows)


@dataclass
class _Session:
    """One session of training: what it trains, where and to which budget,
    and how far it is (the last completed iteration's counts, the last
    checkpoint saved, the curve rows it wrote)."""

    settings: TrainSettings
    scenario: object
    out: Path
    steps: int
    progress: Progress
    checkpoint: Path | None  # the one resumed from, until this session saves one
    resumed: bool
    rows: list = field(default_factory=list)
    interrupted: bool = False


def _check_budget(settings: TrainSettings, steps: int) -> None:
    if steps < minimum_steps(settings):
        raise CapprofError(f"--steps {steps} is below one iteration ({minimum_steps(settings)} env steps, "
                           f"--batch-size); give --steps {minimum_steps(settings)} or more, or lower --batch-size")


def _finish_at_budget(session: _Session, command: list[str] | None) -> TrainResult:
    """A resumed run that already holds its budget: nothing is trained."""
    out, progress, steps = session.out, session.progress, session.steps
    record = read_train_file(out)
    if record.get("status") == "interrupted":
        # A run stopped early (Ctrl-C, SIGTERM at the end of a time budget)
        # and resumed with a budget it has reached: it ends here, at its
        # last checkpoint, and says so in train.json.
        record.update(status="done", budget_env_steps=progress.env_steps)
        record.setdefault("sessions", []).append({
            "command": list(command or sys.argv), "started": _now(), "ended": _now(),
            "from_env_steps": progress.env_steps, "to_env_steps": progress.env_steps,
            "versions": versions(), "cpus": os.cpu_count(), "finished_at_checkpoint": True})
        _write_json(out / TRAIN_FILE, record)
        note(f"{out} holds {progress.env_steps} env steps of training (budget {steps}): finished at its last "
             "checkpoint")
    else:
        note(f"{out} already holds {progress.env_steps} env steps of training (budget {steps}); nothing to do: "
             "raise --steps to train further")
    return TrainResult(out, session.checkpoint, progress)


def _open_session(session: _Session, command: list[str] | None) -> dict:
    """Record the session in train.json (a new run's record first) and cut
    the learning curve back to the checkpoint resumed from; the record."""
    out, scenario, progress = session.out, session.scenario, session.progress
    out.mkdir(parents=True, exist_ok=True)
    record = read_train_file(out) if session.resumed else {
        "target": scenario.name, "substrate": scenario.substrate,
        "overrides": [o.describe() for o in scenario.overrides],
        "settings": asdict(session.settings), "sessions": []}
    record["budget_env_steps"] = session.steps
    record.setdefault("sessions", []).append({
        "command": list(command or sys.argv), "started": _now(), "from_env_steps": progress.env_steps,
        "versions": versions(), "cpus": os.cpu_count()})
    record["status"] = "running"
    _write_json(out / TRAIN_FILE, record)
    if session.resumed:
        _write_curve(out, _read_curve(out, progress.iteration))  # drop rows past the checkpoint
    return record


@contextmanager
def _ray_running():
    """Ray up for the block (a private instance unless one is already up in
    this process), shut down after it if it was started here."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()  # first, so TensorFlow's start-up lines stay hidden when RLlib imports it
    started_ray = _ray_init()
    try:
        yield
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _train_session(session: _Session, checkpoint_every: int | None, on_iteration, on_ready) -> None:
    """Build the algorithm (restored from the checkpoint resumed from), train
    to the budget or a KeyboardInterrupt, and save a last checkpoint."""
    settings, scenario = session.settings, session.scenario
    set_torch_threads(settings.torch_threads)
    algo = ppo_config(settings, scenario).build_algo()
    try:
        if session.resumed:  # the checkpoint is still the one resumed from
            algo.restore_from_path(str(session.checkpoint))
            # restore_from_path restores the learner's modules but leaves the
            # samplers' copies as built: sample the next batch with the restored ones.
            algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group,
                                               inference_only=True)
        modules = trained_module_ids(settings, scenario.n_players)
        num_actions = int(algo.get_module(modules[0]).action_space.n)
        try:
            if on_ready:
                on_ready()
            _training_loop(algo, session, modules, num_actions, checkpoint_every, on_iteration)
        except KeyboardInterrupt:
            session.interrupted = True
        session.checkpoint = _save(algo, session.out, session.progress, settings, scenario, num_actions)
    finally:
        algo.stop()


def _training_loop(algo, session: _Session, modules: list[str], num_actions: int, checkpoint_every: int | None,
                   on_iteration) -> None:
    """Iterations until the budget, each a row of the learning curve; a
    checkpoint (and its snapshot) every ``checkpoint_every`` env steps
    before the last, which ``_train_session`` saves."""
    saved_at = session.progress.env_steps
    while session.progress.env_steps < session.steps:
        row = _iteration(algo, session, modules)
        if on_iteration:
            on_iteration(row)
        if checkpoint_every and session.progress.env_steps - saved_at >= checkpoint_every \
                and session.progress.env_steps < session.steps:
            session.checkpoint = _save(algo, session.out, session.progress, session.settings, session.scenario,
                                       num_actions)
            saved_at = session.progress.env_steps


def _iteration(algo, session: _Session, modules: list[str]) -> dict:
    """One training iteration: the session's counts advanced, its row
    appended to the learning curve; the row."""
    settings, n_players, progress = session.settings, session.scenario.n_players, session.progress
    start = time.perf_counter()
    result = algo.train()
    seconds = time.perf_counter() - start
    runners = result.get("env_runners", {}) or {}
    done = int(runners.get("num_env_steps_sampled", 0) or 0) or settings.batch_size
    if settings.sampler in SINGLE_AGENT_SAMPLERS:  # RLlib counted one step per player
        done = max(1, round(done / n_players))
    session.progress = Progress(progress.iteration + 1, progress.env_steps + done, progress.wall_seconds + seconds)
    row = _curve_row(result, session.progress, n_players, seconds, done, modules,
                     return_per_player=settings.sampler in SINGLE_AGENT_SAMPLERS)
    _append_curve(session.out, row)
    session.rows.append(row)
    return row


def _close_session(session: _Session, record: dict) -> None:
    """The session's end, its counts and its last checkpoint in train.json."""
    progress, out = session.progress, session.out
    record["sessions"][-1].update(ended=_now(), to_env_steps=progress.env_steps, interrupted=session.interrupted)
    record.update(status="interrupted" if session.interrupted else "done", env_steps=progress.env_steps,
                  iterations=progress.iteration, wall_seconds=round(progress.wall_seconds, 1),
                  checkpoint=str(session.checkpoint.relative_to(out)))
    _write_json(out / TRAIN_FILE, record)


def resume_settings(out: Path, target: str | None, given: dict) -> TrainSettings:
    """The settings recorded in ``out/train.json``; ``given`` (options the user
    passed explicitly) must agree with them (one-line CapprofError naming the
    first that does not)."""
    record = read_train_file(out)
    settings = TrainSettings.from_dict(record["settings"])
    if target is not None and target != settings.target:
        raise CapprofError(f"--resume: {out} trains on {settings.target}, not {target}; drop the name or "
                           "give a new --out")
    for name, value in given.items():
        if value is not None and getattr(settings, name) != value:
            flag = "--" + name.replace("_", "-")
            raise CapprofError(f"--resume keeps the recorded settings: {out} was trained with {flag} "
                               f"{getattr(settings, name)!r}, not {value!r}; drop {flag}")
    return settings


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
