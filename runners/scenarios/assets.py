"""Whether DeepMind's pretrained bots (meltingpot's saved-model assets) are installed.

dm-meltingpot's build downloads them; offline, capprof's Makefile builds it
with a placeholder, so the saved models are absent. Scenarios whose background
needs them must fail before an episode starts, naming the bot and the fix.
"""

from __future__ import annotations

import os

from capprof.errors import CapprofError

INSTALL_HINT = (
    "download meltingpot-assets-2.3.0.tar.gz (see docs/runners.md) and rebuild with "
    "`make install-runners MELTINGPOT_ASSETS=/path/to/meltingpot-assets-2.3.0.tar.gz`"
)


def bot_model_path(bot_name: str) -> str | None:
    """Saved-model directory of a meltingpot bot, or None for the no-op bot."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()  # quietly: the configs package imports meltingpot, hence TensorFlow
    from meltingpot.configs import bots as bot_configs

    from capprof.tagging.catalog import NOOP_BOT

    if bot_name == NOOP_BOT:
        return None
    return bot_configs.BOT_CONFIGS[bot_name].model_path


def bot_available(bot_name: str) -> bool:
    path = bot_model_path(bot_name)
    return path is None or os.path.exists(os.path.join(path, "saved_model.pb"))


def missing_bots(bot_names) -> list[str]:
    return sorted(b for b in set(bot_names) if not bot_available(b))


def require_bots(scenario: str, bot_names) -> None:
    """Raise CapprofError naming the first missing bot of ``scenario``."""
    missing = missing_bots(bot_names)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CapprofError(
            f'scenario "{scenario}" needs DeepMind\'s bot "{missing[0]}"{more}, whose saved model is not '
            f"installed; {INSTALL_HINT}"
        )


def assets_installed() -> bool:
    """True when at least one saved-model bot is present."""
    from capprof.meltingpot_import import import_meltingpot

    import_meltingpot()
    from meltingpot.configs import bots as bot_configs

    return any(bot_available(name) for name in bot_configs.BOT_CONFIGS)


def assets_notice() -> str:
    """One line saying whether DeepMind's bot assets are installed and, if
    not, what still runs and how to add them (the Makefile shows it after
    installing)."""
    if assets_installed():
        return "capprof: DeepMind's bot assets are installed; every official scenario can run."
    return ("capprof: notice: DeepMind's bot assets are not installed (offline build). Scenarios "
            "with noop bots and capprof's offline suite run; the others fail with a clear message. "
            f"To add them: {INSTALL_HINT}.")
