"""XSS end to end: feeds whose entries carry classic XSS vectors in every field are served
locally, fetched with the real CLI, stored and published; then headless Chromium opens every
post page, the category page and the index with a hook installed before any page script
that records each alert/confirm/prompt/print call, each vector's marker, and each CSP
violation, and the test asserts none happened. The published feeds are parsed too: their
HTML content must carry no active markup.

A control page that does run a vector proves the hook sees what it is meant to see.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote

import lxml.html
import pytest
from lxml import etree

from ..chromium import CHROMIUM, Chromium
from ..conftest import StaticServer, run_cli

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Debian chromium is not installed (.ci/run installs it)"
)

# Every vector, if it ran, would call one of the recorded functions or set window.__xss.
VECTORS = [
    "<script>alert(1);window.__xss=1</script>",
    "<SCRIPT SRC=//127.0.0.1:9/x.js></SCRIPT>",
    '<img src=x onerror="alert(2);window.__xss=1">',
    "<img src=/nonexistent.png onerror=alert(3)>",
    "<body onload=alert(4)>",
    "<svg onload=alert(5)>",
    "<svg><script>alert(6)</script></svg>",
    '<svg><a xlink:href="javascript:alert(7)"><text y="20">x</text></a></svg>',
    '<a href="javascript:alert(8)">js link</a>',
    '<a href="  JaVaScRiPt:alert(9)">mixed case</a>',
    '<a href="vbscript:msgbox(10)">vb link</a>',
    '<a href="data:text/html,&lt;script&gt;alert(11)&lt;/script&gt;">data link</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(12)">entities</a>',
    '<a href="&#x6A;avascript&#x3A;alert(13)">hex entities</a>',
    '<a href="jav&#x09;ascript:alert(14)">tab</a>',
    '<a href="%6Aavascript:alert(15)">percent</a>',
    '<iframe src="javascript:alert(16)"></iframe>',
    '<iframe srcdoc="&lt;script&gt;parent.alert(17)&lt;/script&gt;"></iframe>',
    '<iframe src="data:text/html,&lt;script&gt;alert(18)&lt;/script&gt;"></iframe>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(19)">',
    '<object data="javascript:alert(20)"></object>',
    '<embed src="javascript:alert(21)">',
    "<style>body{background:url(javascript:alert(22))} p{width:expression(alert(23))}</style>",
    '<div style="background:url(javascript:alert(24));width:expression(alert(25))">styled</div>',
    '<base href="javascript:alert(26)//">',
    '<form action="javascript:alert(27)"><button>go</button></form>',
    '<form><input type=submit formaction="javascript:alert(28)"></form>',
    '<noscript><p title="</noscript><img src=x onerror=alert(29)>"></noscript>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(30)></style></mglyph></table></mtext></math>",
    "<details open ontoggle=alert(31)><summary>s</summary></details>",
    "<input autofocus onfocus=alert(32)>",
    "<video><source onerror=alert(33)></video>",
    "<audio src=x onerror=alert(34)></audio>",
    '<img srcset="javascript:alert(35) 1x">',
    '<link rel="stylesheet" href="javascript:alert(36)">',
    '<marquee onstart="alert(37)">m</marquee>',
    '<img src="data:image/svg+xml,&lt;svg onload=alert(38)&gt;">',
    "<xss onpointerover=alert(39) style=display:block>hover</xss>",
    '<template><img src=x onerror="alert(40)"></template>',
    # MathML is kept (its formulas are text): none of its ways to script may survive
    '<math><mi xlink:href="javascript:alert(60)" href="javascript:alert(61)">click</mi></math>',
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(62)">CLICK<mtext>x</mtext></maction></math>',
    '<math><semantics><mi>x</mi><annotation-xml encoding="text/html"><img src=x onerror=alert(63)></annotation-xml>'
    "</semantics></math>",
    "<math><mtext><img src=x onerror=alert(64)></mtext><mi onclick=alert(65) style=x>y</mi></math>",
    "<math><style><img src=x onerror=alert(66)></style></math>",
    '<form><math><mtext></form><form><mglyph><svg><mtext><style><path id="</style><img onerror=alert(67) src>">',
    '<math><mtext><h1><a><h6></a></h6><mglyph><svg><mtext><style><a title="</style><img src onerror=alert(68)>">',
]
PAYLOAD = "\n".join(f"<p>vector {i}: {v}</p>" for i, v in enumerate(VECTORS))
TEXT = '"><script>alert(41)</script><img src=x onerror=alert(42)>'


def _rss(n: int) -> str:
    items = []
    for i in range(n):
        items.append(f"""
    <item>
      <title>{html.escape(f"RSS {i} {TEXT}")}</title>
      <link>javascript:alert({100 + i})</link>
      <guid isPermaLink="false">xss-rss-{i}</guid>
      <pubDate>Mon, 0{i + 1} Jan 2024 10:00:00 GMT</pubDate>
      <author>x@example.com ({html.escape(TEXT)})</author>
      <category>{html.escape(TEXT)}</category>
      <category>javascript:alert(43)</category>
      <enclosure url="javascript:alert(44)" length="1" type="audio/mpeg"/>
      <description>{html.escape(PAYLOAD)}</description>
      <content:encoded><![CDATA[<h2>content</h2>{PAYLOAD}]]></content:encoded>
    </item>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>{html.escape("XSS RSS " + TEXT)}</title>
    <link>http://127.0.0.1:9/</link>
    <description>{html.escape(TEXT)}</description>{"".join(items)}
  </channel>
</rss>
"""


def _atom() -> str:
    xhtml = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(50)</script>'
        '<img src="x" onerror="alert(51)"/><a href="javascript:alert(52)">a</a>'
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(53)"><script>alert(54)</script></svg></div>'
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">{html.escape(TEXT)}</title>
  <id>urn:xss:atom</id>
  <updated>2024-01-05T10:00:00Z</updated>
  <link href="http://127.0.0.1:9/"/>
  <entry>
    <title type="html">{html.escape("Atom " + TEXT)}</title>
    <id>urn:xss:atom:1</id>
    <updated>2024-01-05T10:00:00Z</updated>
    <link rel="alternate" href="javascript:alert(55)"/>
    <link rel="enclosure" href="vbscript:msgbox(56)" type="video/mp4" length="1"/>
    <author><name>{html.escape(TEXT)}</name><uri>javascript:alert(57)</uri></author>
    <category term="{html.escape(TEXT)}" label="{html.escape(TEXT)}"/>
    <summary type="html">{html.escape(PAYLOAD)}</summary>
    <content type="xhtml">{xhtml}</content>
  </entry>
  <entry>
    <title>Atom 2</title>
    <id>urn:xss:atom:2</id>
    <updated>2024-01-06T10:00:00Z</updated>
    <link href="http://127.0.0.1:9/2"/>
    <content type="html">{html.escape(PAYLOAD)}</content>
  </entry>
</feed>
"""


HOOK = r"""
(() => {
  const top_ = (() => { try { return window.top.__xssLog ? window.top : window; } catch (e) { return window; } })();
  const log = top_.__xssLog || (top_.__xssLog = []);
  const note = (what) => { log.push(what + " in " + location.href); };
  for (const name of ["alert", "confirm", "prompt", "print"]) {
    window[name] = (...args) => { note(name + "(" + args.join(",") + ")"); };
  }
  Object.defineProperty(window, "__xss", { set(v) { note("__xss=" + v); }, get() { return undefined; } });
  document.addEventListener("securitypolicyviolation", (e) => note("csp " + e.violatedDirective + " " + e.blockedURI));
})();
"""

CONTROL = "<!doctype html><title>control</title><img src=x onerror=alert(99)><script>window.__xss=1</script>"

URL_ATTRS = ("href", "src", "srcset", "action", "formaction", "data", "poster", "background", "xlink:href", "cite")
BAD_SCHEME = re.compile(r"^\s*(javascript|vbscript|data|livescript|mocha)\s*:", re.I)


def _active_markup(fragment: str, where: str) -> list[str]:
    """Script, event handlers, script URLs and non-image data: URLs in an HTML fragment."""
    if not fragment.strip():
        return []
    problems = []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.rsplit("}", 1)[-1].lower()
        if tag in ("script", "iframe", "object", "embed", "base", "meta", "form", "link", "style", "svg"):
            if tag != "iframe" or not (el.get("src") or "").startswith("https://"):
                problems.append(f"{where}: <{tag}>")
        for name, value in el.attrib.items():
            name = name.rsplit("}", 1)[-1].lower()
            if name.startswith("on") or name == "srcdoc":
                problems.append(f"{where}: <{tag} {name}=…>")
            elif name == "style" and re.search(r"expression|javascript|url\(", value, re.I):
                problems.append(f"{where}: <{tag} style={value!r}>")
            elif name in URL_ATTRS:
                url = re.sub(r"[\x00-\x20]", "", html.unescape(unquote(value)))
                m = BAD_SCHEME.match(url)
                if m and not (tag == "img" and name == "src" and url.lower().startswith("data:image/")):
                    problems.append(f"{where}: <{tag} {name}={value!r}>")
    return problems


def _published_fragments(public: Path) -> list[tuple[str, str]]:
    """(where, HTML) of every post body the published RSS, Atom and JSON feeds carry."""
    out: list[tuple[str, str]] = []
    content = "{http://purl.org/rss/1.0/modules/content/}encoded"
    atom = "{http://www.w3.org/2005/Atom}"
    for path in sorted(public.rglob("*.rss")):
        for item in etree.parse(str(path)).iter("item"):
            for tag in ("description", content):
                for el in item.iter(tag):
                    out.append((f"{path.name} {tag}", el.text or ""))
    for path in sorted(public.rglob("*.atom")):
        for entry in etree.parse(str(path)).iter(f"{atom}entry"):
            for tag in ("content", "summary"):
                for el in entry.iter(f"{atom}{tag}"):
                    body = el.text or ""
                    if el.get("type") == "xhtml":
                        body = "".join(etree.tostring(c, encoding="unicode") for c in el)
                    out.append((f"{path.name} {tag}", body))
    for path in sorted(public.rglob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")).get("items", []):
            for key in ("content_html", "summary"):
                if isinstance(item.get(key), str):
                    out.append((f"{path.name} {key}", item[key]))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("xss")
    feeds = tmp / "feeds"
    feeds.mkdir()
    (feeds / "xss.rss").write_text(_rss(3), encoding="utf-8")
    (feeds / "xss.atom").write_text(_atom(), encoding="utf-8")
    server = StaticServer(feeds)
    try:
        cfg = tmp / "feeds.yaml"
        cfg.write_text(
            "site:\n  title: XSS\n  url: http://127.0.0.1:9/\ncategories:\n  - name: Vectors\n    sources:\n"
            f"      - url: {server.url('xss.rss')}\n      - url: {server.url('xss.atom')}\n",
            encoding="utf-8",
        )
        result = run_cli("--config", str(cfg), "fetch")
    finally:
        server.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 new posts" in result.stdout, result.stdout
    return tmp / "public"


def test_published_feeds_carry_no_active_markup(site):
    fragments = _published_fragments(site)
    assert len([f for f in fragments if "vector" in f[1]]) >= 3 * 5, [w for w, _ in fragments]  # each format, each post
    problems = [p for where, body in fragments for p in _active_markup(body, where)]
    assert problems == []
    # the checker itself sees what it must: the raw payload is full of it
    assert len(_active_markup(PAYLOAD, "payload")) >= 30


def test_no_vector_runs_in_the_browser(site, tmp_path_factory):
    (site / "control.html").write_text(CONTROL, encoding="utf-8")
    pages = [
        "index.html",
        "category/vectors.html",
        *(str(p.relative_to(site)) for p in sorted(site.glob("posts/**/*.html"))),
    ]
    assert len(pages) == 2 + 5, pages
    server = StaticServer(site)
    browser = Chromium(tmp_path_factory.mktemp("xss-chromium"))
    try:
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK, session=True)
        browser.load(server.url("control.html"), 1280, 900, False)
        control = browser.evaluate("window.__xssLog || []")
        assert any("alert(99)" in c for c in control) and any("__xss=1" in c for c in control), control

        ran: dict[str, list[str]] = {}
        for page in pages:
            browser.load(server.url(page), 1280, 900, False)
            browser.call(  # let late handlers (the onerror of a 404 image) fire
                "Runtime.evaluate", expression="new Promise(r => setTimeout(r, 100))", awaitPromise=True, session=True
            )
            log = browser.evaluate("window.__xssLog || []")
            dom = browser.evaluate(
                """[...document.querySelectorAll('*')].flatMap(el => [...el.attributes]
                     .filter(a => a.name.startsWith('on') || a.name === 'srcdoc'
                        || /^\\s*(javascript|vbscript):/i.test(a.value.replace(/[\\x00-\\x20]/g, '')))
                     .map(a => el.tagName + ' ' + a.name + '=' + a.value))
                   .concat([...document.scripts].map(s => 'SCRIPT ' + s.outerHTML.slice(0, 80)))"""
            )
            if log or dom:
                ran[page] = log + dom
            dialogs = [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
            assert not dialogs, dialogs
            assert browser.evaluate("location.href") == server.url(page)  # no meta refresh, no <base> trick
            # only this machine: the site and the feed server (the posts' relative images), and
            # the SVG icons Chromium draws its own media controls with, as data: URLs
            assert all(u.startswith(("http://127.0.0.1:", "data:image/svg+xml")) for u in browser.requests()), (
                browser.requests()
            )
        assert ran == {}
    finally:
        browser.close()
        server.close()
