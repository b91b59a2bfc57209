"""What goes into an episode (``EpisodeTask``, ``Limits``) and what comes out
(``EpisodeRecord``).

``EpisodeRecord`` is the one description of an episode's row: its fields, in
order, with their Python types, are the columns of the results dataset
(``capprof.runners.execution.results.EPISODE_SCHEMA`` is derived from them) and each
field's ``doc`` is its meaning (the table in docs/runners.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from capprof.runners.constants import STATUS_OK
from capprof.runners.scenarios.scenarios import Scenario

NAN = math.nan


@dataclass(frozen=True)
class Limits:
    """Resource limits for focal policies (the contest used 1 vCPU and 3 GB
    per focal agent). ``None`` disables a limit."""

    step_seconds: float | None = 10.0
    episode_seconds: float | None = None
    memory_gb_per_focal: float | None = 3.0


@dataclass(frozen=True)
class EpisodeTask:
    """One episode to play: which population, where, which seed."""

    run_id: str
    population: str  # the population spec, re-parsed in the worker
    team: str
    scenario: Scenario
    episode: int
    seed: int
    max_steps: int | None = None
    limits: Limits = Limits()
    series_every: int | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.team, self.scenario.name, self.episode)


def _doc(text: str, default=dataclasses.MISSING, default_factory=dataclasses.MISSING):
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode's row of the results dataset (failed episodes too)."""

    run_id: str = _doc("id of the `capprof run` invocation that produced the row")
    team: str = _doc("population name (TEAM, or the spec)")
    population: str = _doc("the population spec as given")
    scenario: str = _doc("scenario name")
    substrate: str = _doc("its substrate")
    suite: str = _doc("`official`, `offline` or `variants`")
    episode: int = _doc("episode number, 0-based (the score table's `replicate`)")
    seed: int = _doc("the run seed")
    focal_per_capita_return: float = _doc("mean return of focal players (the score)", NAN)
    background_per_capita_return: float = _doc(
        "mean return of background players; NaN without background", NAN)
    player_returns: tuple[float, ...] = _doc("every slot's return, slot order", ())
    is_focal: tuple[bool, ...] = _doc("whether each slot is focal", ())
    focal_members: tuple[str, ...] = _doc("member that filled each focal slot", ())
    background_members: tuple[str, ...] = _doc(
        "member that filled each background slot (`bot:<name>` for meltingpot bots)", ())
    steps: int = _doc("steps played (episode end or `--max-steps`); for a failed episode, "
                      "the steps completed before it failed", 0)
    wall_seconds: float = _doc("wall time of the episode including build", 0.0)
    build_seconds: float = _doc("substrate build, policy construction and reset", NAN)
    steps_per_second: float = _doc("steps / stepping time (build excluded)", NAN)
    social_welfare: float = _doc("sum of all players' returns", NAN)
    gini_focal: float = _doc("Gini coefficient of focal returns (`capprof.inequality.gini`: "
                             "0 if all equal; NaN if they differ and their mean is <= 0)", NAN)
    gini_all: float = _doc("Gini coefficient of all players' returns", NAN)
    depleted_at_step: float = _doc("first step from which the collective return did not increase "
                                   "for 50 steps; NaN if never", NAN)
    return_series: tuple[tuple[float, ...], ...] = _doc(
        "with `--series-every N`: every player's cumulative return every N steps", ())
    gini_series: tuple[float, ...] = _doc("with `--series-every N`: Gini of all players at those steps", ())
    series_every: int | None = _doc("N of `--series-every`: sample k (0-based) of `return_series` / "
                                    "`gini_series` is at step (k+1)·N; null without series", None)
    status: str = _doc("`ok`, `error`, `invalid_action`, `timeout`, `memory`", STATUS_OK)
    error: str = _doc("one line for failed episodes, empty otherwise", "")

    @classmethod
    def for_task(cls, task: EpisodeTask, **fields) -> "EpisodeRecord":
        """The record of ``task`` with the given fields (the rest at their
        defaults: a record with no returns)."""
        scenario = task.scenario
        return cls(run_id=task.run_id, team=task.team, population=task.population,
                   scenario=scenario.name, substrate=scenario.substrate, suite=scenario.suite,
                   episode=task.episode, seed=task.seed, is_focal=tuple(scenario.is_focal),
                   series_every=task.series_every or None, **fields)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def as_row(self) -> dict:
        """The record as a plain dict (column -> value)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def failed_record(task: EpisodeTask, status: str, error: str, steps: int = 0,
                  wall_seconds: float = 0.0) -> EpisodeRecord:
    """The record of an episode that produced no returns."""
    return EpisodeRecord.for_task(task, status=status, error=error, steps=steps, wall_seconds=wall_seconds)


def record_columns() -> dict[str, str]:
    """Column -> meaning, in schema order (docs/runners.md's table)."""
    return {f.name: f.metadata["doc"] for f in dataclasses.fields(EpisodeRecord)}


class PolicyFailure(Exception):
    """A focal policy (or a limit it broke) ended the episode: ``status`` and
    the one-line message become the record's ``status`` and ``error``."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def exception_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (``TypeName`` alone when the
    message is empty), for a record's one-line ``error``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__
