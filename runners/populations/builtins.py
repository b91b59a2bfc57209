"""capprof's built-in scripted policies, one class per behaviour.

Each class below with a ``name`` is a built-in population member
(``--population NAME``); its docstring is its description, and ``BUILTINS``
(name -> class) is derived from the classes themselves: adding a built-in is
one new class here with a ``name``.

A built-in is built fresh per slot per episode as ``cls(info, seed)``, where
``info`` is the substrate's :class:`capprof.runners.populations.substrate_info.SubstrateInfo`
and ``seed`` seeds its own generator. They follow meltingpot's ``Policy``
protocol (``initial_state``, ``step``, ``close``; the state is the step count)
without importing meltingpot, so this module imports with NumPy alone.
"""

from __future__ import annotations

import inspect

import numpy as np

from capprof.registry import Registry

# The standard Melting Pot egocentric view: 11x11 cells of 8 pixels, the
# player in row 9 (of 0..10), column 5, facing up.
VIEW_CELLS = 11
SELF_ROW, SELF_COL = 9, 5

# name -> class: a Scripted subclass that sets ``name`` registers itself when defined
BUILTINS = Registry("built-in population")


def describe(name: str) -> str:
    """The built-in's description: its class docstring on one line."""
    return " ".join(inspect.getdoc(BUILTINS[name]).split())


class Scripted:
    """Base of the built-ins (not itself a member). State is the step count;
    each policy has its own generator, seeded per slot per episode."""

    name: str | None = None

    def __init_subclass__(cls, register: bool = True, **kwargs):
        # ``register=False`` keeps a named subclass out of BUILTINS (as Predictor)
        super().__init_subclass__(**kwargs)
        if register and cls.__dict__.get("name"):
            BUILTINS.register(cls)

    def __init__(self, info, seed: int):
        self.info = info
        self.rng = np.random.default_rng(seed)
        self.moves = [a for a in (info.action(move=1), info.action(move=2), info.action(move=3),
                                  info.action(move=4), info.action(turn=-1), info.action(turn=1))
                      if a is not None]
        self.noop = info.action() or 0

    def initial_state(self):
        return 0

    def step(self, timestep, prev_state):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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

    name = "random"

    def step(self, timestep, prev_state):
        return int(self.rng.integers(self.info.num_actions)), prev_state + 1


class NoopPolicy(Scripted):
    """Always the no-op action."""

    name = "noop"

    def step(self, timestep, prev_state):
        return self.noop, prev_state + 1


class Aggressor(Scripted):
    """Zaps whenever the zapper is ready (70% of those steps), wanders
    otherwise (substrates with a zapper)."""

    name = "aggressor"

    def step(self, timestep, prev_state):
        zap = self.info.action(fireZap=1)
        if zap is not None and self.ready(timestep) and self.rng.random() < 0.7:
            return zap, prev_state + 1
        return self.wander(), prev_state + 1


class Harvester(Scripted):
    """Walks to the nearest visible apple, wanders when none is in view;
    never zaps (commons_harvest, clean_up)."""

    name = "harvester"
    target = "Apple"

    def step(self, timestep, prev_state):
        move = self.seek(timestep, self.info.colour(self.target))
        return (move if move is not None else self.wander()), prev_state + 1


class Consumer(Harvester):
    """clean_up free rider: walks to the nearest visible apple and eats it,
    never cleans or zaps (the harvester's behaviour under clean_up's name)."""

    name = "consumer"


class RestrainedHarvester(Harvester):
    """Walks only to apples with two or more apples beside them, so no patch
    loses its last apples (commons_harvest regrows an apple only near others);
    wanders otherwise; never zaps."""

    name = "restrained_harvester"

    def step(self, timestep, prev_state):
        move = self.seek(timestep, self.info.colour(self.target), min_neighbours=2)
        return (move if move is not None else self.wander()), prev_state + 1


class BeamFirer(Scripted):
    """Fires ``beam`` half the time and wanders otherwise; never zaps
    (base of the cleaner, planters and claimer)."""

    beam = "fireClean"

    def step(self, timestep, prev_state):
        fire = self.info.action(**{self.beam: 1})
        if fire is not None and self.rng.random() < 0.5:
            return fire, prev_state + 1
        return self.wander(), prev_state + 1


class Cleaner(BeamFirer):
    """clean_up: fires the cleaning beam half the time, wanders otherwise;
    never eats on purpose or zaps."""

    name = "cleaner"
    beam = "fireClean"


class PlanterRed(BeamFirer):
    """allelopathic_harvest: plants red berries (fires the red planting beam
    half the time), wanders otherwise; never zaps."""

    name = "planter_red"
    beam = "fire_1"


class PlanterGreen(BeamFirer):
    """allelopathic_harvest: plants green berries (fires the green planting
    beam half the time), wanders otherwise; never zaps."""

    name = "planter_green"
    beam = "fire_2"


class Claimer(BeamFirer):
    """territory: fires the claiming beam half the time, wanders otherwise;
    never zaps."""

    name = "claimer"
    beam = "fireClaim"


class Collector(Harvester):
    """*_in_the_matrix: walks to one resource and, holding it, interacts
    half the time when ready (base of the cooperator and defector)."""

    def step(self, timestep, prev_state):
        inventory = timestep.observation.get("INVENTORY")
        interact = self.info.action(interact=1)
        index = 0 if self.target.startswith("resource_class1") else 1
        holding = inventory is not None and float(np.asarray(inventory)[index]) >= 1
        if holding and interact is not None and self.ready(timestep) and self.rng.random() < 0.5:
            return interact, prev_state + 1
        return super().step(timestep, prev_state)


class Cooperator(Collector):
    """prisoners_dilemma arena: collects cooperate resources and interacts
    while holding one."""

    name = "cooperator"
    target = "resource_class1_sprite"  # the cooperate resource


class Defector(Collector):
    """prisoners_dilemma arena: collects defect resources and interacts
    while holding one."""

    name = "defector"
    target = "resource_class2_sprite"  # the defect resource


class Prosocial(Scripted):
    """The substrate's cooperative behaviour, chosen from its actions and
    sprites: cleaner (clean_up), cooperator (*_in_the_matrix), planter_red
    (allelopathic_harvest), claimer (territory) or restrained_harvester
    (apples), whichever the substrate supports, else wandering; never zaps."""

    name = "prosocial"

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
