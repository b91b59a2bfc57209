"""Predictive comparison of assessors: the paper's Table 2 shape."""

from __future__ import annotations

import numpy as np

from capprof.profiling.constants import POOLED_TEAM
from capprof.reports import tables
from capprof.reports.inputs import Absent
from capprof.reports.markup import esc
from capprof.reports.sections.base import Body, Section


def _cell(block: tables.PredictiveBlock, team: str, model: str) -> str:
    if (team, model) not in block.cells.index:
        return "<td>—</td>"
    row = block.cells.loc[(team, model)]
    if not np.isfinite(row["mse"]):
        reason = row["flag"] or "no MSE in the evaluation"
        return f'<td title="{esc(reason)}">— <small>({esc(reason)})</small></td>'
    text = f"{row['mse']:.4g}"
    if np.isfinite(row["ci_low"]):
        text += f" [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
    text = esc(text)
    return f"<td><b>{text}</b></td>" if block.best.get(team) == model else f"<td>{text}</td>"


def _block_table(block: tables.PredictiveBlock) -> str:
    head = "<th>team</th>" + "".join(f"<th>{esc(m)}</th>" for m in block.models)
    rows = [f"<tr><th>{esc(team)}</th>{''.join(_cell(block, team, m) for m in block.models)}</tr>"
            for team in block.teams]
    if block.fit_s.notna().any():
        rows.append("<tr class=\"foot\"><th>fit time (s)</th>"
                    + "".join(f"<td>{esc(format(block.fit_s[m], '.3g'))}</td>" for m in block.models) + "</tr>")
    repeats = block.repeats
    note = f" <small>({int(repeats)} repeat{'s' if repeats != 1 else ''})</small>" if np.isfinite(repeats) else ""
    return (f"<h3>split: {esc(block.split)}{note}</h3>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def build(inputs, charts) -> Body:
    evaluate = inputs.table("evaluate", ("model", "split", "team", "mse"))
    if "repeat" not in evaluate.columns and not {"mse_low", "mse_high"} <= set(evaluate.columns):
        raise Absent(f"{inputs.paths['evaluate'].name} lacks column(s) repeat (or mse_low, mse_high)")
    blocks = tables.predictive_blocks(tables.predictive_table(evaluate))
    # a summarised evaluation (saved, or --summary) carries capprof evaluate's own
    # intervals, clustered by scenario; a per-repeat table is summarised here
    if "repeat" not in evaluate.columns:
        estimate = "the evaluation's MSE [its 95% interval, clustered by scenario]"
    else:
        estimate = "mean over repeats [95% Student-t interval over repeats]"
    intro = (f"Test MSE per team (rows; {POOLED_TEAM} = pooled over teams) and model (columns): {estimate}. "
             "The lowest mean in each row is in bold.")
    return Body(intro, tuple(_block_table(block) for block in blocks))


SECTION = Section("predictive", "Held-out predictive comparison", build, order=50, collapsed=True)
