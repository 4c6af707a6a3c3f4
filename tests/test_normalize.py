"""Parsed entries → Posts: ids, dates, sanitized absolute HTML, from real fixtures."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.etree
import lxml.html
import pytest

from aggregator.dates import InvalidDate, parse_date
from aggregator.models import Author, Enclosure, Source
from aggregator.normalize import _hash, feed_info, normalize, normalize_entries, post_id
from aggregator.parse import parse_feed, parse_feedparser
from aggregator.parse_fast import parse_fast, same_document

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
    # and, read by an HTML parser rather than searched as a string:
    tags = [(el.tag, dict(el.attrib)) for el in lxml.html.fragment_fromstring(third.content, create_parent="div")]
    assert tags == [("p", {}), ("p", {}), ("p", {"class": "em_media"})]
    anchors = list(lxml.html.fragment_fromstring(third.content, create_parent="div").iter("a"))
    assert [dict(a.attrib) for a in anchors] == [{"rel": "noopener noreferrer"}] and anchors[0].text == "统筹"
    assert lxml.html.fragment_fromstring(third.content, create_parent="div").text_content() == (
        "连日来，甘州区冬春农田水利基本建设现场机械轰鸣。各乡镇统筹推进。（文章来源：张掖日报）"
    )


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


# --------------------------------------------------------------------------- helpers

FP = CORPUS / "feedparser-tests" / "wellformed"
SH = ZoneInfo("Asia/Shanghai")


def posts_of(path: Path, url: str = "http://127.0.0.1:8097/feed.xml", timezone: str = "UTC", **headers):
    src = Source(key=url, url=url, timezone=timezone)
    return normalize(src, parse_feed(url, path.read_bytes(), url, headers), NOW)


def posts_from(body: str | bytes, url: str = "http://e.org/feed", timezone: str = "UTC", ctype: str = ""):
    data = body.encode() if isinstance(body, str) else body
    src = Source(key=url, url=url, timezone=timezone)
    return normalize(src, parse_feed(url, data, url, {"content-type": ctype} if ctype else {}), NOW)


def rss(items: str, channel: str = "") -> str:
    return f'<rss version="2.0"><channel><title>t</title><link>http://e.org/</link>{channel}{items}</channel></rss>'


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("raw", "zone", "utc"),
    [
        ("2022-02-08 09:30:00", SH, (2022, 2, 8, 1, 30)),  # zone-less: the source's local time
        ("2022-02-08 09:30:00", ZoneInfo("UTC"), (2022, 2, 8, 9, 30)),
        ("2022/02/08 09:30", SH, (2022, 2, 8, 1, 30)),  # feedparser makes this 2022-11-01
        ("2022年02月08日 09:30", SH, (2022, 2, 8, 1, 30)),
        ("2022年2月8日", SH, (2022, 2, 7, 16, 0)),
        ("2022-02-08 09:30:00 CST", SH, (2022, 2, 8, 1, 30)),  # the zone the source itself uses
        ("2022-02-08 09:30:00 CST", ZoneInfo("America/Chicago"), (2022, 2, 8, 15, 30)),
        ("2022-02-08 09:30:00 CST", ZoneInfo("UTC"), (2022, 2, 8, 15, 30)),  # RFC 822's CST
        ("Tue, 08 Feb 2022 09:30:00 +0800 (CST)", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("Tue, 08 Feb 2022 09:30:00", SH, (2022, 2, 8, 1, 30)),
        ("Tue, 8 Feb 22 9:30 GMT", SH, (2022, 2, 8, 9, 30)),
        ("2022-02-08T09:30:00.123+08:00", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("2022-02-08T09:30:00Z", SH, (2022, 2, 8, 9, 30)),
        ("2022-02-08 09:30 GMT+8", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("2011-09-16T08:00:00 05:00", ZoneInfo("UTC"), (2011, 9, 16, 3, 0)),  # "+" lost to URL decoding
        ("Sun, 06 Nov 1994 08:49:37 EST", SH, (1994, 11, 6, 13, 49, 37)),
        # Go's time.Time.String(): the offset is the truth, the name after it is dropped
        ("2022-02-08 09:30:00 +0800 CST", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("2022-02-08 09:30:00.123456789 -0500 EST", SH, (2022, 2, 8, 14, 30)),
        ("2022-02-08 09:30:00 +0000 UTC", SH, (2022, 2, 8, 9, 30)),
        ("2022-02-08 09:30:00 +0800 +08", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("2022-02-08 09:30:00.5 +0800 CST m=+0.012", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        # full-width forms, as Chinese input methods type them
        ("2022-02-08 09：30", SH, (2022, 2, 8, 1, 30)),
        ("2022－02－08 09:30", SH, (2022, 2, 8, 1, 30)),
        ("２０２２年２月８日 ０９：３０", SH, (2022, 2, 8, 1, 30)),
        # `北京时间` (Beijing time) is +08:00 whatever the source's zone, written before or after
        ("2022-02-08 09:30 北京时间", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("2022年02月08日 09:30 (北京时间)", ZoneInfo("America/Chicago"), (2022, 2, 8, 1, 30)),
        ("2022-02-08 09:30（北京时间）", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("北京时间 2022-02-08 09:30:15", ZoneInfo("UTC"), (2022, 2, 8, 1, 30, 15)),
        ("【北京時間】2022年2月8日09:30", ZoneInfo("UTC"), (2022, 2, 8, 1, 30)),
        ("2022-02-08 09:30 +0800 (北京时间)", ZoneInfo("America/Chicago"), (2022, 2, 8, 1, 30)),
        # Korean dates, as Naver and Tistory blogs write them, are Korea's time (+09:00), as
        # feedparser's reader of Korean dates took them; 오후 (PM) and 오전 (AM) were read as no
        # date (`년 월 일`) or as the day at midnight UTC (`2004-05-25 오후 11:23:17`)
        ("2004년 05월 28일 오후 11:23:17", ZoneInfo("UTC"), (2004, 5, 28, 14, 23, 17)),
        ("2004-05-25 오후 11:23:17", ZoneInfo("UTC"), (2004, 5, 25, 14, 23, 17)),
        ("2024. 1. 2. 오후 3:05", ZoneInfo("UTC"), (2024, 1, 2, 6, 5)),
        ("2024. 1. 2. 오전 12:05:00", ZoneInfo("UTC"), (2024, 1, 1, 15, 5)),
        ("2025년 11월 03일 10:05:00", ZoneInfo("America/Chicago"), (2025, 11, 3, 1, 5)),
        # a Chinese site's Korean source
        ("2025년 11월 03일 오후 3:05", ZoneInfo("Asia/Shanghai"), (2025, 11, 3, 6, 5)),
        ("2024. 1. 2. 오후 3:05 +0000", ZoneInfo("UTC"), (2024, 1, 2, 15, 5)),
        # ISO 8601 ordinal dates: day 2 of 2024 (feedparser read 1 February), day 366 of a leap year
        ("2024-002", ZoneInfo("UTC"), (2024, 1, 2)),
        ("2024-002T10:00:00Z", SH, (2024, 1, 2, 10, 0)),
        ("2024-366T23:00:00+01:00", ZoneInfo("UTC"), (2024, 12, 31, 22, 0)),
    ],
)
def test_dates_are_read_in_the_right_zone(raw, zone, utc):
    assert parse_date(raw, zone) == datetime(*utc, tzinfo=UTC)


CHI = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("raw", "zone", "utc"),
    [
        # Java's Date.toString: CST is the source's own zone when that zone calls itself CST
        # (Shanghai), else US Central; feedparser made it US Central for every source
        ("Mon Nov 02 10:00:00 CST 2026", SH, (2026, 11, 2, 2, 0)),
        ("Mon Nov 02 10:00:00 CST 2026", CHI, (2026, 11, 2, 16, 0)),
        ("Mon Nov 02 10:00:00 CST 2026", ZoneInfo("UTC"), (2026, 11, 2, 16, 0)),
        ("Mon Nov  2 10:00:00 CST 2026", SH, (2026, 11, 2, 2, 0)),
        ("Mon Nov  2 10:00:00 CST 2026", CHI, (2026, 11, 2, 16, 0)),
        ("Mon Nov 02 10:00:00 GMT+08:00 2026", SH, (2026, 11, 2, 2, 0)),
        ("Mon Nov 02 10:00:00 GMT+08:00 2026", CHI, (2026, 11, 2, 2, 0)),
        ("Mon Jul 06 10:00:00 CDT 2026", CHI, (2026, 7, 6, 15, 0)),
        # git's order, the zone after the year (feedparser: the year 800, so no date)
        ("Mon Nov 2 10:00:00 2026 +0800", CHI, (2026, 11, 2, 2, 0)),
        ("Mon Nov 2 10:00:00 2026 -05:00", SH, (2026, 11, 2, 15, 0)),
        # asctime, no zone: the source's local time (feedparser: UTC)
        ("Mon Nov  2 10:00:00 2026", SH, (2026, 11, 2, 2, 0)),
        ("Mon Nov  2 10:00:00 2026", CHI, (2026, 11, 2, 16, 0)),
        ("Mon Jul  6 10:00:00 2026", CHI, (2026, 7, 6, 15, 0)),  # daylight time in July
        # Chinese: weekday words skipped, 上午/下午, 时/分, no space after 日 (feedparser: the
        # day only, at midnight UTC of the day before)
        ("2026年11月2日 星期一 10:00", SH, (2026, 11, 2, 2, 0)),
        ("2026年11月2日 星期一 10:00", CHI, (2026, 11, 2, 16, 0)),
        ("2026年11月2日 周一 10:00", SH, (2026, 11, 2, 2, 0)),
        ("2026年11月2日 周一", SH, (2026, 11, 1, 16, 0)),
        ("2026年11月2日（星期一）10:00", SH, (2026, 11, 2, 2, 0)),
        ("2026年11月2日(周一) 下午3:05", CHI, (2026, 11, 2, 21, 5)),
        ("2026年11月2日 上午10:05", SH, (2026, 11, 2, 2, 5)),
        ("2026年11月2日 上午10:05", CHI, (2026, 11, 2, 16, 5)),
        ("2026年11月2日 下午3:05", SH, (2026, 11, 2, 7, 5)),
        ("2026年11月2日 下午3:05", CHI, (2026, 11, 2, 21, 5)),
        ("2026年11月2日下午3:05", SH, (2026, 11, 2, 7, 5)),
        ("2026年11月2日 上午12:05", SH, (2026, 11, 1, 16, 5)),  # 12 AM is midnight
        ("2026年11月2日 下午12:05", SH, (2026, 11, 2, 4, 5)),  # 12 PM is noon
        ("2026年11月2日 下午15:05", SH, (2026, 11, 2, 7, 5)),  # a 24-hour clock, marked anyway
        ("2026年11月2日 晚上8:30", SH, (2026, 11, 2, 12, 30)),  # evening, early morning, noon
        ("2026年11月2日 傍晚6:10", CHI, (2026, 11, 3, 0, 10)),
        ("2026年11月2日 凌晨3:05", SH, (2026, 11, 1, 19, 5)),
        ("2026年11月2日 早上7:00", SH, (2026, 11, 1, 23, 0)),
        ("2026年11月2日 中午12:30", SH, (2026, 11, 2, 4, 30)),
        ("2026年11月2日 中午1:30", SH, (2026, 11, 2, 5, 30)),
        ("2026年11月2日 10:00 星期一", SH, (2026, 11, 2, 2, 0)),  # the weekday after the time
        ("2026年11月2日 10:00（周一）", CHI, (2026, 11, 2, 16, 0)),
        # English AM/PM after an ISO-like date (feedparser: none; "PM" was taken for a zone)
        ("2026-11-02 10:05 PM", SH, (2026, 11, 2, 14, 5)),
        ("2026/11/02 10:05:30 pm", CHI, (2026, 11, 3, 4, 5, 30)),
        ("2026-11-02 12:05 AM", SH, (2026, 11, 1, 16, 5)),
        ("2026-11-02 12:05 P.M. +0000", SH, (2026, 11, 2, 12, 5)),
        ("2026年11月2日 10时05分", SH, (2026, 11, 2, 2, 5)),
        ("2026年11月2日 10时05分", CHI, (2026, 11, 2, 16, 5)),
        ("2026年11月2日 10点05分", SH, (2026, 11, 2, 2, 5)),
        ("2026年11月2日10:00", SH, (2026, 11, 2, 2, 0)),
        ("2026年11月2日10:00", CHI, (2026, 11, 2, 16, 0)),
        ("2026年11月2日", SH, (2026, 11, 1, 16, 0)),
        ("2026年11月2日", CHI, (2026, 11, 2, 6, 0)),
        # ISO 8601 week dates and basic format (feedparser: the day only, or the wrong day)
        ("2026-W45-1", SH, (2026, 11, 1, 16, 0)),
        ("2026-W45-1", CHI, (2026, 11, 2, 6, 0)),
        ("2026W451", SH, (2026, 11, 1, 16, 0)),
        ("2026-W45-1T10:00:00Z", SH, (2026, 11, 2, 10, 0)),
        ("2026-W45-1T10:00:00Z", CHI, (2026, 11, 2, 10, 0)),
        ("2026-W45-1T10:00:00", CHI, (2026, 11, 2, 16, 0)),
        ("2026-W01-1", ZoneInfo("UTC"), (2025, 12, 29, 0, 0)),  # week 1 begins in the year before
        ("20261102T100000Z", SH, (2026, 11, 2, 10, 0)),
        ("20261102T100000Z", CHI, (2026, 11, 2, 10, 0)),
        ("20261102T100000+0800", SH, (2026, 11, 2, 2, 0)),
        ("20261102T100000+0800", CHI, (2026, 11, 2, 2, 0)),
        ("20261102T1000", SH, (2026, 11, 2, 2, 0)),
        ("20261102T1000", CHI, (2026, 11, 2, 16, 0)),
    ],
)
def test_java_asctime_chinese_and_iso_week_and_basic_dates(raw, zone, utc):
    assert parse_date(raw, zone) == datetime(*utc, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "zone", "utc"),
    [
        # a week alone is its Monday (feedparser: the Sunday before, at midnight UTC)
        ("2026-W45", SH, (2026, 11, 1, 16, 0)),
        ("2026-W45", CHI, (2026, 11, 2, 6, 0)),
        ("2026W45", ZoneInfo("UTC"), (2026, 11, 2, 0, 0)),
        ("2026-W01", ZoneInfo("UTC"), (2025, 12, 29, 0, 0)),
        # a basic date alone (feedparser: midnight UTC, whatever the source's zone)
        ("20261102", SH, (2026, 11, 1, 16, 0)),
        ("20261102", CHI, (2026, 11, 2, 6, 0)),
        ("20261102", ZoneInfo("Europe/Berlin"), (2026, 11, 1, 23, 0)),
    ],
)
def test_an_iso_week_alone_and_a_basic_date_alone_are_read_in_the_source_zone(raw, zone, utc):
    assert parse_date(raw, zone) == datetime(*utc, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "zone", "utc"),
    [
        # a weekday before the date (feedparser: no date at all; the post took its fetch time)
        ("星期一 2026年11月2日 10:05", SH, (2026, 11, 2, 2, 5)),
        ("星期一 2026年11月2日 10:05", CHI, (2026, 11, 2, 16, 5)),
        ("周一 2026-11-02 10:05", SH, (2026, 11, 2, 2, 5)),
        ("週一 2026/11/02 10:05:30", SH, (2026, 11, 2, 2, 5, 30)),
        ("(周一) 2026-11-02 10:05", CHI, (2026, 11, 2, 16, 5)),
        ("（星期一）2026年11月2日 下午3:05", SH, (2026, 11, 2, 7, 5)),
        ("星期一 2026年11月2日", SH, (2026, 11, 1, 16, 0)),
        ("周一 2026-11-02 10:05 +0000", SH, (2026, 11, 2, 10, 5)),
        ("周二 2026-11-02 10:05", SH, (2026, 11, 2, 2, 5)),  # a weekday that is wrong is ignored
        ("星期一, 2026年11月2日 10:05", SH, (2026, 11, 2, 2, 5)),  # a comma, as after RFC 822's `Mon,`
        ("周一，2026-11-02 10:05", CHI, (2026, 11, 2, 16, 5)),
        ("Mon 2026-11-02 10:05", SH, (2026, 11, 2, 2, 5)),  # an English one too
        ("Monday, 2026-11-02 10:05 PM", CHI, (2026, 11, 3, 4, 5)),
        # an hour without minutes (feedparser: the day only, at midnight UTC, or the day before)
        ("2026年11月2日 10点", SH, (2026, 11, 2, 2, 0)),
        ("2026年11月2日 10点", CHI, (2026, 11, 2, 16, 0)),
        ("2026-11-02 10点", SH, (2026, 11, 2, 2, 0)),
        ("2026-11-02 10时", CHI, (2026, 11, 2, 16, 0)),
        ("2026年11月2日 下午3点", SH, (2026, 11, 2, 7, 0)),
        ("周一 2026年11月2日 10点", SH, (2026, 11, 2, 2, 0)),
        # English AM/PM after an RFC 822 time (feedparser: 10:05 PM read as 10:05)
        ("Mon, 02 Nov 2026 10:05 PM +0800", SH, (2026, 11, 2, 14, 5)),
        ("Mon, 02 Nov 2026 10:05 PM +0800", CHI, (2026, 11, 2, 14, 5)),
        ("Mon, 02 Nov 2026 10:05:00 PM GMT", SH, (2026, 11, 2, 22, 5)),
        ("Mon, 02 Nov 2026 10:05 pm", SH, (2026, 11, 2, 14, 5)),  # no zone: the source's
        ("02 Nov 2026 10:05 PM", CHI, (2026, 11, 3, 4, 5)),
        ("Mon, 02 Nov 2026 12:05 AM GMT", SH, (2026, 11, 2, 0, 5)),
        ("Mon, 02 Nov 2026 12:05 P.M. EST", SH, (2026, 11, 2, 17, 5)),
        # half past and on the hour (feedparser: 1 November at midnight UTC, the day before)
        ("2026年11月2日 10点半", SH, (2026, 11, 2, 2, 30)),
        ("2026-11-02 下午3点半", SH, (2026, 11, 2, 7, 30)),
        ("2026-11-02 10点整", SH, (2026, 11, 2, 2, 0)),
        # a month name before the day, as US sites write (feedparser: no date at all)
        ("November 2, 2026", CHI, (2026, 11, 2, 6, 0)),
        ("Nov 2, 2026 10:05 PM", CHI, (2026, 11, 3, 4, 5)),
        ("Monday, November 2, 2026 at 10:05 PM", CHI, (2026, 11, 3, 4, 5)),
        ("Nov. 2nd, 2026 10:05 pm EST", SH, (2026, 11, 3, 3, 5)),
        ("November 2, 2026, 10:05", SH, (2026, 11, 2, 2, 5)),
        # the day first with dots, as German sites write (feedparser: no date at all)
        ("02.11.2026", SH, (2026, 11, 1, 16, 0)),
        ("2.11.2026, 10:05 Uhr", CHI, (2026, 11, 2, 16, 5)),
        ("02.11.2026 10:05:07 +0100", SH, (2026, 11, 2, 9, 5, 7)),
    ],
)
def test_a_weekday_before_a_chinese_date_an_hour_alone_and_am_pm_after_rfc_822(raw, zone, utc):
    assert parse_date(raw, zone) == datetime(*utc, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["31.02.2026", "February 30, 2026", "Nov 2, 2026 13:05 AM", "2023-366", "2024-000"])
def test_a_month_first_or_dotted_date_that_does_not_exist_is_no_date(raw):
    with pytest.raises(InvalidDate):
        parse_date(raw, SH)


@pytest.mark.parametrize(
    ("raw", "zone", "utc"),
    [
        # a source 8 hours ahead of UTC whose zone calls itself otherwise: China's CST
        # (it was US Central's, 14 hours later)
        ("Mon, 02 Nov 2026 10:05:00 CST", ZoneInfo("Asia/Hong_Kong"), (2026, 11, 2, 2, 5)),
        ("2026-11-02 10:05:00 CST", ZoneInfo("Asia/Singapore"), (2026, 11, 2, 2, 5)),
        ("Mon Nov 02 10:05:00 CST 2026", ZoneInfo("Etc/GMT-8"), (2026, 11, 2, 2, 5)),
    ],
)
def test_cst_in_a_source_8_hours_ahead_of_utc_is_china_standard_time(raw, zone, utc):
    assert parse_date(raw, zone) == datetime(*utc, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "utc"),
    [
        ("Asia/Shanghai", (2026, 11, 2, 2, 5)),  # its own CST, as before
        ("Asia/Taipei", (2026, 11, 2, 2, 5)),
        ("America/Chicago", (2026, 11, 2, 16, 5)),
        ("America/New_York", (2026, 11, 2, 16, 5)),
        ("America/Havana", (2026, 11, 2, 15, 5)),  # Cuba's own CST is -05:00
        ("Europe/Berlin", (2026, 11, 2, 16, 5)),  # RFC 822's, as feedparser reads it
        ("UTC", (2026, 11, 2, 16, 5)),
        ("Australia/Perth", (2026, 11, 2, 16, 5)),  # +08:00, but CST was Australian Central there
    ],
)
def test_cst_elsewhere_stays_as_it_was_read(zone, utc):
    assert parse_date("Mon, 02 Nov 2026 10:05:00 CST", ZoneInfo(zone)) == datetime(*utc, tzinfo=UTC)


def test_the_new_shapes_are_read_on_both_parse_paths_in_the_source_zone():
    """The fast path, feedparser's (an RSS DOCTYPE sends the feed there) and JSON Feed give
    the normalizer the raw string, which is read here before feedparser's own reading."""
    dates = [
        "星期一 2026年11月2日 10:05",
        "2026-11-02 10点",
        "Mon, 02 Nov 2026 10:05 PM",
        "2026-W45",
        "20261102",
        "2026年11月2日 10点半",
        "November 2, 2026 10:05 PM",
        "02.11.2026 10:05",
    ]
    want = [
        datetime(2026, 11, 2, 2, 5, tzinfo=UTC),
        datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 14, 5, tzinfo=UTC),
        datetime(2026, 11, 1, 16, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 16, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 2, 30, tzinfo=UTC),
        datetime(2026, 11, 2, 14, 5, tzinfo=UTC),
        datetime(2026, 11, 2, 2, 5, tzinfo=UTC),
    ]
    items = "".join(f"<item><link>http://e.org/{n}</link><pubDate>{d}</pubDate></item>" for n, d in enumerate(dates))
    later = datetime(2027, 1, 1, tzinfo=UTC)
    for feed in (rss(items), rss(items).replace("<rss", '<!DOCTYPE rss SYSTEM "x.dtd"><rss', 1)):
        src = Source(key="http://e.org/feed", url="http://e.org/feed", timezone="Asia/Shanghai")
        posts = normalize(src, parse_feed(src.key, feed.encode(), src.url), later)
        assert [(p.published, p.dated) for p in posts] == [(w, True) for w in want]
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "j",
        "items": [
            {"id": str(n), "url": f"https://e.org/{n}", "content_text": "x", "date_published": d}
            for n, d in enumerate(dates)
        ],
    }
    src = Source(key="http://e.org/j", url="http://e.org/j", timezone="Asia/Shanghai")
    posts = normalize(
        src, parse_feed(src.key, json.dumps(doc).encode(), src.url, {"content-type": "application/feed+json"}), later
    )
    assert [p.published for p in posts] == want


@pytest.mark.parametrize(
    "raw",
    [
        "not a date",
        "32 Foo 2022",
        "Tue, 08 Feb 2022 09:30:00 +9900",
        "Summer 2010",  # no month: `May 2010` is one (test_a_month_alone_is_its_first_day)
        "Windows 2010",
        "Jui 2010",  # juin or juillet
        "Sep-2010",
        "May 2010 GMT",  # a month is not written to the hour, nor with a zone
        "2026110",  # seven digits: no basic date
        "Mon Nov 2 10:00:00 XYZ 2026",
    ],
)
def test_unreadable_dates_are_left_to_feedparser(raw):
    assert parse_date(raw, SH) is None


@pytest.mark.parametrize(
    "raw",
    [
        "2022-13-45",
        "2024-02-30T10:00:00Z",
        "Fri, 30 Feb 2024 10:00:00 +0000",
        "2024-01-01T24:30",
        "Sat, 31 Dec 2016 23:59:61 GMT",  # only :60 is a leap second; :61 to :99 were read as :59
        "2024-05-01T10:00:99Z",
        "2025-W53-1",  # 2025 has 52 weeks
        "2026-W00-1",
        "20261302T100000Z",
        "20261302",  # eight digits that are no day: feedparser rolled them over (2 January 2027)
        "12345678",  # feedparser: 10 December 2012
        "2026-W54",
        "2026年11月2日 上午13:05",
        "2026年11月2日 晚上12:30",  # midnight, of which day?
        "2026-11-02 13:05 AM",
        "Mon, 02 Nov 2026 13:05 AM GMT",
        "2026年11月2日 25点",
        "星期一 2026年2月30日 10:05",
        "Mon Feb 30 10:00:00 CST 2026",
        "-0001-11-30T00:00:00+00:00",  # PHP's MySQL zero date; feedparser: 1 January 2000
    ],
)
def test_dates_that_do_not_exist_are_invalid_not_left_to_feedparser(raw):
    with pytest.raises(InvalidDate):
        parse_date(raw, SH)


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("September 2008", (2008, 8, 31, 16)),  # midnight of the 1st in the source's zone
        ("May 2010", (2010, 4, 30, 16)),
        ("Sep 2008", (2008, 8, 31, 16)),
        ("Sept. 2008", (2008, 8, 31, 16)),
        ("September, 2008", (2008, 8, 31, 16)),
        ("septiembre de 2008", (2008, 8, 31, 16)),
        ("Mai 2011", (2011, 4, 30, 16)),
        ("2008-09", (2008, 8, 31, 16)),  # feedparser: midnight UTC
        ("2008-9", (2008, 8, 31, 16)),
        ("2008/09", (2008, 8, 31, 16)),  # feedparser: 2008 in the month it was read in
        ("2008.09", (2008, 8, 31, 16)),
        ("2008年9月", (2008, 8, 31, 16)),  # feedparser: 2008 in the month it was read in
        ("2008 年 09 月", (2008, 8, 31, 16)),
    ],
)
def test_a_month_alone_is_its_first_day(raw, utc):
    """An archive dated by the month (speedparser2011's feeds_0197: `<pubDate>September
    2008</pubDate>`) was undated: its 2008-2011 posts were all dated when fetched, on top."""
    assert parse_date(raw, SH) == datetime(*utc, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["2008-13", "2008/00", "2008年13月", "May 0000"])
def test_a_month_that_does_not_exist_is_no_date(raw):
    with pytest.raises(InvalidDate):
        parse_date(raw, SH)


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_feed_dated_by_the_month_keeps_its_dates(parser):
    """Every entry of the month-dated library archive is dated the first of its month, at
    midnight in the source's zone, by either parse path (none was, before)."""
    body = (CORPUS / "speedparser2011" / "speedparser__feeds_0197.dat.xml").read_bytes()
    src = Source(key="http://127.0.0.1/m.xml", url="http://127.0.0.1/m.xml", timezone="America/Chicago")
    feed = parser(src.key, body, src.url)
    posts = normalize_entries(src, feed, NOW)
    written = [e["published"] for e in feed.entries]
    assert len(posts) == len(written) == 372 and all(re.fullmatch(r"[A-Z][a-z]+ 20(0[89]|1[01])", w) for w in written)
    want = [datetime.strptime("1 " + w, "%d %B %Y").replace(tzinfo=CHI).astimezone(UTC) for w in written]
    assert [(p.published, p.updated, p.dated) for p in posts] == [(w, w, True) for w in want]


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("Seg, 24 Set 2018 19:22:00 -0300", (2018, 9, 24, 22, 22)),  # Brazilian Portuguese
        ("mar., 5 févr. 2019 10:00:00 +0100", (2019, 2, 5, 9, 0)),
        ("Di, 12 Mär 2024 08:00:00 +0100", (2024, 3, 12, 7, 0)),
        ("Sáb, 01 Dic 2018 10:00 GMT", (2018, 12, 1, 10, 0)),
        ("24 de setembro de 2018 19:22 -0300", (2018, 9, 24, 22, 22)),
        ("5. März 2024 10:00 +0100", (2024, 3, 5, 9, 0)),
        ("1 juil. 2020 12:00 GMT", (2020, 7, 1, 12, 0)),
    ],
)
def test_month_names_of_other_languages_are_read(raw, utc):
    assert parse_date(raw, SH) == datetime(*utc, tzinfo=UTC)


def test_a_month_prefix_shared_by_two_months_is_not_guessed():
    assert parse_date("1 Jui 2020 10:00 GMT", SH) is None  # juin or juillet


def test_a_brazilian_feed_keeps_its_dates():
    """rss-parser's UOL feed dates its items `Seg, 24 Set 2018 19:22:00 -0300`: every post
    took the time it was fetched as its date."""
    path = CORPUS / "suites" / "rss-parser__test_input_uolNoticias.rss"
    posts = posts_from(path.read_bytes(), ctype="application/rss+xml")
    assert posts and all(p.dated for p in posts)
    assert {p.published.date() for p in posts} == {datetime(2018, 9, 24).date()}
    assert max(p.published for p in posts) == datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)


def test_a_leap_second_and_24_00_are_real_times():
    assert parse_date("Sat, 31 Dec 2016 23:59:60 GMT", SH) == datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_date("2024-12-31T24:00:00Z", SH) == datetime(2025, 1, 1, tzinfo=UTC)


def test_an_entry_dated_on_a_day_that_does_not_exist_has_no_date():
    """feedparser rolled `2024-13-45` over into 1 January 2025 and 30 February into 1 March:
    a post dated on a day its feed never wrote. It is undated (first seen) instead, on the
    feedparser path (RSS with a DOCTYPE) as on the fast one and in JSON Feed."""
    items = (
        "<item><link>http://e.org/1</link><pubDate>2024-13-45</pubDate></item>"
        "<item><link>http://e.org/2</link><pubDate>Fri, 30 Feb 2024 10:00:00 +0000</pubDate></item>"
        "<item><link>http://e.org/3</link><pubDate>Thu, 29 Feb 2024 10:00:00 +0000</pubDate></item>"
    )
    for feed in (rss(items), rss(items).replace("<rss", '<!DOCTYPE rss SYSTEM "x.dtd"><rss', 1)):
        bad_month, bad_day, leap_day = posts_from(feed)
        assert bad_month.published == bad_day.published == NOW and not bad_month.dated and not bad_day.dated
        assert leap_day.published == datetime(2024, 2, 29, 10, tzinfo=UTC) and leap_day.dated
    item = {"id": "1", "url": "https://e.org/1", "content_text": "x", "date_published": "2024-13-45T10:00:00Z"}
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [item]}
    (post,) = posts_from(json.dumps(doc), ctype="application/feed+json")
    assert post.published == NOW and not post.dated


def test_date_fallbacks_published_updated_created_first_seen():
    (created,) = posts_of(FP / "atom" / "entry_created_parsed.xml")
    assert created.published == datetime(2003, 12, 31, 10, 14, 55, tzinfo=UTC) and created.dated
    (updated,) = posts_of(FP / "atom" / "entry_modified_map_updated_parsed.xml")
    assert updated.published == updated.updated == datetime(2004, 1, 1, 19, 48, 21, tzinfo=UTC)
    placeholder, undated = posts_from(
        rss(
            "<item><link>http://e.org/1</link><pubDate>Mon, 01 Jan 0001 00:00:00 +0000</pubDate></item>"
            "<item><link>http://e.org/2</link></item>"
        )
    )
    assert placeholder.published == undated.published == NOW  # first seen
    assert not placeholder.dated and not undated.dated


def test_json_feed_dates_with_zones():
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "j",
        "items": [
            {"id": "1", "url": "https://e.org/1", "content_text": "x", "date_published": "2024-05-01T10:00:00+08:00"},
            {"id": "2", "url": "https://e.org/2", "content_text": "y", "date_modified": "2024-05-02T00:00:00Z"},
        ],
    }
    one, two = posts_from(json.dumps(doc), ctype="application/feed+json", timezone="Asia/Shanghai")
    assert one.published == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert two.published == two.updated == datetime(2024, 5, 2, tzinfo=UTC)


def test_json_feed_title_and_summary_are_plain_text():
    """JSON Feed says `title` and `summary` are plain text: a `<` in them is a character, not
    the start of a tag whose text would be dropped (as a reader of the JSON itself shows it)."""
    items = [
        {"id": "1", "url": "https://e.org/1", "title": "Use <video> & <audio> tags: 5 < 6", "content_html": "<p>x</p>",
         "summary": "Compare vector<int> and list<int>"},
        {"id": "2", "url": "https://e.org/2", "title": "Why std::vector<int> beats arrays &#8211; again",
         "summary": "a <b>plain</b> summary\nsecond line"},
    ]  # fmt: skip
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": items}
    one, two = posts_from(json.dumps(doc), ctype="application/feed+json")
    assert one.title == "Use <video> & <audio> tags: 5 < 6"
    assert one.summary == "Compare vector&lt;int&gt; and list&lt;int&gt;"
    assert two.title == "Why std::vector<int> beats arrays \u2013 again"  # references read (WordPress writes them)
    # no content: the summary is the content, as text made HTML
    assert two.content == "a &lt;b&gt;plain&lt;/b&gt; summary<br>\nsecond line"


# --------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("file", "title"),
    [
        ("atom10/entry_title_escaped_markup.xml", "Example Atom"),  # type="html": tags stripped
        ("atom10/entry_title_inline_markup.xml", "Example Atom"),  # type="xhtml"
        ("atom10/entry_title_inline_markup_2.xml", "History of the <blink> tag"),  # entity decoded, not a tag
        ("atom10/entry_title_text_plain_brackets.xml", "History of the <blink> tag"),  # type="text": literal
        ("atom/entry_title_base64.xml", "Example <b>Atom</b>"),  # Atom 0.3 default type is text/plain
        ("rss/item_title.xml", "Item 1 title"),
    ],
)
def test_titles_are_plain_text(file, title):
    assert posts_of(FP / file)[0].title == title


CJK_BODY = "我市坚持把人才作为创新之要，深入实施人才强市战略，取得了显著成效，为高质量发展注入源头活水。"


def test_title_entities_and_fallbacks():
    entity, cjk, bare, nothing = posts_from(
        rss(
            "<item><title>AT&amp;amp;T &lt;b&gt;rocks&lt;/b&gt; &amp;#8220;q&amp;#8221;</title><link>http://e.org/1</link></item>"
            "<item><link>http://e.org/2</link><description>"
            f"&lt;p&gt;{CJK_BODY}&lt;/p&gt;"
            "</description></item>"
            "<item><link>http://e.org/3</link></item>"
            "<item><description>&lt;img src='http://e.org/i.png'&gt;</description></item>"
        )
    )
    assert entity.title == "AT&T rocks \u201cq\u201d"
    assert (
        cjk.title
        == "我市坚持把人才作为创新之要，深入实施人才强市战略，取得了显著成效，为高质量发展注入源头活水。"[:30] + "…"
    )  # noqa: E501
    assert bare.title == "http://e.org/3"
    assert nothing.title == ""  # nothing to make one of: the publishers name it, in the site's language
    assert nothing.hashed and nothing.id == post_id("http://e.org/feed", _hash("(untitled)\n" + nothing.content))
    # CJK words run long: one space (a byline) no longer makes the whole paragraph the title
    (byline,) = posts_from(
        rss(f"<item><link>http://e.org/4</link><description>□陈英 {CJK_BODY * 3}</description></item>")
    )
    assert byline.title.startswith("□陈英 我市坚持") and byline.title.endswith("…") and len(byline.title) <= 32


def test_plain_text_titles_keep_no_character_xml_forbids():
    """An ill-formed feed (feedparser's loose parser) can carry U+FFFF raw or as `&#xFFFF;` in
    a plain-text title, which is not HTML and so never meets the sanitizer."""
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><entry><id>urn:1</id>'
        "<title>a \uffff&#xFFFF;b\x01c\ufffe</title></entry></feed>"
    )
    (post,) = posts_from(atom)
    assert post.title == "a bc"
    (item,) = posts_from('<?xml version="1.0" encoding="utf-8"?>' + rss("<item><title>x\uffff y</title></item>"))
    assert item.title == "x y"


# --------------------------------------------------------------------------- content


def test_full_content_preferred_and_summary_kept():
    (post,) = posts_of(FP / "atom10" / "entry_content_and_summary.xml")
    assert post.content == "Example Atom" and post.summary == "Summary"
    (only,) = posts_of(FP / "atom" / "entry_summary.xml")
    assert only.content == "Example Atom" and only.summary == ""  # kept once, as the content


def test_relative_urls_resolve_against_xml_base_then_entry_link_then_feed_url():
    body = """<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://base.example/feed/">
      <title>t</title>
      <entry><id>1</id><title>based</title><link href="http://e.org/a/post.html"/>
        <content type="html" xml:base="http://cdn.example/x/">&lt;img src="i.png"&gt;</content></entry>
    </feed>"""
    (based,) = posts_from(body)
    assert 'src="http://cdn.example/x/i.png"' in based.content  # xml:base wins
    body = rss(
        "<item><title>a</title><link>http://e.org/a/post.html</link>"
        '<description>&lt;a href="next.html"&gt;n&lt;/a&gt;</description>'
        '<enclosure url="/media/ep1.mp3" length="123" type="audio/mpeg"/><comments>/c/1</comments></item>'
        "<item><title>b</title><link>/b/post.html</link><description>&lt;img src=pic.jpg&gt;</description></item>"
    )
    a, b = posts_from(body, url="http://feeds.example/rss/feed.xml")
    assert 'href="http://e.org/a/next.html"' in a.content  # against the entry link
    assert a.enclosures[0].url == "http://feeds.example/media/ep1.mp3"  # against the feed URL
    assert a.comments == "http://feeds.example/c/1"
    assert b.link == "http://feeds.example/b/post.html"
    assert 'src="http://feeds.example/b/pic.jpg"' in b.content


def test_lazy_media_noscript_and_autoplay_in_a_feed_entry():
    """A post with one <noscript> published its lazy image's placeholder and its tracking
    pixels; a WeChat video embed (lazy: data-src) vanished; an autoplaying clip could not be
    started. Through the feed, relative URLs resolved against the entry's link."""
    content = (
        '<p><img data-src="photo.jpg" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt=\'He said "hi"\'></p>'
        '<img src="https://feeds.feedburner.com/~r/x/~4/abc" width="1" height="1">'
        '<noscript><img height="1" width="1" src="https://www.facebook.com/tr?id=1"></noscript>'
        '<p>视频：</p><iframe class="video_iframe" data-src="https://v.qq.com/txp/iframe/player.html?vid=x0123abcd">'
        '</iframe><video autoplay muted loop preload="auto" src="clip.mp4"></video>'
    )
    (post,) = posts_from(
        rss(f"<item><link>http://e.org/a/1.html</link><description><![CDATA[{content}]]></description></item>")
    )
    assert post.content == (
        '<p><img src="http://e.org/a/photo.jpg" alt="He said &quot;hi&quot;"></p><p>视频：</p>'
        '<iframe class="video_iframe" src="https://v.qq.com/txp/iframe/player.html?vid=x0123abcd" '
        'sandbox="allow-scripts allow-same-origin allow-popups"></iframe>'
        '<video muted="" loop="" preload="metadata" src="http://e.org/a/clip.mp4" controls=""></video>'
    )


# --------------------------------------------------------------------------- authors, tags, enclosures, language


def test_authors_tags_enclosures_language_comments():
    (post,) = posts_of(FP / "atom10" / "entry_author_email.xml")
    assert post.authors[0].email == "me@example.com"
    (post,) = posts_of(FP / "atom10" / "entry_author_uri.xml")
    assert post.authors[0].url == "http://example.com/"
    (post,) = posts_of(FP / "rss" / "item_author_map_author_detail_name.xml")
    assert post.authors[0].name == "Example editor"
    (post,) = posts_of(FP / "rss" / "item_category_multiple.xml")
    assert post.tags == ("Example category 1", "Example category 2")
    (post,) = posts_of(FP / "rss" / "item_enclosure_multiple.xml")
    assert [e.url for e in post.enclosures] == ["http://example.com/1", "http://example.com/2"]
    (post,) = posts_of(FP / "lang" / "entry_content_xml_lang.xml")
    assert post.language == "en"
    (post,) = posts_from(rss("<item><title>x</title></item>", channel="<language>zh-CN</language>"))
    assert post.language == "zh-CN"
    (post,) = posts_of(FP / "rss" / "item_comments.xml")
    assert post.comments == "http://example.com/"


def test_atom_feed_author_applies_to_entries_without_one():
    body = """<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
      <author><name>Feed Author</name><uri>https://e.org/me</uri></author>
      <entry><id>1</id><title>a</title><link href="https://e.org/1"/></entry>
      <entry><id>2</id><title>b</title><link href="https://e.org/2"/><author><name>Guest</name></author></entry>
    </feed>"""
    a, b = posts_from(body)
    assert a.authors == (Author("Feed Author", None, "https://e.org/me"),)
    assert [x.name for x in b.authors] == ["Guest"]


@pytest.mark.parametrize(
    "file",
    [
        "suites/rss-parser__test_input_giantbomb-podcast.rss",
        "suites/feedjira__spec_sample_feeds_itunes_feedburner.xml",
        "suites/RSParser__Tests_RSParserTests_Resources_theomnishow.rss",
        "kagi/fastfeedparser__benchmark_data_1a2c4a5be370d054.xml",
    ],
)
def test_podcast_enclosures_survive(file):
    """Every <enclosure> of a real podcast feed comes out with its URL, type and length."""
    path = CORPUS / file
    tree = lxml.etree.fromstring(path.read_bytes(), lxml.etree.XMLParser(recover=True))
    want = {
        (e.get("url").strip(), e.get("type"), int(e.get("length")) if (e.get("length") or "").isdigit() else None)
        for e in tree.iter("enclosure")
    }
    got = {(e.url, e.type, e.length) for p in posts_of(path) for e in p.enclosures}
    assert want and want <= got


def test_a_title_made_from_the_content_or_the_link_is_capped_too():
    """An untitled entry takes its first words, else its link, as its title: uncapped, two
    words of 300,000 characters (a base64 blob, a minified script's text) were a 600 KB
    title copied into every feed and page of the category."""
    from aggregator.normalize import TITLE_MAX

    blob = "A" * 300_000
    items = (
        f"<item><link>http://e.org/1</link><description>{blob} {blob} end</description></item>"
        f"<item><link>http://e.org/{'p' * 5000}</link></item>"
    )
    from_words, from_link = posts_from(rss(items))
    assert len(from_words.title) <= TITLE_MAX and from_words.title.startswith("AAAA")
    assert len(from_link.title) <= TITLE_MAX and from_link.title.startswith("http://e.org/ppp")


def test_a_plain_text_content_stays_literal_in_the_summary_too():
    """Atom `type="text"` content with no summary: the parsers copy it into the summary with
    no type, and it was read as HTML there, so `<tags>` written as text vanished from every
    RSS description, JSON summary and site excerpt (the content itself was right)."""
    text = "Plain text content with &lt;tags&gt; shown literally, a &lt;b&gt;vector&lt;int&gt;."
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>'
        '<entry><id>urn:1</id><title>T</title><link href="http://e.org/1"/>'
        f'<content type="text">{text}</content></entry></feed>'
    )
    (post,) = posts_from(atom)
    assert "with &lt;tags&gt; shown literally, a &lt;b&gt;vector&lt;int&gt;." in post.content
    assert "with &lt;tags&gt; shown literally, a &lt;b&gt;vector&lt;int&gt;." in post.summary


MEDIA_RSS = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>
<item><title>Photo</title><link>http://e.org/1</link><guid>p1</guid>
<media:content url="/img/big.jpg" medium="image" fileSize="12345"><media:title>inner</media:title></media:content>
<media:thumbnail url="thumb.png"/></item>
<item><title>Video</title><link>http://e.org/2</link><guid>p2</guid><media:group>
<media:content url="https://www.youtube.com/v/abc?version=3" type="application/x-shockwave-flash"/>
<media:thumbnail url="https://i2.ytimg.com/vi/abc/hqdefault.jpg" width="480" height="360"/>
<media:content url="https://cdn.example/watch?v=abc"/></media:group></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_media_rss_images_videos_and_thumbnails_become_enclosures(parser):
    """YouTube's and photo feeds' only media is Media RSS: a post of them had none. A Flash
    movie or a URL whose type nothing says is no attachment a reader can show. The photo's
    thumbnail is that photo small: no second picture; a video's is its only one."""
    url = "http://e.org/feed/"
    posts = normalize(Source(key=url, url=url), parser(url, MEDIA_RSS, url), NOW)
    assert {p.title: p.enclosures for p in posts} == {
        "Photo": (Enclosure("http://e.org/img/big.jpg", "image/jpeg", 12345),),
        "Video": (Enclosure("https://i2.ytimg.com/vi/abc/hqdefault.jpg", "image/jpeg", None),),
    }


PODCAST = b"""<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>t</title>
<itunes:image href="http://e.org/show.jpg"/>
<item><title>Ep 1</title><guid>e1</guid><itunes:image href="/art/ep1.png"/>
<enclosure url="http://e.org/ep1.mp3" type="audio/mpeg" length="1000"/></item>
<item><title>Ep 2</title><guid>e2</guid><enclosure url="http://e.org/ep2.mp3" type="audio/mpeg" length="2000"/></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_an_episode_image_is_kept_after_its_sound(parser):
    """A podcast episode's own artwork (`itunes:image`) was dropped; it comes after the sound,
    which stays RSS's one enclosure. The show's artwork is no episode's."""
    url = "http://e.org/feed/"
    posts = normalize(Source(key=url, url=url), parser(url, PODCAST, url), NOW)
    assert {p.title: p.enclosures for p in posts} == {
        "Ep 1": (
            Enclosure("http://e.org/ep1.mp3", "audio/mpeg", 1000),
            Enclosure("http://e.org/art/ep1.png", "image/png"),
        ),
        "Ep 2": (Enclosure("http://e.org/ep2.mp3", "audio/mpeg", 2000),),
    }


def test_a_json_feed_item_image_and_banner_become_enclosures():
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {"id": "1", "title": "With", "content_text": "x", "image": "https://e.org/a.jpg", "banner_image": "b.webp"},
            {"id": "2", "title": "Untyped", "content_text": "x", "image": "https://cdn.e.org/img?id=7"},
        ],
    }
    posts = posts_from(json.dumps(feed), url="https://e.org/feed.json", ctype="application/feed+json")
    assert {p.title: p.enclosures for p in posts} == {
        "With": (Enclosure("https://e.org/a.jpg", "image/jpeg"), Enclosure("https://e.org/b.webp", "image/webp")),
        "Untyped": (),  # nothing says its type: no attachment a reader could show
    }


# --------------------------------------------------------------------------- links

FRAGMENT_LINKS = b"""<rss version="2.0"><channel><title>t</title><link>#</link>
<item><title>A</title><link>#</link><description>first</description></item>
<item><title>B</title><link> #top </link><description>second</description></item>
<item><title>C</title><link></link><guid>http://e.org/c</guid><description>third</description></item>
<item><title>D</title><link>http://e.org/d</link><description>fourth</description></item>
</channel></rss>"""

FRAGMENT_LINKS_ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://e.org/blog/">
<title>t</title><id>urn:f</id><link href="#"/>
<entry><id>urn:1</id><title>A</title><link href="http://e.org/a"/><link href="#"/>
<link rel="enclosure" href="#" type="audio/mpeg"/><content>a</content></entry>
<entry><id>urn:2</id><title>B</title><link href=""/><content>b</content></entry>
</feed>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_fragment_only_or_empty_link_is_no_link(parser):
    """`<link>#</link>` was resolved to the feed's own URL: readers opened the XML, and each
    link-less entry took that URL for its identity, so every one after the first was dropped
    as a repeat. Such a link is no link: the entry is identified by its title and content, a
    permalink guid stands for its link, and entries with a real link keep their ids."""
    url = "http://e.org/feed.xml"
    assert parse_fast(FRAGMENT_LINKS, url) is not None  # parse_feed takes the fast path here
    feed = parser(url, FRAGMENT_LINKS, url)
    posts = {p.title: p for p in normalize(Source(key=url, url=url), feed, NOW)}
    assert sorted(posts) == ["A", "B", "C", "D"]
    assert [posts[t].link for t in "ABCD"] == [None, None, "http://e.org/c", "http://e.org/d"]
    assert posts["A"].guid != posts["B"].guid and url not in (posts["A"].guid, posts["B"].guid)
    assert posts["A"].canonical_link is None
    assert posts["C"].id == post_id(url, "http://e.org/c") and posts["D"].id == post_id(url, "http://e.org/d")
    assert feed_info(feed.info).link is None  # the source's home page is not the feed either


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_an_atom_link_to_the_document_itself_is_no_link(parser):
    """`href="#"` and `href=""` were resolved against xml:base: the last such alternate link
    replaced the entry's real one, and a `rel="enclosure"` one became an attachment."""
    url = "http://e.org/feed.atom"
    assert parse_fast(FRAGMENT_LINKS_ATOM, url) is not None
    feed = parser(url, FRAGMENT_LINKS_ATOM, url)
    a, b = normalize(Source(key=url, url=url), feed, NOW)
    assert (a.link, a.enclosures, a.id) == ("http://e.org/a", (), post_id(url, "urn:1"))
    assert (b.link, b.id) == (None, post_id(url, "urn:2"))
    assert feed_info(feed.info).link is None


SELF_GUIDS = b"""<rss version="2.0"><channel><title>t</title><guid>#</guid>
<item><title>A</title><guid>#</guid><description>first</description></item>
<item><title>B</title><guid isPermaLink="true"></guid><description>second</description></item>
<item><title>C</title><guid> #top </guid><description>third</description></item>
<item><title>D</title><guid>#</guid><link>http://e.org/d</link><description>fourth</description></item>
<item><title>E</title><guid isPermaLink="false">#</guid><link>http://e.org/e</link><description>fifth</description></item>
<item><title>F</title><guid>http://e.org/f</guid><description>sixth</description></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_permalink_guid_naming_the_feed_itself_is_no_guid_and_no_link(parser):
    """`<guid>#</guid>` is a permalink (RSS 2.0's default): resolved, it was the feed's own URL,
    the link of each entry without `<link>` (readers opened the XML) and the identity of every
    such entry, so all after the first were dropped as repeats of it. It is no guid and no link:
    each entry is identified as one without either (title and content), or by its own link."""
    url = "http://e.org/feed.xml"
    assert parse_fast(SELF_GUIDS, url) is not None  # parse_feed takes the fast path here
    feed = parser(url, SELF_GUIDS, url)
    posts = normalize(Source(key=url, url=url), feed, NOW)
    by = {p.title: p for p in posts}
    assert [p.title for p in posts] == ["A", "B", "C", "D", "E", "F"]  # each stored, none collapsed
    assert len({p.id for p in posts}) == 6
    assert [by[t].link for t in "ABCDEF"] == [None, None, None, "http://e.org/d", "http://e.org/e", "http://e.org/f"]
    assert all(url not in (p.guid, p.link) for p in posts)
    assert [by[t].hashed for t in "ABC"] == [True, True, True] and not by["D"].hashed
    assert by["D"].id == post_id(url, "http://e.org/d") and by["D"].linked  # identified by its link
    assert by["E"].id == post_id(url, "#")  # not a permalink: a guid as written, as before
    assert by["F"].id == post_id(url, "http://e.org/f")  # a real permalink guid: as before
    assert feed_info(feed.info).link is None  # the channel's `<guid>#</guid>` is not its home page


QUERY_LINKS = b"""<rss version="2.0"><channel><title>t</title><link>?</link>
<item><title>A</title><link>?</link><description>first</description></item>
<item><title>B</title><link> ?#top </link><description>second</description></item>
<item><title>C</title><link>?p=3</link><description>third</description></item>
<item><title>D</title><link>?</link><guid>http://e.org/d</guid><description>fourth</description></item>
<item><title>E</title><link>??</link><description>fifth</description></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_an_empty_query_alone_is_no_link_but_a_query_is_one(parser):
    """`<link>?</link>` resolves to the feed's own URL (an empty query names the same
    document), as `<link>#</link>` does: no link. `?p=3` names another page of the feed's
    URL: a link, kept. A permalink guid stands for the missing link, as for `#`."""
    url = "http://e.org/feed.xml"
    assert parse_fast(QUERY_LINKS, url) is not None
    feed = parser(url, QUERY_LINKS, url)
    posts = normalize(Source(key=url, url=url), feed, NOW)
    by = {p.title: p for p in posts}
    assert sorted(by) == ["A", "B", "C", "D", "E"] and len({p.id for p in posts}) == 5
    assert [by[t].link for t in "ABCD"] == [None, None, url + "?p=3", "http://e.org/d"]
    assert by["E"].link == url + "??"  # a query of one `?`: not empty, so a link
    assert by["A"].hashed and by["B"].hashed and by["A"].id != by["B"].id
    assert by["C"].id == post_id(url, url + "?p=3")
    assert feed_info(feed.info).link is None


@pytest.mark.parametrize("ref", ["?", "?#x", " ? ", "#", "#a", "", "  "])
def test_same_document_names_a_fragment_or_an_empty_query_alone(ref):
    assert same_document(ref)


@pytest.mark.parametrize("ref", ["?p=1", "??", "?=", "/", "./", "a#", "feed.xml", "http://e.org/feed.xml"])
def test_same_document_leaves_other_references_links(ref):
    assert not same_document(ref)


SELF_COMMENTS = b"""<rss version="2.0"><channel><title>t</title>
<item><title>A</title><link>http://e.org/a</link><comments>#</comments></item>
<item><title>B</title><link>http://e.org/b</link><comments> ? </comments></item>
<item><title>C</title><link>http://e.org/c</link><comments>#comments</comments></item>
<item><title>D</title><link>http://e.org/d</link><comments>d/comments</comments></item>
<item><title>E</title><link>http://e.org/e</link><comments></comments></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_comments_url_naming_the_feed_itself_is_no_comments_url(parser):
    """`<comments>#</comments>` was resolved to the feed's own URL and published as the post's
    comments page (`<comments>` in our RSS): readers following it opened the XML. It is none;
    a relative comments URL is still resolved."""
    url = "http://e.org/feed.xml"
    assert parse_fast(SELF_COMMENTS, url) is not None
    posts = normalize(Source(key=url, url=url), parser(url, SELF_COMMENTS, url), NOW)
    assert [p.title for p in posts] == ["A", "B", "C", "D", "E"]
    assert [p.comments for p in posts] == [None, None, None, "http://e.org/d/comments", None]


RELATIVE_MEDIA = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
 xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xml:base="http://cdn.e.org/show/"><channel><title>t</title>
<item><title>Ep 1</title><guid>e1</guid><enclosure url="media/a.mp3" type="audio/mpeg" length="10"/>
<itunes:image href="art/ep1.png"/></item>
<item xml:base="http://other.org/x/"><title>Ep 2</title><guid>e2</guid>
<media:content url="v.mp4" type="video/mp4" fileSize="20"/><media:thumbnail url="/t.jpg"/>
<enclosure url="#" type="audio/mpeg"/></item>
</channel></rss>"""

RELATIVE_MEDIA_ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/"
 xml:base="http://cdn.e.org/blog/"><title>t</title><id>urn:f</id>
<entry xml:base="2026/"><id>urn:1</id><title>A</title><link href="a.html"/>
<link rel="enclosure" href="a.mp3" type="audio/mpeg"/><media:content url="a.jpg" type="image/jpeg"/></entry>
</feed>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_relative_enclosures_are_resolved_against_their_xml_base(parser):
    """A relative enclosure or Media RSS URL was resolved against the feed's URL, though the
    xml:base in effect on it (on the feed or the entry) says otherwise, and links beside it
    were resolved against that: the sound, video or image was looked for on the wrong host.
    An enclosure that names the document itself (`url="#"`) is none."""
    url = "http://e.org/feed.xml"
    assert parse_fast(RELATIVE_MEDIA, url) is not None and parse_fast(RELATIVE_MEDIA_ATOM, url) is not None
    posts = normalize(Source(key=url, url=url), parser(url, RELATIVE_MEDIA, url), NOW)
    assert {p.title: p.enclosures for p in posts} == {
        "Ep 1": (
            Enclosure("http://cdn.e.org/show/media/a.mp3", "audio/mpeg", 10),
            Enclosure("http://cdn.e.org/show/art/ep1.png", "image/png"),
        ),
        "Ep 2": (
            Enclosure("http://other.org/x/v.mp4", "video/mp4", 20),
            Enclosure("http://other.org/t.jpg", "image/jpeg"),
        ),
    }
    (post,) = normalize(Source(key=url, url=url), parser(url, RELATIVE_MEDIA_ATOM, url), NOW)
    assert post.link == "http://cdn.e.org/blog/2026/a.html"
    assert post.enclosures == (
        Enclosure("http://cdn.e.org/blog/2026/a.mp3", "audio/mpeg"),
        Enclosure("http://cdn.e.org/blog/2026/a.jpg", "image/jpeg"),
    )


MEDIA_DESCRIPTIONS = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>
<item><title>Plain</title><guid>m1</guid><link>http://e.org/1</link>
<media:description>if a &lt; b &amp;&amp; c &gt; d:
  print("&lt;i&gt;")

Full video: https://e.org/v</media:description></item>
<item><title>Typed plain</title><guid>m2</guid><link>http://e.org/2</link>
<media:group><media:description type="plain">AT&amp;T &lt;3
bye</media:description></media:group></item>
<item><title>Html</title><guid>m3</guid><link>http://e.org/3</link>
<media:description type="html">&lt;p&gt;An &lt;b&gt;HTML&lt;/b&gt; one&lt;/p&gt;</media:description></item>
</channel></rss>"""

MEDIA_DESCRIPTION_ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<title>t</title><id>urn:f</id><entry><id>urn:1</id><title>Video</title><link href="http://e.org/v"/>
<media:group><media:title>Video</media:title><media:description>Ask me: &lt;b&gt;?
Q&amp;A at 5</media:description></media:group></entry></feed>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_media_description_is_plain_text_unless_typed_html(parser):
    """Media RSS's media:description is plain text unless `type="html"` (YouTube's, a video's
    only text, is): it was read as HTML, so `<i>` and `a < b` written as text vanished or
    swallowed what followed, and its paragraphs ran together. Now it is shown literally
    with its line breaks, as other plain text is; an `html` one stays HTML."""
    url = "http://e.org/feed.xml"
    assert parse_fast(MEDIA_DESCRIPTIONS, url) is not None and parse_fast(MEDIA_DESCRIPTION_ATOM, url) is not None
    posts = {p.title: p for p in normalize(Source(key=url, url=url), parser(url, MEDIA_DESCRIPTIONS, url), NOW)}
    assert posts["Plain"].content == (
        'if a &lt; b &amp;&amp; c &gt; d:<br>\n  print("&lt;i&gt;")<br>\n<br>\nFull video: https://e.org/v'
    )
    assert posts["Typed plain"].content == "AT&amp;T &lt;3<br>\nbye"
    assert posts["Html"].content == "<p>An <b>HTML</b> one</p>"
    (video,) = normalize(Source(key=url, url=url), parser(url, MEDIA_DESCRIPTION_ATOM, url), NOW)
    assert video.content == "Ask me: &lt;b&gt;?<br>\nQ&amp;A at 5"


def test_a_json_feed_item_url_of_a_fragment_is_no_link():
    """JSON Feed's `"url": "#"` was resolved to the feed's URL, as `<link>#</link>` was: the
    items without an id shared it as their identity, and all but the first were dropped."""
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {"url": "#", "title": "A", "content_text": "a"},
            {"url": "#", "title": "B", "content_text": "b", "attachments": [{"url": "#", "mime_type": "audio/mpeg"}]},
            {"id": "3", "url": "#top", "external_url": "https://o.org/3", "title": "C", "content_text": "c"},
        ],
    }
    url = "https://e.org/feed.json"
    posts = posts_from(json.dumps(feed), url=url, ctype="application/feed+json")
    assert [(p.title, p.link, p.enclosures) for p in posts] == [
        ("A", None, ()),
        ("B", None, ()),
        ("C", "https://o.org/3", ()),
    ]
    assert posts[2].id == post_id(url, "3")


# ------------------------------------------------------------------ podcast durations

DURATIONS = [  # (itunes:duration as written, seconds kept)
    ("3600", 3600),
    ("45:30", 2730),
    ("1:02:03", 3723),
    (" 01:02:03 ", 3723),
    ("90:05", 5405),  # MM:SS past an hour, as many hosts write it
    ("1:02:03.750", 3723),
    ("2750.4", 2750),
    ("45 min", None),  # junk: no duration, the episode kept
    ("1:75:00", None),
    ("12:99", None),
    ("0", None),
    ("00:00:00", None),
    ("", None),
    ("9999999999", None),  # milliseconds, or nonsense: longer than a week
]
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_itunes_duration_is_kept_with_the_episode_sound(parser):
    """`itunes:duration` was dropped: podcast apps reading our feeds showed no length. Its three
    forms give seconds, on both parse paths; junk gives none and costs nothing else."""
    items = "".join(
        f"<item><title>Ep {i}</title><guid>e{i}</guid><itunes:duration>{raw}</itunes:duration>"
        f'<enclosure url="http://e.org/{i}.mp3" type="audio/mpeg" length="1000"/></item>'
        for i, (raw, _) in enumerate(DURATIONS)
    )
    body = f'<rss version="2.0" xmlns:itunes="{ITUNES}"><channel><title>t</title>{items}</channel></rss>'.encode()
    url = "http://e.org/feed/"
    posts = normalize(Source(key=url, url=url), parser(url, body, url), NOW)
    assert [p.enclosures for p in posts] == [
        (Enclosure(f"http://e.org/{i}.mp3", "audio/mpeg", 1000, seconds),) for i, (_, seconds) in enumerate(DURATIONS)
    ]


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_duration_belongs_to_the_sound_or_video_not_the_image(parser):
    """The episode's image comes first here, and its sound is typed only by its file name: the
    duration is still the sound's. An episode with no sound or video has nothing to give it to."""
    body = f"""<rss version="2.0" xmlns:itunes="{ITUNES}"><channel><title>t</title>
    <item><title>A</title><guid>a</guid><itunes:duration>10:00</itunes:duration>
      <enclosure url="http://e.org/a.jpg" type="image/jpeg" length="5"/>
      <enclosure url="http://e.org/a.m4a" type="application/octet-stream" length="9"/></item>
    <item><title>B</title><guid>b</guid><itunes:duration>10:00</itunes:duration></item>
    <item><title>C</title><guid>c</guid><itunes:duration>1:00:00</itunes:duration>
      <enclosure url="http://e.org/c.mp4" type="video/mp4" length="7"/></item>
    </channel></rss>""".encode()
    url = "http://e.org/feed/"
    a, b, c = normalize(Source(key=url, url=url), parser(url, body, url), NOW)
    assert a.enclosures == (
        Enclosure("http://e.org/a.jpg", "image/jpeg", 5),
        Enclosure("http://e.org/a.m4a", "application/octet-stream", 9, 600),
    )
    assert b.enclosures == ()
    assert c.enclosures == (Enclosure("http://e.org/c.mp4", "video/mp4", 7, 3600),)


def test_a_json_feed_attachment_duration_is_read():
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "items": [
            {
                "id": "1",
                "content_text": "x",
                "attachments": [
                    {"url": "https://e.org/1.mp3", "mime_type": "audio/mpeg", "duration_in_seconds": 1830.6},
                    {"url": "https://e.org/1.pdf", "mime_type": "application/pdf", "duration_in_seconds": 5},
                    {"url": "https://e.org/1.ogg", "mime_type": "audio/ogg", "duration_in_seconds": "soon"},
                ],
            }
        ],
    }
    (post,) = posts_from(json.dumps(feed), url="https://e.org/feed.json", ctype="application/feed+json")
    assert post.enclosures == (
        Enclosure("https://e.org/1.mp3", "audio/mpeg", None, 1830),
        Enclosure("https://e.org/1.pdf", "application/pdf"),  # a document plays for no time
        Enclosure("https://e.org/1.ogg", "audio/ogg"),
    )


def test_a_post_without_durations_keeps_its_content_hash():
    """Ids and content hashes decide what readers see as new or edited: an enclosure with no
    duration hashes (and is stored) as before durations were kept."""
    item = "<guid>g</guid><link>http://e.org/g</link><title>t</title>"  # the link the guid `g` made before
    body = rss(f'<item>{item}<enclosure url="http://e.org/a.mp3" type="audio/mpeg"/></item>')
    (post,) = posts_from(body)
    assert post.enclosures[0].as_dict() == {"url": "http://e.org/a.mp3", "type": "audio/mpeg", "length": None}
    assert post.content_hash == "dd11e733bc69e76cdc583126258665b2"  # as the version before wrote it


# ------------------------------------------------------------------ a show's cover art

COVERED = f"""<rss version="2.0" xmlns:itunes="{ITUNES}"><channel><title>t</title>
<image><url>/logo.png</url><title>t</title><link>http://e.org/</link></image>
<itunes:image href="http://e.org/cover.jpg"/>
<item><title>Cover</title><guid>c</guid><itunes:image href="http://e.org/cover.jpg"/>
<enclosure url="http://e.org/c.mp3" type="audio/mpeg" length="1"/></item>
<item><title>Logo</title><guid>l</guid><itunes:image href="http://e.org/logo.png"/>
<enclosure url="http://e.org/l.mp3" type="audio/mpeg" length="2"/></item>
<item><title>Own</title><guid>o</guid><itunes:image href="http://e.org/own.jpg"/>
<enclosure url="http://e.org/o.mp3" type="audio/mpeg" length="3"/></item>
</channel></rss>""".encode()


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_the_show_cover_art_repeated_as_an_episode_image_is_not_the_episode_image(parser):
    """Many podcasts give every episode the show's artwork as its `itunes:image`: it showed
    under every episode. The same URL as the channel's itunes:image or <image><url> (here
    written relative) is the show's; an episode's own artwork is kept."""
    url = "http://e.org/feed/"
    posts = normalize(Source(key=url, url=url), parser(url, COVERED, url), NOW)
    assert {p.title: p.enclosures for p in posts} == {
        "Cover": (Enclosure("http://e.org/c.mp3", "audio/mpeg", 1),),
        "Logo": (Enclosure("http://e.org/l.mp3", "audio/mpeg", 2),),
        "Own": (Enclosure("http://e.org/o.mp3", "audio/mpeg", 3), Enclosure("http://e.org/own.jpg", "image/jpeg")),
    }


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_feed_whose_logo_and_podcast_cover_differ_has_the_podcast_cover(parser, store):
    """A show giving a wide `<image>` logo beside its square `itunes:image` cover had no cover
    stored (two that differ told none), so its category's RSS had no `itunes:image` and podcast
    apps showed none. The `itunes:image` is the cover, as Apple Podcasts and Overcast take it;
    two differing `itunes:image`s still tell none."""
    from aggregator.pipeline import ingest

    url = "http://e.org/feed/"
    src = Source(key=url, url=url, categories=("pods",))
    store.sync_sources([src])
    ingest(src, store, parser(url, COVERED, url), NOW)  # as a poll stores it, on either parser's path
    assert store.source_state(url).image == "http://e.org/cover.jpg"  # sources.image
    assert store.category_covers("pods") == ["http://e.org/cover.jpg"]  # the category's cover
    second = b'<channel><title>t</title><itunes:image href="http://e.org/other.jpg"/>'
    feed = parser(url, COVERED.replace(b"<channel><title>t</title>", second), url)
    assert feed_info(feed.info, feed.version, feed.images, feed.itunes_images).image is None


def test_an_rss_1_image_beside_the_channel_is_the_feed_image_on_both_paths():
    body = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
      xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
    <channel rdf:about="http://e.org/"><title>t</title><link>http://e.org/</link><description>d</description>
      <image rdf:resource="http://e.org/logo.png"/></channel>
    <image rdf:about="http://e.org/logo.png"><title>t</title><url>http://e.org/logo.png</url><link>http://e.org/</link></image>
    <item rdf:about="http://e.org/1"><title>a</title><link>http://e.org/1</link>
      <itunes:image href="http://e.org/logo.png"/></item>
    </rdf:RDF>"""
    url = "http://e.org/feed/"
    for parser in (parse_feed, parse_feedparser):
        feed = parser(url, body, url)
        assert feed.images == ["http://e.org/logo.png"], parser
        (post,) = normalize(Source(key=url, url=url), feed, NOW)
        assert post.enclosures == ()


def test_a_json_feed_icon_repeated_as_an_item_image_is_not_the_item_image():
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "t",
        "icon": "https://e.org/cover.jpg",
        "items": [
            {"id": "1", "title": "Cover", "content_text": "x", "image": "https://e.org/cover.jpg"},
            {"id": "2", "title": "Own", "content_text": "x", "image": "https://e.org/2.jpg"},
        ],
    }
    posts = posts_from(json.dumps(feed), url="https://e.org/feed.json", ctype="application/feed+json")
    assert {p.title: p.enclosures for p in posts} == {
        "Cover": (),
        "Own": (Enclosure("https://e.org/2.jpg", "image/jpeg"),),
    }


NON_URL_GUIDS = b"""<rss version="2.0"><channel><title>t</title><link>http://e.org/</link>
<item><title>A</title><guid>12345</guid><description>first</description></item>
<item><title>B</title><guid isPermaLink="true">posts/2</guid><description>second</description></item>
<item><title>C</title><guid>tag:e.org,2026:3</guid><description>third</description></item>
<item><title>D</title><guid>http://e.org/d</guid><description>fourth</description></item>
<item><title>E</title><guid>12346</guid><link>http://e.org/e</link><description>fifth</description></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_a_permalink_guid_that_is_no_absolute_url_is_no_link(parser):
    """`<guid>12345</guid>` is a permalink by RSS 2.0's default: resolved against the feed's
    URL it was the entry's link, `http://e.org/12345`, a page that never existed, in every
    output and the post page's button. Only an absolute http(s) guid is a link; the guid (the
    id) stays as resolved before, so no stored entry changes its id."""
    url = "http://e.org/feed.xml"
    assert parse_fast(NON_URL_GUIDS, url) is not None
    feed = parser(url, NON_URL_GUIDS, url)
    by = {p.title: p for p in normalize(Source(key=url, url=url), feed, NOW)}
    assert [by[t].link for t in "ABCDE"] == [None, None, None, "http://e.org/d", "http://e.org/e"]
    assert [by[t].guid for t in "ABC"] == ["http://e.org/12345", "http://e.org/posts/2", "tag:e.org,2026:3"]
    assert by["A"].id == post_id(url, "http://e.org/12345") and not by["A"].hashed and not by["A"].linked
    assert by["E"].id == post_id(url, "http://e.org/12346")


TWICE_ESCAPED = b"""<rss version="2.0"><channel><title>Tom &amp;amp; Jerry &lt;3</title><link>http://e.org/</link>
<item><title>Tom &amp;amp; Jerry</title><guid>http://e.org/1</guid></item>
<item><title>Tom &amp;amp; Jerry &lt;3</title><guid>http://e.org/2</guid></item>
<item><title>AT&amp;T &amp;copy2026 &amp;foo; &lt;3</title><guid>http://e.org/3</guid></item>
<item><title>caf&amp;#233; &amp;#x2603; &lt;-</title><guid>http://e.org/4</guid></item>
<item><title>Tom &amp;amp; Jerry &lt;3</title><description>no guid, no link</description></item>
</channel></rss>"""


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
def test_an_rss_title_escaped_twice_reads_the_same_whether_or_not_it_looks_like_html(parser):
    """`Tom &amp;amp; Jerry` was `Tom & Jerry` but `Tom &amp;amp; Jerry &lt;3` was `Tom &amp;
    Jerry <3`: feedparser takes an RSS title for HTML only when it looks like it (`<3` is no
    tag). Its character references are decoded either way; a bare `&`, an unknown name and
    one without `;` stay as written. An entry with neither guid nor link keeps its id."""
    url = "http://e.org/feed.xml"
    assert parse_fast(TWICE_ESCAPED, url) is not None
    feed = parser(url, TWICE_ESCAPED, url)
    posts = normalize(Source(key=url, url=url), feed, NOW)
    assert [p.title for p in posts] == [
        "Tom & Jerry",
        "Tom & Jerry <3",
        "AT&T &copy2026 &foo; <3",
        "café ☃ <-",
        "Tom & Jerry <3",
    ]
    assert feed_info(feed.info, feed.version).title == "Tom & Jerry <3"
    assert posts[4].hashed and posts[4].id == post_id(url, _hash("Tom &amp; Jerry <3\n" + posts[4].content))


def test_an_atom_text_title_keeps_its_references_as_written():
    """Atom says its title is text (`type="text"`, the default): `&amp;` in it is meant."""
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>Tom &amp;amp; Jerry &lt;3</title>
<entry><id>urn:1</id><title>Tom &amp;amp; Jerry &lt;3</title></entry></feed>"""
    feed = parse_feed("http://e.org/f", body, "http://e.org/f")
    (post,) = normalize(Source(key="http://e.org/f", url="http://e.org/f"), feed, NOW)
    assert post.title == "Tom &amp; Jerry <3" == feed_info(feed.info, feed.version).title


@pytest.mark.parametrize("parser", [parse_feed, parse_feedparser])
@pytest.mark.parametrize(
    ("channel", "home"),
    [
        # Planet GNOME: no alternate link, an `<id>` that is the feed's own (self) URL
        ('<id>https://p.example/atom.xml</id><link href="https://p.example/atom.xml" rel="self"/>', None),
        ('<id>http://p.example/atom.xml</id><link href="https://p.example/atom.xml" rel="self"/>', None),
        # a self link naming the site (abc.net.au's): the alternate link is still the home page
        ('<link href="https://p.example/" rel="self"/><link href="https://p.example/"/>', "https://p.example/"),
        ('<link href="http://e.org/feed.xml"/>', None),  # an alternate link that is the URL fetched
        ("<id>http://e.org/feed.xml</id>", None),  # the URL fetched
        ('<id>https://p.example/</id><link href="https://p.example/atom.xml" rel="self"/>', "https://p.example/"),
        ('<link href="https://p.example/"/><link href="https://p.example/atom.xml" rel="self"/>', "https://p.example/"),
    ],
)
def test_a_feed_linking_only_to_itself_has_no_home_page(parser, channel, home):
    """A home page that is the feed itself (the URL fetched; or, taken from the feed's `<id>`,
    its `rel="self"` link; whatever the scheme) is no HTML page: it was linked as the source's
    site on every post page and in the OPML. No home page then; an id or link naming another
    page still is one."""
    url = "http://e.org/feed.xml"
    body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>P</title>{channel}</feed>'.encode()
    assert parse_fast(body, url) is not None
    assert feed_info(parser(url, body, url).info).link == home


@pytest.mark.parametrize(("home", "kept"), [("http://e.org/feed.json", None), ("https://e.org/", "https://e.org/")])
def test_a_json_feed_whose_home_page_is_its_feed_url_has_none(home, kept):
    url = "https://e.org/feed.json"
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "home_page_url": home, "items": []})
    assert parse_feed(url, body.encode(), url).info.link == kept


def test_an_entry_identified_by_its_content_keeps_its_id_when_its_links_lose_the_urls_secret():
    """An entry with neither guid nor link is identified by its title and content; its `#fn1`,
    resolved against a URL with `?private_token=…`, no longer holds the token (see
    test_credentials), but its id is the one it always had: a new id is a new post."""
    url = "http://h.example/nolink.rss?private_token=SECRETXYZ"
    body = (
        b'<rss version="2.0"><channel><title>N</title><item><title>T</title>'
        b'<description><![CDATA[<p>x<a href="#fn1">1</a></p>]]></description></item></channel></rss>'
    )
    for parse in (parse_feed, parse_feedparser):
        feed = parse(url, body, url, {"content-type": "application/rss+xml"})
        (post,) = normalize(Source(key=url, url=url), feed, datetime(2030, 1, 1, tzinfo=UTC))
        assert post.content == '<p>x<a href="http://h.example/nolink.rss#fn1" rel="noopener noreferrer">1</a></p>'
        assert post.id == "2d3f2999c24dc7f9"  # the id it had when its content held the token
