"""What a policy may know about the substrate it plays: its action set and
the colours of its sprites, read from meltingpot's config (``substrate_info``,
once per process and substrate)."""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class SubstrateInfo:
    """What a policy may know about the substrate it plays."""

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
def substrate_info(substrate: str) -> SubstrateInfo:
    """The substrate's action set and sprite colours (from meltingpot's config)."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot import substrate as mp_substrate

    config = mp_substrate.get_config(substrate)
    settings = config.lab2d_settings_builder(roles=config.default_player_roles, config=config)
    colours: dict = {}
    _walk_appearances(settings, colours)
    return SubstrateInfo(substrate, tuple(dict(a) for a in config.action_set), tuple(sorted(colours.items())))
