"""A post whose picture is an image enclosure shows it on its page, as Miniflux does."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import lxml.etree
import lxml.html
import pytest
import requests
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.models import FeedInfo
from aggregator.normalize import normalize
from aggregator.parse import parse_feed
from aggregator.publish import publish
from aggregator.publish.jekyll import render_jekyll
from aggregator.publish.site import SiteRenderer
from aggregator.store import Store

from .chromium import CHROMIUM, Chromium
from .conftest import StaticServer, check_feeds, fetch_feeds, fetch_one_feed, serve_corpus

GALLERY = "speedparser2011/speedparser__feeds_0418.dat.xml"  # bottegaveneta_* items: an image enclosure, no text
PICASA = "speedparser2011/speedparser__feeds_0034.dat.xml"  # albums: full size and thumbnail as media:content
GALLERY_JPG = (
    "http://sewmanstore.com/wordpress/wp-content/gallery/bottega-veneta-ss-2012/bottegaveneta_spring-2012_00068.jpg"
)
OREO = "http://lh6.ggpht.com/-5TD_F0Ngt-A/S9dquqA1sQE/AAAAAAAAE_8/GPlsgV0_HFU/Oreo.jpg"
ALBUM = "http://lh3.ggpht.com/-JobWPXJSgLU/TnCDhGoD0gE/AAAAAAAAFBs/6dr3v0jwWMk/20110914.jpg"


def page_with_attachment(out: Path, url: str) -> lxml.html.HtmlElement:
    for page in (out / "posts").rglob("*.html"):
        doc = lxml.html.fromstring(page.read_bytes())
        if url in doc.xpath("//section[@class='attachments']//a/@href"):
            return doc
    raise AssertionError(f"no post page has {url} among its attachments")


def test_an_image_enclosure_the_content_does_not_show_is_shown(tmp_path, httpserver: HTTPServer):
    """A gallery feed's items are a picture each, given only as an enclosure: their pages had
    an empty body and the picture only as a link under the attachments ("附件":
    `bottegaveneta_spring-2012_00068.jpg (image/jpeg)`).
    The picture is shown, lazy-loaded, beside its link; one the content shows already is not
    shown twice (nor a thumbnail of one shown: the same file name), and the feeds, whose
    readers show enclosures themselves, are left as they were."""
    urls = [serve_corpus(httpserver, GALLERY), serve_corpus(httpserver, PICASA)]
    out = fetch_feeds(tmp_path, urls, site="  language: zh-CN\n")

    def pictures(doc: lxml.html.HtmlElement) -> list[tuple[str, str | None]]:
        return [(img.get("src"), img.get("loading")) for img in doc.xpath("//section[@class='attachments']//img")]

    gallery = page_with_attachment(out, GALLERY_JPG)
    assert gallery.find(".//div[@class='content']").text_content().strip() == ""
    assert pictures(gallery) == [(GALLERY_JPG, "lazy")]
    # the photo's item: its description shows a thumbnail of it (s144/Oreo.jpg-like): not shown twice
    oreo = page_with_attachment(out, OREO)
    shown = oreo.xpath("//div[@class='content']//img/@src")
    assert shown and all(src.endswith("/Oreo.jpg") for src in shown), shown
    assert pictures(oreo) == []
    # the album's description shows its thumbnail (s160-c/20110914.jpg): the full size is not added
    album = page_with_attachment(out, ALBUM)
    assert album.xpath("//div[@class='content']//img/@src") == [ALBUM.replace("/20110914.jpg", "/s160-c/20110914.jpg")]
    assert pictures(album) == []

    atom = lxml.etree.parse(str(out / "category" / "c.atom")).getroot()
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = atom.xpath("//a:entry[a:link[@rel='enclosure'][@href=$u]]", namespaces=ns, u=GALLERY_JPG)[0]
    assert entry.find("a:content", ns) is None  # no text: no content, the enclosure is the picture
    rss = (out / "category" / "c.rss").read_text("utf-8")
    assert f'&lt;img src="{GALLERY_JPG}"' not in rss
    result = check_feeds(out)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it)")
def test_a_browser_asks_for_the_picture_and_the_page_allows_it(tmp_path, httpserver: HTTPServer):
    """In Chromium, the gallery item's page asks for its picture: the page's
    Content-Security-Policy lets it, and lazy loading does not keep it (it is in view)."""
    out = fetch_one_feed(tmp_path, serve_corpus(httpserver, GALLERY))
    page = next(p for p in (out / "posts").rglob("*.html") if GALLERY_JPG in p.read_text("utf-8"))
    server = StaticServer(out)
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        browser.load(server.url(page.relative_to(out)), 1280, 900, False)
        deadline = time.monotonic() + 10
        while GALLERY_JPG not in browser.requests() and time.monotonic() < deadline:  # lazy: after `load`
            browser.evaluate("document.querySelector('.attachments img').complete")
            time.sleep(0.1)
        assert GALLERY_JPG in browser.requests()
        # the browser is kept from the web: the picture fails there, and nothing else does
        problems = [p for p in browser.problems() if "ERR_PROXY_CONNECTION_FAILED" not in p]
        assert problems == []
    finally:
        browser.close()
        server.close()


ROW = "kagi/fastfeedparser__benchmark_data_14333881097406c7.xml"  # Rest of World: media:content + media:thumbnail
ROW_PHOTO = "https://restofworld.org/wp-content/uploads/2026/02/Polymarkets-Chinese-768x432.jpg"
ROW_THUMB = "https://restofworld.org/wp-content/uploads/2026/02/Polymarkets-Chinese-320x320.jpg"


def test_a_photo_and_its_thumbnail_are_shown_once(tmp_path, httpserver: HTTPServer):
    """An item giving its photo as `media:content` and the same photo small as its
    `media:thumbnail` (Flickr's shape; Rest of World's WordPress feed) showed the photo twice,
    the 768×432 and the 320×320, on its page and in its Jekyll post. Now the full picture
    once, and the thumbnail is no attachment in the feeds either; the JSON Feed item's
    `image` is the full picture."""
    out = fetch_feeds(tmp_path, [serve_corpus(httpserver, ROW)], top="jekyll: {dir: jekyll}\n")
    page = page_with_attachment(out, ROW_PHOTO)
    assert page.xpath("//section[@class='attachments']//img/@src") == [ROW_PHOTO]
    assert ROW_THUMB not in lxml.html.tostring(page, encoding="unicode")
    (post,) = [p for p in (tmp_path / "jekyll" / "_posts").glob("*.md") if ROW_PHOTO in p.read_text("utf-8")]
    text = post.read_text("utf-8")
    assert text.count("<img ") == 1 and ROW_THUMB not in text
    feed = json.loads((out / "category" / "c.json").read_text("utf-8"))
    (item,) = [i for i in feed["items"] if any(a["url"] == ROW_PHOTO for a in i.get("attachments", ()))]
    assert [a["url"] for a in item["attachments"]] == [ROW_PHOTO]
    assert item["image"] == ROW_PHOTO  # the item's main image (JSON Feed 1.1), the full picture
    result = check_feeds(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_mastodon_pictures_alt_text_is_published_with_it(tmp_path, httpserver: HTTPServer):
    """A Mastodon post's picture (its alt text in its media:content's media:description) was
    shown on its page and in its Jekyll post with `alt=""`, and given to readers with no words:
    the alt text its author wrote was lost. It is the picture's alt on the page and in the Jekyll
    post, the Atom enclosure link's `title` and the JSON Feed attachment's `title` (RSS's one
    enclosure has no place for it); a picture given none keeps `alt=""`."""
    from .test_parse_media import MASTODON, MASTODON_NO_ALT, MASTODON_PHOTO

    httpserver.expect_request("/@jane.rss").respond_with_data(MASTODON, content_type="application/rss+xml")
    url = httpserver.url_for("/@jane.rss")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\njekyll: {{dir: jekyll}}\n"
        f"categories:\n  - name: C\n    sources:\n      - url: {url}\n",
        encoding="utf-8",
    )
    settings = load_config(cfg)
    (source,) = settings.sources
    now = datetime.now(UTC)
    with Store(settings.database) as store:  # polled and published as `fetch` does, in this process (cheap)
        store.sync_sources(settings.sources)
        feed = parse_feed(url, requests.get(url, timeout=10).content, url)
        store.record_success(source.key, now, 200, info=FeedInfo(title="Jane"), posts=normalize(source, feed, now))
        publish(settings, store)
    out = settings.output_dir
    alt = "Three raised beds of tomatoes under a blue sky"
    page = page_with_attachment(out, MASTODON_PHOTO)
    pictures = page.xpath("//section[@class='attachments']//img")
    assert [(img.get("src"), img.get("alt")) for img in pictures] == [(MASTODON_PHOTO, alt), (MASTODON_NO_ALT, "")]
    (post,) = [p for p in (tmp_path / "jekyll" / "_posts").glob("*.md") if MASTODON_PHOTO in p.read_text("utf-8")]
    assert f'<img src="{MASTODON_PHOTO}" alt="{alt}" loading="lazy">' in post.read_text("utf-8")
    atom = lxml.etree.parse(str(out / "category" / "c.atom")).getroot()
    links = atom.xpath("//a:link[@rel='enclosure']", namespaces={"a": "http://www.w3.org/2005/Atom"})
    assert {(x.get("href"), x.get("title")) for x in links} >= {(MASTODON_PHOTO, alt), (MASTODON_NO_ALT, None)}
    feed = json.loads((out / "category" / "c.json").read_text("utf-8"))
    attachments = [a for i in feed["items"] for a in i.get("attachments", ())]
    assert {(a["url"], a.get("title")) for a in attachments} >= {(MASTODON_PHOTO, alt), (MASTODON_NO_ALT, None)}
    # an alt text opening a bidi override or isolate (U+202E, U+2066) has them closed, as the feeds'
    # `title` has; Liquid and markup in it stay text in the Jekyll post
    hostile = 'A "b" <i> & {{ site.title }} {% x %} \u202eRTL \u2066iso'
    with Store(settings.database) as store:
        stored = next(p for p in store.latest_posts(10) if any(e.url == MASTODON_PHOTO for e in p.enclosures))
    stored = replace(stored, enclosures=[replace(e, description=hostile) for e in stored.enclosures])
    page = lxml.html.fromstring(SiteRenderer(settings).post(stored))
    assert page.xpath("//section[@class='attachments']//img/@alt")[0] == hostile + "\u2069\u202c"
    md = render_jekyll(
        stored, category_slug="c", tags=[], back_label="C", site_url="https://t.example/", timezone="UTC", language="en"
    )
    assert (
        'alt="A &quot;b&quot; &lt;i&gt; &amp; &#123;&#123; site.title }} &#123;% x %} \u202eRTL \u2066iso\u2069\u202c"'
        in md
    )
