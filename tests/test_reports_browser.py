"""The fixture report opened in a real browser (Debian's headless Chromium,
`make install-browser`): at a desktop and a phone width no element is wider
than the window, every chart image has loaded, and the first screen shows the
report's title and navigation. Screenshots are kept in the test's tmp folder
(printed) as artefacts to look at."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from capprof.reports.report import build_report

FIXTURE = Path(__file__).parent / "fixtures" / "reports" / "profile"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = {"desktop": (1400, 1000), "phone": (390, 844)}

# Measures the page after load and writes the result into the DOM, where
# --dump-dom shows it (the report itself has no scripts; only this test copy).
PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const result = {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    h1Bottom: document.querySelector('h1').getBoundingClientRect().bottom,
    navBottom: document.querySelector('nav').getBoundingClientRect().bottom,
    height: document.documentElement.scrollHeight,
  };
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def _chromium(*args: str, profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run `make install-browser` (apt-get install chromium)")
    out = tmp_path_factory.mktemp("browser") / "report.html"
    build_report(FIXTURE, out, progress=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("device", sorted(WIDTHS))
def test_report_renders_in_chromium_without_overflow(report, tmp_path, device):
    width, height = WIDTHS[device]
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(f"--window-size={width},{height}", "--dump-dom", probed.as_uri(), profile=tmp_path / "p1")
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, flags=re.S)
    assert match, f"Chromium did not run the probe: {dom.stderr[-500:]}"
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["images"] == 18 and result["broken"] == 0, result
    assert result["scrollWidth"] <= result["innerWidth"], f"horizontal overflow at {width} px: {result}"
    assert result["h1Bottom"] < height and result["navBottom"] < height, result

    shot = tmp_path / f"report-{device}.png"
    _chromium(f"--window-size={width},{height}", f"--screenshot={shot}", report.as_uri(), profile=tmp_path / "p2")
    assert shot.exists() and shot.stat().st_size > 10_000
    print(f"screenshot ({device}, page {result['height']} px tall): {shot}")
