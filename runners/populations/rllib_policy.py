"""``rllib:CHECKPOINT_DIR[:MODULE_ID]``: an RLlib RLModule as a meltingpot Policy.

The checkpoint is an RLlib (new API stack, torch) Algorithm checkpoint
(``Algorithm.save_to_path``; the module is read from
``learner_group/learner/rl_module/MODULE_ID``) or a single RLModule checkpoint
(``RLModule.save_to_path``). ``MODULE_ID`` may be left out when the
checkpoint holds one module.

Each step converts the player's observation with the checkpoint's
``ObsConvention`` (``capprof.runners.populations.rllib_obs``), runs ``forward_inference``
and takes the greedy action of the inference distribution (RLlib's
``explore=False``). With ``"explore": true`` in ``capprof_rllib.json`` it
samples instead, from NumPy's global generator, which capprof seeds per
episode, at the directory's ``"temperature"`` (1 when absent: the policy as
trained; below 1 sharper, towards greedy). Stateful (recurrent) modules
keep their recurrent state in the meltingpot Policy state, so slots sharing
the module stay independent. torch runs on one thread (the contest gave one
vCPU per agent).

Slots playing the same module in one process share one forward pass per
step: the episode loop hands each its timestep first (``step_ahead``), and
the first of them asked for its action runs the module on all of them at
once (``InferenceBatch``): a batch of 7 views costs about what one does, so
an all-focal substrate plays several times faster. The numbers are those of
a batch of one; sampled actions are drawn in slot order.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np

from capprof.errors import CapprofError
from capprof.runners.context import current
from capprof.runners.populations.rllib_obs import infer_convention, read_convention, resolve_module

PREFIX = "rllib:"
# ``rllib:DIR[:MODULE_ID]#greedy`` / ``#sample`` / ``#sample=T`` overrides how
# the directory says it plays (``"explore"`` and ``"temperature"`` in
# capprof_rllib.json; capprof train writes explore true). The play mode is a
# temperature: 0 is greedy, T > 0 samples from softmax(logits / T).
GREEDY = 0.0
PLAY_MODES = {"greedy": GREEDY, "sample": 1.0}
MAX_TEMPERATURE = 100.0


def play_mode(spec: str) -> tuple[str, float | None]:
    """``spec`` without its ``#greedy`` / ``#sample[=T]`` suffix, and the
    temperature it asks for (0: greedy; None: as the directory says)."""
    body, hash_, mode = spec.rpartition("#")
    if not hash_:
        return spec, None
    name, equals, value = mode.partition("=")
    if name not in PLAY_MODES or (equals and name != "sample"):
        raise CapprofError(f'"{spec}": unknown play mode "#{mode}"; write #greedy (the most likely action), '
                           "#sample (sample from the policy) or #sample=T (at temperature T, e.g. #sample=0.5), "
                           "or leave it out to play as the directory says")
    if not equals:
        return body, PLAY_MODES[name]
    return body, check_temperature(value, f'"{spec}"')


def check_temperature(value, where: str) -> float:
    """``value`` as a sampling temperature in (0, MAX_TEMPERATURE]."""
    try:
        temperature = float(value)
    except (TypeError, ValueError):
        temperature = float("nan")
    if isinstance(value, bool) or not 0.0 < temperature <= MAX_TEMPERATURE:
        raise CapprofError(f"{where}: temperature {value!r} is not a number in (0, {MAX_TEMPERATURE:g}]; "
                           "1 samples from the policy as trained, below 1 is sharper (towards greedy)")
    return temperature


def directory_temperature(extra: dict, where: str) -> float:
    """How a directory's capprof_rllib.json says it plays, as a temperature."""
    if not extra.get("explore", False):
        return GREEDY
    return check_temperature(extra.get("temperature", 1.0), where)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``rllib:DIR[:MODULE_ID][#greedy|#sample]`` -> (DIR, MODULE_ID or None).
    A DIR that exists as written wins over splitting at its last colon."""
    body = play_mode(spec)[0][len(PREFIX):]
    if not body:
        raise CapprofError(f'"{spec}": name the checkpoint directory, as rllib:CHECKPOINT_DIR[:MODULE_ID]')
    if Path(body).expanduser().is_dir() or ":" not in body:
        return body, None
    directory, _, module_id = body.rpartition(":")
    return directory, module_id or None


def old_stack_sign(path: Path) -> str | None:
    """What marks ``path`` as an old-API-stack RLlib checkpoint (ray 2.x's
    Policy / Algorithm layout, a Tune trial of them), or None."""
    if (path / "learner_group").is_dir() or (path / "class_and_ctor_args.pkl").exists():
        return None
    for name in ("policy_state.pkl", "policy_state.msgpck", "algorithm_state.pkl", "policies"):
        if (path / name).exists():
            return name + ("/" if (path / name).is_dir() else "")
    trials = sorted(p.name for p in path.glob("checkpoint_[0-9]*") if p.is_dir() and old_stack_sign(p))
    return f"{trials[-1]}/ of the old layout" if trials else None


def check_spec(spec: str) -> Path:
    """Fail with one line unless ``spec`` names a loadable-looking module
    (cheap: reads the directory only, imports neither torch nor ray)."""
    directory, module_id = split_spec(spec)
    path = Path(directory).expanduser()
    sign = old_stack_sign(path) if path.is_dir() else None
    if sign:
        from capprof.runners.populations.venv_member import legacy_python

        raise CapprofError(
            f'"{spec}": {path} is an old-stack RLlib checkpoint ({sign}, as ray 2.6 saved them), which this '
            f"ray cannot load; play it with rllib-legacy:{directory}@{legacy_python()} (build that "
            "interpreter with `make legacy-env`)")
    module_dir = resolve_module(directory, module_id, spec)
    read_convention(Path(directory).expanduser())  # a malformed file fails here too
    return module_dir


class RLlibSource:
    """Builds an ``rllib:`` member's policies; the directory is checked when
    the source is made, the module loaded once per process at the first build."""

    def __init__(self, spec: str):
        check_spec(spec)  # cheap: a bad directory fails before any episode
        self.spec = spec

    def build(self, info, seed, slot):
        return build(self.spec, info)


class _DropDeprecation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "RLModuleConfig object" not in record.getMessage()


def _load(module_dir: str):
    import torch

    from ray.rllib.core.rl_module.rl_module import RLModule

    torch.set_num_threads(1)
    # RLlib's own ctor pickle triggers a deprecation warning about itself on
    # every load; it says nothing about the checkpoint, so it is filtered out.
    rl_logger = logging.getLogger("ray._common.deprecation")
    quiet = _DropDeprecation()
    rl_logger.addFilter(quiet)
    try:
        module = RLModule.from_checkpoint(module_dir)
    finally:
        rl_logger.removeFilter(quiet)
    if hasattr(module, "eval"):
        module.eval()
    return module


def _batch(module_dir: str) -> "InferenceBatch":
    """The forward passes of every slot playing this module in the current
    ``ExecutionContext`` (runners/context.py): the module is loaded once per
    run, and dropped with the run."""
    models = current().models
    batch = models.get(module_dir)
    if batch is None:
        batch = models[module_dir] = InferenceBatch(_load(module_dir))
    return batch


def build(spec: str, info):
    """A meltingpot Policy playing the module ``spec`` names on ``info``'s substrate."""
    import gymnasium as gym

    directory, _ = split_spec(spec)
    module_dir = check_spec(spec)
    batch = _batch(str(Path(module_dir).resolve()))  # RLlib reads a relative path as a bad URI
    module = batch.module
    found = read_convention(Path(directory).expanduser())
    convention, extra = found if found else (infer_convention(module.observation_space), {})
    expected = getattr(module.observation_space, "shape", None)
    if expected is not None and tuple(expected) != convention.shape():
        raise ValueError(f"the module expects observations of shape {tuple(expected)}, but its convention "
                         f"({convention}) gives {convention.shape()}")
    if not isinstance(module.action_space, gym.spaces.Discrete):
        raise ValueError(f"the module's action space {module.action_space} is not Discrete")
    if int(module.action_space.n) != info.num_actions:
        raise ValueError(f"the module has {int(module.action_space.n)} actions but {info.name} has "
                         f"{info.num_actions}; it was trained on another substrate"
                         + (f" ({extra['substrate']})" if extra.get("substrate") else ""))
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot.utils.policies.policy import Policy

    temperature = play_mode(spec)[1]
    if temperature is None:
        temperature = directory_temperature(extra, f"{directory}/capprof_rllib.json")
    return _make_class(Policy)(batch, convention, temperature)


class InferenceBatch:
    """One module's pending steps: ``add`` queues a slot's observation and
    state, ``run`` converts and stacks every queued one, runs
    ``forward_inference`` once and leaves each slot its (action, state).

    Greedy (temperature 0): the argmax of the inference distribution
    (``to_deterministic``). Sampling at temperature T > 0: for row i,
    a ~ Categorical(softmax(logits_i / T)) drawn with ``np.random.choice`` in
    the order the slots were queued (T = 1: the policy as trained)."""

    def __init__(self, module):
        self.module = module
        self.stateful = bool(module.is_stateful())
        self.dist_cls = module.get_inference_action_dist_cls()
        self.pending: dict = {}  # policy -> (observation, state), in slot order
        self.results: dict = {}  # policy -> (action, state)
        self.seconds = 0.0  # how long the last forward pass took

    def add(self, policy, observation, state) -> None:
        self.results.pop(policy, None)
        self.pending[policy] = (observation, state)

    def take(self, policy, observation, state):
        """``policy``'s (action, state): its queued step's result, running
        the queued batch first if needed; a step it did not queue is queued
        now (a batch of one when no other slot queued)."""
        if policy not in self.pending and policy not in self.results:
            self.add(policy, observation, state)
        if policy not in self.results:
            self.run()
        return self.results.pop(policy)

    def forget(self, policy) -> None:
        self.pending.pop(policy, None)
        self.results.pop(policy, None)

    def run(self) -> None:
        import torch

        from ray.rllib.core.columns import Columns

        began = time.perf_counter()
        queued, self.pending = list(self.pending.items()), {}
        policies = [p for p, _ in queued]
        conventions = {p.convention for p in policies}
        if len(conventions) > 1:  # the same module read under two conventions: one pass each
            for convention in conventions:
                self.pending = {p: v for p, v in queued if p.convention == convention}
                self.run()
            return
        (convention,) = conventions
        # float32 either way: RLlib's CNN encoders cast uint8 input to float
        # themselves, but its recurrent tokenizers do not.
        obs = torch.from_numpy(convention.convert_many([o for _, (o, _) in queued]).astype(np.float32))
        batch = {Columns.OBS: obs}
        if self.stateful:  # recurrent modules take [batch, time, ...] and a batched state
            batch[Columns.OBS] = obs[:, None]
            batch[Columns.STATE_IN] = _tree_stack([s for _, (_, s) in queued])
        with torch.no_grad():
            out = self.module.forward_inference(batch)
        states = [s for _, (_, s) in queued]
        if self.stateful:
            states = [_tree_map(lambda s, i=i: s[i], out[Columns.STATE_OUT]) for i in range(len(queued))]
        if Columns.ACTIONS in out:
            greedy = np.asarray(out[Columns.ACTIONS]).reshape(len(queued), -1)[:, 0]
            logits = None
        else:
            logits = out[Columns.ACTION_DIST_INPUTS]
            greedy = None
            if not all(p.temperature > GREEDY for p in policies):
                dist = self.dist_cls.from_logits(logits)
                greedy = np.asarray(dist.to_deterministic().sample()).reshape(len(queued), -1)[:, 0]
        for i, policy in enumerate(policies):
            if logits is not None and policy.temperature > GREEDY:
                probs = torch.softmax(logits[i].reshape(-1).double() / policy.temperature, 0).numpy()
                action = int(np.random.choice(len(probs), p=probs / probs.sum()))
            else:
                action = int(greedy[i])
            self.results[policy] = (action, states[i])
        self.seconds = time.perf_counter() - began


@functools.lru_cache(maxsize=1)
def _make_class(Policy):
    class RLModulePolicy(Policy):
        """Acts with an RLlib RLModule; the recurrent state (if any) is the
        Policy state. ``step_ahead`` queues this slot's step in the module's
        ``InferenceBatch``; ``step`` takes its result (running the batch when
        this slot is the first asked). ``step`` alone is a batch of one."""

        def __init__(self, batch: InferenceBatch, convention, temperature: float):
            self.batch = batch
            self.module = batch.module
            self.convention = convention
            self.temperature = temperature  # 0: greedy
            self.stateful = batch.stateful

        @property
        def step_seconds(self) -> float:
            """The wall time of the forward pass that gave the last action
            (shared by the slots in it; the step guard reads it)."""
            return self.batch.seconds

        def initial_state(self):
            if not self.stateful:
                return ()
            return self.module.get_initial_state()

        def step_ahead(self, timestep, prev_state) -> None:
            self.batch.add(self, timestep.observation, prev_state)

        def step(self, timestep, prev_state):
            return self.batch.take(self, timestep.observation, prev_state)

        def close(self):
            self.batch.forget(self)

    return RLModulePolicy


def _tree_stack(trees):
    """A list of equally shaped state trees -> one tree of stacked tensors."""
    import torch

    first = trees[0]
    if isinstance(first, dict):
        return {k: _tree_stack([t[k] for t in trees]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_tree_stack([t[i] for t in trees]) for i in range(len(first)))
    return torch.stack([torch.as_tensor(t) for t in trees])


def _tree_map(fn, tree):
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tree_map(fn, v) for v in tree)
    return fn(tree)
