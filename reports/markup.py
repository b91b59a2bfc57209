"""HTML pieces of the report: escaping, tables, inlined charts, the page.

Every string taken from the data goes through ``esc``; the section bodies
handed to ``page`` are already-escaped HTML.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # charts load matplotlib: imported where a chart is drawn
    from capprof.reports.charts import TeamStyle

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#222;
padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;white-space:nowrap}
thead th{background:#f3f3f3}td.bad{background:#fde2e1;font-weight:bold}tr.foot{color:#666}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}img{max-width:100%;height:auto}
.absent{color:#666;font-style:italic}.warn{background:#fff4d6;padding:.4rem .6rem}.ok{color:#2a6b2a}
nav a{margin-right:.8rem}
"""


def esc(value) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def html_table(frame: pd.DataFrame, classes: Mapping[tuple[int, str], str] | None = None,
               formats: Mapping[str, str] | None = None) -> str:
    """``frame`` as an HTML table: floats formatted by ``formats[column]``
    (default .4g, non-finite as a dash), cell (row position, column) with
    CSS class ``classes[(i, column)]``."""
    classes, formats = classes or {}, formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, row):
            if isinstance(value, (float, np.floating)):
                text = "—" if not np.isfinite(value) else format(value, formats.get(column, ".4g"))
            else:
                text = str(value)
            css = classes.get((i, column))
            cells.append(f'<td class="{css}">{esc(text)}</td>' if css else f"<td>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def not_shown(reason: str) -> str:
    """The body of a section whose input is absent or unusable."""
    return f'<p class="absent">Not shown: {esc(reason.rstrip("."))}.</p>'


class Charts:
    """Saves a report's charts as numbered PNGs in ``out_dir`` and returns
    them as inlined <img> elements; ``styles()`` is the report-wide
    team -> TeamStyle mapping, built once from ``teams()`` (every team of
    the report) so a team has one colour in every chart."""

    def __init__(self, out_dir: Path, teams: Callable[[], Sequence[str]]):
        self.out_dir = Path(out_dir)
        self.written: list[Path] = []
        self._teams = teams
        self._styles: dict[str, TeamStyle] | None = None

    def prepare(self) -> None:
        """Create ``out_dir`` and remove the numbered charts of an earlier run
        (they would be stale)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for old in self.out_dir.glob("[0-9][0-9]-*.png"):
            old.unlink()

    def styles(self) -> dict[str, TeamStyle]:
        if self._styles is None:
            from capprof.reports.charts import team_styles

            self._styles = team_styles(self._teams())
        return self._styles

    def image(self, fig, name: str, alt: str) -> str:
        """Save ``fig`` as the next PNG and return an <img> with it inlined."""
        from capprof.reports.charts import save_png

        path = save_png(fig, self.out_dir / f"{len(self.written) + 1:02d}-{name}.png")
        self.written.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


@dataclass(frozen=True)
class Rendered:
    """One section of the page: its anchor, title (plain text) and body
    (HTML: an optional intro paragraph and the parts after it)."""

    key: str
    title: str
    intro: str
    parts: tuple[str, ...]


def page(name: str, inputs: Mapping[str, Path | None], sections: Sequence[Rendered]) -> str:
    """The whole HTML document: title, navigation, the inputs table, then
    every section."""
    found = "".join(
        f"<tr><td>{esc(key)}</td><td>{esc(path) if path else '<i>absent</i>'}</td></tr>"
        for key, path in inputs.items()
    )
    nav = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.key}"><h2>{esc(s.title)}</h2>'
        + (f"<p>{s.intro}</p>" if s.intro else "") + "".join(s.parts) + "</section>"
        for s in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>capprof report: {esc(name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Capability report: {esc(name)}</h1><nav>{nav}</nav>"
        f'<section id="inputs"><h2>Inputs</h2><table><tbody>{found}</tbody></table></section>'
        f"{body}</body></html>\n"
    )
