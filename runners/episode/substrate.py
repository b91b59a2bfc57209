"""Build a scenario's substrate: meltingpot's config with the scenario's
declared overrides (``capprof.runners.scenarios.scenarios``), seeded."""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass

import numpy as np

from capprof.runners.scenarios.scenarios import (ComponentKwarg, ConfigValue, DisableAction, MeanReward, Scenario,
                                       VisibleObjectReward)


def apply_component_kwarg(node, override: ComponentKwarg) -> int:
    """Set or scale ``override.kwarg`` of every lab2d component called
    ``override.component`` inside ``node`` (settings dicts and lists, in
    place); returns how many components it changed."""
    hits = 0
    if isinstance(node, dict):
        if node.get("component") == override.component and override.kwarg in node.get("kwargs", {}):
            old = node["kwargs"][override.kwarg]
            if override.scale is not None:
                if isinstance(old, (list, tuple)):
                    new = type(old)(min(1.0, float(v) * override.scale) for v in old)
                else:
                    new = float(old) * override.scale
            else:
                new = override.value
            node["kwargs"][override.kwarg] = new
            hits += 1
        for value in node.values():
            hits += apply_component_kwarg(value, override)
    elif isinstance(node, list):
        for value in node:
            hits += apply_component_kwarg(value, override)
    return hits


@dataclass(frozen=True)
class SpriteProbe:
    """How to see one prefab in a player's RGB view cheaply: its body
    ``colour`` and ``pixels``, positions inside a ``cell`` x ``cell`` sprite
    cell closed under the four rotations a view can show it in. One body pixel
    and its rotated images: whichever way the view is turned, one of them shows
    that body pixel, so a cell shows the sprite iff one of these few pixels has
    its colour (4 pixels a cell instead of 64)."""

    colour: tuple[int, int, int]
    pixels: tuple[tuple[int, int], ...]
    cell: int


def sprite_probe(settings: dict, prefab: str) -> SpriteProbe:
    """The ``SpriteProbe`` of ``prefab``'s first sprite: the colour most of it
    is drawn in (an apple's red body), read from its ``Appearance`` component,
    and the body pixel nearest the centre with its rotations, in the view's
    pixels (the substrate's ``spriteSize``; sprite shapes are scaled to it)."""
    cell = int(settings.get("spriteSize", 8))
    components = settings["simulation"].get("prefabs", {}).get(prefab, {}).get("components", [])
    for component in components:
        if component.get("component") == "Appearance":
            kwargs = component["kwargs"]
            shape, palette = kwargs["spriteShapes"][0], kwargs["palettes"][0]
            glyphs = collections.Counter(ch for ch in shape if ch in palette and palette[ch][3] > 0)
            body = glyphs.most_common(1)[0][0]
            rows = shape.strip("\n").split("\n")
            size = len(rows)
            centre = (size - 1) / 2
            r, c = min(((i, j) for i, row in enumerate(rows) for j, ch in enumerate(row) if ch == body),
                       key=lambda ij: (ij[0] - centre) ** 2 + (ij[1] - centre) ** 2)
            orbit = {(r, c), (c, size - 1 - r), (size - 1 - r, size - 1 - c), (size - 1 - c, r)}
            # a shape pixel's centre, in a cell of the view's size
            pixels = tuple(sorted({(int((i + 0.5) * cell / size), int((j + 0.5) * cell / size)) for i, j in orbit}))
            return SpriteProbe(tuple(palette[body][:3]), pixels, cell)
    raise ValueError(f"the substrate has no {prefab} prefab with an Appearance")


def count_visible(rgb: np.ndarray, probe: SpriteProbe) -> np.ndarray:
    """Cells showing ``probe``'s sprite in each player's view: ``rgb`` is
    (players, H, W, 3); returns (players,) counts. Only the probe's pixels of
    each cell are compared (SpriteProbe)."""
    colour = np.asarray(probe.colour, rgb.dtype)
    hit = None
    for r, c in probe.pixels:
        here = np.all(rgb[:, r::probe.cell, c::probe.cell] == colour, axis=-1)
        hit = here if hit is None else hit | here
    return hit.sum(axis=(1, 2))


class ShapedRewards:
    """A built substrate whose step rewards are shaped (``VisibleObjectReward``
    then ``MeanReward``); everything else is the substrate's own, so the
    episode loop, observers and training see one object."""

    def __init__(self, substrate, visible: list[tuple[SpriteProbe, float]], mean: bool):
        self._substrate, self._visible, self._mean = substrate, visible, mean

    def step(self, actions):
        timestep = self._substrate.step(actions)
        reward = np.array([float(r) for r in timestep.reward])
        if self._visible:
            rgb = np.stack([obs["RGB"] for obs in timestep.observation])
            for probe, per_object in self._visible:
                reward = reward + per_object * count_visible(rgb, probe)
        if self._mean:
            reward = np.full_like(reward, reward.mean())
        return timestep._replace(reward=[np.asarray(r, dtype=np.float64) for r in reward])

    def __getattr__(self, name):
        return getattr(self._substrate, name)


def build_substrate(scenario: Scenario, env_seed: int):
    """Build the scenario's substrate with its overrides, seeded.

    meltingpot draws the lab2d seed from Python's ``random`` when it builds a
    substrate, so we seed it here and restore its state afterwards.
    """
    from meltingpot import substrate as mp_substrate
    from meltingpot.utils.substrates import substrate_factory

    config = mp_substrate.get_config(scenario.substrate)
    action_set = tuple(dict(a) for a in config.action_set)
    settings_overrides, visible_rewards, mean_reward = [], [], False
    for override in scenario.overrides:
        if isinstance(override, ConfigValue):
            with config.unlocked():
                config[override.key] = override.value
        elif isinstance(override, DisableAction):
            noop = next(a for a in action_set if not any(a.values()))
            action_set = tuple(dict(noop) if a.get(override.key) else a for a in action_set)
        elif isinstance(override, ComponentKwarg):
            settings_overrides.append(override)
        elif isinstance(override, VisibleObjectReward):
            visible_rewards.append(override)
        elif isinstance(override, MeanReward):
            mean_reward = True
    shaping = {}  # what the reward shaping reads from the settings the substrate is built with

    def lab2d_settings(roles):
        settings = config.lab2d_settings_builder(roles=roles, config=config)
        for override in settings_overrides:
            if not apply_component_kwarg(settings, override):
                raise ValueError(f"{scenario.name}: substrate has no component {override.component} "
                                 f"with kwarg {override.kwarg}")
        shaping["visible"] = [(sprite_probe(settings, v.prefab), v.per_object) for v in visible_rewards]
        return settings

    factory = substrate_factory.SubstrateFactory(
        lab2d_settings_builder=lab2d_settings,
        individual_observations=config.individual_observation_names,
        global_observations=config.global_observation_names,
        action_table=action_set,
        timestep_spec=config.timestep_spec,
        action_spec=config.action_spec,
        valid_roles=config.valid_roles,
        default_player_roles=config.default_player_roles,
    )
    saved = random.getstate()
    random.seed(env_seed)
    try:
        substrate = factory.build(scenario.roles)
    finally:
        random.setstate(saved)
    if visible_rewards or mean_reward:
        return ShapedRewards(substrate, shaping["visible"], mean_reward)
    return substrate
