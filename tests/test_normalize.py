"""Parsed entries → Posts: ids, dates, sanitized absolute HTML, from real fixtures."""

from __future__ import annotations

from datetime import UTC, datetime

from aggregator.models import Source
from aggregator.normalize import normalize, post_id
from aggregator.parse import parse_feed

from .conftest import CORPUS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ZH_URL = "http://127.0.0.1/zh/zhangye-daily.gbk.rss"


def zh_posts(timezone: str = "Asia/Shanghai"):
    src = Source(key=ZH_URL, url=ZH_URL, timezone=timezone)
    feed = parse_feed(src.key, (CORPUS / "zh" / "zhangye-daily.gbk.rss").read_bytes(), ZH_URL)
    return normalize(src, feed, NOW)


def test_gbk_feed_comes_out_as_correct_text():
    first = zh_posts()[0]
    assert first.title == "为高质量发展注入“源头活水”"
    assert first.content.startswith("<p>□陈英</p>\n <p>我市坚持把人才作为创新之要")
    assert first.content.endswith('<p class="em_media">（文章来源：张掖日报）</p>')
    assert first.published == datetime(2022, 2, 10, 2, 38, 21, tzinfo=UTC)
    assert first.link == "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202202102272218590"


def test_ids_are_stable_16_hex_from_source_and_guid():
    a, b = zh_posts(), zh_posts()
    assert [p.id for p in a] == [p.id for p in b]
    assert a[0].id == post_id(ZH_URL, "NW202202102272218590")
    assert all(len(p.id) == 16 and int(p.id, 16) >= 0 for p in a)
    assert len({p.id for p in a}) == 3


def test_zoneless_date_is_read_in_the_source_zone():
    third = zh_posts()[2]
    assert third.published == datetime(2022, 2, 8, 1, 30, tzinfo=UTC)  # 09:30 +0800
    assert zh_posts("UTC")[2].published == datetime(2022, 2, 8, 9, 30, tzinfo=UTC)


def test_hostile_markup_is_removed_and_class_kept():
    third = zh_posts()[2]
    assert "<script" not in third.content and "alert" not in third.content
    assert "onclick" not in third.content and "javascript:" not in third.content
    assert '<p class="em_media">（文章来源：张掖日报）</p>' in third.content
    assert "统筹" in third.content  # the link text survives its dangerous href


def test_relative_urls_become_absolute():
    second = zh_posts()[1]
    assert '<img src="http://finews.zning.xyz/images/2022/0209/meeting.jpg" alt="会议现场">' in second.content
    atom_url = "http://127.0.0.1/zh/gansu-economy.atom"
    src = Source(key=atom_url, url=atom_url)
    posts = normalize(src, parse_feed(atom_url, (CORPUS / "zh" / "gansu-economy.atom").read_bytes(), atom_url), NOW)
    assert 'href="https://example.cn/gansu/economy/2022/detail.html"' in posts[0].content
    assert posts[0].authors[0].name == "甘肃日报" and posts[0].tags == ("经济",)


def test_future_dates_are_clamped_and_missing_dates_use_fetch_time():
    body = b"""<rss version="2.0"><channel><title>t</title><link>http://e.org/</link>
    <item><title>future</title><link>http://e.org/f</link><pubDate>Tue, 01 Jan 2099 00:00:00 GMT</pubDate></item>
    <item><title>undated</title><link>http://e.org/u</link></item>
    <item><link>http://e.org/notitle</link><description>Only a body with words in it</description></item>
    </channel></rss>"""
    src = Source(key="http://e.org/rss", url="http://e.org/rss")
    future, undated, notitle = normalize(src, parse_feed(src.key, body, src.url), NOW)
    assert future.published == NOW and future.dated
    assert undated.published == NOW and not undated.dated
    assert notitle.title == "Only a body with words in it"


def test_content_change_changes_hash_not_id():
    body = (CORPUS / "zh" / "gansu-economy.atom").read_bytes()
    src = Source(key="http://e.org/a", url="http://e.org/a")
    before = normalize(src, parse_feed(src.key, body, src.url), NOW)
    after = normalize(
        src, parse_feed(src.key, body.replace("酒泉市新能源".encode(), "酒泉市风能".encode()), src.url), NOW
    )
    assert [p.id for p in before] == [p.id for p in after]
    assert before[0].content_hash == after[0].content_hash
    assert before[1].content_hash != after[1].content_hash
