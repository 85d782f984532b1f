"""Web app figures on this machine (issue 19): a real node, Debian's Chromium, SIPp calls.

* ``web_popup_p99_ms``: from the routing offer (``contact.offered``, its server time) to the
  incoming-contact pop-up rendered in the agent's page, p99 over the calls (50; 10 quick).
  The calls come from SIPp into a number that targets the sales queue directly (no IVR), the
  agent's phone is a SIPp UAS that answers, the queue has no wrap-up.
* ``web_wallboard_p99_ms``: from an event's server time to the supervisor page's wallboard
  showing the state read after it, p99 over every event of the same calls.
* ``web_agent_load_ms``: cold load (new browser context, empty cache) of the agent workspace
  of a signed-in agent until its state bar shows.
* ``web_agent_assets_kb``: JavaScript + CSS transferred for that load (gzip, as served).
* ``web_lighthouse_performance``, ``web_lighthouse_accessibility``: npm ``lighthouse`` with
  Debian's Chromium on the sign-in page (the agent's entry point), desktop preset; skipped
  without it.
* ``web_event_fanout_p99_ms``, ``web_agents_rss_mb`` (1,000 agents, a principal and an
  event stream each) are measured by ``bench/web_fanout.py``.

Run from the repo root in the venv: ``python bench/web.py [--quick]`` (``./dev bench web``
builds the web app first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _bench import ROOT, Report, live_node, parse_args, percentile
from tests.conftest import LiveNode
from tests.voice.conftest import Api
from tests.voice.peers import SippAgentPhone, kill_group, sipp_caller_args
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, new_page, sign_in

NUMBER = "4001"


def prepare(api: Api, phone_uri: str) -> None:
    """A number straight into the sales queue, no wrap-up, agent 1001 with the SIPp phone."""
    api.provision(NUMBER)
    api.post("/numbers", {"number": NUMBER, "name": "web bench", "target": "sales"})
    api.patch(f"/queues/{api.queue_id('sales')}", {"wrapup_seconds": 0})
    api.patch(f"/agents/{api.agents['1001']['id']}", {"device": phone_uri})
    api.patch(f"/agents/{api.agents['1002']['id']}", {"device": "sip:desk-1002@127.0.0.1:5999"})


def agent_page(browser: Any, node: LiveNode) -> Any:
    demo = node.demo
    agent = next(a for a in demo["agents"] if a["extension"] == "1001")
    page = new_page(browser, node.base)
    sign_in(page, demo["tenant"], agent["web_username"], agent["web_password"])
    page.locator("#device-title").wait_for()
    page.get_by_role("radio", name="My phone (registered, or assigned by the admin)").check()
    page.locator("form[aria-labelledby=device-title] button[type=submit]").click()
    page.get_by_test_id("agent-state").filter(has_text="Ready").wait_for()
    return page


def supervisor_page(browser: Any, node: LiveNode) -> Any:
    demo = node.demo
    page = new_page(browser, node.base)
    sign_in(page, demo["tenant"], "admin", demo["admin"]["password"])
    page.locator("[data-queue=sales]").wait_for()
    return page


def cold_load(browser: Any, node: LiveNode, session: str) -> tuple[float, float]:
    """(ms until the agent's state bar shows, KB of JS + CSS transferred) in a new context."""
    context = browser.new_context(base_url=node.base)
    # The signed-in tab's storage (its session, and that it signed the agent in): a reload.
    context.add_init_script(
        f"for (const [k, v] of Object.entries({session})) sessionStorage.setItem(k, v)"
    )
    page = context.new_page()
    sizes: list[int] = []

    def count(response: Any) -> None:
        url = response.url.split("?")[0]
        if url.endswith((".js", ".css")):
            sizes.append(int(response.headers.get("content-length") or len(response.body())))

    page.on("response", count)
    start = time.perf_counter()
    page.goto("/agent")
    page.get_by_test_id("agent-state").wait_for()
    elapsed = (time.perf_counter() - start) * 1000
    context.close()
    return elapsed, sum(sizes) / 1024


def lighthouse(base: str, work: Path) -> dict[str, float] | None:
    binary = Path(ROOT) / "web" / "node_modules" / ".bin" / "lighthouse"
    if not binary.exists() or not Path(CHROMIUM).exists():
        print("lighthouse or chromium missing: no Lighthouse figures", flush=True)
        return None
    out = work / "lighthouse.json"
    # The desktop preset: agents and supervisors work at a desk, not on a throttled phone.
    try:
        subprocess.run(
            [str(binary), base + "/", "--quiet", "--preset=desktop",
             "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
             "--only-categories=performance,accessibility", "--output=json",
             f"--output-path={out}"],
            env={**os.environ, "CHROME_PATH": CHROMIUM}, check=False, timeout=180,
            capture_output=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        print("lighthouse took over 180 s: no Lighthouse figures", flush=True)
        return None
    if not out.exists():
        print("lighthouse wrote no report", flush=True)
        return None
    cats = json.loads(out.read_text())["categories"]
    return {name: float(cat["score"]) * 100 for name, cat in cats.items()}


def measure(node: LiveNode, work: Path, calls: int, report: Report) -> None:
    from playwright.sync_api import sync_playwright

    phone = SippAgentPhone(work / "phone", calls=calls)
    callers = None
    try:
        api = Api(node)
        phone.start()
        prepare(api, phone.uri)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            agent = agent_page(browser, node)
            supervisor = supervisor_page(browser, node)
            session = agent.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
            supervisor.evaluate("window.ccWallboard = []")

            print(f"{calls} calls into the sales queue, one every 2 s", flush=True)
            cmd = sipp_caller_args(work / "sipp", node.sip_port, number=NUMBER, digit="1",
                                   dtmf_after_ms=200, talk_ms=800, calls=calls,
                                   timeout=calls * 2 + 60)  # fmt: skip
            cmd += ["-rp", "2000"]
            callers = subprocess.Popen(
                cmd,
                cwd=work / "sipp",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + calls * 2 + 60
            while callers.poll() is None and time.monotonic() < deadline:
                agent.wait_for_timeout(500)
            popups = agent.evaluate("Object.values(window.ccPopups || {})")
            board = supervisor.evaluate("window.ccWallboard || []")
            print(f"pop-ups shown: {len(popups)} of {calls}; wallboard updates: {len(board)}")
            report.add("web_popup_p99_ms", percentile(popups, 99) * 1000, "ms", "<=", 300)
            report.add("web_wallboard_p99_ms", percentile(board, 99) * 1000, "ms", "<=", 1000)
            agent.context.close()
            supervisor.context.close()

            loads = [cold_load(browser, node, session) for _ in range(3)]
            report.add("web_agent_load_ms", min(ms for ms, _ in loads), "ms", "<=", 1000)
            report.add("web_agent_assets_kb", loads[0][1], "KB", "<=", 300)
            browser.close()

        print("lighthouse", flush=True)
        scores = lighthouse(node.base, work)
        if scores:
            report.add("web_lighthouse_performance", scores["performance"], "score", ">=", 90)
            report.add("web_lighthouse_accessibility", scores["accessibility"], "score", ">=", 95)

    finally:
        if callers is not None:
            kill_group(callers)
        phone.stop()


def main() -> int:
    args = parse_args("web app figures (agent pop-up, wallboard, load, Lighthouse)")
    report = Report()
    with live_node("bench-web-") as (node, work):
        measure(node, work, 10 if args.quick else 50, report)
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
