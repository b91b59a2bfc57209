"""Build a scenario's substrate: meltingpot's config with the scenario's
declared overrides (``capprof.runners.scenarios.scenarios``), seeded."""

from __future__ import annotations

import collections
import random

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


def sprite_colour(settings: dict, prefab: str) -> tuple[int, int, int]:
    """The RGB colour that most of ``prefab``'s first sprite is drawn in (an
    apple's red body), read from its ``Appearance`` component."""
    components = settings["simulation"].get("prefabs", {}).get(prefab, {}).get("components", [])
    for component in components:
        if component.get("component") == "Appearance":
            kwargs = component["kwargs"]
            shape, palette = kwargs["spriteShapes"][0], kwargs["palettes"][0]
            glyphs = collections.Counter(ch for ch in shape if ch in palette and palette[ch][3] > 0)
            return tuple(palette[glyphs.most_common(1)[0][0]][:3])
    raise ValueError(f"the substrate has no {prefab} prefab with an Appearance")


def count_visible(rgb: np.ndarray, colour, cell: int) -> np.ndarray:
    """Cells of ``cell`` x ``cell`` pixels showing ``colour`` in each player's
    view: ``rgb`` is (players, H, W, 3); returns (players,) counts."""
    n, h, w, _ = rgb.shape
    hit = np.all(rgb.reshape(n, h // cell, cell, w // cell, cell, 3) == np.asarray(colour, rgb.dtype), axis=-1)
    return hit.any(axis=(2, 4)).sum(axis=(1, 2))


class ShapedRewards:
    """A built substrate whose step rewards are shaped (``VisibleObjectReward``
    then ``MeanReward``); everything else is the substrate's own, so the
    episode loop, observers and training see one object."""

    def __init__(self, substrate, visible: list[tuple[tuple[int, int, int], float]], cell: int, mean: bool):
        self._substrate, self._visible, self._cell, self._mean = substrate, visible, cell, mean

    def step(self, actions):
        timestep = self._substrate.step(actions)
        reward = np.array([float(r) for r in timestep.reward])
        if self._visible:
            rgb = np.stack([obs["RGB"] for obs in timestep.observation])
            for colour, per_object in self._visible:
                reward = reward + per_object * count_visible(rgb, colour, self._cell)
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
        shaping["cell"] = int(settings.get("spriteSize", 8))
        shaping["visible"] = [(sprite_colour(settings, v.prefab), v.per_object) for v in visible_rewards]
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
        return ShapedRewards(substrate, shaping["visible"], shaping["cell"], mean_reward)
    return substrate
