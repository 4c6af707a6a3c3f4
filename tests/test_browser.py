"""The static site in a real browser: headless Debian Chromium driven over the DevTools
protocol loads the home page, a category page and a post page from a local HTTP server,
and the test fails on any console error, uncaught exception or failed request. Phone and
desktop screenshots are saved (to $AGGREGATOR_SCREENSHOTS when set, e.g. docs/)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import websocket  # websocket-client, a test dependency

from .conftest import StaticServer, run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian chromium is not installed (.ci/run installs it)"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
    # Anything not on this machine goes to a dead local proxy (loopback itself is direct) and
    # fails here, loudly: a page that loads something from elsewhere never reaches the network.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost",
]

SITE = """\
site:
  title: 财经新闻
  url: https://finews.withounder.com
  description: 甘肃地方新闻与科技资讯
  language: zh-CN
  timezone: Asia/Shanghai
  posts_per_page: 8
categories:
  - name: 张掖日报
    tags: [张掖日报新闻]
    sources:
      - url: {base}zh/zhangye-daily.gbk.rss
        name: 张掖日报
  - name: 甘肃经济
    tags: [经济]
    sources:
      - url: {base}zh/gansu-economy.atom
  - name: Tech
    sources:
      - url: {base}suites/RSParser__Tests_RSParserTests_Resources_DaringFireball.atom
"""


class Chromium:
    """One headless Chromium and one page, driven over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools server")
            time.sleep(0.05)
        port, browser_path = port_file.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{browser_path}", suppress_origin=True, timeout=30)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Page.setLifecycleEventsEnabled", enabled=True, session=True)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, predicate, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(predicate(e) for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError("page did not finish loading")
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))

    def load(self, url: str, width: int, height: int, mobile: bool) -> list[str]:
        """Open `url` at this viewport; returns every problem the page reported.

        The pages have no scripts, so when `load` fires every subresource has loaded or failed.
        """
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2 if mobile else 1,
            mobile=mobile,
            session=True,
        )
        self.color_scheme("light")
        self.events.clear()
        frame = self.call("Page.navigate", url=url, session=True)
        assert "errorText" not in frame, frame
        self.wait_for(lambda e: e.get("method") == "Page.loadEventFired")
        return self.problems()

    def color_scheme(self, scheme: str) -> None:
        self.call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": scheme}],
            session=True,
        )

    def problems(self) -> list[str]:
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert", "warning"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p['args']]}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                out.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
            elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
                out.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, session=True)
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def site(tmp_path_factory, corpus_server) -> Path:
    tmp = tmp_path_factory.mktemp("browser-site")
    cfg = tmp / "feeds.yaml"
    cfg.write_text(SITE.format(base=corpus_server.base), encoding="utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp / "public"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def served(site):
    server = StaticServer(site)
    yield server
    server.close()


def _shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("AGGREGATOR_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _post_page(site: Path) -> str:
    """The reference post's page (the long Chinese article)."""
    for page in sorted(site.glob("posts/*/*/*.html")):
        if "源头活水" in page.read_text(encoding="utf-8"):
            return str(page.relative_to(site))
    raise AssertionError("the reference post has no page")


@pytest.mark.parametrize(
    ("label", "width", "height", "mobile"),
    [("phone", 375, 812, True), ("desktop", 1280, 900, False)],
)
def test_pages_load_cleanly_and_fit_the_screen(browser, served, site, tmp_path, label, width, height, mobile):
    shots = _shots_dir(tmp_path)
    pages = {
        "index": "index.html",
        "category": "category/zhangyeribao.html",
        "tech-page-2": "category/tech/page/2.html",
        "post": _post_page(site),
    }
    for name, path in pages.items():
        problems = browser.load(served.url(path), width, height, mobile)
        assert problems == [], f"{path} ({label}): {problems}"
        requested = browser.requests()
        assert requested and all(u.startswith(served.base) for u in requested), requested  # nothing external
        assert browser.evaluate("document.documentElement.lang") == "zh-CN"
        assert browser.evaluate("document.styleSheets[0].cssRules.length") > 20  # the stylesheet applied
        overflow = browser.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"
        light = browser.evaluate("getComputedStyle(document.body).backgroundColor")
        browser.screenshot(shots / f"{name}-{label}.png")
        browser.color_scheme("dark")
        dark = browser.evaluate("getComputedStyle(document.body).backgroundColor")
        assert light != dark, "no dark mode"
        browser.screenshot(shots / f"{name}-{label}-dark.png")
        assert browser.problems() == []
        assert (shots / f"{name}-{label}.png").stat().st_size > 5000


def test_links_on_the_pages_lead_to_existing_pages(browser, served, site):
    assert browser.load(served.url("index.html"), 1280, 900, False) == []
    hrefs = browser.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
    local = [h for h in hrefs if h.startswith(served.base)]
    assert any("/posts/" in h for h in local) and any("/category/" in h for h in local)
    for href in local:
        path = site / href[len(served.base) :].split("#")[0]
        assert path.is_file(), f"index.html links to a missing {href}"
    browser.load(served.url(_post_page(site)), 1280, 900, False)
    back = browser.evaluate("[...document.querySelectorAll('nav.back a')].map(a => a.href)")
    assert back == [served.url("category/zhangyeribao.html"), served.url("index.html")]
    original = browser.evaluate("document.querySelector('a.button').href")
    assert original.startswith("http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202102272218590")
