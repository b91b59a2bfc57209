"""The fixture reports opened in a real browser (Debian's headless Chromium,
`make install-browser`).

At a desktop (1400 px) and a phone (390 px) width: no element is wider than
the window (also with every <details> opened), every chart image has loaded
(those in collapsed blocks too), and the title and navigation are on the
first screen. On the demo-like fixture (tests/fixtures/reports/demo) at
1400 px: the summary, ranking included, ends within the first 1,000 px and
all teams' radars fit on two screens. Screenshots (the first screen and the
whole page at each width) are kept as artefacts in $CAPPROF_ARTEFACTS, else
in build/test-artefacts/ (printed with -s)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from capprof.reports.report import build_report

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
REPORTS = {"profile": FIXTURES / "profile", "demo": FIXTURES / "demo"}
IMAGES = {"profile": 22, "demo": 21}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = {"desktop": (1400, 1000), "phone": (390, 844)}
# git ignores build/; unlike pytest's temporary folders it outlives later runs
ARTEFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artefacts"
FIRST_SCREEN = 1000  # px: "the first 1,000 px answer who is best, at what, how sure"

# Measures the page after load and writes the result into the DOM, where
# --dump-dom shows it (the report itself has no scripts; only this test copy).
PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
                        return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY}; };
  const figures = [...document.querySelectorAll('.radars figure')].map(box);
  const result = {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    h1Bottom: box(document.querySelector('h1')).bottom,
    navBottom: box(document.querySelector('nav')).bottom,
    summary: box(document.getElementById('summary')),
    ranking: box(document.querySelector('table.ranking')),
    radars: figures.length ? {count: figures.length, top: Math.min(...figures.map(f => f.top)),
                              bottom: Math.max(...figures.map(f => f.bottom))} : null,
    height: document.documentElement.scrollHeight,
  };
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  result.openScrollWidth = document.documentElement.scrollWidth;
  result.openHeight = document.documentElement.scrollHeight;
  // the report runs in a frame of the test's width (see _framed); the result goes to the top page
  const top = window.parent.document;
  const out = top.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(result);
  top.body.appendChild(out);
});
</script>"""
MIN_WINDOW = 500  # headless Chromium widens any narrower --window-size to this


def _framed(html: str, width: int, height: int) -> str:
    """``html`` in an iframe of exactly ``width`` x ``height`` px: headless
    Chromium will not make its window narrower than MIN_WINDOW, so a phone's
    390 px viewport is a frame (srcdoc: same origin, so its probe can write
    into this page)."""
    import html as html_module

    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
            f'<iframe style="border:0;display:block;width:{width}px;height:{height}px" '
            f'srcdoc="{html_module.escape(html, quote=True)}"></iframe></body></html>')


def _chromium(*args: str, profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def artefacts() -> Path:
    folder = Path(os.environ.get("CAPPROF_ARTEFACTS") or ARTEFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run `make install-browser` (apt-get install chromium)")
    built = {}
    for name, directory in REPORTS.items():
        out = tmp_path_factory.mktemp(f"browser-{name}") / "report.html"
        build_report(directory, out, progress=False)
        built[name] = out
    return built


def _probe(report: Path, tmp_path: Path, width: int, height: int) -> dict:
    probed = tmp_path / "probed.html"
    html = report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    probed.write_text(_framed(html, width, height), encoding="utf-8")
    dom = _chromium(f"--window-size={max(width, MIN_WINDOW)},{height}", "--dump-dom", probed.as_uri(),
                    profile=tmp_path / "p1")
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, flags=re.S)
    assert match, f"Chromium did not run the probe: {dom.stderr[-500:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


def _screenshot(report: Path, shot: Path, width: int, height: int, profile: Path) -> Path:
    """A ``width`` x ``height`` screenshot of the report, framed as the probe
    sees it and cropped to the frame."""
    from PIL import Image

    framed = profile.parent / f"framed-{shot.stem}.html"
    framed.write_text(_framed(report.read_text(encoding="utf-8"), width, height), encoding="utf-8")
    _chromium(f"--window-size={max(width, MIN_WINDOW)},{height}", f"--screenshot={shot}", framed.as_uri(),
              profile=profile)
    assert shot.exists() and shot.stat().st_size > 10_000, f"no screenshot from Chromium at {width} x {height}"
    with Image.open(shot) as image:
        cropped = image.crop((0, 0, width, height))
    cropped.save(shot)
    return shot


@pytest.mark.slow
@pytest.mark.parametrize("device", sorted(WIDTHS))
@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_renders_in_chromium_without_overflow(reports, artefacts, tmp_path, name, device):
    width, height = WIDTHS[device]
    result = _probe(reports[name], tmp_path, width, height)
    assert result["innerWidth"] == width, result  # the report's viewport is the device's width
    assert result["images"] == IMAGES[name] and result["broken"] == 0, result
    assert result["scrollWidth"] <= result["innerWidth"], f"horizontal overflow at {width} px: {result}"
    assert result["openScrollWidth"] <= result["innerWidth"], f"overflow with every details open: {result}"
    assert result["h1Bottom"] < height and result["navBottom"] < height, result
    first = _screenshot(reports[name], artefacts / f"report-{name}-{device}-first-screen.png", width, height,
                        tmp_path / "p2")
    page = _screenshot(reports[name], artefacts / f"report-{name}-{device}-page.png", width,
                       int(result["height"]), tmp_path / "p3")
    print(f"{name} at {width} px: page {result['height']} px tall ({result['openHeight']} px with every details "
          f"open), summary ends at {result['summary']['bottom']:.0f} px, radars {result['radars']}; "
          f"screenshots {first} {page}")


@pytest.mark.slow
def test_demo_report_answers_on_the_first_screen_and_shows_every_radar_on_two(reports, tmp_path):
    width, height = WIDTHS["desktop"]
    result = _probe(reports["demo"], tmp_path, width, height)
    assert result["ranking"]["bottom"] <= FIRST_SCREEN, result
    assert result["summary"]["bottom"] <= FIRST_SCREEN, f"the summary ends below the first screen: {result}"
    radars = result["radars"]
    assert radars["count"] == 4, result  # one behaviour radar per demo team
    assert radars["bottom"] - radars["top"] <= 2 * height, f"the teams' radars take more than two screens: {result}"
    assert radars["bottom"] <= 3 * height, result


PRINT_PROBE = """<script>
window.addEventListener('load', () => {
  const folded = [...document.querySelectorAll('section.folded')];
  const result = {
    folded: folded.length,
    // checkVisibility() is false inside a closed <details> (its content is content-visibility: hidden)
    hidden: folded.filter(s => ![...s.querySelectorAll('details > :not(summary)')]
                                  .some(el => el.checkVisibility())).map(s => s.id),
    nav: document.querySelector('nav').getBoundingClientRect().height,
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  };
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.slow
def test_report_prints_with_every_collapsed_section_open(reports, tmp_path):
    """The print rules applied on screen (a test copy turns ``@media print``
    into ``@media all``) at about an A4 page's width: every collapsed
    section's content shows, the navigation is hidden, nothing overflows."""
    html = reports["demo"].read_text(encoding="utf-8")
    assert "@media print{" in html
    printed = tmp_path / "printed.html"
    printed.write_text(html.replace("@media print{", "@media all{").replace("</body>", PRINT_PROBE + "</body>"),
                       encoding="utf-8")
    dom = _chromium("--window-size=800,1100", "--dump-dom", printed.as_uri(), profile=tmp_path / "p1")
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, flags=re.S)
    assert match, f"Chromium did not run the probe: {dom.stderr[-500:]}"
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["folded"] >= 5 and result["hidden"] == [], result
    assert result["nav"] == 0 and result["scrollWidth"] <= result["innerWidth"], result
