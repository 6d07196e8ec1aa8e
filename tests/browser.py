"""A real browser for the tests: headless Chromium from the system's packages, with no network.

`rendered_charts(page)` opens a page that `dvc plots show` or `dvc plots diff` wrote and says, for
each Vega chart on it, whether Vega drew it: an SVG of marks with a size and at least one mark.
"""

import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (apt-get install chromium; .ci/run installs it)")

# Every host name resolves to nothing and every request goes to a closed port: no network at all.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>"]


def dump_dom(page):
    """The page's DOM after its scripts ran (up to 20 s of the page's own time), offline."""
    result = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", *OFFLINE,
         "--virtual-time-budget=20000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def chart_id(title):
    """The id of the <div> that DVC gives a plot's chart."""
    return re.sub(r"[^A-Za-z0-9-]", "_", title)


def rendered_charts(page):
    """{div id: drawn or not} for every chart whose <div> calls vegaEmbed on the page."""
    ids = re.findall(r'<div id = "([^"]+)">\s*<script type = "text/javascript">\s*var spec',
                     page.read_text(encoding="utf-8"))
    dom = dump_dom(page)
    found = sorted((dom.find(f'<div id="{chart}"'), chart) for chart in ids)
    drawn = {chart: False for chart in ids}
    for (start, chart), (end, _) in zip(found, [*found[1:], (len(dom), None)], strict=True):
        part = dom[start:end] if start >= 0 else ""
        size = re.search(r'<svg[^>]*class="marks"[^>]*width="(\d+)"', part)
        drawn[chart] = bool(size and int(size.group(1)) > 0 and "role-mark" in part)
    return drawn
