"""The run report as a reader's browser shows it: headless Chromium (Debian's, driven by
Playwright) opens report.html from disk and this prints one JSON object: every console message
and page error, each chart's rendered size, its drawn marks and any text drawn outside it, and
writes a full-page screenshot.

usage: report_browser.py CHROMIUM REPORT.html SCREENSHOT.png
"""
import json
import sys

from playwright.sync_api import sync_playwright

CHARTS = """() => [...document.querySelectorAll('svg')].map(svg => {
  const r = svg.getBoundingClientRect();
  const outside = [...svg.querySelectorAll('text')].filter(t => {
    const b = t.getBoundingClientRect();
    return b.width > 0 && (b.left < r.left - 1 || b.right > r.right + 1 || b.top < r.top - 1 || b.bottom > r.bottom + 1);
  }).map(t => t.textContent.trim());
  const section = svg.closest('section');
  return {section: section ? section.id : null, width: r.width, height: r.height,
          marks: svg.querySelectorAll('rect, path, circle, line, polyline, polygon').length,
          texts: svg.querySelectorAll('text').length, outside};
})"""


def main(chromium, report, screenshot):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        console = []
        page.on("console", lambda m: console.append({"type": m.type, "text": m.text}))
        page.on("pageerror", lambda e: console.append({"type": "pageerror", "text": str(e)}))
        failed = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto("file://" + report, wait_until="load")
        charts = page.evaluate(CHARTS)
        sections = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    print(json.dumps({"console": console, "failed_requests": failed, "charts": charts, "sections": sections}))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
