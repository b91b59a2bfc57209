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
