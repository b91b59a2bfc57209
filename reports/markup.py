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
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1rem auto;max-width:1360px;color:#222;
padding:0 1rem;line-height:1.4}
h1{font-size:1.5rem;margin:.3rem 0}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin:1.6rem 0 .6rem}
h3{font-size:1rem;margin:.9rem 0 .4rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;white-space:nowrap}
thead th{background:#f3f3f3}tbody th{font-weight:600}td.bad{background:#fde2e1;font-weight:bold}tr.foot{color:#666}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}img{max-width:100%;height:auto}
.absent{color:#666;font-style:italic}.warn{background:#fff4d6;padding:.4rem .6rem}.ok{color:#2a6b2a}
.bad{color:#a3261b;font-weight:600}.small{font-size:.8rem;color:#555;margin:.3rem 0}
nav{font-size:.85rem;display:flex;flex-wrap:wrap;gap:.15rem .9rem}nav a{max-width:100%}
.summary-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:.2rem .8rem .4rem}.card h3{margin-top:.5rem}
.card table{font-size:.82rem}.ranked{display:flex;flex-wrap:wrap;gap:.2rem 1rem;align-items:flex-start}.ranked img{max-width:100%;width:22rem}table.standouts td{white-space:normal;overflow-wrap:anywhere;min-width:9rem}
.clear{text-decoration:underline;text-decoration-thickness:2px;text-underline-offset:2px}
ul.facts{padding-left:1.1rem;margin:.6rem 0}ul.facts li{margin:.25rem 0}ul.facts li p{margin:0}
.glance{display:grid;grid-template-columns:minmax(0,1fr) minmax(300px,400px);gap:1rem;align-items:start}
.radars{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:.5rem}
.radars figure{margin:0;border:1px solid #eee;border-radius:4px;padding:.2rem;text-align:center}
.radars img{width:100%}figcaption{font-size:.72rem;text-align:left;line-height:1.25;overflow-wrap:anywhere}
aside#overlay img{width:100%}.pair{display:grid;grid-template-columns:minmax(0,1.25fr) minmax(0,1fr);gap:1rem;align-items:start}.pair img{width:100%}aside#overlay p{font-size:.85rem}
details{margin:.4rem 0}details>summary{cursor:pointer;color:#1a4f8a}
section.folded{border-top:1px solid #ddd;margin-top:.2rem}section.folded h2{display:inline;border:0;font-size:1.05rem}
section.folded>details>summary{padding:.35rem 0}
@media (max-width:900px){.summary-grid,.glance,.pair{grid-template-columns:minmax(0,1fr)}}
@media print{body{max-width:none;margin:0;font-size:10pt}nav{display:none}
a{color:inherit;text-decoration:none}details>summary{list-style:none;color:#222}
details::details-content{content-visibility:visible;display:contents}
section,figure,img,table,.card{break-inside:avoid}h2,h3{break-after:avoid}
.summary-grid,.glance{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
.radars{grid-template-columns:repeat(3,minmax(0,1fr))}}
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
    collapsed: bool = False


def _section_html(s: Rendered) -> str:
    body = (f"<p>{s.intro}</p>" if s.intro else "") + "".join(s.parts)
    if s.collapsed:
        return (f'<section id="{s.key}" class="folded"><details><summary><h2>{esc(s.title)}</h2></summary>'
                f"{body}</details></section>")
    return f'<section id="{s.key}"><h2>{esc(s.title)}</h2>{body}</section>'


def page(name: str, inputs: Mapping[str, Path | None], sections: Sequence[Rendered]) -> str:
    """The whole HTML document: title, navigation, the open sections in
    order (the summary first), then the collapsed ones and the inputs table
    (closed <details>, opened by a click; all open when printed)."""
    found = "".join(
        f"<tr><td>{esc(key)}</td><td>{esc(path) if path else '<i>absent</i>'}</td></tr>"
        for key, path in inputs.items()
    )
    shown = [s for s in sections if not s.collapsed] + [s for s in sections if s.collapsed]
    nav = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in shown) + '<a href="#inputs">Inputs</a>'
    inputs_html = (f'<section id="inputs" class="folded"><details><summary><h2>Inputs</h2></summary>'
                   f"<table><tbody>{found}</tbody></table></details></section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>capprof report: {esc(name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Capability report: {esc(name)}</h1><nav>{nav}</nav>"
        + "".join(_section_html(s) for s in shown) + f"{inputs_html}</body></html>\n"
    )
