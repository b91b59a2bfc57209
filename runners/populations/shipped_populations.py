"""The trained populations capprof ships as package data.

Each is a ``capprof train`` output directory reduced to what plays: the
modules (``learner_group/learner/rl_module/``), the observation convention
(``capprof_rllib.json``), the record of the run (``train.json``: the exact
command, settings, budget, versions, wall time) and the learning curve
(``learning_curve.csv``), and when the run's modules at one of its
checkpoints were chosen over its last ones, how (``selection.json``:
``Selection``). The full checkpoints are left out (they exist only for
``--resume``). ``ShippedPopulation.spec`` is the ``rllib:`` member that
plays it; ``ship()`` makes such a directory from a finished training run.
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from capprof.errors import CapprofError
from capprof.io import atomic_write_text
from capprof.runners.populations.rllib_obs import CONVENTION_FILE, SNAPSHOTS, read_convention, read_train_file
from capprof.runners.populations.rllib_policy import RLlibSource, play_mode

__all__ = ["PREFIX", "SHIPPED_FILES", "Selection", "ShippedPopulation", "played_as", "ship", "shipped_dir", "shipped_names",
           "shipped_population", "shipped_populations", "source"]

PREFIX = "shipped:"  # the member kind: shipped:NAME

# What a shipped directory holds (relative paths); everything else of a
# training directory stays behind.
SHIPPED_FILES = ("learner_group/learner/rl_module", "capprof_rllib.json", "train.json", "learning_curve.csv")
SELECTION_FILE = "selection.json"
PLAYED_FILES = SHIPPED_FILES[:2]  # what a chosen snapshot provides


@dataclass(frozen=True)
class Selection:
    """Which checkpoint of a run a shipped population plays and how it was
    chosen: the snapshot (``capprof train``'s ``snapshots/step_<N>``) with the
    highest mean focal per-capita return over ``episodes`` episodes of
    ``max_steps`` steps on ``scenario`` with run seed ``seed``, a seed the
    comparison in the README does not use (so the chosen one's lead there
    is not the noise it was chosen on). ``means``: every snapshot's mean."""

    snapshot: str  # step_<N>: the checkpoint at N env steps
    scenario: str
    episodes: int
    max_steps: int | None
    seed: int
    means: dict

    @property
    def env_steps(self) -> int:
        return int(self.snapshot.removeprefix("step_"))

    def describe(self) -> str:
        return (f"plays its checkpoint at {self.env_steps:,} env steps, the best of {len(self.means)} by mean "
                f"focal per-capita return in {self.episodes} episodes per checkpoint on {self.scenario} "
                f"with run seed {self.seed}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def read(cls, directory: Path) -> "Selection | None":
        path = Path(directory) / SELECTION_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise CapprofError(f"{path} is not a checkpoint selection record ({exc}); ship the population again "
                               "with scripts/ship_populations.py") from None


def shipped_dir() -> Path:
    """The shipped populations' folder (package data of ``capprof``)."""
    from importlib import resources

    return Path(str(resources.files("capprof") / "data" / "populations"))


@dataclass(frozen=True)
class ShippedPopulation:
    """One shipped population and what made it (read from its train.json)."""

    name: str
    directory: Path
    substrate: str
    target: str  # what it trained on: the substrate or a variant (SUBSTRATE:key=value,...)
    prosocial: bool
    per_player: bool
    env_steps: int
    iterations: int
    train_seconds: float
    commands: tuple[str, ...]  # every training session's command, first to last
    cpus: int | None
    explore: bool = False
    shaping: tuple[str, ...] = ()  # the training target's reward shaping, described (e.g. farmer)
    selection: Selection | None = None  # a checkpoint chosen over the run's last one

    @property
    def spec(self) -> str:
        """The population member that plays it: ``rllib:DIR``."""
        return f"rllib:{self.directory}"

    def describe(self) -> str:
        """One line: how it was trained."""
        rewards = "prosocial rewards (each player gets the mean of all)" if self.prosocial else "own rewards"
        extra = [text for text in self.shaping if "mean reward" not in text]  # prosocial is said above
        if extra:
            rewards += " " + " and ".join(extra)
        play = "by sampling from its policy" if self.explore else "greedily (the policy's most likely action)"
        modules = "one module per player" if self.per_player else "one shared module"
        cpus = f" on {self.cpus} cores" if self.cpus else ""
        chosen = f"; {self.selection.describe()}" if self.selection else ""
        return (f"PPO, {modules}, {rewards}, {self.env_steps:,} env steps of {self.target} "
                f"({self.iterations} iterations, {self.train_seconds / 60:.0f} min of training{cpus}), "
                f"plays {play}{chosen}")

    @classmethod
    def read(cls, directory: Path) -> ShippedPopulation:
        path = Path(directory) / "train.json"
        try:
            record = json.loads(path.read_text())
            settings = record["settings"]
            shaping = tuple(text for text in record.get("overrides", ()) if "reward" in text)
            last = record["sessions"][-1]
            convention = read_convention(Path(directory))
            explore = bool(convention[1].get("explore", False)) if convention else False
            return cls(name=Path(directory).name, directory=Path(directory), substrate=str(record["substrate"]),
                       target=str(record.get("target", record["substrate"])),
                       prosocial=bool(settings["prosocial"]) or bool(convention and convention[1].get("prosocial")),
                       per_player=bool(settings["per_player"]), shaping=shaping,
                       env_steps=int(record["env_steps"]), iterations=int(record["iterations"]),
                       train_seconds=float(record["wall_seconds"]),
                       commands=tuple(shlex.join(str(part) for part in session["command"])
                                      for session in record["sessions"]),
                       cpus=last.get("cpus"),
                       explore=explore, selection=Selection.read(directory))
        except FileNotFoundError:
            raise CapprofError(f"{directory} has no train.json; a shipped population is a capprof train "
                               "directory (see capprof/data/populations/README.md)") from None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise CapprofError(f"{path} is not a capprof train record ({type(exc).__name__}: {exc})") from None


def shipped_populations() -> tuple[ShippedPopulation, ...]:
    """Every shipped population, by name."""
    root = shipped_dir()
    return tuple(ShippedPopulation.read(d) for d in sorted(root.iterdir()) if (d / "train.json").is_file())


def shipped_names() -> list[str]:
    """The shipped populations' names (their folders; nothing is read)."""
    root = shipped_dir()
    return sorted(d.name for d in root.iterdir() if (d / "train.json").is_file()) if root.is_dir() else []


def source(spec: str) -> RLlibSource:
    """``shipped:NAME[#greedy|#sample|#sample=T]`` resolved: the ``rllib:``
    member that plays it (the suffix, if any, overrides how it plays)."""
    body = play_mode(spec)[0]  # a bad suffix is one line naming the allowed ones
    return RLlibSource(shipped_population(body[len(PREFIX):]).spec + spec[len(body):])


def shipped_population(name: str) -> ShippedPopulation:
    for population in shipped_populations():
        if population.name == name:
            return population
    names = ", ".join(p.name for p in shipped_populations()) or "none"
    raise CapprofError(f'no shipped population "{name}"; capprof ships: {names}')


def ship(train_dir, destination, explore: bool | None = None, selection: Selection | None = None) -> ShippedPopulation:
    """Copy the playable part of a finished ``capprof train`` directory to
    ``destination`` (which must not exist). ``explore`` sets how it plays
    (``"explore"`` in capprof_rllib.json: True samples from the policy, False
    takes its greedy action); None keeps the training directory's choice.
    With ``selection`` the modules and convention are those of the chosen
    snapshot (``train_dir/snapshots/NAME``), the record and curve the run's."""
    train_dir, destination = Path(train_dir), Path(destination)
    record = read_train_file(train_dir)
    if record.get("status") != "done":
        raise CapprofError(f"{train_dir} is not finished (status {record.get('status')!r}); "
                           f"continue it with `capprof train --out {train_dir} --resume`")
    if destination.exists():
        raise CapprofError(f"{destination} exists; remove it or choose another destination")
    played = train_dir / SNAPSHOTS / selection.snapshot if selection else train_dir
    if not (played / CONVENTION_FILE).is_file():
        raise CapprofError(f"{played} holds no playable modules ({CONVENTION_FILE} missing); "
                           "snapshots are written by capprof train at each checkpoint")
    for relative in SHIPPED_FILES:
        source = (played if relative in PLAYED_FILES else train_dir) / relative
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    if selection:
        atomic_write_text(destination / SELECTION_FILE, selection.to_json())
    if explore is not None:
        _write_explore(played, destination, explore)
    return ShippedPopulation.read(destination)


def _write_explore(source: Path, destination: Path, explore: bool) -> None:
    """``destination/capprof_rllib.json``: ``source``'s, with ``explore`` set."""
    path = destination / CONVENTION_FILE
    atomic_write_text(path, json.dumps({**json.loads((source / CONVENTION_FILE).read_text()), "explore": explore},
                                       indent=2) + "\n")


def played_as(directory, target, explore: bool) -> Path:
    """A member directory ``target`` that plays ``directory``'s modules
    (linked, not copied) sampling from the policy (``explore``) or greedily."""
    directory, target = Path(directory).resolve(), Path(target)
    target.mkdir()
    (target / "learner_group").symlink_to(directory / "learner_group")
    _write_explore(directory, target, explore)
    return target
