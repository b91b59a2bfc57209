"""argparse value types shared by every command, so a bad number is one line
naming the option's rule (exit 2) instead of a library's traceback."""

from __future__ import annotations

import argparse


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number') from None


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (seeds: numpy refuses negative ones)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give a whole number >= 0")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts: draws, repeats, episodes, workers)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; give a whole number >= 1")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (time limits, fractions)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number') from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number > 0")
    return value


# Seeds travel through numpy, RLlib (< 2**32, with per-runner offsets added)
# and int64 columns of the episode tables: one range that fits them all.
SEED_MAX = 2**31 - 1


def seed_int(text: str) -> int:
    """A seed: a whole number from 0 to ``SEED_MAX``."""
    value = _integer(text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{value} is outside the seeds capprof takes; give a whole number "
                                         f"from 0 to {SEED_MAX}")
    return value


def bounded_int(low: int, high: int, why_low: str = "", why_high: str = ""):
    """An argparse type: a whole number from ``low`` to ``high``; ``why_low``
    / ``why_high`` say why that bound is there, in the message of a value
    beyond it."""
    def parse(text: str) -> int:
        value = _integer(text)
        if not low <= value <= high:
            why = why_low if value < low else why_high
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}" + (f" ({why})" if why else ""))
        return value

    parse.__name__ = f"whole number {low}..{high}"
    return parse
