"""The report's inputs: where each is found, how it is read, read once.

No HTML here. A section asks ``Inputs`` for a table; an input that is absent
or unusable raises ``Absent`` with a message saying which and why, and the
report shows that message in the section instead of its content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from capprof.errors import CapprofError
from capprof.profiling.constants import POOLED_TEAM
from capprof.reports import tables

# Inputs in the order the report lists them. The first four come from the
# profile `capprof profile` wrote (input name -> Profile attribute), the
# others are its evidence.
PROFILE_PARTS = {"profiles": "abilities", "diagnostics": "diagnostics", "importances": "importances",
                 "posterior": "posterior"}
INPUT_NAMES = (*PROFILE_PARTS, "evaluate", "scores", "episodes", "timeseries", "predictions")
SUFFIXES = (".csv", ".parquet", ".feather", "")  # "" = a directory (of Parquet files)
# Columns that hold names: kept as text even when every value looks like a number.
NAME_COLUMNS = frozenset({"team", "scenario", "substrate", "model", "split", "ability", "feature", "status",
                          "source", "error", "policy", "role"})


# The evaluation inputs in DIR, first found first: the directory
# `capprof evaluate --save` writes (its summary shown as is), the summary CSV
# (`--summary`), the per-repeat table (`--out`).
EVALUATION_DIR = "evaluation"
EVALUATION_SUMMARY_STEM = "evaluate_summary"
DEFAULT_NORMALISATION = "minmax"  # of the score sections, without a profile that records one
COMPARE_SEED = 0  # the report's bootstrap seed (as `capprof compare`'s default)


class Absent(Exception):
    """A section's input is absent or unusable; the message says which and why."""


def locate(directory: Path, stem: str, explicit: str | Path | None = None) -> Path | None:
    """The file an input comes from: ``explicit`` when given (it must exist),
    else DIR/<stem>.csv, .parquet, .feather or a DIR/<stem>/ directory;
    None when there is none."""
    if explicit is not None:
        path = Path(explicit)
        if not path.exists():
            raise CapprofError(f"{path} does not exist; give an existing file or leave the option out")
        return path
    for suffix in SUFFIXES:
        candidate = directory / f"{stem}{suffix}"
        if candidate.exists() and (suffix or candidate.is_dir()):
            return candidate
    return None


def locate_inputs(directory: Path, explicit: Mapping[str, str | Path | None], profile=None
                  ) -> dict[str, Path | None]:
    """Every input of INPUT_NAMES -> its path (None when absent). With a
    ``profile`` (see ``read_profile``) its parts are the profile's files.
    The episode records default to DIR/episodes.* or DIR/episodes/, else to
    DIR itself when it is a `capprof run` output directory; the evaluation
    to the saved evaluation DIR/evaluation/ (``capprof evaluate --save``),
    else DIR/evaluate_summary.* (``--summary``), else DIR/evaluate.*."""
    from capprof.profiling.profile import PROFILE_FILES

    paths = {}
    for name in INPUT_NAMES:
        if name in PROFILE_PARTS and profile is not None:
            present = _profile_part(profile, name) is not None
            paths[name] = directory / PROFILE_FILES[name] if present else None
        elif name == "posterior":
            paths[name] = None  # only a whole profile has a usable posterior
        elif name == "evaluate" and explicit.get(name) is None:
            # the saved evaluation and the summary have intervals clustered by
            # scenario even for one repeat, where the per-repeat table has none
            saved = directory / EVALUATION_DIR
            paths[name] = saved if saved.is_dir() and is_saved_evaluation(saved) else \
                locate(directory, EVALUATION_SUMMARY_STEM) or locate(directory, name)
        else:
            paths[name] = locate(directory, name, explicit.get(name))
    if paths["episodes"] is None and _is_run_directory(directory):
        paths["episodes"] = directory
    return paths


def _is_run_directory(directory: Path) -> bool:
    """DIR is a `capprof run` output: Parquet episode records in DIR itself
    (other than an input named by its stem, such as scores.parquet)."""
    return any(p.stem not in INPUT_NAMES for p in directory.glob("*.parquet"))


def looked_for() -> str:
    """The file names a report looks for, for messages."""
    return ", ".join(f"{name}.*" for name in INPUT_NAMES if name != "posterior")


def read_profile(directory: Path):
    """The profile ``capprof profile`` wrote in ``directory``
    (``capprof.profiling.profile.Profile.load``; a damaged or incomplete one
    is a CapprofError naming the file), or None when the directory holds no
    profile (no model.json): loose profiles.csv, diagnostics.csv and
    importances.csv are then read file by file."""
    from capprof.profiling.profile import PROFILE_FILES, Profile

    if not (Path(directory) / PROFILE_FILES["meta"]).exists():
        return None
    return Profile.load(directory)


def is_saved_evaluation(path: Path) -> bool:
    """``path`` is a directory `capprof evaluate --save` wrote
    (``profiling.evaluate.is_saved_evaluation``; imported here, not at the
    top, since it brings the predictors and scikit-learn)."""
    from capprof.profiling.evaluate import is_saved_evaluation as saved

    return saved(path)


def profile_normalisation(profile) -> str | None:
    """The normalisation ``profile`` was fitted on (its record, model.json),
    or None without a profile or a record."""
    if profile is None:
        return None
    return profile.metadata.get("normalisation") or None


def _profile_part(profile, name: str):
    return getattr(profile, PROFILE_PARTS[name])


def read_input(path: Path) -> pd.DataFrame:
    """One input file (CSV, Parquet, feather or a Parquet directory) as a
    DataFrame; the profile's own files are read here too."""
    from capprof.readers import read_table

    return with_numbers(read_table(path))


def with_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every non-empty value is a number, as numbers
    (empty -> NaN): a CSV reader that keeps every cell as text leaves them so.
    NAME_COLUMNS stay text."""
    out = frame.copy()
    for column in out.columns:
        if column in NAME_COLUMNS or not pd.api.types.is_string_dtype(out[column]):
            continue
        values = out[column].astype(object).where(out[column].astype(str).str.strip() != "", None)
        try:
            out[column] = pd.to_numeric(values)
        except (ValueError, TypeError):
            continue
    return out


class Inputs:
    """The inputs of one report, each read at most once.

    ``paths`` maps INPUT_NAMES to files (None when absent); ``teams`` are the
    teams chosen with --teams (None: default); ``normalisation`` is the
    score normalisation of the score sections (None: the one the profile
    records, else DEFAULT_NORMALISATION); ``profile`` the loaded Profile
    (``read_profile``) or None.
    """

    def __init__(self, directory: Path, paths: Mapping[str, Path | None], teams: Sequence[str] | None,
                 normalisation: str | None = None, profile=None):
        self.directory = Path(directory)
        self.paths = dict(paths)
        self.profile = profile
        self.teams = list(teams) if teams else None
        self.normalisation = normalisation or profile_normalisation(profile) or DEFAULT_NORMALISATION
        self._cache: dict[str, object] = {}

    def _cached(self, key: str, compute: Callable[[], object]):
        """``compute()`` once; an Absent or CapprofError it raises is kept and
        raised again on every later call."""
        if key not in self._cache:
            try:
                self._cache[key] = compute()
            except (Absent, CapprofError) as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, Exception):
            raise value
        return value

    def _read(self, name: str) -> pd.DataFrame:
        if self.profile is not None and name in PROFILE_PARTS:
            frame = _profile_part(self.profile, name)
            if frame is None:
                raise Absent(f"the profile in {self.directory} has no {name} (it was fitted without an assessor)")
            return frame
        path = self.paths.get(name)
        if path is None:
            raise Absent(f"no {name} input in {self.directory}")
        if name == "evaluate" and is_saved_evaluation(path):
            return self.evaluation().summary
        try:
            return read_input(path)
        except CapprofError as exc:
            raise Absent(str(exc)) from None

    def evaluation(self):
        """The saved evaluation (``Evaluation.load``) the evaluate input
        names; Absent when it is a table or damaged (the message names the
        file)."""
        def load():
            from capprof.profiling.evaluate import Evaluation

            path = self.paths.get("evaluate")
            if path is None or not is_saved_evaluation(path):
                raise Absent(f"no saved evaluation in {self.directory} (`capprof evaluate --save "
                             f"{self.directory / EVALUATION_DIR}` writes one)")
            try:
                return Evaluation.load(path)
            except CapprofError as exc:
                raise Absent(str(exc)) from None

        return self._cached("evaluation", load)

    def table(self, name: str, required: Sequence[str] = ()) -> pd.DataFrame:
        """The named input as a DataFrame, or Absent naming what is missing."""
        value = self._cached(name, lambda: self._read(name))
        missing = [c for c in required if c not in value.columns]
        if missing:
            raise Absent(f"{self.paths[name].name} lacks column(s) {', '.join(missing)}")
        if value.empty:
            raise Absent(f"{self.paths[name].name} has no rows")
        return value

    def posterior(self):
        """The profile's posterior (ArviZ InferenceData)."""
        if self.profile is None:
            raise Absent(f"no profile in {self.directory} (model.json and posterior.nc, as `capprof profile` "
                         "writes them)")
        return self.profile.posterior

    def profiles(self) -> pd.DataFrame:
        """The abilities table (team, ability as strings)."""
        return tables.profile_frame(self.table("profiles", tables.PROFILE_COLUMNS))

    def scores(self) -> pd.DataFrame:
        """The score table from scores.* or, failing that, the episode records."""
        def load() -> pd.DataFrame:
            from capprof.scores import load_scores

            source = self.paths.get("scores") or self.paths.get("episodes")
            if source is None:
                raise Absent(f"no score table or episode records in {self.directory}")
            try:
                return load_scores(source, min_teams=1)
            except CapprofError as exc:
                raise Absent(str(exc).splitlines()[0]) from None

        return self._cached("scores_table", load)

    def normalised_scores(self) -> pd.DataFrame:
        """The score table under the report's normalisation, computed once for
        every section (so its notes come once)."""
        def load() -> pd.DataFrame:
            from capprof.profiling.normalise import normalise

            return normalise(self.scores(), self.normalisation)

        return self._cached("normalised_scores", load)

    def comparison(self):
        """``capprof compare`` on the report's normalised scores (DEFAULT_REPS
        resamples, seed COMPARE_SEED), computed once for the summary and the
        comparison section: the --teams teams when all are scored (fewer
        teams usually share more scenarios), else every scored team. Absent
        when the scores have fewer than two teams or no shared scenario."""
        def load():
            from capprof.reports.compare import DEFAULT_REPS, compare_teams

            scores = self.scores()
            if scores["team"].nunique() < 2:
                raise Absent("the score table has a single team; a comparison needs two")
            normalised = self.normalised_scores()
            chosen = self.teams if self.teams and set(self.teams) <= set(scores["team"]) else None
            try:
                return compare_teams(normalised, teams=chosen, reps=DEFAULT_REPS, seed=COMPARE_SEED,
                                     progress=False)
            except CapprofError as exc:
                raise Absent(str(exc)) from None

        return self._cached("comparison", load)

    def report_teams(self) -> list[str]:
        """Every team named in any input, sorted: the teams the report shows."""
        found: set[str] = set()
        for name in ("profiles", "episodes", "timeseries", "evaluate", "predictions"):
            try:
                named = set(self.table(name, ("team",))["team"].astype(str))
            except Absent:  # its own section says what is wrong
                continue
            if name == "evaluate":
                named.discard(POOLED_TEAM)  # the pooled row, not a team
            found |= named
        try:
            found |= set(self.scores()["team"].astype(str))
        except (Absent, CapprofError):
            pass
        return sorted(found)
