"""OPML: `aggregator export-opml` (and the published opml.xml), and `aggregator import-opml`
of files shaped as Miniflux, FreshRSS, Inoreader and RSSOwl write them, into a feeds.yaml
whose comments and layout must survive."""

from __future__ import annotations

import codecs
import difflib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from aggregator.config import load_config
from aggregator.publish.opml import OpmlError, OpmlFeed, merge_into_config, parse_opml

from .conftest import ROOT, run_cli
from .reliability.conftest import read_only

# As Miniflux 2.x exports: categories sorted, four-space indent, explicit closing tags.
MINIFLUX = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
    <head>
        <title>Miniflux</title>
        <dateCreated>Sat, 01 Mar 2025 10:00:00 UTC</dateCreated>
    </head>
    <body>
        <outline text="Python">
            <outline title="Real Python" text="Real Python" xmlUrl="https://realpython.com/atom.xml" htmlUrl="https://realpython.com/" description=""></outline>
            <outline title="PSF News" text="PSF News" xmlUrl="https://pyfound.blogspot.com/feeds/posts/default" htmlUrl="https://pyfound.blogspot.com/" description=""></outline>
        </outline>
        <outline text="财经">
            <outline title="华尔街见闻" text="华尔街见闻" xmlUrl="https://wallstreetcn.com/rss.xml" htmlUrl="https://wallstreetcn.com/" description="全球财经"></outline>
            <outline title="中国新闻网·财经" text="中国新闻网·财经" xmlUrl="https://www.chinanews.com.cn/rss/finance.xml" htmlUrl="https://www.chinanews.com.cn/" description=""></outline>
        </outline>
    </body>
</opml>
"""  # noqa: E501

# As FreshRSS exports (libopml): tabs, `text` only, frss: extensions, a scraped (non-feed) source.
FRESHRSS = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
\t<head>
\t\t<title>FreshRSS</title>
\t\t<dateCreated>Sat, 01 Mar 2025 10:00:00</dateCreated>
\t</head>
\t<body>
\t\t<outline text="Uncategorized">
\t\t\t<outline text="LWN.net" type="rss" xmlUrl="https://lwn.net/headlines/rss" htmlUrl="https://lwn.net/" description="LWN &amp; friends"/>
\t\t</outline>
\t\t<outline text="科技 Tech">
\t\t\t<outline xmlns:frss="https://freshrss.org/opml" text="Ars Technica" type="rss" xmlUrl="https://feeds.arstechnica.com/arstechnica/index" htmlUrl="https://arstechnica.com/" description="" frss:cssFullContent="article" frss:priority="main"/>
\t\t\t<outline xmlns:frss="https://freshrss.org/opml" text="Scraped page" type="HTML+XPath" xmlUrl="https://example.net/page.html" htmlUrl="https://example.net/page.html" frss:xPathItem="//article"/>
\t\t\t<outline text="Old feed" type="rss" xmlUrl="feed://old.example/rss" htmlUrl=""/>
\t\t\t<outline text="Gopher hole" type="rss" xmlUrl="gopher://hole.example/rss"/>
\t\t</outline>
\t</body>
</opml>
"""  # noqa: E501

# Flat outlines with OPML 2.0 `category` attributes (Inoreader, The Old Reader), lower-case
# attribute names and a bare `&` (seen in the wild), and RSSOwl-style folders in folders.
CATEGORY_ATTRS = """\
<?xml version="1.0" encoding="ISO-8859-1"?>
<opml version="1.0">
  <head><title>subscriptions</title></head>
  <body>
    <outline text="Hacker News" type="rss" xmlurl="https://hnrss.org/frontpage" category="/Technology,/News"/>
    <outline title="Caf\xe9 blog" type="rss" xmlUrl="https://cafe.example/feed?a=1&b=2" category="/Food/Blogs"/>
    <outline text="No category" type="rss" xmlUrl="https://plain.example/rss"/>
    <outline text="My Feeds">
      <outline text="Deep folder">
        <outline type="rss" title="Nested" xmlUrl="https://nested.example/atom"/>
      </outline>
    </outline>
  </body>
</opml>
""".encode("latin-1")


@pytest.fixture
def config(tmp_path) -> Path:
    """A copy of the shipped feeds.yaml, comments and all."""
    cfg = tmp_path / "feeds.yaml"
    shutil.copy(ROOT / "feeds.yaml", cfg)
    return cfg


def only_additions(before: str, after: str) -> list[str]:
    """The lines added; fails if any line of `before` was changed or removed."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    removed = [d for d in diff if d.startswith("- ")]
    assert removed == [], "lines changed or lost:\n" + "\n".join(removed)
    return [d[2:] for d in diff if d.startswith("+ ")]


def test_parse_nested_category_attributes_and_broken_xml():
    assert parse_opml(MINIFLUX.encode())[2] == OpmlFeed(
        "https://wallstreetcn.com/rss.xml", "华尔街见闻", "https://wallstreetcn.com/", "财经"
    )
    fresh = parse_opml(FRESHRSS.encode())
    assert [(f.url, f.category) for f in fresh] == [
        ("https://lwn.net/headlines/rss", "Uncategorized"),
        ("https://feeds.arstechnica.com/arstechnica/index", "科技 Tech"),
        ("feed://old.example/rss", "科技 Tech"),
        ("gopher://hole.example/rss", "科技 Tech"),
    ]  # the HTML+XPath scraper is not a feed
    flat = parse_opml(CATEGORY_ATTRS)
    assert [(f.url, f.title, f.category) for f in flat] == [
        ("https://hnrss.org/frontpage", "Hacker News", "Technology"),
        ("https://cafe.example/feed?a=1&b=2", "Café blog", "Blogs"),
        ("https://plain.example/rss", "No category", None),
        ("https://nested.example/atom", "Nested", "Deep folder"),
    ]
    with pytest.raises(OpmlError, match="x.opml: not an OPML file"):
        parse_opml(b"<rss version='2.0'><channel/></rss>", "x.opml")
    with pytest.raises(OpmlError, match="not an OPML file|not XML"):
        parse_opml(b"\x89PNG garbage", "y.opml")
    with pytest.raises(OpmlError, match="no <body>"):
        parse_opml(b"<opml version='2.0'><head/></opml>")


def test_an_opml_file_cut_off_anywhere_is_refused():
    """A partial download, a full disk: wherever the file ends early, nothing of it is taken
    (the recovering parser would read the part before the cut, often without an error)."""
    data = MINIFLUX.encode()
    end = data.rindex(b"</opml>") + len(b"</opml>")
    for cut in range(data.index(b"<body"), end):
        with pytest.raises(OpmlError, match="cut off or broken"):
            parse_opml(data[:cut], "x.opml")
    assert len(parse_opml(data[:end])) == len(parse_opml(data)) > 0  # whole: read
    assert parse_opml(data[:end] + b"\n<!-- exported by X -->\n")  # a comment after the root is fine
    assert parse_opml(data.decode().encode("utf-16"))  # and UTF-16 is read as before
    assert parse_opml(data.decode().encode("utf-32"))  # and UTF-32 (its BOM starts as UTF-16's)
    assert parse_opml(data[:end] + b"\n<!-- " + b"x" * 10_000 + b" -->\n")  # a long trailing comment
    assert parse_opml(data[:end].replace(b"</opml>", b"</OPML >") + b"\r\n\t")


def test_import_miniflux_keeps_comments_and_layout(config):
    before = config.read_text(encoding="utf-8")
    opml = config.parent / "miniflux.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    result = run_cli("--config", str(config), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 feeds in" in result.stdout and "2 added, 2 already present, 0 skipped" in result.stdout
    after = config.read_text(encoding="utf-8")
    added = only_additions(before, after)
    assert added == [
        "      - url: https://wallstreetcn.com/rss.xml",
        "        name: 华尔街见闻",
        "      - url: https://realpython.com/atom.xml",
        "        name: Real Python",
    ]
    # Each went into the matching category, right after its last source.
    assert after.index("https://wallstreetcn.com/rss.xml") < after.index("  - name: Technology")
    assert after.index("https://realpython.com/atom.xml") > after.index("  - name: Python")
    settings = load_config(config)
    python = next(c for c in settings.categories if c.name == "Python")
    assert "https://realpython.com/atom.xml" in python.source_keys
    again = run_cli("--config", str(config), "import-opml", str(opml))
    assert "0 added, 4 already present" in again.stdout and config.read_text(encoding="utf-8") == after


def test_import_freshrss_with_new_categories_and_skips(config):
    before = config.read_text(encoding="utf-8")
    opml = config.parent / "freshrss.opml"
    opml.write_text(FRESHRSS, encoding="utf-8")
    result = run_cli("--config", str(config), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped   gopher://hole.example/rss: not an absolute http(s) URL" in result.stdout
    assert "feed://" not in config.read_text(encoding="utf-8")  # a browser's feed:// link, as http://
    assert "new categories: Uncategorized, 科技 Tech" in result.stdout
    only_additions(before, config.read_text(encoding="utf-8"))
    check = run_cli("--config", str(config), "check")
    assert check.returncode == 0, check.stderr
    cats = {c.name: c for c in load_config(config).categories}
    assert cats["科技 Tech"].source_keys == (
        "https://feeds.arstechnica.com/arstechnica/index",
        "http://old.example/rss",
    )
    assert cats["科技 Tech"].slug == "keji-tech"
    assert cats["Uncategorized"].source_keys == ("https://lwn.net/headlines/rss",)


def test_import_into_one_named_category(config):
    opml = config.parent / "subs.opml"
    opml.write_bytes(CATEGORY_ATTRS)
    result = run_cli("--config", str(config), "import-opml", str(opml), "--category", "Reading list")
    assert result.returncode == 0, result.stdout + result.stderr
    cats = {c.name: c for c in load_config(config).categories}
    assert len(cats["Reading list"].source_keys) == 4
    assert "https://cafe.example/feed?a=1&b=2" in cats["Reading list"].source_keys


def test_import_by_category_attribute_and_default(config):
    opml = config.parent / "subs.opml"
    opml.write_bytes(CATEGORY_ATTRS)
    assert run_cli("--config", str(config), "import-opml", str(opml)).returncode == 0
    cats = {c.name: c for c in load_config(config).categories}
    assert "https://hnrss.org/frontpage" in cats["Technology"].source_keys  # matched the existing one
    assert cats["Imported"].source_keys == ("https://plain.example/rss",)
    assert cats["Blogs"].source_keys == ("https://cafe.example/feed?a=1&b=2",)
    assert cats["Deep folder"].source_keys == ("https://nested.example/atom",)


def test_import_errors(config, tmp_path):
    bad = tmp_path / "bad.opml"
    bad.write_text("<html><body>not opml</body></html>", encoding="utf-8")
    before = config.read_text(encoding="utf-8")
    result = run_cli("--config", str(config), "import-opml", str(bad))
    assert result.returncode == 2 and f"{bad}: not an OPML file" in result.stderr
    missing = run_cli("--config", str(config), "import-opml", str(tmp_path / "nope.opml"))
    assert missing.returncode == 2 and "nope.opml' does not exist" in missing.stderr
    assert "Errno" not in missing.stderr
    bad.write_bytes(CATEGORY_ATTRS)  # `--category ""` was no --category: each feed went to its own
    blank = run_cli("--config", str(config), "import-opml", str(bad), "--category", " ")
    assert blank.returncode == 2 and "a category name cannot be empty" in blank.stderr, blank.stderr
    # cut off (a partial download, a full disk): refused, not half imported
    for n, cut in enumerate((MINIFLUX[: len(MINIFLUX) // 2], MINIFLUX.rsplit("</opml>", 1)[0], "<opml><body><outline")):
        partial = tmp_path / f"partial{n}.opml"
        partial.write_text(cut, encoding="utf-8")
        result = run_cli("--config", str(config), "import-opml", str(partial))
        assert result.returncode == 2, (cut, result.stdout, result.stderr)
        assert f"{partial}: cut off or broken at line" in result.stderr and "nothing imported" in result.stderr
    assert config.read_text(encoding="utf-8") == before


def test_import_keeps_file_mode_and_creates_categories_list(tmp_path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("# my site\nsite:\n  title: T  # the title\n  url: https://t.example/\n", encoding="utf-8")
    cfg.chmod(0o600)
    opml = tmp_path / "a.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stderr
    text = cfg.read_text(encoding="utf-8")
    assert text.startswith("# my site\nsite:\n  title: T  # the title\n")
    assert cfg.stat().st_mode & 0o777 == 0o600
    assert [c.name for c in load_config(cfg).categories] == ["Python", "财经"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file to another user takes root")
def test_import_as_root_leaves_the_config_to_the_daemons_user(tmp_path):
    """The systemd install: feeds.yaml 0600, owned by the daemon's user; an admin runs
    `import-opml` as root. The config stays that user's, or the daemon could no longer read it."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n", encoding="utf-8")
    cfg.chmod(0o600)
    os.chown(cfg, 10001, 10001)  # the Dockerfile's aggregator user; any user but root will do
    opml = tmp_path / "a.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stderr
    st = cfg.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (10001, 10001, 0o600)
    assert [c.name for c in load_config(cfg).categories] == ["Python", "财经"]


def test_export_to_stdout_and_file_and_published(tmp_path, corpus_server):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: 导出 & co\n  url: https://x.example/\ncategories:\n"
        f"  - name: 甘肃\n    sources:\n      - url: {corpus_server.base}zh/gansu-economy.atom\n"
        f"      - url: {corpus_server.base}zh/zhangye-daily.gbk.rss\n        name: 张掖日报\n"
        "  - name: Empty\n",
        encoding="utf-8",
    )
    before_fetch = run_cli("--config", str(cfg), "export-opml")
    assert before_fetch.returncode == 0, before_fetch.stderr
    assert not (tmp_path / "aggregator.db").exists()  # export does not create a database
    doc = etree.fromstring(before_fetch.stdout.encode())
    assert doc.findtext("head/title") == "导出 & co"
    folders = doc.findall("body/outline")
    assert [f.get("text") for f in folders] == ["甘肃", "Empty"]
    feeds = folders[0].findall("outline")
    assert [(f.get("type"), f.get("text"), f.get("xmlUrl")) for f in feeds] == [
        ("rss", f"{corpus_server.base}zh/gansu-economy.atom", f"{corpus_server.base}zh/gansu-economy.atom"),
        ("rss", "张掖日报", f"{corpus_server.base}zh/zhangye-daily.gbk.rss"),
    ]
    assert run_cli("--config", str(cfg), "fetch").returncode == 0
    out = tmp_path / "subs.opml"
    written = run_cli("--config", str(cfg), "export-opml", str(out))
    assert written.returncode == 0 and "2 sources in 2 categories" in written.stdout
    feeds = etree.parse(str(out)).getroot().findall("body/outline/outline")
    assert feeds[0].get("text") == "甘肃日报·经济" and feeds[0].get("htmlUrl") == "https://example.cn/gansu/economy/"
    assert (tmp_path / "public" / "opml.xml").read_bytes() == out.read_bytes()
    # What we export, readers import: and so do we, finding everything already there.
    merged, report = merge_into_config(cfg.read_text(encoding="utf-8"), parse_opml(out.read_bytes()))
    assert report.added == [] and len(report.present) == 2


def test_export_to_a_missing_folder_is_an_error_naming_it_and_creates_nothing(tmp_path):
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n"
        "  - name: A\n    sources:\n      - url: https://a.example/rss\n",
        encoding="utf-8",
    )
    typo = tmp_path / "typo" / "dir"
    result = run_cli("--config", str(cfg), "export-opml", str(typo / "x.opml"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == f"error: cannot write {typo / 'x.opml'}: no such folder: {typo}"
    assert not (tmp_path / "typo").exists()
    (tmp_path / "file").write_text("")
    result = run_cli("--config", str(cfg), "export-opml", str(tmp_path / "file" / "x.opml"))
    assert result.returncode == 1 and "not a folder" in result.stderr, result.stderr


def test_export_to_a_folder_or_a_path_ending_in_a_slash_is_an_error_writing_nothing(tmp_path):
    """`export-opml zz/` wrote a file named `zz` (the slash was lost on the way) and said so,
    exit 0; an existing folder got click's `File 'out' is a directory`, exit 2."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n"
        "  - name: A\n    sources:\n      - url: https://a.example/rss\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "export-opml", "zz/", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == "error: cannot write zz/: no such folder" and result.stdout == ""
    assert not (tmp_path / "zz").exists()
    (tmp_path / "plain").write_text("")
    result = run_cli("--config", str(cfg), "export-opml", "plain/", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == "error: cannot write plain/: not a folder"
    assert (tmp_path / "plain").read_text() == ""
    (tmp_path / "out").mkdir()
    for where in ("out", "out/"):
        result = run_cli("--config", str(cfg), "export-opml", where, cwd=tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        why = "it is a folder: name the OPML file to write in it"
        assert result.stderr.strip() == f"error: cannot write {where}: {why}"
    assert list((tmp_path / "out").iterdir()) == []


def test_import_keeps_apart_categories_whose_names_have_no_latin_or_cjk_letters(tmp_path):
    """`Новости` and `Спорт` both slugify to "": each must still get (or match) its own category,
    as the config tells them apart (by a slug made from a hash of the name)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n"
        "  - name: Новости\n    sources:\n      - url: https://news.example/rss\n",
        encoding="utf-8",
    )
    opml = tmp_path / "ru.opml"
    opml.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head><title>x</title></head><body>\n'
        '<outline text="Спорт"><outline text="s" type="rss" xmlUrl="https://sport.example/rss"/></outline>\n'
        '<outline text="Новости"><outline text="n" type="rss" xmlUrl="https://more-news.example/rss"/></outline>\n'
        '<outline text="Ελληνικά"><outline text="g" type="rss" xmlUrl="https://greek.example/rss"/></outline>\n'
        "</body></opml>\n",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    cats = {c.name: c.source_keys for c in load_config(cfg).categories}
    assert cats == {
        "Новости": ("https://news.example/rss", "https://more-news.example/rss"),
        "Спорт": ("https://sport.example/rss",),
        "Ελληνικά": ("https://greek.example/rss",),
    }


def test_import_into_a_symlinked_config_edits_its_target(tmp_path):
    """feeds.yaml a symlink into a checkout of the site's repository: the import replaced the
    link with an edited copy, and the file in the repository stayed as it was."""
    repo = tmp_path / "repo"
    repo.mkdir()
    target = repo / "feeds.yaml"
    target.write_text("site:\n  title: T\n  url: https://t.example/\n", encoding="utf-8")
    cfg = tmp_path / "feeds.yaml"
    cfg.symlink_to(target)
    opml = tmp_path / "a.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stderr
    assert cfg.is_symlink() and cfg.resolve() == target
    assert [c.name for c in load_config(target).categories] == ["Python", "财经"]


def test_import_into_a_config_that_cannot_be_written_is_one_error_line(tmp_path):
    """A config on a read-only file system (or in a folder the user may not write): a
    traceback, after lines saying the feeds were added."""
    folder = tmp_path / "etc"
    folder.mkdir()
    cfg = folder / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n", encoding="utf-8")
    before = cfg.read_text(encoding="utf-8")
    opml = tmp_path / "a.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    with read_only(folder):
        result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot write {cfg}: ") and "nothing imported" in result.stderr
    assert cfg.read_text(encoding="utf-8") == before


def _export(tmp_path: Path, categories: str) -> str:
    """`export-opml` of a config with these `categories:` lines."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(f"site:\n  title: S\n  url: https://x.example/\ncategories:\n{categories}", encoding="utf-8")
    exported = run_cli("--config", str(cfg), "export-opml")
    assert exported.returncode == 0, exported.stderr
    return exported.stdout


def _import_fresh(tmp_path: Path, opml: str) -> Path:
    """`import-opml` of `opml` into a config with no categories yet; the config."""
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text("site:\n  title: S\n  url: https://x.example/\n", encoding="utf-8")
    (tmp_path / "subs.opml").write_bytes(opml.encode())
    imported = run_cli("--config", str(fresh), "import-opml", str(tmp_path / "subs.opml"))
    assert imported.returncode == 0, imported.stderr
    return fresh


def test_a_categorys_own_slug_survives_export_and_import(tmp_path):
    """The slug is the category's URL (`/<slug>/feed.xml`): a config rebuilt from our OPML
    must keep it, or every subscriber of that category loses the feed."""
    exported = _export(
        tmp_path,
        "  - name: 国内新闻\n    slug: china\n    sources:\n      - url: http://127.0.0.1:9/a.xml\n"
        "  - name: 财经\n    sources:\n      - url: http://127.0.0.1:9/b.xml\n",
    )
    folders = etree.fromstring(exported.encode()).findall("body/outline")
    slug_attr = "{https://github.com/aggregator-project/aggregator/opml}slug"
    assert [(f.get("text"), f.get(slug_attr)) for f in folders] == [("国内新闻", "china"), ("财经", None)]
    fresh = _import_fresh(tmp_path, exported)
    settings = load_config(fresh)
    assert [(c.name, c.slug) for c in settings.categories] == [("国内新闻", "china"), ("财经", "caijing")]
    # importing again finds the category by its slug even under another name; a bad slug is ignored
    renamed = exported.replace('text="国内新闻" title="国内新闻"', 'text="China" title="China"')
    bad = exported.replace('aggregator:slug="china"', 'aggregator:slug="Bad Slug/.."')
    merged, report = merge_into_config(fresh.read_text(encoding="utf-8"), parse_opml(renamed.encode()))
    assert report.added == [] and report.new_categories == []
    assert [f.category_slug for f in parse_opml(bad.encode())] == [None, None]


def test_two_categories_of_one_name_each_export_their_own_slug(tmp_path):
    """Two categories may share a name when their `slug:`s differ (as the duplicate-slug error
    advises): each outline carries its own slug, not the last one of that name."""
    exported = _export(
        tmp_path,
        "  - name: News\n    slug: news-en\n    sources:\n      - url: http://127.0.0.1:9/a.xml\n"
        "  - name: News\n    slug: news-fr\n    sources:\n      - url: http://127.0.0.1:9/b.xml\n"
        "  - name: news\n    sources:\n      - url: http://127.0.0.1:9/c.xml\n",
    )
    assert [(f.url, f.category, f.category_slug) for f in parse_opml(exported.encode())] == [
        ("http://127.0.0.1:9/a.xml", "News", "news-en"),
        ("http://127.0.0.1:9/b.xml", "News", "news-fr"),
        ("http://127.0.0.1:9/c.xml", "news", None),
    ]
    # and a config rebuilt from it has the three categories, each with its URL
    fresh = _import_fresh(tmp_path, exported)
    assert [(c.name, c.slug, c.source_keys) for c in load_config(fresh).categories] == [
        ("News", "news-en", ("http://127.0.0.1:9/a.xml",)),
        ("News", "news-fr", ("http://127.0.0.1:9/b.xml",)),
        ("news", "news", ("http://127.0.0.1:9/c.xml",)),
    ]


def test_a_feed_listed_with_the_feed_scheme_is_already_present(tmp_path):
    """The config's `feed://old.example/rss` is the OPML's `feed://` (or `http://`) feed:
    importing added a second listing of it (review)."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: 科技 Tech\n    sources:\n"
        "      - url: feed://old.example/rss\n",
        encoding="utf-8",
    )
    opml = tmp_path / "freshrss.opml"
    opml.write_text(FRESHRSS, encoding="utf-8")
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 added, 1 already present, 1 skipped" in result.stdout, result.stdout
    assert cfg.read_text(encoding="utf-8").count("old.example/rss") == 1


# Folder and feed names YAML 1.1 (the config's reader) takes for booleans, null, numbers or dates.
TYPED_NAMES = ["Off", "yes", "N", "NULL", "~", "1:30", "0x1F", "0o17", "2024-01-01", "1e3", "=", "<<", ".inf"]


def test_import_quotes_names_yaml_would_read_as_another_type(tmp_path):
    """ruamel writes YAML 1.2, where `Off` or `yes` is text, unquoted; the config is read as
    YAML 1.1, and the import failed (after printing `added` for each feed) on its own check."""
    outlines = "".join(
        f'<outline text="{name}"><outline text="{name}" xmlUrl="https://f{i}.example/rss"/></outline>'
        for i, name in enumerate(TYPED_NAMES)
    )
    cfg = _import_fresh(tmp_path, f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>')
    settings = load_config(cfg)
    assert [c.name for c in settings.categories] == TYPED_NAMES
    assert [s.name for s in settings.sources] == TYPED_NAMES
    assert run_cli("--config", str(cfg), "check").returncode == 0


def test_import_says_added_only_once_the_config_is_written(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    cfg = folder / "feeds.yaml"
    cfg.write_text("site:\n  title: T\n  url: https://t.example/\n", encoding="utf-8")
    opml = tmp_path / "a.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    with read_only(folder):
        result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 1 and "added" not in result.stdout, result.stdout
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0 and result.stdout.count("added     ") == 4, result.stdout


SECRET = "http://bob:s3cret@host.example/f.xml?token=abc123&page=2"


def test_an_exported_source_with_secrets_is_found_again_not_added_masked(tmp_path):
    """Export masks a source's secrets (`token=***`, no user info): read back, that URL is the
    source it came from, not a second source that cannot be fetched."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        f"site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n      - url: {SECRET}\n"
        "      - url: http://alice:pw@other.example/rss\n",
        encoding="utf-8",
    )
    exported = run_cli("--config", str(cfg), "export-opml", str(tmp_path / "out.opml"))
    assert exported.returncode == 0, exported.stderr
    assert "token=***" in (tmp_path / "out.opml").read_text() and "s3cret" not in (tmp_path / "out.opml").read_text()
    before = cfg.read_text(encoding="utf-8")
    again = run_cli("--config", str(cfg), "import-opml", str(tmp_path / "out.opml"))
    assert again.returncode == 0, again.stderr
    assert "0 added, 2 already present, 0 skipped" in again.stdout, again.stdout
    assert "s3cret" not in again.stdout + again.stderr
    assert cfg.read_text(encoding="utf-8") == before
    # Into another category: a second listing of the same (real) source, its url alone (the
    # title the export gave it is its masked URL).
    moved = run_cli("--config", str(cfg), "import-opml", str(tmp_path / "out.opml"), "--category", "B")
    assert moved.returncode == 0 and moved.stderr == "", moved.stderr
    assert [c.source_keys for c in load_config(cfg).categories][1] == (SECRET, "http://alice:pw@other.example/rss")
    assert "***" not in cfg.read_text(encoding="utf-8")


def test_a_source_never_fetched_exports_no_name_and_imports_without_one(tmp_path):
    """Export wrote a source with no name yet as `text="<url>" title="<url>"`, and importing
    that elsewhere wrote `name: <url>`, which then hid the feed's own title in every output for
    good. Now: the URL as `text` (OPML requires one) and no `title`; and a title that is the
    URL, or its masked form, as older exports and some readers write, is no name."""
    cfg = tmp_path / "feeds.yaml"
    plain, token = "http://127.0.0.1:9/never.xml", "http://127.0.0.1:9/private.xml?token=s3cret"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n"
        f"      - url: {plain}\n      - url: {token}\n      - url: https://named.example/rss\n        name: Named\n",
        encoding="utf-8",
    )
    exported = run_cli("--config", str(cfg), "export-opml", str(tmp_path / "out.opml"))
    assert exported.returncode == 0, exported.stderr
    feeds = etree.parse(str(tmp_path / "out.opml")).getroot().findall("body/outline/outline")
    assert [(f.get("text"), f.get("title")) for f in feeds] == [
        (plain, None),
        ("http://127.0.0.1:9/private.xml?token=***", None),
        ("Named", "Named"),
    ]
    elsewhere = tmp_path / "other.yaml"
    elsewhere.write_text("site:\n  title: S\n  url: https://x.example/\n", encoding="utf-8")
    imported = run_cli("--config", str(elsewhere), "import-opml", str(tmp_path / "out.opml"))
    assert imported.returncode == 0, imported.stderr
    assert "2 added, 0 already present, 1 skipped" in imported.stdout  # the masked one cannot be fetched
    assert {s.key: s.name for s in load_config(elsewhere).sources} == {
        plain: None,
        "https://named.example/rss": "Named",
    }
    # an older export's (title and text the URL), and a reader's: its secret masked or its URL respelled
    old = (
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="B">'
        f'<outline text="{plain}" title="{plain}" xmlUrl="{plain}"/>'
        '<outline title="http://127.0.0.1:9/p.xml?token=***" xmlUrl="http://127.0.0.1:9/p.xml?token=s3cret"/>'
        '<outline title="HTTP://127.0.0.1:9/%6Eew.xml" xmlUrl="http://127.0.0.1:9/new.xml"/>'
        "</outline></body></opml>"
    )
    fresh = _import_fresh(tmp_path, old)
    assert [(s.key, s.name) for s in load_config(fresh).sources] == [
        (plain, None),
        ("http://127.0.0.1:9/p.xml?token=s3cret", None),
        ("http://127.0.0.1:9/new.xml", None),
    ]


def test_a_url_title_gives_way_to_a_name_in_text(tmp_path):
    """An exporter that put the feed's URL in `title` and its name in `text` (or the other way
    round) lost the name: the URL came first, and a URL names nothing."""
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline title="http://127.0.0.1:9/a.xml" text="Alpha News" xmlUrl="http://127.0.0.1:9/a.xml"/>'
        '<outline title="Beta Daily" text="http://127.0.0.1:9/b.xml" xmlUrl="http://127.0.0.1:9/b.xml"/>'
        '<outline title="Gamma" text="The Gamma feed" xmlUrl="http://127.0.0.1:9/c.xml"/>'
        "</body></opml>"
    )
    cfg = _import_fresh(tmp_path, opml)
    assert [(s.key, s.name) for s in load_config(cfg).sources] == [
        ("http://127.0.0.1:9/a.xml", "Alpha News"),
        ("http://127.0.0.1:9/b.xml", "Beta Daily"),
        ("http://127.0.0.1:9/c.xml", "Gamma"),  # both names: the title, as before
    ]


def test_a_masked_url_of_no_configured_source_is_skipped_with_why(tmp_path):
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline text="x" xmlUrl="https://elsewhere.example/f?api_key=***&amp;p=1"/>'
        '<outline text="y" xmlUrl="https://bob:***@elsewhere.example/g"/>'
        '<outline text="z" xmlUrl="https://elsewhere.example/h?page=2"/></body></opml>'
    )
    cfg = _import_fresh(tmp_path, opml)
    result = run_cli("--config", str(cfg), "import-opml", str(tmp_path / "subs.opml"))
    assert "0 added, 1 already present, 2 skipped" in result.stdout, result.stdout
    assert "skipped   https://elsewhere.example/f?api_key=***&p=1: its secret was masked" in result.stdout
    assert "skipped   https://bob:***@elsewhere.example/g: its secret was masked" in result.stdout
    assert [s.key for s in load_config(cfg).sources] == ["https://elsewhere.example/h?page=2"]


def test_a_second_listing_of_a_configured_source_gets_only_its_url(tmp_path):
    """The config warns of a name on a source's other listings that differs from its first:
    the import wrote the OPML title on every listing, and every later command warned."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\ncategories:\n  - name: A\n    sources:\n"
        "      - url: https://a.example/rss\n        name: Mine\n",
        encoding="utf-8",
    )
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="B">'
        '<outline text="Theirs" xmlUrl="https://a.example/rss"/>'
        '<outline text="New" xmlUrl="https://n.example/rss"/></outline>'
        '<outline text="C"><outline text="New again" xmlUrl="https://n.example/rss"/></outline></body></opml>',
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    text = cfg.read_text(encoding="utf-8")
    assert "Theirs" not in text and "New again" not in text and "name: New\n" in text
    check = run_cli("--config", str(cfg), "check")
    assert check.returncode == 0 and check.stderr == "", check.stderr


def test_import_keeps_a_byte_order_mark_and_crlf_line_ends(config):
    """A config saved by a Windows editor (UTF-8 BOM, CRLF) came back LF without its BOM: every
    line of it changed in the user's diff."""
    before = "\ufeff" + config.read_text(encoding="utf-8").replace("\n", "\r\n")
    config.write_bytes(before.encode("utf-8"))
    opml = config.parent / "miniflux.opml"
    opml.write_text(MINIFLUX, encoding="utf-8")
    result = run_cli("--config", str(config), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    data = config.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and not data.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
    assert data.count(b"\n") == data.count(b"\r\n") and b"\r\r" not in data
    after = data.decode("utf-8")
    assert len(only_additions(before, after)) == 4
    assert run_cli("--config", str(config), "check").returncode == 0


def test_a_second_import_keeps_the_quotes_of_values_yaml_would_read_as_another_type(tmp_path):
    """ruamel read the config without its quotes and wrote `name: yes` back bare: a second
    import refused every config holding such a value, the ones import-opml itself wrote too."""
    cfg = tmp_path / "q.yaml"
    cfg.write_text(
        "site:\n  title: T\n  url: https://t.example/\n  description: '1:30'\ncategories:\n  - name: A\n"
        '    tags: ["Off"]\n    sources:\n      - url: https://a.example/rss\n        name: "yes"\n',
        encoding="utf-8",
    )
    first = tmp_path / "in1.opml"
    first.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="B">'
        '<outline text="1:30" xmlUrl="https://b.example/rss"/><outline text="Off" xmlUrl="https://c.example/rss"/>'
        "</outline></body></opml>",
        encoding="utf-8",
    )
    second = tmp_path / "in2.opml"
    second.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="A">'
        '<outline text="New" xmlUrl="https://n.example/rss"/></outline></body></opml>',
        encoding="utf-8",
    )
    for opml in (first, second):
        before = cfg.read_text(encoding="utf-8")
        result = run_cli("--config", str(cfg), "import-opml", str(opml))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 added" in result.stdout or "2 added" in result.stdout, result.stdout
        only_additions(before, cfg.read_text(encoding="utf-8"))
    text = cfg.read_text(encoding="utf-8")
    assert 'tags: ["Off"]' in text and 'name: "yes"' in text and "description: '1:30'" in text
    assert 'name: "1:30"' in text and 'name: "Off"' in text
    settings = load_config(cfg)
    assert [s.name for s in settings.sources] == ["yes", "New", "1:30", "Off"]
    assert run_cli("--config", str(cfg), "import-opml", str(second)).returncode == 0


_SITE = "site:\n  title: T\n  url: https://t.example/\n"
# Layouts import-opml met in the wild: each list's dashes where its writer put them, `null`s,
# quotes, comments under an item and after a list, a last line with no line end.
LAYOUTS = {
    "two spaces": _SITE
    + 'categories:\n  - name: A\n    sources:\n      - url: https://a.example/rss\n        name: "yes"\n',
    "four spaces": (
        "site:\n    title: T\n    url: https://t.example/\n    user_agent:\ncategories:\n    -   name: A\n"
        '        tags: ["Off", b]\n        sources:\n            -   url: https://a.example/rss\n'
        "                keep_days: null\n"
    ),
    "not indented": _SITE + "categories:\n- name: A\n  sources:\n  - url: https://a.example/rss\n    name: 'Off'\n"
    "- name: B\n  sources:\n  - url: https://b.example/rss\n",
    "mixed": _SITE + 'defaults:\n  exclude:\n  - title: "(?i)^\\\\[ad\\\\]"\ncategories:\n- name: A\n  tags: []\n'
    "  sources:\n      - url: https://a.example/rss   # mine\n        interval: ~\n- name: B\n  sources:\n"
    "    - url: https://b.example/rss\n",
    "comments at ends": "# top\n" + _SITE + "categories:\n  # the first\n  - name: A\n    sources:\n"
    "      - url: https://a.example/rss\n        # name: Disabled for now\n      # - url: https://old.example/rss\n\n"
    "    # about B\n  - name: B   # b\n    sources:\n      - url: https://b.example/rss\n"
    "        timeout: 10s   # slow\n"
    "      # the end\n# really the end",
    "shipped feeds.yaml": (ROOT / "feeds.yaml").read_text(encoding="utf-8"),
    "shipped example": (ROOT / "config" / "feeds.example.yaml").read_text(encoding="utf-8"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_import_only_adds_lines_whatever_the_layout(tmp_path, monkeypatch, layout):
    """A round trip through ruamel.yaml wrote the whole file anew: the shipped example lost its
    `null`s and a regex's quotes, and its `categories:` block was re-indented, comments moved."""
    monkeypatch.setenv("EXAMPLE_API_KEY", "x")
    monkeypatch.setenv("EXAMPLE_PASSWORD", "y")
    cfg = tmp_path / "feeds.yaml"
    before = LAYOUTS[layout]
    cfg.write_text(before, encoding="utf-8")
    first = load_config(cfg).categories[0]
    opml = tmp_path / "in.opml"
    opml.write_text(
        f'<?xml version="1.0"?><opml version="2.0"><body><outline text="{first.name}">'
        '<outline text="Off" xmlUrl="https://n.example/rss"/></outline><outline text="New Cat">'
        '<outline text="1:30" xmlUrl="https://x.example/rss"/></outline></body></opml>',
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    after = cfg.read_text(encoding="utf-8")
    added = [line for line in only_additions(before, after) if line]  # a blank line before a new category
    assert [" ".join(line.split()) for line in added] == [
        "- url: https://n.example/rss",
        'name: "Off"',
        "- name: New Cat",
        "sources:",
        "- url: https://x.example/rss",
        'name: "1:30"',
    ]
    settings = load_config(cfg)
    cats = {c.name: c for c in settings.categories}
    assert cats[first.name].source_keys == (*first.source_keys, "https://n.example/rss")
    assert cats["New Cat"].source_keys == ("https://x.example/rss",)
    assert {s.key: s.name for s in settings.sources}["https://x.example/rss"] == "1:30"
    check = run_cli("--config", str(cfg), "check")
    assert check.returncode == 0, check.stderr
    again = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert again.returncode == 0 and "0 added, 2 already present" in again.stdout, again.stdout + again.stderr
    assert cfg.read_text(encoding="utf-8") == after


def test_import_into_flow_lists_and_empty_ones_changes_only_their_own_lines(tmp_path):
    """A `[...]` list gets the new items inside its brackets; `sources:` and `categories:` with
    nothing under them (every source commented out) get a block under the key."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        _SITE + "categories:\n  - name: A\n    tags: [x, y]\n    sources: [{url: https://a.example/rss}]  # flow\n"
        "  - name: B\n    sources:   # none yet\n  - name: C\n    sources: []\n",
        encoding="utf-8",
    )
    opml = tmp_path / "in.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        + "".join(
            f'<outline text="{c}"><outline text="{c}1" xmlUrl="https://{c}1.example/rss"/></outline>' for c in "ABC"
        )
        + "</body></opml>",
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "import-opml", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    assert cfg.read_text(encoding="utf-8") == _SITE + (
        "categories:\n  - name: A\n    tags: [x, y]\n"
        '    sources: [{url: https://a.example/rss}, {url: "https://A1.example/rss", name: A1}]  # flow\n'
        "  - name: B\n    sources:   # none yet\n      - url: https://B1.example/rss\n        name: B1\n"
        '  - name: C\n    sources: [{url: "https://C1.example/rss", name: C1}]\n'
    )
    cfg.write_text(_SITE + "categories:   # later\njekyll:\n  dir: j\n", encoding="utf-8")
    result = run_cli("--config", str(cfg), "import-opml", str(opml), "--category", "New")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cfg.read_text(encoding="utf-8") == _SITE + (
        "categories:   # later\n  - name: New\n    sources:\n"
        + "".join(f"      - url: https://{c}1.example/rss\n        name: {c}1\n" for c in "ABC")
        + "jekyll:\n  dir: j\n"
    )


_LWN_IN_TECH = (
    _SITE + "categories:\n  - name: Tech\n    sources:\n      - url: https://lwn.net/headlines/rss\n        name: LWN\n"
)


def _import_opml(
    tmp_path: Path, opml: str | bytes, config: str = _SITE + "categories:\n"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`import-opml` of `opml`, written to subs.opml, into a feeds.yaml of `config`'s text:
    the command's result and the config."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(config, encoding="utf-8")
    path = tmp_path / "subs.opml"
    if isinstance(opml, bytes):
        path.write_bytes(opml)
    else:
        path.write_text(opml, encoding="utf-8")
    return run_cli("--config", str(cfg), "import-opml", str(path)), cfg


def test_a_feed_url_the_config_refuses_is_skipped_not_the_whole_file(tmp_path):
    """A port out of range or a bracket out of place in one outline's URL: that feed is
    skipped, saying why; the others are added (the whole import was refused, naming a line
    of a config never written, or a traceback)."""
    result, cfg = _import_opml(
        tmp_path,
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="1.0"><head><title>Feedly</title></head><body>\n'
        '<outline text="Tech" title="Tech">\n'
        '  <outline type="rss" text="Good" xmlUrl="https://good.example/rss"/>\n'
        '  <outline type="rss" text="Port" xmlUrl="https://user:s3cret@port.example:99999/rss"/>\n'
        '  <outline type="rss" text="IPv6" xmlUrl="http://[::1/rss"/>\n'
        '  <outline type="rss" text="Snow" xmlUrl="http://☃.example/rss"/>\n'
        '  <outline type="rss" text="Bücher" xmlUrl="http://bücher.example/rss"/>\n'
        "</outline>\n</body></opml>\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "skipped   https://user:***@port.example:99999/rss: the port of port.example is not a number from 1 to 65535"
        in result.stdout
    )
    assert "skipped   http://[::1/rss: not a valid URL (Invalid IPv6 URL)" in result.stdout
    assert "s3cret" not in result.stdout + cfg.read_text(encoding="utf-8")
    assert "skipped   http://☃.example/rss: the host '☃.example' cannot be sent in a request" in result.stdout
    assert "5 feeds in" in result.stdout and "2 added, 0 already present, 3 skipped" in result.stdout
    keys = [c.source_keys for c in load_config(cfg).categories]
    assert keys == [("https://good.example/rss", "http://bücher.example/rss")]


def test_feeds_nested_under_a_feed_outline_are_read_in_its_folder():
    """An outline with an xmlUrl and outlines under it (outliners let one nest anything):
    the feeds under it were dropped without a word; they are read, in the feed's folder."""
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>outliner</title></head><body>
  <outline text="News">
    <outline text="Parent" type="rss" xmlUrl="https://parent.example/feed">
      <outline text="Child" type="rss" xmlUrl="https://child.example/feed">
        <outline text="Grandchild" type="rss" xmlUrl="https://grandchild.example/feed"/>
      </outline>
    </outline>
    <outline text="Scraped" type="HTML+XPath" xmlUrl="https://page.example/">
      <outline text="Under a scraper" type="rss" xmlUrl="https://under.example/feed"/>
    </outline>
  </outline>
  <outline text="Top" type="rss" xmlUrl="https://top.example/feed">
    <outline text="Under top" type="rss" xmlUrl="https://undertop.example/feed"/>
  </outline>
</body></opml>
"""
    assert [(f.url, f.title, f.category) for f in parse_opml(data)] == [
        ("https://parent.example/feed", "Parent", "News"),
        ("https://child.example/feed", "Child", "News"),
        ("https://grandchild.example/feed", "Grandchild", "News"),
        ("https://under.example/feed", "Under a scraper", "News"),
        ("https://top.example/feed", "Top", None),
        ("https://undertop.example/feed", "Under top", None),
    ]


def test_html_entities_in_names_are_read_not_dropped(tmp_path):
    """`&eacute;` and `&nbsp;`, as exporters escaping names for HTML write them, are undeclared
    in XML: the recovering parser dropped them (`Le caf&eacute; d'&Eacute;t&eacute;` was named
    `Le caf d't`, and the folder `Actualit&eacute;s` made a category `Actualits`)."""
    result, cfg = _import_opml(
        tmp_path,
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<opml version="1.0"><head><title>t</title></head><body>\n'
        b'<outline text="Actualit&eacute;s" title="Actualit&eacute;s">\n'
        b'  <outline type="rss" text="Le caf&eacute; d\'&Eacute;t&eacute;&nbsp;&mdash; Caf\xe9 &amp; &#233;"'
        b' xmlUrl="https://cafe.example/rss?a=1&amp;b=2"/>\n'
        b"</outline>\n</body></opml>\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added     https://cafe.example/rss?a=1&b=2 (Actualités)" in result.stdout
    (cat,) = load_config(cfg).categories
    assert cat.name == "Actualités" and cat.slug == "actualites"
    assert load_config(cfg).sources[0].name == "Le café d'Été — Café & é"  # the no-break space is a space, as all are


def test_folders_nested_deep_are_read_or_refused_never_a_traceback():
    """Folders in folders 1,500 deep were a RecursionError traceback; 3,000 deep (past the
    parser's limit, where it stops reading) were read as no feeds at all, without a word."""

    def nested(depth: int) -> bytes:
        feed = b'<outline text="Deep" type="rss" xmlUrl="https://deep.example/rss"/>'
        folders = b'<outline text="f">' * depth + feed + b"</outline>" * depth
        return b'<opml version="2.0"><head/><body>' + folders + b"</body></opml>\n"

    assert [(f.url, f.category) for f in parse_opml(nested(1500))] == [("https://deep.example/rss", "f")]
    with pytest.raises(OpmlError, match="deep.opml: cut off or broken at line 1: Excessive depth"):
        parse_opml(nested(3000), "deep.opml")


def test_a_control_character_in_the_site_or_a_category_name_is_left_out_of_the_opml(tmp_path):
    """`"\\x1b"` in a double-quoted name (a pasted terminal colour, a form feed): lxml raised
    on it, and `export-opml` and every `publish` (which writes opml.xml) ended in a traceback."""
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        'site:\n  title: "News\\x01 <&> 新闻"\n  url: https://t.example/\n'
        'categories:\n  - name: "Tech\\x1b[0m \\"A&B\\""\n    sources:\n      - url: https://a.example/rss\n',
        encoding="utf-8",
    )
    result = run_cli("--config", str(cfg), "export-opml")
    assert result.returncode == 0, result.stderr
    root = etree.fromstring(result.stdout.encode())  # strict: well-formed
    assert root.findtext("head/title") == "News <&> 新闻"
    assert [o.get("text") for o in root.find("body")] == ['Tech[0m "A&B"']
    published = run_cli("--config", str(cfg), "publish")
    assert published.returncode == 0, published.stderr
    assert (tmp_path / "public" / "opml.xml").read_bytes() == result.stdout.encode()


def test_a_feed_the_opml_spells_otherwise_is_the_configured_one(tmp_path):
    """`https://LWN.net:443/headlines/rss` for the configured `https://lwn.net/headlines/rss`
    (another reader's spelling): it was added beside it, and `check` then warned that the
    one feed would be polled and stored twice. It is present, or listed as the config spells it."""
    result, cfg = _import_opml(
        tmp_path,
        '<opml version="2.0"><head/><body>\n'
        '<outline text="Tech"><outline text="LWN.net" xmlUrl="https://LWN.net:443/headlines/rss"/></outline>\n'
        '<outline text="News"><outline text="LWN.net" xmlUrl="https://lwn.net/headlines/rss#top"/>\n'
        '  <outline text="Caf\xe9" xmlUrl="https://xn--caf-dma.example/%E4%B8%AD%E6%96%87/feed"/>\n'
        '  <outline text="Caf\xe9" xmlUrl="https://caf\xe9.example/\u4e2d\u6587/feed"/></outline>\n'
        "</body></opml>\n",
        _LWN_IN_TECH,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "present   https://lwn.net/headlines/rss (Tech)" in result.stdout
    assert "2 added, 2 already present" in result.stdout
    check = run_cli("--config", str(cfg), "check")
    assert check.returncode == 0 and check.stderr == "", check.stderr
    assert [c.source_keys for c in load_config(cfg).categories] == [
        ("https://lwn.net/headlines/rss",),
        ("https://lwn.net/headlines/rss", "https://xn--caf-dma.example/%E4%B8%AD%E6%96%87/feed"),
    ]


def test_a_utf16_opml_is_mended_as_any_other():
    """A UTF-16 OPML (as Windows tools save one) with a bare `&` in a URL and an HTML entity
    in a name: the bytes were left as they were, and the URL `?a=1&b=2` was read `?a=1=2`."""
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<opml version="2.0"><head/><body>\n'
        '<outline text="Actualit&eacute;s"><outline text="新闻 𠀀" xmlUrl="https://x.example/rss?a=1&b=2"/></outline>\n'
        "</body></opml>\n"
    )
    for data in (text.encode("utf-16"), codecs.BOM_UTF16_BE + text.encode("utf-16-be"), text.encode("utf-32")):
        assert parse_opml(data) == [OpmlFeed("https://x.example/rss?a=1&b=2", "新闻 𠀀", None, "Actualités")]


def test_a_flat_export_of_configured_feeds_adds_nothing(tmp_path):
    """newsboat's `-e` (and any flat list) puts feeds in no folder: those the config lists
    already were each listed again in `Imported`, which then republished them all. They are
    present in their own category; a feed not configured yet still goes to `Imported`."""
    result, cfg = _import_opml(
        tmp_path,
        '<?xml version="1.0"?>\n<opml version="1.0">\n  <head>\n    <title>newsboat - Exported Feeds</title>\n'
        "  </head>\n  <body>\n"
        '    <outline type="rss" xmlUrl="https://lwn.net/headlines/rss" htmlUrl="https://lwn.net" title="LWN.net" />\n'
        '    <outline type="rss" xmlUrl="https://xkcd.com/atom.xml" htmlUrl="https://xkcd.com/" title="xkcd" />\n'
        "  </body>\n</opml>\n",
        _LWN_IN_TECH,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "present   https://lwn.net/headlines/rss (Tech)" in result.stdout
    assert [(c.name, c.source_keys) for c in load_config(cfg).categories] == [
        ("Tech", ("https://lwn.net/headlines/rss",)),
        ("Imported", ("https://xkcd.com/atom.xml",)),
    ]
    # --category still lists it there, as asked
    opml = str(tmp_path / "subs.opml")
    assert run_cli("--config", str(cfg), "import-opml", opml, "--category", "Imported").returncode == 0
    assert load_config(cfg).categories[1].source_keys == ("https://xkcd.com/atom.xml", "https://lwn.net/headlines/rss")


def test_an_outline_commented_out_is_not_imported():
    """OPML 2.0's `isComment="true"` (Drummer, Little Outliner) comments an outline out, and
    every outline under it: such feeds, which the user had turned off, were imported."""
    data = b"""<opml version="2.0"><head><title>Drummer</title></head><body>
  <outline text="News">
    <outline text="On" type="rss" xmlUrl="https://on.example/rss"/>
    <outline text="Off" type="rss" xmlUrl="https://off.example/rss" isComment="true"/>
  </outline>
  <outline text="Old" isComment="true">
    <outline text="Under old" type="rss" xmlUrl="https://old.example/rss"/>
  </outline>
  <outline text="Kept" type="rss" xmlUrl="https://kept.example/rss" isComment="false"/>
</body></opml>
"""
    assert [f.url for f in parse_opml(data)] == ["https://on.example/rss", "https://kept.example/rss"]


def test_an_end_tag_out_of_place_is_refused_naming_its_line(tmp_path):
    """A folder's first line deleted by hand leaves a stray `</outline>`: recovery closed
    <body> there and every feed after it was dropped without a word (`1 feed in ...: 1
    added`). A file whose tags do not match is refused, naming the line, as a cut-off one."""
    result, cfg = _import_opml(
        tmp_path,
        '<?xml version="1.0"?>\n<opml version="2.0">\n<head><title>x</title></head>\n<body>\n'
        '<outline text="A" type="rss" xmlUrl="https://a.example/rss"/>\n</outline>\n'
        '<outline text="B" type="rss" xmlUrl="https://b.example/rss"/>\n</body>\n</opml>\n',
        _SITE,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"error: {tmp_path / 'subs.opml'}: cut off or broken at line 6: Opening and ending tag mismatch"
        in result.stderr
    )
    assert "nothing imported" in result.stderr and cfg.read_text(encoding="utf-8") == _SITE


def test_an_opml_in_a_default_namespace_is_read():
    """`<opml xmlns="http://opml.org/spec2">`: taken for OPML, then refused as having no <body>."""
    data = b"""<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0" xmlns="http://opml.org/spec2"><head><title>Podcasts</title></head><body>
  <outline text="Shows"><outline type="rss" text="A show" xmlUrl="https://show.example/rss"/></outline>
</body></opml>
"""
    assert parse_opml(data) == [OpmlFeed("https://show.example/rss", "A show", None, "Shows")]


def test_a_space_in_a_feed_urls_path_or_query_is_sent_as_percent_20(tmp_path):
    """`?q=climate change` (a search feed written by hand): the config takes it and requests
    sends %20, but the import skipped it as "not an absolute http(s) URL". It is added with
    %20; a space in the host is still refused, saying the host is no host name."""
    result, cfg = _import_opml(
        tmp_path,
        '<opml version="2.0"><head/><body><outline text="Search">\n'
        '<outline text="Climate" xmlUrl="https://news.google.com/rss/search?q=climate change&amp;hl=en"/>\n'
        '<outline text="Typo" xmlUrl="http://exa mple.com/rss"/>\n'
        "</outline></body></opml>\n",
        _SITE,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "added     https://news.google.com/rss/search?q=climate%20change&hl=en (Search)" in result.stdout
    assert "skipped   http://exa mple.com/rss: not a host name: 'exa mple.com'" in result.stdout
    assert load_config(cfg).categories[0].source_keys == (
        "https://news.google.com/rss/search?q=climate%20change&hl=en",
    )
    again = run_cli("--config", str(cfg), "import-opml", str(tmp_path / "subs.opml"))
    assert "0 added, 1 already present, 1 skipped" in again.stdout
