"""Build a scenario's substrate: meltingpot's config with the scenario's
declared overrides (``capprof.runners.scenarios``), seeded."""

from __future__ import annotations

import random

from capprof.runners.scenarios import ComponentKwarg, ConfigValue, DisableAction, Scenario


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


def build_substrate(scenario: Scenario, env_seed: int):
    """Build the scenario's substrate with its overrides, seeded.

    meltingpot draws the lab2d seed from Python's ``random`` when it builds a
    substrate, so we seed it here and restore its state afterwards.
    """
    from meltingpot import substrate as mp_substrate
    from meltingpot.utils.substrates import substrate_factory

    config = mp_substrate.get_config(scenario.substrate)
    action_set = tuple(dict(a) for a in config.action_set)
    settings_overrides = []
    for override in scenario.overrides:
        if isinstance(override, ConfigValue):
            with config.unlocked():
                config[override.key] = override.value
        elif isinstance(override, DisableAction):
            noop = next(a for a in action_set if not any(a.values()))
            action_set = tuple(dict(noop) if a.get(override.key) else a for a in action_set)
        elif isinstance(override, ComponentKwarg):
            settings_overrides.append(override)

    def lab2d_settings(roles):
        settings = config.lab2d_settings_builder(roles=roles, config=config)
        for override in settings_overrides:
            if not apply_component_kwarg(settings, override):
                raise ValueError(f"{scenario.name}: substrate has no component {override.component} "
                                 f"with kwarg {override.kwarg}")
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
        return factory.build(scenario.roles)
    finally:
        random.setstate(saved)
