"""The summary, first on the page: who is best overall (the ranking by IQM
with bootstrap intervals, as `capprof compare`), at what (each team's
strengths and weaknesses relative to the other teams, with HDIs), which
predictor does best on held-out cells and whether the layout's intervals are
calibrated, and one line on how far to trust the fit, with links down to the
details. Each part whose input is missing says so in one line; the rest
still show."""

from __future__ import annotations

import numpy as np

from capprof.profiling.constants import INTERVAL_LEVEL, RHAT_MAX
from capprof.reports import tables
from capprof.reports.inputs import Absent
from capprof.reports.markup import esc
from capprof.reports.sections.base import Body, Section

STANDOUTS_SHOWN = 2  # strengths and weaknesses named per team


def _num(value: float, digits: int = 2) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def _interval(value: float, low: float, high: float, digits: int = 2) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return _num(value, digits)
    return f"{_num(value, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _missing(what: str, reason: str) -> str:
    return f'<p class="absent">{esc(what)} not shown: {esc(reason.splitlines()[0].rstrip("."))}.</p>'


# ------------------------------------------------------------ who is best


def _ranking(inputs, charts) -> str:
    from capprof.reports.charts import aggregate_interval_chart

    try:
        comparison = inputs.comparison()
    except Absent as exc:
        return "<h3>Who is best overall</h3>" + _missing("The ranking", str(exc))
    keyed = comparison.table.set_index(["team", "metric"])
    metric = comparison.rank_by
    teams = sorted(comparison.teams, key=lambda t: (keyed.loc[(t, "rank"), "value"], t))
    rows = []
    for position, team in enumerate(teams):
        value, low, high = keyed.loc[(team, metric), ["value", "ci_low", "ci_high"]]
        rank, rank_low, rank_high = keyed.loc[(team, "rank"), ["value", "ci_low", "ci_high"]]
        if position + 1 < len(teams):
            nxt = teams[position + 1]
            p, p_low, p_high = keyed.loc[(team, f"p_improve:{nxt}"), ["value", "ci_low", "ci_high"]]
            beats = f"{esc(_interval(p, p_low, p_high))} <small>vs {esc(nxt)}</small>"
        else:
            beats = ""
        rows.append(f"<tr><td>{rank:g}</td><th>{esc(team)}</th><td>{esc(_interval(value, low, high, 3))}</td>"
                    f"<td>[{rank_low:g}, {rank_high:g}]</td><td>{beats}</td></tr>")
    top = teams[0]
    settled = keyed.loc[(top, "rank"), "ci_high"] <= 1 and all(
        keyed.loc[(t, "rank"), "ci_low"] > 1 for t in teams[1:])
    if settled:
        lead = (f"<b>{esc(top)}</b> ranks first by {esc(metric.upper() if metric == 'iqm' else metric)} "
                f"in 95% of bootstrap resamples.")
    else:
        contenders = [t for t in teams if keyed.loc[(t, "rank"), "ci_low"] <= 1]
        lead = (f"<b>{esc(top)}</b> has the highest {esc(metric.upper() if metric == 'iqm' else metric)}, but the "
                f"top rank is not settled: {esc(', '.join(contenders))} can rank first within the intervals.")
    head = (f"<tr><th>rank</th><th>team</th><th>{esc(metric.upper() if metric == 'iqm' else metric)} "
            "[95% CI]</th><th>rank 95% CI</th><th>P(beats the next)</th></tr>")
    chart = aggregate_interval_chart(comparison.table, teams, metrics=(metric,), level=comparison.level,
                                     styles=charts.styles())
    image = charts.image(chart, "ranking", f"{metric} per team with its {comparison.level:.0%} bootstrap interval")
    return (
        "<h3>Who is best overall</h3>"
        f"<p>{lead}</p>"
        f'<div class="ranked"><table class="ranking"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
        f"{image}</div>"
        f'<p class="small">{esc(inputs.normalisation)}-normalised scores on the {comparison.n_scenarios} '
        f"scenarios every ranked team played; stratified bootstrap, {comparison.reps} resamples "
        f'(as <code>capprof compare</code>). <a href="#comparison">Interval plot and probability-of-improvement matrix</a>.</p>'
    )


# ------------------------------------------------------------ at what


def _ability(row) -> str:
    others = f"{row.n_others} other team" + ("s" if row.n_others != 1 else "")
    text = (f"{esc(row.ability)} {esc(_interval(row.mean, row.hdi_low, row.hdi_high))} "
            f"<small>vs {esc(_num(row.others))} ({others})")
    if np.isfinite(row.lead_low):
        text += f", difference {esc(_interval(row.lead, row.lead_low, row.lead_high))}"
    text += "</small>"
    return f'<span class="clear">{text}</span>' if row.clear else text


def _standouts(inputs) -> str:
    try:
        frame = inputs.profiles()
    except Absent as exc:
        return "<h3>At what</h3>" + _missing("Strengths and weaknesses", str(exc))
    level = tables.hdi_level(frame)
    # with the posterior, a team's lead is a contrast taken draw by draw, with its own HDI
    contrasts = inputs.profile.contrasts(level or INTERVAL_LEVEL) if inputs.profile is not None else None
    found = tables.standouts(frame, contrasts)
    if found.empty:
        return "<h3>At what</h3>" + _missing("Strengths and weaknesses",
                                              "no ability is measured for two or more teams")
    rows = []
    for team, own in found.groupby("team", sort=True):
        strong = [r for r in own.itertuples() if r.lead > 0][:STANDOUTS_SHOWN]
        weak = [r for r in own.iloc[::-1].itertuples() if r.lead < 0][:STANDOUTS_SHOWN]
        rows.append(f"<tr><th>{esc(team)}</th><td>{'<br>'.join(_ability(r) for r in strong) or '—'}</td>"
                    f"<td>{'<br>'.join(_ability(r) for r in weak) or '—'}</td></tr>")
    hdi = "HDI" if level is None else f"{level:.0%} HDI"
    clear_rule = (f"the difference's {hdi} (a posterior contrast, draw by draw) excludes 0"
                  if found["lead_low"].notna().any() else f"the {hdi} excludes the other teams' mean")
    return (
        "<h3>At what: strengths and weaknesses</h3>"
        '<table class="standouts"><thead><tr><th>team</th><th>above the other teams</th>'
        f"<th>below the other teams</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="small">Ability: posterior mean [{hdi}] <small>vs the mean of the other teams measured on it</small>, largest '
        f'differences first; <span class="clear">underlined</span>: {clear_rule}. '
        'Behaviour and mode demands; abilities a team has no cells for are left out. '
        '<a href="#profiles">Every team\'s radar</a>.</p>'
    )


# ------------------------------------------------------------ predictors and calibration


def _predictors(inputs) -> str:
    try:
        evaluate = inputs.table("evaluate", ("model", "split", "team", "mse"))
        tidy = tables.predictive_table(evaluate)
    except (Absent, KeyError) as exc:
        return f'<li>{_missing("Held-out predictors", str(exc) or "the evaluation lacks columns")}</li>'
    parts = []
    for best in tables.best_predictors(tidy):
        text = (f"held-out cells ({esc(best.split)} split): <b>{esc(best.model)}</b> predicts best, MSE "
                f"{esc(_interval(best.mse, best.low, best.high, 4))}")
        if best.runner_up is not None:
            text += (f", {'clearly' if best.clear else 'not clearly'} ahead of {esc(best.runner_up)} "
                     f"({esc(_num(best.runner_up_mse, 4))})")
        parts.append(text)
    calibrated = tables.calibrations(evaluate, INTERVAL_LEVEL)
    for c in calibrated:
        parts.append(f"{esc(c.model)}'s {c.level:.0%} intervals hold {c.coverage:.0%} "
                     f"[{c.low:.0%}, {c.high:.0%}] of {c.n_cells} held-out cells ({esc(c.split)}): "
                     f"<b>{esc(c.verdict)}</b>")
    if not calibrated:
        parts.append("the evaluation reports no interval coverage (run `capprof evaluate` with a model that has "
                     "intervals, e.g. layout-joint)")
    return (f'<li><b>Predictions</b>: {"; ".join(parts)}. '
            '<a href="#predictive">Held-out MSE per team and model</a>.</li>')


# ------------------------------------------------------------ how sure


def _trust(inputs) -> str:
    try:
        diagnostics = inputs.table("diagnostics")
    except Absent:
        diagnostics = None
    try:
        profiles = inputs.profiles()
    except Absent:
        profiles = None
    if diagnostics is None and profiles is None:
        return f'<li>{_missing("How sure", "no diagnostics and no profiles")}</li>'
    t = tables.trust(diagnostics, profiles)
    parts = []
    if np.isfinite(t.max_rhat):
        ok = t.max_rhat <= RHAT_MAX
        parts.append(f'<span class="{"ok" if ok else "bad"}">max R-hat {t.max_rhat:.3f}</span>'
                     + ("" if t.fits <= 1 else f" over {t.fits} fits"))
    if np.isfinite(t.min_ess):
        parts.append(f'<span class="{"ok" if t.min_ess >= tables.ESS_MIN else "bad"}">min bulk ESS '
                     f"{t.min_ess:.0f}</span>")
    if np.isfinite(t.divergences):
        parts.append(f'<span class="{"ok" if t.divergences == 0 else "bad"}">{t.divergences:.0f} divergent '
                     "transitions</span>")
    if np.isfinite(t.ppc_disagreements):
        n = t.ppc_disagreements
        parts.append(f'<span class="{"ok" if n == 0 else "bad"}">posterior predictive checks: '
                     + ("all agree" if n == 0 else f"{n:.0f} disagree") + "</span>")
    elif inputs.profile is None:
        parts.append("posterior predictive checks: none (no posterior in this directory)")
    if np.isfinite(t.cells_min):
        parts.append(f"cells behind each ability: {t.cells_min:.0f} to {t.cells_max:.0f} "
                     f"(median {t.cells_median:.0f})"
                     + (f"; {t.unmeasured} team-ability pair(s) rest on no cell (prior only, not charted)"
                        if t.unmeasured else ""))
    if not parts:
        return f'<li>{_missing("How sure", "the diagnostics report no R-hat, ESS or divergences")}</li>'
    return (f'<li><b>How sure</b>: {"; ".join(parts)}. <a href="#diagnostics">Sampling diagnostics</a> · '
            '<a href="#predictive-checks">posterior predictive checks</a>.</li>')


def build(inputs, charts) -> Body:
    return Body(parts=(
        f'<div class="summary-grid"><div class="card">{_ranking(inputs, charts)}</div>'
        f'<div class="card">{_standouts(inputs)}</div></div>',
        f'<ul class="facts">{_predictors(inputs)}{_trust(inputs)}</ul>',
    ))


SECTION = Section("summary", "Summary: who is best, at what, how sure", build, order=0)
