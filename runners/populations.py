"""Populations: named sets of meltingpot ``Policy`` objects that fill slots.

A population spec (``capprof run --population SPEC``) is::

    [TEAM=]MEMBER[+MEMBER...]

where each MEMBER is

* a built-in: ``random``, ``noop`` or a scripted behaviour (``BUILTINS``);
* ``package.module:Name`` or ``path/to/file.py:Name`` - a meltingpot
  ``Policy`` subclass (constructed with no arguments) or a function returning
  a ``Policy``; ``path/to/file.py`` alone picks the file's only Policy subclass;
* ``rllib:CHECKPOINT_DIR[:MODULE_ID]`` - an RLModule from an RLlib (new API
  stack, torch) checkpoint, acting through ``capprof.runners.rllib_policy``.

Slots are filled as meltingpot fills them: each focal slot independently draws
a member uniformly (with replacement), but from a ``random.Random`` seeded per
episode, so a run fills its slots reproducibly. Policies are built fresh for every episode.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from capprof.errors import CapprofError, did_you_mean

# The standard Melting Pot egocentric view: 11x11 cells of 8 pixels, the
# player in row 9 (of 0..10), column 5, facing up.
VIEW_CELLS = 11
SELF_ROW, SELF_COL = 9, 5


@dataclass(frozen=True)
class SubstrateInfo:
    """What a scripted behaviour may know about the substrate it plays."""

    name: str
    action_set: tuple  # one dict per discrete action, as in meltingpot's config
    sprite_colours: tuple[tuple[str, tuple[int, int, int]], ...]

    @property
    def num_actions(self) -> int:
        return len(self.action_set)

    def action(self, **wanted) -> int | None:
        """Index of the action whose non-zero entries are exactly ``wanted``."""
        for i, row in enumerate(self.action_set):
            if {k: v for k, v in row.items() if v} == wanted:
                return i
        return None

    def colour(self, sprite: str):
        return dict(self.sprite_colours).get(sprite)


def _walk_appearances(node, out: dict) -> None:
    if isinstance(node, dict):
        if node.get("component") == "Appearance":
            kwargs = node.get("kwargs", {})
            for name, palette in zip(kwargs.get("spriteNames", []), kwargs.get("palettes", [])):
                if isinstance(palette, dict) and "*" in palette:
                    out.setdefault(name, tuple(int(c) for c in palette["*"][:3]))
        for value in node.values():
            _walk_appearances(value, out)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk_appearances(value, out)


@functools.lru_cache(maxsize=None)
def substrate_info(substrate: str, action_set: tuple | None = None) -> SubstrateInfo:
    from capprof.runners._meltingpot import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    config = mp_substrate.get_config(substrate)
    settings = config.lab2d_settings_builder(roles=config.default_player_roles, config=config)
    colours: dict = {}
    _walk_appearances(settings, colours)
    actions = action_set if action_set is not None else tuple(
        tuple(sorted(dict(a).items())) for a in config.action_set)
    return SubstrateInfo(substrate, tuple(dict(a) for a in actions), tuple(sorted(colours.items())))


# ------------------------------------------------------------ built-in behaviours


def _policy_base():
    from capprof.runners._meltingpot import import_meltingpot

    import_meltingpot()
    from meltingpot.utils.policies import policy

    return policy.Policy


@functools.lru_cache(maxsize=1)
def _builtin_classes() -> dict:
    Policy = _policy_base()

    class Scripted(Policy):
        """Base of the built-ins; state is the step count (policies are built
        fresh per episode with their own seeded generator)."""

        def __init__(self, info: SubstrateInfo, seed: int):
            self.info = info
            self.rng = np.random.default_rng(seed)
            self.moves = [a for a in (info.action(move=1), info.action(move=2), info.action(move=3),
                                      info.action(move=4), info.action(turn=-1), info.action(turn=1))
                          if a is not None]
            self.noop = info.action() or 0

        def initial_state(self):
            return 0

        def close(self):
            pass

        def wander(self) -> int:
            # Forward twice as often as anything else, so bots explore.
            if self.rng.random() < 0.4:
                return self.info.action(move=1)
            return int(self.moves[self.rng.integers(len(self.moves))])

        def ready(self, timestep) -> bool:
            ready = timestep.observation.get("READY_TO_SHOOT")
            return ready is None or float(np.asarray(ready)) > 0

        def seek(self, timestep, colour, min_neighbours: int = 0) -> int | None:
            """Move towards the nearest visible cell showing ``colour`` that has
            at least ``min_neighbours`` such cells among its eight neighbours."""
            rgb = timestep.observation.get("RGB")
            if rgb is None or colour is None:
                return None
            cells = rgb.shape[0] // VIEW_CELLS
            mask = np.all(rgb[..., :3] == np.asarray(colour, dtype=rgb.dtype), axis=-1)
            grid = mask.reshape(VIEW_CELLS, cells, VIEW_CELLS, cells).any(axis=(1, 3))
            if min_neighbours:
                padded = np.pad(grid, 1).astype(int)
                neighbours = sum(np.roll(np.roll(padded, dr, 0), dc, 1)
                                 for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)[1:-1, 1:-1]
                grid = grid & (neighbours >= min_neighbours)
            rows, cols = np.nonzero(grid)
            if len(rows) == 0:
                return None
            k = int(np.argmin(np.abs(rows - SELF_ROW) + np.abs(cols - SELF_COL)))
            dr, dc = rows[k] - SELF_ROW, cols[k] - SELF_COL
            if dr < 0:
                return self.info.action(move=1)
            if dc < 0:
                return self.info.action(move=4)
            if dc > 0:
                return self.info.action(move=2)
            if dr > 0:
                return self.info.action(move=3)
            return self.info.action(move=1)

    class RandomPolicy(Scripted):
        """Uniformly random actions."""

        def step(self, timestep, prev_state):
            return int(self.rng.integers(self.info.num_actions)), prev_state + 1

    class NoopPolicy(Scripted):
        """Always the no-op action."""

        def step(self, timestep, prev_state):
            return self.noop, prev_state + 1

    class Aggressor(Scripted):
        """Zaps whenever the zapper is ready, wanders otherwise."""

        def step(self, timestep, prev_state):
            zap = self.info.action(fireZap=1)
            if zap is not None and self.ready(timestep) and self.rng.random() < 0.7:
                return zap, prev_state + 1
            return self.wander(), prev_state + 1

    class Forager(Scripted):
        """Walks to the nearest visible ``target`` sprite; never zaps."""

        target = "Apple"

        def step(self, timestep, prev_state):
            move = self.seek(timestep, self.info.colour(self.target))
            return (move if move is not None else self.wander()), prev_state + 1

    class RestrainedHarvester(Forager):
        """Eats only apples with at least two apples next to them, so no patch
        loses its last apples (commons_harvest regrows an apple only near
        others); wanders otherwise; never zaps."""

        def step(self, timestep, prev_state):
            move = self.seek(timestep, self.info.colour(self.target), min_neighbours=2)
            return (move if move is not None else self.wander()), prev_state + 1

    class BeamFirer(Scripted):
        """Fires ``beam`` half the time and wanders otherwise; never zaps."""

        beam = "fireClean"

        def step(self, timestep, prev_state):
            fire = self.info.action(**{self.beam: 1})
            if fire is not None and self.rng.random() < 0.5:
                return fire, prev_state + 1
            return self.wander(), prev_state + 1

    class Cleaner(BeamFirer):
        """clean_up: fires the cleaning beam often, never eats on purpose or zaps."""

        beam = "fireClean"

    class Collector(Forager):
        """*_in_the_matrix: collects one resource and interacts once holding it."""

        def step(self, timestep, prev_state):
            inventory = timestep.observation.get("INVENTORY")
            interact = self.info.action(interact=1)
            index = 0 if self.target.startswith("resource_class1") else 1
            holding = inventory is not None and float(np.asarray(inventory)[index]) >= 1
            if holding and interact is not None and self.ready(timestep) and self.rng.random() < 0.5:
                return interact, prev_state + 1
            return super().step(timestep, prev_state)

    class Cooperator(Collector):
        target = "resource_class1_sprite"  # the cooperate resource

    class Defector(Collector):
        target = "resource_class2_sprite"  # the defect resource

    class PlanterRed(BeamFirer):
        """allelopathic_harvest: plants red berries, wanders, never zaps."""

        beam = "fire_1"

    class PlanterGreen(BeamFirer):
        """allelopathic_harvest: plants green berries, wanders, never zaps."""

        beam = "fire_2"

    class Claimer(BeamFirer):
        """territory: fires the claiming beam, never the zapper."""

        beam = "fireClaim"

    class Prosocial(Scripted):
        """The substrate's cooperative behaviour, chosen from its actions and
        sprites: cleans (clean_up), collects the cooperate resource (*_in_the_
        matrix), plants red (allelopathic_harvest), claims without zapping
        (territory), harvests with restraint (apples), else wanders. Never zaps."""

        def __init__(self, info, seed):
            super().__init__(info, seed)
            if info.action(fireClean=1) is not None:
                chosen = Cleaner
            elif info.action(interact=1) is not None and info.colour(Cooperator.target) is not None:
                chosen = Cooperator
            elif info.action(fire_1=1) is not None:
                chosen = PlanterRed
            elif info.action(fireClaim=1) is not None:
                chosen = Claimer
            elif info.colour(RestrainedHarvester.target) is not None:
                chosen = RestrainedHarvester
            else:
                chosen = None
            # The delegate shares this policy's generator: one seed, one stream.
            self.delegate = chosen(info, seed) if chosen is not None else None
            if self.delegate is not None:
                self.delegate.rng = self.rng

        def step(self, timestep, prev_state):
            if self.delegate is None:
                return self.wander(), prev_state + 1
            return self.delegate.step(timestep, prev_state)

    return {
        "random": RandomPolicy, "noop": NoopPolicy, "aggressor": Aggressor,
        "harvester": Forager, "consumer": Forager, "cleaner": Cleaner,
        "cooperator": Cooperator, "defector": Defector,
        "planter_red": PlanterRed, "planter_green": PlanterGreen,
        "restrained_harvester": RestrainedHarvester, "claimer": Claimer, "prosocial": Prosocial,
    }


BUILTINS = {
    "random": "uniformly random actions",
    "noop": "always the no-op action",
    "aggressor": "zaps whenever it can, wanders otherwise (substrates with a zapper)",
    "harvester": "walks to the nearest apple, never zaps (commons_harvest, clean_up)",
    "consumer": "clean_up free rider: eats apples, never cleans or zaps",
    "cleaner": "clean_up: fires the cleaning beam half the time, never zaps",
    "cooperator": "prisoners_dilemma arena: collects cooperate resources and interacts",
    "defector": "prisoners_dilemma arena: collects defect resources and interacts",
    "planter_red": "allelopathic_harvest: plants red berries, never zaps",
    "planter_green": "allelopathic_harvest: plants green berries, never zaps",
    "restrained_harvester": "walks to the nearest apple with two or more apples beside it, never zaps",
    "claimer": "territory: fires the claiming beam half the time, never zaps",
    "prosocial": "the substrate's cooperative behaviour: cleaner, cooperator, planter_red, claimer "
                 "or restrained_harvester, whichever the substrate supports; never zaps",
}


# ------------------------------------------------------------ members and populations

PolicyBuilder = Callable[[SubstrateInfo, int], object]  # (substrate info, seed) -> Policy


@dataclass(frozen=True)
class Member:
    """One policy of a population: a display name and how to build it."""

    name: str
    spec: str

    def build(self, info: SubstrateInfo, seed: int):
        return _builder(self.spec)(info, seed)


@dataclass(frozen=True)
class Population:
    team: str
    members: tuple[Member, ...]

    def sample(self, n_slots: int, rng) -> list[Member]:
        """Members for ``n_slots`` slots, drawn uniformly with replacement."""
        return [rng.choice(self.members) for _ in range(n_slots)]


def _import_attr(spec: str):
    # Submissions import meltingpot (hence TensorFlow) themselves: import it
    # quietly first, or TensorFlow's start-up lines reach the user's terminal.
    Policy = _policy_base()
    target, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if target.endswith(".py") or "/" in target or (not attr and spec.endswith(".py")):
        path = Path(target if attr else spec)
        if not path.exists():
            raise CapprofError(f'policy file {path} does not exist; check the path in --population')
        module_name = "capprof_submission_" + re.sub(r"\W", "_", str(path.resolve()))
        module = sys.modules.get(module_name)
        if module is None:
            spec_obj = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec_obj)
            sys.modules[module_name] = module
            try:
                spec_obj.loader.exec_module(module)
            except Exception as exc:
                del sys.modules[module_name]
                raise CapprofError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise CapprofError(f'cannot import "{target}" ({exc}); put it on PYTHONPATH or pass a file path') from None
    if not attr:
        classes = [v for v in vars(module).values() if inspect.isclass(v) and issubclass(v, Policy)
                   and v.__module__ == module.__name__ and not inspect.isabstract(v)]
        if len(classes) != 1:
            raise CapprofError(f'{spec}: expected exactly one Policy subclass, found {len(classes)}; '
                               'name it as FILE.py:ClassName')
        return classes[0]
    if not hasattr(module, attr):
        names = [n for n in vars(module) if not n.startswith("_")]
        raise CapprofError(f'{spec}: "{attr}" not found in {module.__name__}{did_you_mean(attr, names)}')
    return getattr(module, attr)


def _builder(spec: str) -> PolicyBuilder:
    if spec in BUILTINS:
        cls = _builtin_classes()[spec]
        return lambda info, seed: cls(info, seed)
    if spec.startswith("rllib:"):
        from capprof.runners import rllib_policy

        rllib_policy.check_spec(spec)  # cheap: a bad directory fails before any episode
        return lambda info, seed: rllib_policy.build(spec, info)
    obj = _import_attr(spec)
    Policy = _policy_base()

    def build(info, seed):
        policy = obj()
        if not isinstance(policy, Policy):
            raise TypeError(f"{spec} built a {type(policy).__name__}, not a meltingpot Policy")
        return policy

    return build


def looks_like_import(spec: str) -> bool:
    return spec.startswith("rllib:") or ":" in spec or spec.endswith(".py") or "/" in spec


def parse_population(text: str, check: bool = True) -> Population:
    """Parse ``[TEAM=]MEMBER[+MEMBER...]``; with ``check`` every member is
    resolved now, so a typo fails before any episode starts."""
    team, sep, body = text.partition("=")
    if not sep:
        team, body = text, text
    team = team.strip()
    specs = [m.strip() for m in body.split("+") if m.strip()]
    if not specs or not team:
        raise CapprofError(f'empty population "{text}"; write e.g. --population random or '
                           '--population mine=pkg.module:MyPolicy')
    members = []
    for spec in specs:
        if spec not in BUILTINS and not looks_like_import(spec):
            raise CapprofError(
                f'unknown population member "{spec}"{did_you_mean(spec, BUILTINS)}; use a built-in '
                f'({", ".join(BUILTINS)}), module:Class, FILE.py[:Class] or rllib:CHECKPOINT_DIR[:MODULE_ID]'
            )
        if check:
            _builder(spec)
        members.append(Member(name=spec, spec=spec))
    return Population(team=team, members=tuple(members))
