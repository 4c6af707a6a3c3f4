"""Tell a WebSub hub that feeds changed, so subscribers get them pushed within seconds.

W3C WebSub leaves the publisher-to-hub notification to the hub; the de-facto form every
public hub accepts (and PubSubHubbub 0.4 specified) is a form POST of `hub.mode=publish`
and `hub.url=<feed URL>`, one per feed. A hub being down must never stop publishing:
failures are logged and counted, nothing is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import requests

from .. import USER_AGENT

__all__ = ["ping_hub"]

log = logging.getLogger(__name__)


def ping_hub(
    hub: str, feed_urls: Iterable[str], timeout: float = 10.0, session: requests.Session | None = None
) -> tuple[int, int]:
    """POST `hub.mode=publish` for each feed URL; returns (accepted, failed)."""
    urls = list(dict.fromkeys(feed_urls))
    if not urls:
        return 0, 0
    own = session is None
    http = session or requests.Session()
    accepted = failed = 0
    try:
        for url in urls:
            try:
                response = http.post(
                    hub,
                    data={"hub.mode": "publish", "hub.url": url},
                    headers={"User-Agent": USER_AGENT},
                    timeout=timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as e:
                failed += 1
                log.warning("WebSub hub %s: ping for %s failed: %s", hub, url, e)
                continue
            if 200 <= response.status_code < 300:
                accepted += 1
                log.debug("WebSub hub %s accepted %s (HTTP %d)", hub, url, response.status_code)
            else:
                failed += 1
                body = " ".join(response.text[:200].split())
                log.warning("WebSub hub %s: ping for %s refused: HTTP %d %s", hub, url, response.status_code, body)
    finally:
        if own:
            http.close()
    return accepted, failed
