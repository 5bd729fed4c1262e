"""Browser benchmark (not a test; prints figures): how long each page takes to be fully drawn
in headless Chromium, as an admin and as a developer.

    .venv/bin/python bench/browser.py                          # small, throwaway database
    .venv/bin/python bench/browser.py --scale medium --pgdata /tmp/bench-medium
    .venv/bin/python bench/browser.py --server serve --warm 9 --pages /,/errors
    .venv/bin/python bench/browser.py --payloads --pages /errors   # the bodies bench/load.py posts
    .venv/bin/python bench/browser.py --profile --pages /tasks     # where the browser's CPU goes
    .venv/bin/python bench/browser.py --waterfall --pages /errors  # when each request ran

The app runs under gunicorn with 2 workers (the production command; `--server serve` for
`taskmaster-dash serve`). Each role signs in through the form in its own browser, then opens
every page its navigation lists, plus /account and one task's and one error's page: once cold
(browser cache cleared) and --warm times warm, each a full load (driver.get).

"Fully drawn" is the moment, counted from the start of navigation, when at once: the page's
layout is in, no /_dash-update-component request is in flight (fetch and XHR are counted by a
hook injected before any page script, CDP Page.addScriptToEvaluateOnNewDocument), no component
is loading (Dash's data-dash-is-loading, spinners), every graph has drawn a figure that is not
the "loading…" placeholder, and every AG Grid shows rows (or its no-rows overlay), with no
loading row. The moment counts once it has held for --settle ms with no new request.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from bench.servers import PASSWORD, add_database_arguments, prepare, running, stop_on_sigterm

CHROME_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1440,1000",
]

# Runs before any script of every document: counts the dispatch requests in flight (until
# their body is read) and decides, every 10 ms, whether the page is fully drawn.
HOOK = """
(() => {
  const b = window.__bench = {inflight: 0, requests: 0, lastEnd: 0, lastStart: 0,
                              drawnAt: null, done: false, bodies: [], why: 'starting',
                              spans: []};
  const isDash = (url) => String(url || '').includes('_dash-update-component');
  const started = (body) => {
    b.inflight++; b.requests++; b.lastStart = performance.now(); b.drawnAt = null;
    if (typeof body === 'string') b.bodies.push(body);
    let output = '?';
    try { output = JSON.parse(body).output; } catch (e) { /* not JSON: keep '?' */ }
    const span = {output, start: b.lastStart, end: null};
    b.spans.push(span);
    return span;
  };
  const ended = (span) => {
    b.inflight--; b.lastEnd = performance.now(); span.end = b.lastEnd;
  };
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url);
    if (!isDash(url)) return realFetch.apply(this, arguments);
    const span = started(init && init.body);
    const end = () => ended(span);
    return realFetch.apply(this, arguments).then(
      (response) => { response.clone().text().then(end, end); return response; },
      (error) => { end(); throw error; });
  };
  const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__benchDash = isDash(url); return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function (body) {
    if (this.__benchDash) {
      const span = started(body);
      this.addEventListener('loadend', () => ended(span));
    }
    return send.apply(this, arguments);
  };
  const pending = () => {
    if (b.inflight > 0) return 'requests in flight';
    const content = document.getElementById('_pages_content');
    if (!content || !content.children.length) return 'no page layout yet';
    if (document.querySelector('[data-dash-is-loading="true"], .dash-spinner, ._dash-loading,'
                               + ' .dash-loading, ._dash-loading-callback')) return 'loading';
    for (const graph of document.querySelectorAll('.dash-graph')) {
      if (!graph.querySelector('.main-svg')) return 'a graph not drawn';
      if (graph.textContent.includes('loading…')) return 'a graph still says loading…';
    }
    for (const grid of document.querySelectorAll('.ag-root-wrapper')) {
      if (grid.querySelector('.ag-loading, .ag-skeleton-container, .ag-overlay-loading-wrapper'))
        return 'a grid loading rows';
      if (!grid.querySelector('.ag-center-cols-container .ag-row')
          && !grid.querySelector('.ag-overlay-no-rows-wrapper')) return 'a grid without rows';
    }
    return null;
  };
  const check = () => {
    const now = performance.now();
    b.why = pending();
    if (b.why !== null) { b.drawnAt = null; return; }
    if (b.drawnAt === null) b.drawnAt = now;
    if (now - b.drawnAt >= (window.__benchSettle || 500)) b.done = true;
  };
  setInterval(() => { if (!b.done) check(); }, 10);
})();
"""

READ = """const b = window.__bench;
return b ? {done: b.done, drawnAt: b.drawnAt, lastEnd: b.lastEnd, requests: b.requests,
            lastStart: b.lastStart,
            why: b.why, bodies: arguments[0] ? b.bodies : [], spans: b.spans} : null;"""


def chromium_or_exit() -> None:
    """One clear line, not a selenium traceback, when Chromium or its driver is missing."""
    browser = next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    missing = [name for name, found in (("chromium", browser), ("chromedriver", None)) if not found]
    if shutil.which("chromedriver"):
        missing = [m for m in missing if m != "chromedriver"]
    if missing:
        sys.exit(
            f"bench/browser.py: {' and '.join(missing)} not found on PATH; install them "
            "(Debian: `apt-get install chromium chromium-driver`, or `make test-tools`)"
        )


def new_driver(settle_ms: int):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(options=options)
    driver.set_page_load_timeout(60)
    source = HOOK + f"\nwindow.__benchSettle = {settle_ms};"
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": source})
    return driver


def sign_in(driver, base: str, username: str) -> None:
    from dash.testing.wait import until
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login?next=/")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-button").click()
    until(lambda: driver.find_elements(By.ID, "user-name"), timeout=30)


def pages_for(driver, task_id: str | None, error_id: str | None) -> list[str]:
    """What this user's navigation lists, /account, and a task's and an error's own page."""
    links = driver.execute_script(
        "return [...document.querySelectorAll('nav.nav a')].map(a => a.getAttribute('href'))"
    )
    pages = [*links, "/account"]
    if "/tasks" in links and task_id:
        pages.append(f"/tasks/{task_id}")
    if "/errors" in links and error_id:
        pages.append(f"/errors/{error_id}")
    return list(dict.fromkeys(pages))


@dataclass
class Load:
    drawn_ms: float | None  # None: not drawn within the timeout
    last_response_ms: float
    requests: int
    console_errors: int
    why: str
    bodies: list[str]
    spans: list[dict[str, Any]]  # each dispatch request: output, start and end (ms)


def load(driver, url: str, timeout: float, cold: bool, payloads: bool) -> Load:
    if cold:
        driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    deadline = time.monotonic() + timeout
    state: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        state = driver.execute_script(READ, payloads)
        if state and state["done"]:
            break
        time.sleep(0.05)  # polling the page's own clock; the figure comes from performance.now
    errors = len(driver.get_log("browser"))
    if not state or not state["done"]:
        why = (
            (
                state["why"]
                or f"{state['requests']} requests, the last at {state['lastStart']:.0f} ms"
            )
            if state
            else "no hook"
        )
        return Load(None, 0.0, state["requests"] if state else 0, errors, why, [], [])
    return Load(
        state["drawnAt"],
        state["lastEnd"],
        state["requests"],
        errors,
        "",
        state["bodies"],
        state["spans"],
    )


def profiled_load(driver, url: str, timeout: float) -> tuple[Load, Counter[str]]:
    """One more warm load under Chromium's sampling profiler: the page's main-thread CPU (ms)
    by the script it ran in (plotly.min.js, dash_renderer, react-dom, ...; "(browser)" for
    layout, style and garbage collection, "(idle)" for waiting)."""
    driver.execute_cdp_cmd("Profiler.enable", {})
    driver.execute_cdp_cmd("Profiler.setSamplingInterval", {"interval": 500})
    driver.execute_cdp_cmd("Profiler.start", {})
    drawn = load(driver, url, timeout, False, False)
    profile = driver.execute_cdp_cmd("Profiler.stop", {})["profile"]
    script_of = {
        node["id"]: node["callFrame"]["url"].rsplit("/", 1)[-1].split("?")[0]
        or ("(idle)" if node["callFrame"]["functionName"] == "(idle)" else "(browser)")
        for node in profile["nodes"]
    }
    by_script: Counter[str] = Counter()
    for sample, delta in zip(profile["samples"], profile["timeDeltas"][1:], strict=False):
        by_script[script_of[sample]] += delta / 1000
    return drawn, by_script


def print_profile(drawn: Load, by_script: Counter[str]) -> None:
    busy = sum(ms for script, ms in by_script.items() if script != "(idle)")
    print(f"    profiled load: drawn at {fmt(drawn.drawn_ms)} ms, main thread busy {busy:,.0f} ms:")
    for script, ms in by_script.most_common(8):
        print(f"      {ms:7,.0f} ms  {script}")


def print_waterfall(drawn: Load) -> None:
    """When each dispatch request of one warm load started and was answered, by its output."""
    print(f"    waterfall: drawn at {fmt(drawn.drawn_ms)} ms")
    for span in sorted(drawn.spans, key=lambda s: s["start"]):
        end = span["end"]
        took = f"{end - span['start']:6,.0f}" if end is not None else "     —"
        print(f"      {span['start']:6,.0f} → {fmt(end):>6}  {took} ms  {str(span['output'])[:90]}")


def fmt(ms: float | None) -> str:
    return "not drawn" if ms is None else f"{ms:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_arguments(parser, default_scale="small")
    parser.add_argument("--server", choices=("gunicorn", "serve"), default="gunicorn")
    parser.add_argument("--roles", default="admin,developer", help="of admin,developer")
    parser.add_argument("--warm", type=int, default=5, help="warm loads per page")
    parser.add_argument("--pages", help="only these paths, comma-separated (e.g. /,/errors)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per load")
    parser.add_argument("--settle", type=int, default=500, help="ms the drawn state must hold")
    parser.add_argument(
        "--payloads", action="store_true", help="print each page's dispatch bodies (cold load)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="one more load per page: CPU by script"
    )
    parser.add_argument(
        "--waterfall", action="store_true", help="one more load per page: each request's times"
    )
    args = parser.parse_args()
    roles = args.roles.split(",")
    if set(roles) - {"admin", "developer"}:
        parser.error("--roles: admin and/or developer")
    chromium_or_exit()
    stop_on_sigterm()

    target = prepare(args)
    try:
        engine = create_engine(target.owner_url)
        with engine.connect() as conn:
            # a task and an error a developer may read too: unassigned, not linked to others'
            task_id = conn.scalar(
                text(
                    "SELECT id::text FROM tasks WHERE assigned_to IS NULL"
                    " ORDER BY created_at DESC LIMIT 1"
                )
            )
            error_id = conn.scalar(
                text(
                    "SELECT e.id::text FROM error_logs e LEFT JOIN tasks t ON t.id = e.task_id"
                    " WHERE t.assigned_to IS NULL ORDER BY e.last_occurred_at DESC LIMIT 1"
                )
            )
        engine.dispose()
        wanted = args.pages.split(",") if args.pages else None
        rows: list[tuple[str, str, Load, list[Load]]] = []
        with running(args.server, target) as server:
            print(f"{args.server} on {server.base}; {args.warm} warm loads per page", flush=True)
            for role in roles:
                driver = new_driver(args.settle)
                try:
                    if role == roles[0]:
                        print(f"Chromium {driver.capabilities.get('browserVersion')}", flush=True)
                    sign_in(driver, server.base, f"bench-{role}")
                    pages = pages_for(driver, task_id, error_id)
                    if wanted:
                        pages = [p for p in pages if p in wanted or p.rsplit("/", 1)[0] in wanted]
                    for path in pages:
                        url = server.base + path
                        cold = load(driver, url, args.timeout, True, args.payloads)
                        warm = [
                            load(driver, url, args.timeout, False, False) for _ in range(args.warm)
                        ]
                        rows.append((role, path, cold, warm))
                        print(f"  {role:<9} {path:<48} cold {fmt(cold.drawn_ms):>9} ms"
                              f"  warm {fmt(median(warm)):>9} ms", flush=True)  # fmt: skip
                        for body in cold.bodies:
                            print("    " + body)
                        if args.profile:
                            print_profile(*profiled_load(driver, url, args.timeout))
                        if args.waterfall:
                            print_waterfall(load(driver, url, args.timeout, False, False))
                finally:
                    driver.quit()
        print_table(rows, args.server, args.warm)
    finally:
        target.close()


def median(loads: list[Load]) -> float | None:
    drawn = [x.drawn_ms for x in loads if x.drawn_ms is not None]
    return statistics.median(drawn) if len(drawn) == len(loads) and drawn else None


def print_table(rows: list[tuple[str, str, Load, list[Load]]], server: str, warm: int) -> None:
    print(
        f"\nFully drawn, ms from navigation start ({server}; warm = median of {warm} loads;"
        " last response = when the last dispatch answer was read, median warm)"
    )
    print(
        f"{'role':<10} {'page':<48} {'cold':>9} {'warm':>9} {'min-max':>13}"
        f" {'last resp':>9} {'callbacks':>9} {'console':>7}"
    )
    for role, path, cold, loads in rows:
        drawn = [x.drawn_ms for x in loads if x.drawn_ms is not None]
        spread = f"{min(drawn):,.0f}-{max(drawn):,.0f}" if drawn else "—"
        last = statistics.median(x.last_response_ms for x in loads) if loads else 0.0
        requests = statistics.median(x.requests for x in loads) if loads else cold.requests
        errors = cold.console_errors + sum(x.console_errors for x in loads)
        note = (
            "" if median(loads) is not None else f"  ({next((x.why for x in loads if x.why), '')})"
        )
        print(
            f"{role:<10} {path:<48} {fmt(cold.drawn_ms):>9} {fmt(median(loads)):>9}"
            f" {spread:>13} {last:9,.0f} {requests:9.0f} {errors:7}{note}"
        )


if __name__ == "__main__":
    main()
