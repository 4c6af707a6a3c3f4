"""Publishing costs little when little changed: a category whose posts did not change is not
regenerated, post pages are rendered only for new or changed posts, and publishing twice
writes nothing. Real HTTP (pytest-httpserver), real SQLite, the real `aggregator` command."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.config import load_config
from aggregator.publish import publish
from aggregator.store import Store
from bench.publish_differential import render

from .conftest import CORPUS, check_feeds, run_cli

ATOM = (CORPUS / "zh" / "gansu-economy.atom").read_text(encoding="utf-8")
RSS = (CORPUS / "zh" / "zhangye-daily.gbk.rss").read_bytes()

CONFIG = """\
site:
  title: Incremental
  url: https://news.example.org/
  language: zh-CN
  timezone: Asia/Shanghai
  posts_per_page: 1
categories:
  - name: 甘肃经济
    slug: economy
    sources:
      - url: {atom}
  - name: 张掖日报
    slug: zhangye
    sources:
      - url: {rss}
jekyll:
  dir: jekyll
"""

NEW_ENTRY = """<entry>
<title>新的一条</title>
<id>https://example.cn/gansu/economy/2022/02/11/003.html</id>
<link rel="alternate" href="https://example.cn/gansu/economy/2022/02/11/003.html"/>
<published>2022-02-11T09:00:00+08:00</published>
<updated>2022-02-11T09:00:00+08:00</updated>
<content type="html">&lt;p&gt;新内容&lt;/p&gt;</content>
</entry>
"""


def _exclude_jiuquan(cfg: Path) -> None:
    """Give the economy category an exclude rule that matches one of its two posts."""
    rule = "    slug: economy\n    exclude:\n      - title: 酒泉\n"
    cfg.write_text(cfg.read_text("utf-8").replace("    slug: economy\n", rule), "utf-8")


def files(*folders: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folders[0].parent)): p.stat().st_mtime_ns
        for folder in folders
        if folder.exists()
        for p in folder.rglob("*")
        if p.is_file()
    }


def changed(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {k for k in after if before.get(k) != after[k]} | {k for k in before if k not in after}


@pytest.fixture
def site(tmp_path: Path, httpserver: HTTPServer):
    """Two categories, each fed by one source; `serve(atom_text)` changes the first feed."""
    state = {"atom": ATOM}

    def atom_handler(request):
        from werkzeug import Response

        return Response(state["atom"].encode("utf-8"), content_type="application/atom+xml")

    httpserver.expect_request("/economy.atom").respond_with_handler(atom_handler)
    httpserver.expect_request("/zhangye.rss").respond_with_data(RSS, content_type="application/rss+xml")
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        CONFIG.format(atom=httpserver.url_for("/economy.atom"), rss=httpserver.url_for("/zhangye.rss")),
        encoding="utf-8",
    )

    def serve(text: str) -> None:
        state["atom"] = text

    return cfg, serve


def test_publish_twice_writes_nothing_the_second_time(site):
    cfg, _ = site
    root = cfg.parent
    first = run_cli("--config", str(cfg), "fetch")
    assert first.returncode == 0, first.stdout + first.stderr
    before = files(root / "public", root / "jekyll")
    assert len(before) > 20 and "public/index.html" in before and "public/opml.xml" in before
    for _ in range(2):
        again = run_cli("--config", str(cfg), "publish")
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("0 files written"), again.stdout
        assert files(root / "public", root / "jekyll") == before
    refetch = run_cli("--config", str(cfg), "fetch")
    assert "0 files written" in refetch.stdout
    assert files(root / "public", root / "jekyll") == before


def test_publish_restores_deleted_outputs(site):
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    post_page = next((root / "public" / "posts").rglob("*.html"))
    text = post_page.read_bytes()
    post_page.unlink()
    (root / "public" / "category" / "economy.html").unlink()
    result = run_cli("--config", str(cfg), "publish")
    assert result.stdout.startswith("2 files written"), result.stdout
    assert post_page.read_bytes() == text


def test_only_the_changed_category_is_regenerated(site):
    cfg, serve = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    before = files(root / "public", root / "jekyll")
    serve(ATOM.replace("<entry>", NEW_ENTRY + "<entry>", 1))
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0 and "1 new post;" in result.stdout, result.stdout
    after = files(root / "public", root / "jekyll")
    new_page = {k for k in after if k.startswith("public/posts/") and k not in before}
    assert len(new_page) == 1 and new_page.pop().startswith("public/posts/2022/02/")
    new_jekyll = {k for k in after if k.startswith("jekyll/") and k not in before}
    assert len(new_jekyll) == 1 and new_jekyll.pop().startswith("jekyll/_posts/2022-02-11-")
    touched = changed(before, after) - {k for k in after if k not in before}
    # One post per page: the new post shifts economy's pages 1-2 and adds a page 3.
    assert touched == {
        "public/category/economy.atom",
        "public/category/economy.rss",
        "public/category/economy.json",
        "public/category/economy.html",
        "public/category/economy/page/2.html",
        "public/feed.atom",
        "public/feed.rss",
        "public/feed.json",
        "public/index.html",
        "public/.aggregator-owner",  # the database's count of publishes that changed the folder
    }
    assert "public/category/economy/page/3.html" in after
    assert not any("zhangye" in k for k in changed(before, after))


def test_changed_post_gets_a_new_page_and_the_others_are_not_rendered(site):
    cfg, serve = site
    settings = load_config(cfg)
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    serve(ATOM.replace("酒泉市新能源产业持续壮大。", "酒泉市新能源产业持续壮大，再创新高。"))
    assert "0 new posts" in run_cli("--config", str(cfg), "fetch").stdout
    # The fetch above already published; publishing again in-process renders nothing.
    with Store(settings.database) as store:
        report = publish(settings, store)
        assert report.categories == [] and report.written == [] and report.posts_rendered == 0
    page = next(p for p in (cfg.parent / "public" / "posts").rglob("*.html") if "酒泉" in p.read_text("utf-8"))
    assert "再创新高" in page.read_text("utf-8")
    # Change it once more and publish in-process: exactly one post page is rendered.
    serve(ATOM.replace("酒泉市新能源产业持续壮大。", "酒泉市新能源产业持续壮大！"))
    from aggregator.fetch import Fetcher
    from aggregator.pipeline import update_source

    with Store(settings.database) as store:
        outcome = update_source(settings.source(settings.categories[0].source_keys[0]), store, Fetcher())
        assert outcome.updated == 1
        report = publish(settings, store)
        assert report.categories == ["economy"]
        assert report.posts_rendered == 1
        assert page in report.written
        forced = publish(settings, store, force=True)
        assert forced.posts_rendered == 5 and forced.written == []
    assert "持续壮大！" in page.read_text("utf-8")


def test_fewer_posts_remove_the_pages_past_the_end(site):
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    assert (root / "public" / "category" / "zhangye" / "page" / "3.html").is_file()
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("posts_per_page: 1", "posts_per_page: 2"), encoding="utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    assert (root / "public" / "category" / "zhangye" / "page" / "2.html").is_file()
    assert not (root / "public" / "category" / "zhangye" / "page" / "3.html").exists()


def test_a_database_from_before_revisions_is_migrated_and_fully_published(site):
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    con = sqlite3.connect(root / "aggregator.db")
    with con:  # turn it into the foundation's schema: no revisions, no publish state
        con.execute("DROP TABLE publish_state")
        con.execute("DROP INDEX IF EXISTS idx_posts_source_revision")
        con.execute("ALTER TABLE posts DROP COLUMN revision")
        con.execute("ALTER TABLE sources DROP COLUMN revision")
    con.close()
    for p in (root / "public" / "posts").rglob("*.html"):
        p.unlink()
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0, result.stderr
    assert len(list((root / "public" / "posts").rglob("*.html"))) == 5  # every post page written again
    con = sqlite3.connect(root / "aggregator.db")
    assert {"revision"} <= {r[1] for r in con.execute("PRAGMA table_info(posts)")}
    keys = {key for (key,) in con.execute("SELECT key FROM publish_state")}
    assert keys == {"category:economy", "category:zhangye", "site", "owner", "feed:updated", "serial"}


def test_store_revisions_move_only_with_post_changes(tmp_path):
    from datetime import UTC, datetime

    from aggregator.models import FeedInfo, Post, Source

    src = Source(key="http://e.org/f", url="http://e.org/f", categories=("a",))
    t = datetime(2024, 1, 1, tzinfo=UTC)

    def post(n: int, content: str = "x") -> Post:
        return Post(
            id=f"{n:016x}", source=src.key, guid=str(n), title=f"t{n}", link=None, published=t.replace(day=n),
            updated=t.replace(day=n), content=content, content_hash=content, first_seen=t,
        )  # fmt: skip

    with Store(tmp_path / "db.sqlite") as store:
        store.sync_sources([src])
        assert store.category_revisions("a")[src.key][0] == 0
        store.record_success(src.key, t, 200, info=FeedInfo(title="F"), posts=[post(1), post(2)])
        rev1, digest1 = store.category_revisions("a")[src.key]
        assert rev1 == 1
        store.record_success(src.key, t, 200, info=FeedInfo(title="F"), posts=[post(1), post(2)])
        assert store.category_revisions("a")[src.key] == (1, digest1)  # nothing changed
        store.record_success(src.key, t, 200, info=FeedInfo(title="F"), posts=[post(1), post(2, "y"), post(3)])
        assert store.category_revisions("a")[src.key][0] == 2
        assert [p.id for p in store.posts_changed_since(src.key, 1, 10)] == [post(3).id, post(2).id]
        assert [p.id for p in store.posts_changed_since(src.key, 0, 10)] == [post(3).id, post(2).id, post(1).id]
        store.record_success(src.key, t, 200, info=FeedInfo(title="Renamed"), posts=[])
        assert store.category_revisions("a")[src.key] != (2, digest1)  # a new name shows on pages
        assert [p.id for p in store.posts_for_category("a", 1, 1)] == [post(2).id]
        assert store.count_category_posts("a") == 3
        assert store.post(post(2).id).content == "y" and store.post("nope") is None


def test_changed_filter_rules_republish_only_that_category(site):
    """Rules are applied to stored posts when the config changes; the next publish redoes the
    categories whose published posts changed, and only those."""
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    atom = root / "public" / "category" / "economy.atom"
    assert "酒泉" in atom.read_text("utf-8")
    before = files(root / "public", root / "jekyll")
    text = cfg.read_text("utf-8")
    _exclude_jiuquan(cfg)
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stderr
    assert "酒泉" not in atom.read_text("utf-8") and "兰州新区" in atom.read_text("utf-8")
    touched = changed(before, files(root / "public", root / "jekyll"))
    assert "public/category/economy.atom" in touched and "public/feed.atom" in touched
    assert not any("zhangye" in k for k in touched), touched
    cfg.write_text(text, "utf-8")  # the rule removed: the post is published again
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert "酒泉" in atom.read_text("utf-8")


def _published(root: Path) -> set[str]:
    """Post pages and Jekyll files on disk, as paths relative to the site folder."""
    return {str(p.relative_to(root)) for folder in ("public/posts", "jekyll/_posts") for p in (root / folder).rglob("*")
            if p.is_file()}  # fmt: skip


def _files_of(root: Path, title: str, redirects: int = 0) -> set[str]:
    """The page, Jekyll file and `redirects` old pages of the post titled `title`."""
    with sqlite3.connect(root / "aggregator.db") as conn:
        (post_id,) = conn.execute("SELECT id FROM posts WHERE title = ?", [title]).fetchone()
    found = {f for f in _published(root) if post_id in f}
    assert len(found) == 2 + redirects, found
    return found


def test_a_post_filtered_out_loses_its_page_and_jekyll_file_and_gets_them_back(site):
    """An exclude rule added to take a post down takes down its page and Jekyll file too,
    not only its feed entries; the other posts' files are left alone."""
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    everything = _published(root)
    doomed = _files_of(root, "酒泉风电装机容量突破千万千瓦")
    text = cfg.read_text("utf-8")
    _exclude_jiuquan(cfg)
    before = files(root / "public", root / "jekyll")
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stderr
    assert _published(root) == everything - doomed
    # its two files and the now empty page 2, one of them in jekyll/
    assert f", 3 removed in {root / 'public'} and {root / 'jekyll'}" in result.stdout, result.stdout
    untouched = {k for k in before if k.startswith(("public/posts", "jekyll/_posts")) and k not in doomed}
    assert not untouched & changed(before, files(root / "public", root / "jekyll"))
    again = run_cli("--config", str(cfg), "publish")  # nothing left to take down
    assert again.stdout.startswith("0 files written") and _published(root) == everything - doomed
    cfg.write_text(text, "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _published(root) == everything


def test_a_post_taken_down_while_jekyll_was_off_loses_its_jekyll_file_when_it_is_back(site):
    """Turning the Jekyll export off and on again forgot the files of posts taken down
    meanwhile: they stayed in `_posts`, on the Jekyll site, for good."""
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    doomed = {f for f in _files_of(root, "酒泉风电装机容量突破千万千瓦") if f.startswith("jekyll/")}
    assert doomed and all((root / f).exists() for f in doomed)
    text = cfg.read_text("utf-8")
    cfg.write_text(text.replace("jekyll:\n  dir: jekyll\n", ""), "utf-8")
    _exclude_jiuquan(cfg)
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert all((root / f).exists() for f in doomed)  # off: the folder is no longer ours to manage
    cfg.write_text(cfg.read_text("utf-8") + "jekyll:\n  dir: jekyll\n", "utf-8")
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0, result.stderr
    assert not any((root / f).exists() for f in doomed), result.stdout
    kept = files(root / "jekyll")
    assert kept and all("_posts/" in k for k in kept)  # the other posts' files stay


def _updated(feed: Path) -> tuple[str, str]:
    """A feed's Atom `<updated>` and RSS `<lastBuildDate>`."""
    atom = re.search(r"<updated>([^<]+)</updated>", feed.with_suffix(".atom").read_text("utf-8"))
    rss = re.search(r"<lastBuildDate>([^<]+)</lastBuildDate>", feed.with_suffix(".rss").read_text("utf-8"))
    assert atom and rss
    return atom[1], rss[1]


def test_a_feeds_updated_time_never_goes_back_when_its_newest_post_leaves(site):
    """Taken down, the newest post took the feed's updated time with it: the feed said it
    was older than readers and caches had seen it."""
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    economy, everything = root / "public/category/economy.atom", root / "public/feed.atom"
    assert _updated(economy) == ("2022-02-09T23:30:00+00:00", "Wed, 09 Feb 2022 23:30:00 +0000")
    assert _updated(everything)[0] == "2022-02-10T02:38:21+00:00"
    text = cfg.read_text("utf-8")
    economy_rule = "    slug: economy\n    exclude:\n      - title: 兰州新区\n"
    zhangye_rule = "    slug: zhangye\n    exclude:\n      - title: 源头活水\n"
    cfg.write_text(text.replace("    slug: economy\n", economy_rule).replace("    slug: zhangye\n", zhangye_rule))
    assert cfg.read_text("utf-8").count("exclude:") == 2
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert "兰州新区" not in economy.read_text("utf-8") and "源头活水" not in everything.read_text("utf-8")
    assert _updated(economy) == ("2022-02-09T23:30:00+00:00", "Wed, 09 Feb 2022 23:30:00 +0000")
    assert _updated(everything)[0] == "2022-02-10T02:38:21+00:00"
    before = files(root / "public")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert not changed(before, files(root / "public"))  # the same bytes at every publish
    cfg.write_text(text, "utf-8")  # back: a newer post moves it on again as before
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _updated(economy)[0] == "2022-02-09T23:30:00+00:00"
    # empty for a while, the feed gives the time it became so; its posts back, not a time before it
    nothing = "    slug: economy\n    exclude:\n      - title: 兰州新区\n      - title: 酒泉\n"
    cfg.write_text(text.replace("    slug: economy\n", nothing), "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    emptied = _updated(economy)[0]
    assert emptied > "2026-" and "<entry>" not in economy.read_text("utf-8")
    cfg.write_text(text.replace("    slug: economy\n", economy_rule), "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert "酒泉" in economy.read_text("utf-8") and _updated(economy)[0] == emptied


def test_pruned_posts_and_removed_sources_lose_their_files(site):
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    everything = _published(root)
    old = _files_of(root, "酒泉风电装机容量突破千万千瓦")
    newest = _files_of(root, "兰州新区2021年地区生产总值增长18.5%")
    text = cfg.read_text("utf-8")
    limited = text.replace("  posts_per_page: 1\n", "  posts_per_page: 1\n  items_per_feed: 1\n").replace(
        "economy.atom\n", "economy.atom\n        keep_per_source: 1\n"
    )
    assert limited.count("keep_per_source") == 1
    cfg.write_text(limited, "utf-8")
    pruned = run_cli("--config", str(cfg), "prune")
    assert "removed 1 post " in pruned.stdout, pruned.stdout
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _published(root) == everything - old
    # the Zhangye source leaves the config: its posts' pages and Jekyll files go with it
    economy_only = limited[: limited.index("  - name: 张掖日报")] + limited[limited.index("jekyll:") :]
    cfg.write_text(economy_only, "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _published(root) == newest


def test_a_redated_post_keeps_its_jekyll_file_and_leaves_a_redirect_for_its_page(site):
    """The old page's URL was public: it sends readers on (tests/test_page_moves.py); the
    Jekyll file, whose date makes its URL in Jekyll, keeps its name and takes the correction."""
    cfg, serve = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    before = _files_of(root, "酒泉风电装机容量突破千万千瓦")
    page = next(f for f in before if f.startswith("public/"))
    assert "/2022/02/" in page
    corrected = (
        ATOM.replace("<published>2022-02-09T18:00:00+08:00", "<published>2022-03-09T18:00:00+08:00")
        .replace("<updated>2022-02-09T18:00:00+08:00", "<updated>2022-03-09T18:00:00+08:00")
        .replace("持续壮大。", "持续壮大（更正）。")
    )
    serve(corrected)  # corrected and re-dated a month later: its page moves, its Jekyll file stays
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    after = _files_of(root, "酒泉风电装机容量突破千万千瓦", redirects=1)
    assert page in after and page.replace("/2022/02/", "/2022/03/") in after
    assert 'http-equiv="refresh"' in (root / page).read_text("utf-8")
    jekyll = [f for f in after if "_posts/" in f]
    assert len(jekyll) == 1 and "_posts/2022-02-09-" in jekyll[0] and jekyll[0] in before
    assert "持续壮大（更正）。" in (root / jekyll[0]).read_text("utf-8")
    assert before - after == set()


def test_a_copy_of_the_deployment_or_a_new_output_folder_leaves_the_old_files_alone(site, tmp_path_factory):
    """Post files are known relative to their folders: publishing a copy of the whole site
    (staging, a restored backup) or into a new output folder deletes nothing elsewhere."""
    import shutil

    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    everything = _published(root)
    copy = tmp_path_factory.mktemp("staging") / "site"
    shutil.copytree(root, copy)
    staged = run_cli("--config", str(copy / "feeds.yaml"), "publish")
    assert staged.returncode == 0, staged.stderr
    assert _published(root) == everything and _published(copy) == everything
    moved = cfg.read_text("utf-8").replace("  posts_per_page: 1\n", "  posts_per_page: 1\n  output_dir: public2\n")
    cfg.write_text(moved, "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _published(root) == everything  # the old public/ is as it was
    assert any((root / "public2" / "posts").rglob("*.html"))


def test_a_stale_file_that_cannot_be_deleted_does_not_stop_publishing(site):
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    page = next(f for f in _files_of(root, "酒泉风电装机容量突破千万千瓦") if f.startswith("public/"))
    (root / page).unlink()
    (root / page).mkdir()  # something no unlink() can remove
    (root / page / "keep").write_text("x")
    _exclude_jiuquan(cfg)
    result = run_cli("--config", str(cfg), "-v", "publish")
    assert result.returncode == 0, result.stderr
    assert "could not remove" in result.stderr and (root / page).is_dir()
    (root / page / "keep").unlink()
    (root / page).rmdir()
    assert run_cli("--config", str(cfg), "publish").returncode == 0  # tried again: nothing left to do


def _category_files(root: Path, slug: str) -> set[str]:
    out = root / "public" / "category"
    own = {p.name for p in out.glob(f"{slug}.*")}
    return own | {f"{slug}/page/{p.name}" for p in (out / slug / "page").glob("*")}


def test_a_category_removed_or_renamed_loses_its_pages_and_feeds_and_gets_them_back(site):
    """Left in place they would be served, frozen, for good: subscribers would never learn."""
    cfg, _ = site
    root = cfg.parent
    text = cfg.read_text("utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    zhangye = _category_files(root, "zhangye")
    assert {"zhangye.html", "zhangye.atom", "zhangye.rss", "zhangye.json", "zhangye/page/2.html"} <= zhangye
    economy = {k for k in files(root / "public" / "category") if "economy" in k}
    before_posts = _published(root)

    cfg.write_text(text[: text.index("  - name: 张掖日报")] + text[text.index("jekyll:") :], "utf-8")
    result = run_cli("--config", str(cfg), "publish")
    assert result.returncode == 0 and "no longer configured" not in result.stderr, result.stderr  # none new: no hint
    posts = _published(root)
    removed = int(re.search(r"(\d+) removed", result.stdout)[1])
    assert removed == len(zhangye) + len(before_posts - posts), result.stdout  # its posts' files went too
    assert _category_files(root, "zhangye") == set()
    assert not (root / "public" / "category" / "zhangye").exists()
    assert {k for k in files(root / "public" / "category") if "economy" in k} == economy
    with sqlite3.connect(root / "aggregator.db") as db:
        assert db.execute("SELECT count(*) FROM publish_state WHERE key = 'category:zhangye'").fetchone()[0] == 0

    cfg.write_text(text.replace("slug: zhangye", "slug: zhangye-daily"), "utf-8")  # back, under a new slug
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _category_files(root, "zhangye") == set()
    assert {n.replace("zhangye-daily", "zhangye") for n in _category_files(root, "zhangye-daily")} == zhangye

    cfg.write_text(text, "utf-8")  # and back under its old one
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert _category_files(root, "zhangye") == zhangye and _category_files(root, "zhangye-daily") == set()
    assert check_feeds(root / "public", readers=False).returncode == 0

    # renamed in one edit (as a category whose slug its name gives): its subscribers' feed URLs
    # go 404, and the operator is told how to keep them
    cfg.write_text(text.replace("slug: zhangye", "slug: zhangye-news"), "utf-8")
    renamed = run_cli("--config", str(cfg), "publish")
    assert renamed.returncode == 0, renamed.stderr
    (hint,) = [line for line in renamed.stderr.splitlines() if "no longer configured" in line]
    assert "'zhangye' is no longer configured" in hint and "category/zhangye.atom" in hint, hint
    assert "renamed to 'zhangye-news', give that category `slug: zhangye`" in hint, hint


def test_a_link_left_from_a_renamed_category_to_its_new_folder_is_not_followed(site):
    """A site admin keeps old links alive with `category/zhangye -> zhangye-daily`: taking
    the old category down must not delete the new one's pages through the link."""
    cfg, _ = site
    root = cfg.parent
    text = cfg.read_text("utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    category = root / "public" / "category"
    (category / "zhangye").rename(category / "zhangye-daily")
    (category / "zhangye").symlink_to("zhangye-daily", target_is_directory=True)
    cfg.write_text(text.replace("slug: zhangye", "slug: zhangye-daily"), "utf-8")
    assert run_cli("--config", str(cfg), "publish").returncode == 0
    assert (category / "zhangye-daily" / "page" / "2.html").is_file()
    assert not (category / "zhangye.atom").exists() and (category / "zhangye").is_symlink()


def test_two_configs_sharing_an_output_folder_are_told_and_each_publish_restores_its_own(site):
    """A second config (a test one beside the real one) with its own database and the same
    `output_dir`: its publish overwrote the home page, all-posts feeds and OPML, and the real
    one, finding its categories unchanged, left them so. Each is now told, and rebuilds."""
    cfg, _ = site
    root = cfg.parent
    first = run_cli("--config", str(cfg), "fetch")
    assert first.returncode == 0, first.stderr
    assert "last published from another database" not in first.stderr
    home = (root / "public" / "index.html").read_text("utf-8")
    assert "Incremental" in home
    other = root / "feeds-test.yaml"
    other.write_text(
        cfg.read_text("utf-8").replace("  title: Incremental\n", "  title: Test copy\n  database: test.db\n"), "utf-8"
    )
    second = run_cli("--config", str(other), "fetch")
    assert second.returncode == 0, second.stderr
    assert f"{root / 'public'} was last published from another database" in second.stderr
    assert "Test copy" in (root / "public" / "index.html").read_text("utf-8")

    again = run_cli("--config", str(cfg), "publish")  # nothing new for the real config
    assert again.returncode == 0, again.stderr
    assert "last published from another database" in again.stderr
    assert (root / "public" / "index.html").read_text("utf-8") == home  # its own home page back
    quiet = run_cli("--config", str(cfg), "publish")
    assert "another database" not in quiet.stderr  # said once per change of hands

    backup = root / "restored.db"  # a backup (or a database moved elsewhere) is the same publisher
    assert run_cli("--config", str(cfg), "backup", str(backup)).returncode == 0
    moved = root / "feeds-moved.yaml"
    moved.write_text(
        cfg.read_text("utf-8").replace("  title: Incremental\n", "  title: Incremental\n  database: restored.db\n"),
        "utf-8",
    )
    restored = run_cli("--config", str(moved), "publish")
    assert restored.returncode == 0 and "another database" not in restored.stderr, restored.stderr


def test_a_publish_of_one_category_that_finds_another_databases_folder_rebuilds_them_all(site):
    """The daemon publishes only the categories its polls changed: claiming back a folder
    another database had published, it rebuilt that one category and the home page, and
    left the other database's copy of every other category online for good (the folder,
    marked as its own again, never said so twice)."""
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    other = root / "feeds-test.yaml"
    other.write_text(
        cfg.read_text("utf-8").replace("  title: Incremental\n", "  title: Test copy\n  database: test.db\n"), "utf-8"
    )
    assert run_cli("--config", str(other), "fetch").returncode == 0
    zhangye = root / "public" / "category" / "zhangye.html"
    assert "Test copy" in zhangye.read_text("utf-8")

    settings = load_config(cfg)
    with Store(settings.database) as store:
        publish(settings, store, ["economy"])  # as the daemon does after polling that category's source
    assert "Test copy" not in zhangye.read_text("utf-8")
    assert "Incremental" in zhangye.read_text("utf-8")


ZHUBERT = (CORPUS / "kagi" / "fastfeedparser__benchmark_data_c8ffd33cfd9f8891.xml").read_bytes()  # 5 items
MARK = b"<!-- left alone by the publisher -->"


def _mark(paths: list[Path]) -> dict[Path, int]:
    """Append MARK to each file and set its mtime in the past: a publish that renders such a
    page writes it again (its bytes differ from what it renders), so a page that keeps MARK
    and its mtime was not rendered. The mtimes, as set."""
    stamps = {}
    for path in paths:
        path.write_bytes(path.read_bytes() + MARK)
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
        stamps[path] = path.stat().st_mtime_ns
    return stamps


def _zhangye_pages(root: Path) -> list[Path]:
    """The Zhangye category's pages and post pages (posts/<yyyy>/<mm>/<id>.html)."""
    with sqlite3.connect(root / "aggregator.db") as conn:
        ids = [i for (i,) in conn.execute("SELECT id FROM posts WHERE source LIKE '%zhangye%'")]
    pages = [p for p in (root / "public" / "posts").rglob("*.html") if p.stem in ids]
    assert len(pages) == len(ids) >= 2
    return [
        *pages,
        *(root / "public" / "category").glob("zhangye*.html"),
        *(root / "public/category/zhangye").rglob("*"),
    ]


def test_a_source_added_to_one_category_renders_only_that_category(site, httpserver):
    """At 10,000 sources, adding one to one category re-rendered every page of the site (11
    minutes) to write none: each category's state hashed the whole config's source lists."""
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    economy_posts = _published(root)
    untouched = _mark([p for p in _zhangye_pages(root) if p.is_file()])
    httpserver.expect_request("/zhubert.xml").respond_with_data(ZHUBERT, content_type="application/rss+xml")
    added = f"      - url: {httpserver.url_for('/economy.atom')}\n      - url: {httpserver.url_for('/zhubert.xml')}\n"
    text = cfg.read_text("utf-8")
    cfg.write_text(text.replace(f"      - url: {httpserver.url_for('/economy.atom')}\n", added), "utf-8")
    result = run_cli("--config", str(cfg), "fetch")
    assert result.returncode == 0 and "5 new posts;" in result.stdout, result.stdout + result.stderr
    for path, stamp in untouched.items():  # not rendered: MARK and the old mtime still there
        assert path.read_bytes().endswith(MARK) and path.stat().st_mtime_ns == stamp, path
    assert "An Introduction to Transformers" in (root / "public/category/economy.html").read_text("utf-8")
    new = _published(root) - economy_posts
    assert len(new) == 10  # the 5 new posts' pages and Jekyll files
    opml = (root / "public" / "opml.xml").read_text("utf-8")
    assert "zhubert.xml" in opml
    cfg.write_text(text, "utf-8")  # and taken out again (as a reload syncs it): the publisher's own counts
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        report = publish(settings, store)
        assert report.categories == ["economy"] and report.posts_rendered == 0
        assert _published(root) == economy_posts  # its posts' pages and Jekyll files taken down
        assert "zhubert.xml" not in (root / "public" / "opml.xml").read_text("utf-8")
        assert all(path.read_bytes().endswith(MARK) for path in untouched)  # still not rendered
        assert publish(settings, store).written == []


def test_a_source_renamed_republishes_the_pages_that_show_it_and_only_those(site):
    cfg, _ = site
    root = cfg.parent
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    before = files(root / "public", root / "jekyll")
    zhangye = [p for p in _zhangye_pages(root) if p.is_file()]
    text = cfg.read_text("utf-8")
    cfg.write_text(text.replace("zhangye.rss\n", "zhangye.rss\n        name: 张掖日报社\n"), "utf-8")
    settings = load_config(cfg)  # as the daemon's reload applies it (the `publish` command rebuilds all)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        assert publish(settings, store).categories == ["zhangye"]
    after = files(root / "public", root / "jekyll")
    touched = changed(before, after)
    posts = [p for p in zhangye if "/posts/" in str(p)]
    for page in posts:  # each shows its source
        assert "张掖日报社" in page.read_text("utf-8") and str(page.relative_to(root)) in touched
    assert "public/opml.xml" in touched and "public/category/zhangye.html" in touched
    assert not any("economy" in k for k in touched)
    economy_pages = {k for k in before if k.startswith("public/posts/")} - {str(p.relative_to(root)) for p in posts}
    assert economy_pages and not economy_pages & touched


# -- differential: an incremental publish writes what a publish from scratch writes --------

DIFF_FEEDS = ["c8ffd33cfd9f8891", "87232eca4263cf8c", "03db8affb53e2a2f", "770d8b7c766a720d",
              "e8203fee50c570d8", "14333881097406c7", "e8fa5b64a4b41322", "9835a36b67764259",
              "92f267815335c9ef", "1e4ab389e139d659"]  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _daemon_publish(cfg: Path, stop=None):
    """As the daemon publishes after a reload: the sources synced, then no forced rebuild."""
    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        return publish(settings, store, stop=stop)


def _from_scratch_differences(cfg: Path, scratch: Path) -> list[str]:
    """Publish a copy of `cfg`'s database into empty folders; the files that differ."""
    scratch.mkdir()
    (scratch / "feeds.yaml").write_text(cfg.read_text("utf-8"), "utf-8")
    for suffix in ("", "-wal", "-shm"):
        if (cfg.parent / f"aggregator.db{suffix}").exists():
            shutil.copy(cfg.parent / f"aggregator.db{suffix}", scratch / f"aggregator.db{suffix}")
    result = run_cli("--config", str(scratch / "feeds.yaml"), "publish")
    assert result.returncode == 0, result.stderr
    differences = []
    for folder in ("public", "jekyll"):
        mine, theirs = _tree(cfg.parent / folder), _tree(scratch / folder)
        differences += [
            f"{folder}/{name}"
            for name in sorted(mine.keys() | theirs.keys())
            if mine.get(name) != theirs.get(name) and name != ".aggregator-owner"
        ]
    return differences


@pytest.fixture
def corpus_site(tmp_path: Path, httpserver: HTTPServer):
    """Ten corpus feeds, two of them also served at a second URL (every entry a copy)."""
    urls = {}
    for name in DIFF_FEEDS:
        body = (CORPUS / "kagi" / f"fastfeedparser__benchmark_data_{name}.xml").read_bytes()
        for path in (f"/{name}.xml", f"/copy-{name}.xml"):
            httpserver.expect_request(path).respond_with_data(body, content_type="application/xml")
        urls[name] = httpserver.url_for(f"/{name}.xml")
        urls[f"copy-{name}"] = httpserver.url_for(f"/copy-{name}.xml")
    cfg = tmp_path / "inc" / "feeds.yaml"
    cfg.parent.mkdir()
    return cfg, {k: {"url": v} for k, v in urls.items()}


def test_an_incremental_publish_after_each_config_edit_writes_what_one_from_scratch_does(corpus_site, tmp_path):
    cfg, s = corpus_site
    f = DIFF_FEEDS
    cats = [
        {"name": "Alpha", "slug": "alpha", "tags": ["a"], "sources": [s[f[0]], s[f[1]], s[f[2]], s[f[3]]]},
        {"name": "Beta", "slug": "beta", "duplicates": "keep", "sources": [s[f"copy-{f[0]}"], s[f[4]], s[f[0]]]},
        {"name": "Gamma", "slug": "gamma", "sources": [s[f"copy-{f[1]}"], s[f[5]], s[f[6]]]},
        {"name": "Delta", "slug": "delta", "sources": [s[f[7]], s[f[8]]]},
    ]
    cfg.write_text(render(cats), "utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    edits = {
        "add": lambda: cats[3]["sources"].append(s[f[9]]),
        "remove": lambda: cats[0]["sources"].remove(s[f[3]]),
        "move": lambda: (cats[2]["sources"].remove(s[f[6]]), cats[3]["sources"].append(s[f[6]])),
        "second category": lambda: cats[3]["sources"].append(s[f[4]]),
        "rename source": lambda: s[f[5]].update(name="Renamed"),
        "first copy joins the copy's category": lambda: cats[2]["sources"].insert(0, s[f[1]]),
        "duplicates off": lambda: cats[1].update(duplicates=None),
        "duplicates on": lambda: cats[2].update(duplicates="keep"),
        "rename category": lambda: cats[1].update(name="Beta Renamed"),
        "exclude": lambda: cats[0].update(exclude="(?i)[aeiou]"),
        "first copy leaves": lambda: cats[1]["sources"].remove(s[f[0]]),
    }
    for n, (what, edit) in enumerate(edits.items()):
        edit()
        cfg.write_text(render(cats), "utf-8")
        _daemon_publish(cfg)
        assert _from_scratch_differences(cfg, tmp_path / f"scratch{n}") == [], what


def _fetched_then_alpha_filtered_and_gamma_grown(cfg: Path, s: dict[str, dict]) -> Path:
    """The take-down tests' site: two categories fetched, then Alpha given an `exclude` that
    filters most of its posts out and Gamma one source more (not yet published)."""
    f = DIFF_FEEDS
    cats = [
        {"name": "Alpha", "slug": "alpha", "sources": [s[f[0]], s[f[1]], s[f[3]]]},
        {"name": "Gamma", "slug": "gamma", "sources": [s[f[6]], s[f[7]]]},
    ]
    cfg.write_text(render(cats), "utf-8")
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    cats[0]["exclude"] = "(?i)[aeiou]"
    cats[1]["sources"].append(s[f[8]])
    cfg.write_text(render(cats), "utf-8")
    return cfg


@pytest.mark.parametrize("checks", [1, 2, 3])
def test_a_publish_stopped_after_a_category_leaves_its_take_downs_to_the_next(corpus_site, tmp_path, checks):
    """The daemon stopped past its grace: a category done had its state recorded but its
    filtered-out posts' pages were not taken down, and the next publish, finding it done,
    left them online for good (36 pages)."""
    cfg = _fetched_then_alpha_filtered_and_gamma_grown(*corpus_site)
    asked = []
    report = _daemon_publish(cfg, stop=lambda: asked.append(1) or len(asked) > checks)
    assert report.stopped and report.categories[0] == "alpha"
    _daemon_publish(cfg)  # the next start
    assert _from_scratch_differences(cfg, tmp_path / "scratch") == []


def test_a_publish_killed_after_recording_a_category_leaves_its_take_downs_to_the_next(
    corpus_site, tmp_path, monkeypatch
):
    """A long publish records the categories done as it goes (`SYNC_EVERY`): killed after
    that, the next publish found them done and never took down their filtered-out posts."""
    import aggregator.publish as publishing

    cfg = _fetched_then_alpha_filtered_and_gamma_grown(*corpus_site)
    monkeypatch.setattr(publishing, "SYNC_EVERY", 0)  # record after every category

    class Killed(BaseException):
        pass

    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        if len(asked) > 3:  # in gamma, alpha recorded: the process dies here
            raise Killed
        return False

    with pytest.raises(Killed):
        _daemon_publish(cfg, stop=stop)
    _daemon_publish(cfg)  # the next start
    assert _from_scratch_differences(cfg, tmp_path / "scratch") == []
