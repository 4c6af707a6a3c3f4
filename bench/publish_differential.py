"""Incremental publish against a publish from scratch: `python -m bench.publish_differential`.

Serves twelve corpus feeds (three also at a second URL, every entry a copy) on 127.0.0.1,
fetches a 4-category config (sources in two categories, one `duplicates: keep`), then
applies 27 config edits one by one (add, remove, move, second category, rename a source,
reorder, rename a category keeping its slug, tags, image, every category's image, site.image
set, changed and removed, duplicates on and off, disable, exclude, swap categories, change a
slug, drop a category). After each it publishes as the
daemon does (sources synced, no forced rebuild) and publishes a copy of the database into
empty folders, and lists every file (site, feeds, Jekyll, OPML) that differs. ~80 s; the
quicker subset is tests/test_publish_incremental.py. Exit 1 on any difference.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CORPUS = Path("/work/shared/corpus")
FEEDS = """c8ffd33cfd9f8891 87232eca4263cf8c 03db8affb53e2a2f 770d8b7c766a720d e8203fee50c570d8
14333881097406c7 e8fa5b64a4b41322 9835a36b67764259 92f267815335c9ef 1e4ab389e139d659
5a481e64c5b57b14 1464cc512ecc7ddd""".split()


def cli(*args):
    r = subprocess.run([sys.executable, "-m", "aggregator", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def inc_publish(cfg):
    """As the daemon publishes: sources synced, then publish without force."""
    from aggregator.config import load_config
    from aggregator.publish import publish
    from aggregator.store import Store

    settings = load_config(cfg)
    with Store(settings.database) as store:
        store.sync_sources(settings.sources)
        rep = publish(settings, store)

    class R:
        stdout = f"{len(rep.written)} written, {len(rep.removed)} removed, categories {sorted(rep.categories)}"

    return R


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# `site.image`, the all-posts feeds' cover, as the edits set it (none at first)
SITE: dict[str, str] = {}


def render(cats) -> str:
    image = f"  image: {SITE['image']}\n" if SITE.get("image") else ""
    out = [
        "site:\n  title: Diff\n  url: https://d.example/\n  posts_per_page: 5\n"
        + image
        + "jekyll:\n  dir: jekyll\ncategories:\n"
    ]
    for c in cats:
        out.append(f"  - name: {c['name']}\n    slug: {c['slug']}\n")
        if c.get("tags"):
            out.append(f"    tags: [{', '.join(c['tags'])}]\n")
        if c.get("image"):
            out.append(f"    image: {c['image']}\n")
        if c.get("duplicates"):
            out.append(f"    duplicates: {c['duplicates']}\n")
        if c.get("exclude"):
            out.append(f"    exclude:\n      - title: '{c['exclude']}'\n")
        out.append("    sources:\n")
        for s in c["sources"]:
            out.append(f"      - url: {s['url']}\n")
            if s.get("name"):
                out.append(f"        name: {s['name']}\n")
            if s.get("enabled") is False:
                out.append("        enabled: false\n")
    return "".join(out)


def main(work: Path) -> list[str]:
    serve = work / "serve"
    serve.mkdir(parents=True)
    for f in FEEDS:
        shutil.copy(CORPUS / "kagi" / f"fastfeedparser__benchmark_data_{f}.xml", serve / f"{f}.xml")
    # the same feed at a second URL: every entry a copy of another source's
    for f in FEEDS[:3]:
        shutil.copy(serve / f"{f}.xml", serve / f"copy-{f}.xml")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(serve)))
    SimpleHTTPRequestHandler.log_message = lambda *a: None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}/"
    S = {f: {"url": base + f + ".xml"} for f in FEEDS}
    C = {f: {"url": base + "copy-" + f + ".xml"} for f in FEEDS[:3]}
    F = FEEDS
    beta = [S[F[4]], S[F[5]], S[F[0]]]
    cats = [
        {"name": "Alpha", "slug": "alpha", "tags": ["a"], "sources": [S[F[0]], S[F[1]], S[F[2]], S[F[3]]]},
        {"name": "Beta", "slug": "beta", "duplicates": "keep", "sources": [C[F[0]], C[F[1]], *beta]},
        {"name": "Gamma", "slug": "gamma", "sources": [C[F[2]], S[F[6]], S[F[7]], S[F[1]]]},
        {"name": "Delta", "slug": "delta", "tags": ["d"], "sources": [S[F[8]], S[F[9]], S[F[10]]]},
    ]
    inc = work / "inc"
    inc.mkdir()
    cfg = inc / "feeds.yaml"
    cfg.write_text(render(cats), "utf-8")
    cli("--config", str(cfg), "fetch")

    def edit_add(c):
        c[3]["sources"].append(S[F[11]])

    def edit_remove(c):
        c[0]["sources"].remove(S[F[3]])

    def edit_move(c):
        c[2]["sources"].remove(S[F[7]])
        c[3]["sources"].append(S[F[7]])

    def edit_second(c):
        c[3]["sources"].append(S[F[4]])

    def edit_rename_src(c):
        for cat in c:
            for s in cat["sources"]:
                if s["url"] == S[F[5]]["url"]:
                    s["name"] = "Renamed Five"

    def edit_reorder(c):
        c[0]["sources"].reverse()

    def edit_rename_cat(c):
        c[1]["name"] = "Beta Renamed"

    def edit_tags(c):
        c[0]["tags"] = ["a2", "x"]

    def edit_image(c):
        c[2]["image"] = "https://d.example/cover.png"

    def edit_images_all(c):  # every category the same cover: the all-posts feeds' too
        for cat in c:
            cat["image"] = "https://d.example/cover.png"

    def edit_site_image(c):
        SITE["image"] = "https://d.example/site.png"

    def edit_site_image_change(c):
        SITE["image"] = "https://d.example/site2.png"

    def edit_site_image_off(c):
        SITE.pop("image", None)

    def edit_image_one_off(c):  # the categories' covers differ: the all-posts feeds have none
        c[0].pop("image", None)

    def edit_image_change(c):
        c[1]["image"] = "https://d.example/other.png"

    def edit_dup_off(c):
        c[1]["duplicates"] = None

    def edit_dup_on(c):
        c[2]["duplicates"] = "keep"

    def edit_disable(c):
        for cat in c:
            for s in cat["sources"]:
                if s["url"] == S[F[9]]["url"]:
                    s["enabled"] = False

    def edit_remove_first_copy(c):
        c[0]["sources"].remove(S[F[0]])

    def edit_first_into_gamma(c):
        c[2]["sources"].insert(0, S[F[2]])

    def edit_gamma_dup_off(c):
        c[2]["duplicates"] = None

    def edit_drop_f0(c):
        c[1]["sources"].remove(S[F[0]])

    def edit_swap_cats(c):
        c[0], c[1] = c[1], c[0]

    def edit_drop_delta(c):
        c.pop(3)

    def edit_slug(c):
        c[0]["slug"] = "beta2"

    def edit_enable(c):
        for cat in c:
            for s in cat["sources"]:
                s.pop("enabled", None)

    def edit_exclude(c):
        c[0]["exclude"] = "(?i)[aeiou]"

    edits = [
        edit_add,
        edit_remove,
        edit_move,
        edit_second,
        edit_rename_src,
        edit_reorder,
        edit_rename_cat,
        edit_tags,
        edit_image,
        edit_images_all,
        edit_site_image,
        edit_site_image_change,
        edit_site_image_off,
        edit_image_one_off,
        edit_image_change,
        edit_dup_off,
        edit_dup_on,
        edit_disable,
        edit_remove_first_copy,
        edit_first_into_gamma,
        edit_gamma_dup_off,
        edit_drop_f0,
        edit_swap_cats,
        edit_enable,
        edit_exclude,
        edit_slug,
        edit_drop_delta,
    ]
    only = os.environ.get("EDITS")
    if only:
        edits = [e for e in edits if e.__name__ in only.split(",")]
    problems = []
    for n, e in enumerate(edits):
        # same source objects shared in several categories: deep-copy keeps per-listing dicts distinct
        e(cats)
        cfg.write_text(render(cats), "utf-8")
        t = time.monotonic()
        r = inc_publish(cfg)
        ti = time.monotonic() - t
        scratch = work / f"scratch{n}"
        scratch.mkdir()
        (scratch / "feeds.yaml").write_text(render(cats), "utf-8")
        for suf in ("", "-wal", "-shm"):
            if (inc / f"aggregator.db{suf}").exists():
                shutil.copy(inc / f"aggregator.db{suf}", scratch / f"aggregator.db{suf}")
        cli("--config", str(scratch / "feeds.yaml"), "publish")
        diffs = []
        for d in ("public", "jekyll"):
            a, b = tree(inc / d), tree(scratch / d)
            for k in sorted(a.keys() | b.keys()):
                if a.get(k) != b.get(k) and not k.endswith(".aggregator-owner"):
                    diffs.append(
                        f"{d}/{k}: "
                        + ("only incremental" if k not in b else "only scratch" if k not in a else "differs")
                    )
        print(
            f"{e.__name__}: incremental {ti:.2f}s, {r.stdout}; {len(diffs)} differences",
            flush=True,
        )
        for x in diffs[:15]:
            print("   ", x)
        problems += [f"{e.__name__}: {x}" for x in diffs]
    srv.shutdown()
    return problems


if __name__ == "__main__":
    import tempfile

    w = Path(tempfile.mkdtemp(prefix="diffpub"))
    t = time.monotonic()
    p = main(w)
    print(f"{len(p)} differences in all, {time.monotonic() - t:.1f}s, work {w}")
    sys.exit(1 if p else 0)
