"""``capprof report DIR --out report.html``: one self-contained HTML file.

The pieces: ``inputs`` finds and reads the input files (docs/reports.md lists
them), ``tables`` turns them into tidy tables, each module of ``sections``
builds one section from those, ``markup`` escapes, draws tables, inlines the
charts and assembles the page. This module checks the arguments and runs the
sections in order.

The HTML inlines every chart as a base64 PNG and its CSS in a <style> element:
no network, no scripts. The PNGs are also written to ``<out stem>_files/``
next to the HTML. Every name taken from the data is HTML-escaped.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Sequence

from capprof.errors import CapprofError, did_you_mean
from capprof.io import foreign_entries, staged_outputs
from capprof.reports import tables
from capprof.reports.inputs import Absent, Inputs, locate_inputs, looked_for, read_profile
from capprof.reports.markup import Charts, Rendered, not_shown, page
from capprof.reports.sections import SECTIONS, Section


# the names the report gives its charts (``markup.Charts.image``: NN-kind-....png)
CHART_NAME = re.compile(r"^\d{2,}-.+\.png$")


def charts_dir(out: Path) -> Path:
    """Where the PNGs of the report ``out`` go: ``<out stem>_files/`` beside it."""
    return out.parent / f"{out.stem}_files"


def check_out(out: Path) -> None:
    """Refuse, before any work, an --out the report cannot be written to:
    not .html, a directory, or a place where its folder (created when
    missing) or its charts folder cannot be made or written
    (``profiling.profile.check_writable``, as for a profile's --out)."""
    from capprof.profiling.profile import check_writable

    if out.suffix.lower() not in (".html", ".htm"):
        raise CapprofError(f"--out {out} should end in .html")
    if out.is_dir():
        raise CapprofError(f"--out {out} is a directory; give a file name ending in .html")
    check_writable(out.parent)
    check_writable(charts_dir(out))
    charts = charts_dir(out)
    foreign = foreign_entries(charts, CHART_NAME.match)
    if foreign:
        # writing the report replaces its charts folder whole: never with someone else's files in it
        raise CapprofError(f"--out {out}: its charts folder {charts} holds {len(foreign)} file(s) the report did not "
                           f"write (e.g. {foreign[0]}), and a report replaces that folder whole; move them or "
                           "choose another --out")
    if out.exists() and not os.access(out, os.W_OK):
        raise CapprofError(f"cannot write --out {out}: no permission to overwrite it; choose another file")


def _check_teams(inputs: Inputs, teams: Sequence[str]) -> None:
    try:
        known = sorted(inputs.profiles()["team"].unique())
    except Absent:
        return
    unknown = [t for t in teams if t not in known]
    if unknown:
        raise CapprofError(f'no profile for team "{unknown[0]}"{did_you_mean(unknown[0], known)}; '
                           f"teams in profiles: {', '.join(known)}")


# Columns an input given by its option must have (its section needs them).
GIVEN_COLUMNS = {"evaluate": ("model", "split", "team", "mse"), "episodes": ("team", "scenario"),
                 "timeseries": tables.TIMESERIES_COLUMNS, "predictions": tables.PREDICTIONS_COLUMNS}


def _check_given(inputs: Inputs, given: dict[str, str | None]) -> None:
    """A file named by an option was asked for: if it cannot be read, lacks
    the columns its section needs or has no rows, the report stops with one
    line before any work (a file found in DIR only spoils its own section)."""
    for name, path in given.items():
        if path is None:
            continue
        try:
            if name == "scores":
                inputs.scores()
            else:
                frame = inputs.table(name, GIVEN_COLUMNS[name])
                if name == "predictions" and not tables.predictions_frame(frame)["predicted"].notna().any():
                    raise Absent("its predicted column holds no number (write it with "
                                 "`capprof predict DIR --scenario NAME --format csv`)")
        except (Absent, CapprofError) as exc:
            raise CapprofError(f"--{name} {path}: {str(exc).splitlines()[0].rstrip('.')}; "
                               f"docs/reports.md lists what the {name} input needs") from None


def render(section: Section, inputs: Inputs, charts: Charts) -> Rendered:
    """Build one section; a data problem in its input spoils only that
    section, which then says what is missing."""
    try:
        body = section.build(inputs, charts)
    except (Absent, CapprofError) as exc:
        return Rendered(section.key, section.title, "", (not_shown(str(exc).splitlines()[0]),), section.collapsed)
    return Rendered(section.key, section.title, body.intro, body.parts, section.collapsed)


def build_report(
    directory: Path,
    out: Path,
    teams: Sequence[str] | None = None,
    scores_path: str | None = None,
    evaluate_path: str | None = None,
    episodes_path: str | None = None,
    timeseries_path: str | None = None,
    predictions_path: str | None = None,
    normalisation: str | None = None,
    progress: bool | None = None,
) -> list[Path]:
    """Write the HTML report and its PNGs; returns [html, *pngs].
    ``normalisation`` of the score sections: None takes the one the profile
    in ``directory`` was fitted on, else minmax (``Inputs``)."""
    from tqdm import tqdm

    directory, out = Path(directory), Path(out)
    if not directory.is_dir():
        raise CapprofError(f"{directory} is not a directory; give the profile directory written by `capprof profile`")
    check_out(out)
    profile = read_profile(directory)
    paths = locate_inputs(directory, {"evaluate": evaluate_path, "scores": scores_path,
                                      "episodes": episodes_path, "timeseries": timeseries_path,
                                      "predictions": predictions_path}, profile)
    if not any(paths.values()):
        raise CapprofError(f"{directory} holds none of the report's inputs (looked for {looked_for()}); "
                           "give a directory written by `capprof profile` or `capprof run`")
    inputs = Inputs(directory, paths, teams, normalisation, profile)
    _check_given(inputs, {"scores": scores_path, "evaluate": evaluate_path, "episodes": episodes_path,
                          "timeseries": timeseries_path, "predictions": predictions_path})
    if teams:
        _check_teams(inputs, teams)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The HTML and its charts folder are made in a staging folder and moved in
    # when whole: a full disk, Ctrl-C or a kill leaves the previous report and
    # charts as they were, whoever calls this (the CLI or a script).
    with staged_outputs(out, [charts_dir(out).name]) as stage:
        charts = Charts(charts_dir(stage / out.name), inputs.report_teams)
        charts.prepare()
        rendered = [render(section, inputs, charts)
                    for section in tqdm(SECTIONS, desc="report", unit="section", file=sys.stderr,
                                        disable=(None if progress is None else not progress))]
        (stage / out.name).write_text(page(directory.name, paths, rendered), encoding="utf-8")
    return [out, *(charts_dir(out) / png.name for png in charts.written)]
