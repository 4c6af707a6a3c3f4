"""Render the static HTML site: home page, paginated category pages, one page per post.

Jinja2 templates ship in `aggregator/templates/`; a `site.templates` folder in the config
overrides any of them by file name. Autoescaping is on for everything: the only markup
passed through is post content, which the store already holds sanitized.

Pure rendering: callers pass posts and get bytes, so the same posts always give the same
bytes (no clock, no locale) and unchanged pages are never rewritten. Links between pages
are relative (the site works from any folder, a sub-path or `file://`); feed links meant
for readers (autodiscovery, canonical) are absolute, built from `site.url`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
    pass_context,
    select_autoescape,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Template as TemplateNode
from jinja2.runtime import Context
from markupsafe import Markup, escape

try:
    from markupsafe import _escape_inner
except ImportError:  # MarkupSafe 2, whose `escape` is all C
    _escape_inner = escape

from .. import PROJECT_URL, __version__
from ..config import Category, Settings
from ..credentials import public_url
from ..models import Enclosure, Post
from .feeds import (
    bidi_closed,
    bidi_isolated,
    clean_text,
    feed_uri,
    html_excerpt,
    language_tag,
    letters_direction,
    permalink,
    stated_language,
    web_url,
    written_in,
)
from .memo import IdentityMemo

__all__ = [
    "REDIRECT_MARK",
    "CategoryLink",
    "SiteError",
    "SiteRenderer",
    "category_page_path",
    "pictures_shown",
    "player",
    "post_page_path",
    "redirect_page",
    "strings_for",
    "template_problems",
    "text_direction",
]

PAGES = ("index.html", "category.html", "post.html", "style.css")
_BUILT_IN = Path(__file__).resolve().parent.parent / "templates"


# What HTML forbids in a page and XML 1.0 (so clean_text) does not: DEL, the C1 controls (a
# twice mis-decoded `”` ends in U+009D) and the noncharacters: U+FDD0-U+FDEF and the last two
# code points of each supplementary plane (U+1FFFE, U+1FFFF … U+10FFFF).
# Matched as ranges (every supplementary character from U+1FFFE on, told apart by `_forbidden`):
# a class of the 32 code points one by one made the scan of every page's text 4-5× slower,
# 0.4 s of a 2.5 s full publish.
_NOT_HTML = re.compile("[\x7f-\x9f\ufdd0-\ufdef\U0001fffe-\U0010ffff]")


def _forbidden(m: re.Match[str]) -> str:
    code = ord(m.group())
    return "" if code < 0x10000 or code & 0xFFFE == 0xFFFE else m.group()


def _page_text(text: str) -> str:
    """clean_text, less what HTML forbids besides."""
    text = clean_text(text)
    return _NOT_HTML.sub(_forbidden, text) if _NOT_HTML.search(text) else text


_TABLE_TAG = re.compile(r"<(/?)table[\s>]")
_HEADING_TAG = re.compile(r"<(/?)h([1-6])(?=[\s>])")


def _headings_below_title(html: str) -> str:
    """`html` with its headings a level down (h1 → h2 … h5 → h6) when it has an `<h1>`: the
    page's own `<h1>` is the post's title, and a post beginning with its title again as `<h1>`
    (as many do) gave a screen reader's list of headings two of the top level, the page's
    outline a second start. Only the site's pages: the Jekyll export keeps the text as it is."""
    if "<h1" not in html:
        return html
    return _HEADING_TAG.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 1, 6)}", html)


def _scrolling_tables(html: str) -> str:
    """`html` with each outermost table in a `<div class="table-scroll">`, which scrolls a
    table wider than a phone. Made to scroll itself (`display: block`), a table lost its
    table semantics to Safari's screen reader. The content is html5ever's serialization (a
    `<` in text or an attribute is escaped), so the tags found are the tags; a count that
    does not balance (never from nh3) leaves the content as it is."""
    if "<table" not in html:
        return html
    parts: list[str] = []
    depth = done = 0
    for m in _TABLE_TAG.finditer(html):
        if not m.group(1):
            if depth == 0:
                parts += (html[done : m.start()], '<div class="table-scroll">')
                done = m.start()
            depth += 1
        elif depth == 0:
            return html
        else:
            depth -= 1
            if depth == 0:
                end = html.index(">", m.end() - 1) + 1
                parts += (html[done:end], "</div>")
                done = end
    if depth:
        return html
    parts.append(html[done:])
    return "".join(parts)


def _href(url: str | None) -> str | None:
    """An http(s) `url` as a page may link it: percent-encoded as the feeds write it (`[`, `]`,
    `|`, spaces are not allowed in a URL's path or query), else as it is (a host the feeds drop)."""
    return web_url(feed_uri(url) or url)


class SiteError(Exception):
    """A template cannot be used: the message names the file and line."""


_AFTER_TITLE = " :：-–—|·,.，。"  # what separates a title from the text it opens


def _excerpt_after(title: str, html: str, limit: int = 160) -> str | None:
    """The listing's excerpt, without the title it opens with: many feeds start their text
    with the title, which the listing showed twice, one line under the other (and an
    untitled post's title is its excerpt's start)."""
    excerpt = html_excerpt(html, limit)
    head = title.removesuffix("…")  # an untitled post's title: its text's start, cut
    if not head or not excerpt.startswith(head):
        return excerpt or None
    after, last = excerpt[len(head) : len(head) + 1], head[-1]
    if after.isascii() and after.isalnum() and last.isascii() and last.isalnum():  # `Go` of `Gophers`
        return excerpt
    rest = html_excerpt(html, limit + len(head))[len(head) :].lstrip(_AFTER_TITLE)
    return rest if rest.strip("…") else None


def _template_error(name: str, e: Exception) -> SiteError:
    if isinstance(e, TemplateSyntaxError):
        where = f"{e.filename or e.name or name}:{e.lineno}"
        return SiteError(f"template {where}: {e.message}")
    # A runtime error (`{{ 1 // 0 }}`, a filter given the wrong type): Jinja rewrites the
    # traceback so that the template's own frame carries its file name and line.
    where, tb = name, e.__traceback__
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if file.endswith((".html", ".css")) or file.endswith(name):
            where = f"{file}:{tb.tb_lineno}"
        tb = tb.tb_next
    return SiteError(f"template {where}: {type(e).__name__}: {e}")


def template_problems(settings: Settings) -> list[str]:
    """`file:line: site.templates: problem` for each template the site would use (the pages,
    and what they extend, include or import) that Jinja cannot parse or compile: a broken
    tag or an unknown filter, which `check` passed and every publish then failed on. Nothing
    is rendered: a mistake that only shows with a page's data still shows at publish."""
    folder = settings.templates_dir
    if folder is None:
        return []

    def shown(path: str | Path) -> Path | str:
        # As the config's own errors name their file: `theme/index.html:3:` beside
        # `feeds.yaml:5:` (the config as given, here `feeds.yaml`), not an absolute path the
        # user never typed. A template outside the config's folder keeps its absolute path.
        try:
            return settings.path.parent / Path(path).relative_to(settings.path.parent.resolve())
        except ValueError:
            return path

    env = _environment(str(folder), _template_names(folder))
    loader: BaseLoader = env.loader  # type: ignore[assignment]
    problems: list[str] = []
    todo, seen = list(PAGES), set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        try:
            source, filename, _ = loader.get_source(env, name)
        except (OSError, UnicodeDecodeError) as e:  # unreadable, or saved in another encoding than UTF-8
            problems.append(f"{shown(folder / name)}: site.templates: cannot read it: {e}")
            continue
        try:
            tree = env.parse(source, name, filename)
            env.compile(tree, name, filename)  # unknown filters and tests are found here
        except TemplateSyntaxError as e:
            problems.append(f"{shown(e.filename or filename)}:{e.lineno}: site.templates: {e.message}")
            continue
        for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            ref = node.template
            if not (isinstance(ref, nodes.Const) and isinstance(ref.value, str)):
                continue  # a name computed at render time
            try:
                loader.get_source(env, ref.value)
            except TemplateNotFound:  # (an OSError too: first)
                if not getattr(node, "ignore_missing", False):
                    missing = f"no template {ref.value!r}: neither in {shown(folder)} nor built in"
                    problems.append(f"{shown(filename)}:{node.lineno}: site.templates: {missing}")
                continue
            except (OSError, UnicodeDecodeError):
                pass  # there but unreadable: said when its turn comes
            todo.append(ref.value)
    return problems


FEED_TYPES = (
    ("atom", "Atom", "application/atom+xml"),
    ("rss", "RSS", "application/rss+xml"),
    ("json", "JSON Feed", "application/feed+json"),
)

# Words the templates show, by language (primary subtag, or zh-Hant for traditional script).
_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "home": "Home",
        "latest": "Latest posts",
        "categories": "Categories",
        "subscribe": "Subscribe",
        "source": "Source",
        "original": "Read the original",
        "by": "By {name}",
        "posts": "posts",
        "page": "Page {n} of {total}",
        "newer": "← Newer",
        "older": "Older →",
        "back_to": "Back to {name}",
        "tags": "Tags",
        "attachments": "Attachments",
        "all_posts": "All posts",
        "empty": "Nothing here yet.",
        "opml": "OPML",
        "generated": "Generated by",
        "more": "More in {name} →",
        "colon": ": ",
        "untitled": "(untitled)",
        "skip": "Skip to content",
        "crumbs": "Breadcrumb",
        "back": "Back",
    },
    "zh": {
        "home": "首页",
        "latest": "最新文章",
        "categories": "分类",
        "subscribe": "订阅",
        "source": "来源",
        "original": "阅读原文",
        "by": "作者：{name}",
        "posts": "篇",
        "page": "第 {n} 页，共 {total} 页",
        "newer": "← 较新",
        "older": "较早 →",
        "back_to": "返回{name}",
        "tags": "标签",
        "attachments": "附件",
        "all_posts": "全部文章",
        "empty": "暂无文章。",
        "opml": "OPML",
        "generated": "生成工具",
        "more": "{name}的更多文章 →",
        "colon": "：",
        "untitled": "无标题",
        "skip": "跳到正文",
        "crumbs": "当前位置",
        "back": "返回",
    },
    "zh-Hant": {
        "home": "首頁",
        "latest": "最新文章",
        "categories": "分類",
        "subscribe": "訂閱",
        "source": "來源",
        "original": "閱讀原文",
        "by": "作者：{name}",
        "posts": "篇",
        "page": "第 {n} 頁，共 {total} 頁",
        "newer": "← 較新",
        "older": "較早 →",
        "back_to": "返回{name}",
        "tags": "標籤",
        "attachments": "附件",
        "all_posts": "全部文章",
        "empty": "暫無文章。",
        "opml": "OPML",
        "generated": "生成工具",
        "more": "{name}的更多文章 →",
        "colon": "：",
        "untitled": "無標題",
        "skip": "跳到正文",
        "crumbs": "目前位置",
        "back": "返回",
    },
    "fr": {
        "home": "Accueil",
        "latest": "Derniers articles",
        "categories": "Catégories",
        "subscribe": "S’abonner",
        "source": "Source",
        "original": "Lire l’article original",
        "by": "Par {name}",
        "posts": "articles",
        "page": "Page {n} sur {total}",
        "newer": "← Plus récents",
        "older": "Plus anciens →",
        "back_to": "Retour à {name}",
        "tags": "Mots-clés",
        "attachments": "Pièces jointes",
        "all_posts": "Tous les articles",
        "empty": "Rien pour l’instant.",
        "opml": "OPML",
        "generated": "Généré par",
        "more": "Plus dans {name} →",
        "colon": "\u00a0: ",
        "untitled": "(sans titre)",
        "skip": "Aller au contenu",
        "crumbs": "Fil d’Ariane",
        "back": "Retour",
    },
    "de": {
        "home": "Startseite",
        "latest": "Neueste Beiträge",
        "categories": "Kategorien",
        "subscribe": "Abonnieren",
        "source": "Quelle",
        "original": "Original lesen",
        "by": "Von {name}",
        "posts": "Beiträge",
        "page": "Seite {n} von {total}",
        "newer": "← Neuere",
        "older": "Ältere →",
        "back_to": "Zurück zu {name}",
        "tags": "Schlagwörter",
        "attachments": "Anhänge",
        "all_posts": "Alle Beiträge",
        "empty": "Noch keine Beiträge.",
        "opml": "OPML",
        "generated": "Erstellt mit",
        "more": "Mehr in {name} →",
        "colon": ": ",
        "untitled": "(ohne Titel)",
        "skip": "Zum Inhalt springen",
        "crumbs": "Brotkrümelnavigation",
        "back": "Zurück",
    },
    "es": {
        "home": "Inicio",
        "latest": "Últimas entradas",
        "categories": "Categorías",
        "subscribe": "Suscribirse",
        "source": "Fuente",
        "original": "Leer el original",
        "by": "Por {name}",
        "posts": "entradas",
        "page": "Página {n} de {total}",
        "newer": "← Más recientes",
        "older": "Más antiguas →",
        "back_to": "Volver a {name}",
        "tags": "Etiquetas",
        "attachments": "Adjuntos",
        "all_posts": "Todas las entradas",
        "empty": "Aún no hay entradas.",
        "opml": "OPML",
        "generated": "Generado por",
        "more": "Más en {name} →",
        "colon": ": ",
        "untitled": "(sin título)",
        "skip": "Saltar al contenido",
        "crumbs": "Ruta de navegación",
        "back": "Volver",
    },
    "pt": {
        "home": "Início",
        "latest": "Publicações recentes",
        "categories": "Categorias",
        "subscribe": "Assinar",
        "source": "Fonte",
        "original": "Ler o original",
        "by": "Por {name}",
        "posts": "publicações",
        "page": "Página {n} de {total}",
        "newer": "← Mais recentes",
        "older": "Mais antigas →",
        "back_to": "Voltar para {name}",
        "tags": "Etiquetas",
        "attachments": "Anexos",
        "all_posts": "Todas as publicações",
        "empty": "Ainda não há publicações.",
        "opml": "OPML",
        "generated": "Gerado por",
        "more": "Mais em {name} →",
        "colon": ": ",
        "untitled": "(sem título)",
        "skip": "Ir para o conteúdo",
        "crumbs": "Trilha de navegação",
        "back": "Voltar",
    },
    "it": {
        "home": "Home",
        "latest": "Ultimi articoli",
        "categories": "Categorie",
        "subscribe": "Abbonati",
        "source": "Fonte",
        "original": "Leggi l’originale",
        "by": "Di {name}",
        "posts": "articoli",
        "page": "Pagina {n} di {total}",
        "newer": "← Più recenti",
        "older": "Meno recenti →",
        "back_to": "Torna a {name}",
        "tags": "Tag",
        "attachments": "Allegati",
        "all_posts": "Tutti gli articoli",
        "empty": "Ancora nessun articolo.",
        "opml": "OPML",
        "generated": "Generato da",
        "more": "Altro in {name} →",
        "colon": ": ",
        "untitled": "(senza titolo)",
        "skip": "Vai al contenuto",
        "crumbs": "Percorso di navigazione",
        "back": "Indietro",
    },
    "ru": {
        "home": "Главная",
        "latest": "Последние записи",
        "categories": "Рубрики",
        "subscribe": "Подписаться",
        "source": "Источник",
        "original": "Читать оригинал",
        "by": "Автор: {name}",
        "posts": "записей",
        "page": "Страница {n} из {total}",
        "newer": "← Новые записи",
        "older": "Старые записи →",
        "back_to": "Назад: {name}",
        "tags": "Теги",
        "attachments": "Вложения",
        "all_posts": "Все записи",
        "empty": "Записей пока нет.",
        "opml": "OPML",
        "generated": "Создано с помощью",
        "more": "Ещё: {name} →",
        "colon": ": ",
        "untitled": "(без названия)",
        "skip": "Перейти к содержимому",
        "crumbs": "Навигационная цепочка",
        "back": "Назад",
    },
    "ja": {
        "home": "ホーム",
        "latest": "最新の記事",
        "categories": "カテゴリー",
        "subscribe": "購読",
        "source": "出典",
        "original": "元の記事を読む",
        "by": "著者：{name}",
        "posts": "件",
        "page": "{n} / {total} ページ",
        "newer": "← 新しい記事",
        "older": "古い記事 →",
        "back_to": "{name}に戻る",
        "tags": "タグ",
        "attachments": "添付ファイル",
        "all_posts": "すべての記事",
        "empty": "まだ記事はありません。",
        "opml": "OPML",
        "generated": "生成ツール",
        "more": "{name}の記事をもっと見る →",
        "colon": "：",
        "untitled": "無題",
        "skip": "本文へ移動",
        "crumbs": "現在位置",
        "back": "戻る",
    },
    "ko": {
        "home": "홈",
        "latest": "최신 글",
        "categories": "카테고리",
        "subscribe": "구독",
        "source": "출처",
        "original": "원문 읽기",
        "by": "글쓴이: {name}",
        "posts": "편",
        "page": "{n} / {total} 페이지",
        "newer": "← 최신 글",
        "older": "이전 글 →",
        "back_to": "{name} 목록으로",
        "tags": "태그",
        "attachments": "첨부 파일",
        "all_posts": "전체 글",
        "empty": "아직 글이 없습니다.",
        "opml": "OPML",
        "generated": "생성 도구",
        "more": "{name} 더 보기 →",
        "colon": ": ",
        "untitled": "(제목 없음)",
        "skip": "본문으로 건너뛰기",
        "crumbs": "현재 위치",
        "back": "뒤로",
    },
    "ar": {  # right to left: an arrow pointing to the start of the line points right
        "home": "الرئيسية",
        "latest": "أحدث المقالات",
        "categories": "الأقسام",
        "subscribe": "اشترك",
        "source": "المصدر",
        "original": "اقرأ المقال الأصلي",
        "by": "بقلم {name}",
        "posts": "مقالات",
        "page": "الصفحة {n} من {total}",
        "newer": "→ الأحدث",
        "older": "الأقدم ←",
        "back_to": "العودة إلى {name}",
        "tags": "الوسوم",
        "attachments": "المرفقات",
        "all_posts": "كل المقالات",
        "empty": "لا توجد مقالات بعد.",
        "opml": "OPML",
        "generated": "أُنشئ بواسطة",
        "more": "المزيد في {name} ←",
        "colon": ": ",
        "untitled": "(بدون عنوان)",
        "skip": "انتقل إلى المحتوى",
        "crumbs": "مسار التنقل",
        "back": "رجوع",
    },
    "he": {  # right to left, as Arabic: arrows point the way the links lie
        "home": "דף הבית",
        "latest": "כתבות אחרונות",
        "categories": "קטגוריות",
        "subscribe": "הרשמה",
        "source": "מקור",
        "original": "לקריאת הכתבה המקורית",
        "by": "מאת {name}",
        "posts": "כתבות",
        "page": "עמוד {n} מתוך {total}",
        "newer": "→ חדשות יותר",
        "older": "ישנות יותר ←",
        "back_to": "חזרה אל {name}",
        "tags": "תגיות",
        "attachments": "קבצים מצורפים",
        "all_posts": "כל הכתבות",
        "empty": "אין כאן כתבות עדיין.",
        "opml": "OPML",
        "generated": "נוצר באמצעות",
        "more": "עוד מתוך {name} ←",
        "colon": ": ",
        "untitled": "(ללא כותרת)",
        "skip": "דילוג לתוכן",
        "crumbs": "פירורי לחם",
        "back": "חזרה",
    },
    "fa": {  # right to left, as Arabic
        "home": "خانه",
        "latest": "تازه‌ترین مطالب",
        "categories": "دسته‌ها",
        "subscribe": "اشتراک",
        "source": "منبع",
        "original": "خواندن متن اصلی",
        "by": "نوشتهٔ {name}",
        "posts": "مطلب",
        "page": "صفحهٔ {n} از {total}",
        "newer": "→ جدیدتر",
        "older": "قدیمی‌تر ←",
        "back_to": "بازگشت به {name}",
        "tags": "برچسب‌ها",
        "attachments": "پیوست‌ها",
        "all_posts": "همهٔ مطالب",
        "empty": "هنوز مطلبی نیست.",
        "opml": "OPML",
        "generated": "ساخته‌شده با",
        "more": "مطالب بیشتر در {name} ←",
        "colon": ": ",
        "untitled": "(بدون عنوان)",
        "skip": "پرش به محتوا",
        "crumbs": "مسیر راهنما",
        "back": "بازگشت",
    },
}

# "N posts" by the language's plural rules (CLDR), for the counts the pages show: "1 posts"
# was English for one, and French, German or Russian sites said it in English. Keyed as
# `_STRINGS`; a language not here says its `posts` whatever the count.
_POST_FORMS: dict[str, dict[str, str]] = {
    "en": {"one": "post", "other": "posts"},
    "fr": {"one": "article", "other": "articles"},
    "de": {"one": "Beitrag", "other": "Beiträge"},
    "es": {"one": "entrada", "other": "entradas"},
    "pt": {"one": "publicação", "other": "publicações"},
    "it": {"one": "articolo", "other": "articoli"},
    "ru": {"one": "запись", "few": "записи", "many": "записей"},
    "ar": {"zero": "مقالات", "one": "مقال", "two": "مقالان", "few": "مقالات", "many": "مقالًا", "other": "مقال"},
    "he": {"one": "כתבה", "other": "כתבות"},
    "fa": {"one": "مطلب", "other": "مطلب"},  # a noun after a number stays singular
}


def _plural(language: str, n: int) -> str:
    """The CLDR plural category of a whole number `n` in `language` (a key of `_POST_FORMS`)."""
    if language == "fr":
        return "one" if n in (0, 1) else "other"
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        return "few" if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else "many"
    if language == "ar":
        if n in (0, 1, 2):
            return ("zero", "one", "two")[n]
        return "few" if 3 <= n % 100 <= 10 else "many" if 11 <= n % 100 <= 99 else "other"
    return "one" if n == 1 else "other"


def count_phrase(language: str, n: int) -> str:
    """`n` and "posts" in the site language, in the form the number takes (`1 post`, `2 записи`)."""
    key = _language_key(language)
    forms = _POST_FORMS.get(key)
    word = forms[_plural(key, n)] if forms else _STRINGS[key]["posts"]
    return f"{n}{'' if key in ('ja', 'ko') else ' '}{word}"


# Languages written right to left unless their tag names another script (`ku` is Latin; `ckb`
# Arabic), and the scripts written right to left (ISO 15924), for `dir`.
_RTL_LANGUAGES = frozenset(
    "ar arc azb bal bqi ckb dv fa glk he iw ji khw ks lrc mzn nqo pnb prs ps sd sdh skr syr ug ur yi".split()
    # Arabic's own (ISO 639-3: Egyptian, Levantine, Moroccan, Gulf…), Balochi, Hindko, Hazaragi,
    # Ottoman Turkish, Judeo-Arabic and Judeo-Persian, Assyrian and Chaldean Aramaic: a site of
    # `arz` was laid out left to right
    + "arb arz apc apd ajp acm acq acw acx aeb afb arq ars ary ayl ayn ayp abv shu ssh"
    " bcc bgn bgp hno haz ota jrb jpr aii cld syc".split()
)
_RTL_SCRIPTS = frozenset("adlm arab aran hebr mand mend nkoo rohg samr syrc thaa yezi".split())


def text_direction(language: str | None) -> str | None:
    """`rtl` or `ltr` for a BCP 47 tag (`ar`, `fa-IR`, `az-Arab`, `ku-Latn`), None without one:
    a browser lays out Arabic or Hebrew right to left only when `dir` says so."""
    parts = (language or "").replace("_", "-").lower().split("-")
    if not parts[0]:
        return None
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():  # the script, after the language (and any extlang)
            return "rtl" if part in _RTL_SCRIPTS else "ltr"
        if not (len(part) == 3 and part.isalpha()):
            break
    return "rtl" if parts[0] in _RTL_LANGUAGES else "ltr"


def words_language(language: str) -> str | None:
    """The language of the words the pages show, when it is not the site's: `en` for a site in a
    language we have no words for (`ur`, `ps`, `hi`), whose pages said "Home" and "Subscribe"
    under `lang="ur"` (read by screen readers in an Urdu voice); None when they are its own."""
    primary = language.replace("_", "-").split("-")[0].lower()
    return "en" if _language_key(language) == "en" and primary != "en" else None


def strings_for(language: str) -> dict[str, str]:
    """The template words for a BCP 47 tag: zh-TW/zh-HK/zh-Hant get traditional script; a
    language without its words gets English ones."""
    return _STRINGS[_language_key(language)]


def _language_key(language: str) -> str:
    """The key of `_STRINGS` for a BCP 47 tag: its primary language, or zh-Hant; else en."""
    tag = language.replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-Hant" if any(x in tag for x in ("hant", "-tw", "-hk", "-mo")) else "zh"
    primary = tag.split("-")[0]
    return primary if primary in _STRINGS else "en"


def post_page_path(site_url: str, post: Post) -> str:
    """`posts/<yyyy>/<mm>/<id>.html`: exactly the permalink the feeds fall back to."""
    return permalink(site_url, post)[len(site_url) :]


def category_page_path(slug: str, page: int = 1) -> str:
    """Page 1 is `category/<slug>.html` (the page Jekyll posts link back to); later pages
    are `category/<slug>/page/<n>.html`."""
    return f"category/{slug}.html" if page <= 1 else f"category/{slug}/page/{page}.html"


@dataclass(frozen=True)
class CategoryLink:
    """A category as the home page lists it."""

    name: str
    slug: str
    count: int
    newest: datetime | None


def _offset(dt: datetime) -> str:
    """`UTC+08:00`, `UTC-04:00`, `UTC`: the zone as people read it, whatever its abbreviation."""
    z = f"{dt:%z}"
    return "UTC" if z in ("", "+0000") else f"UTC{z[:3]}:{z[3:5]}"


def _html_datetime(dt: datetime) -> str:
    """`dt` as a `<time datetime>` may write it: an offset of hours and minutes only. A zone's
    old local mean time has seconds (Amsterdam before 1937, +00:19:32), which HTML refuses:
    such a time is written in UTC, the same instant."""
    offset = dt.utcoffset()
    return dt.isoformat() if offset is None or offset.seconds % 60 == 0 else dt.astimezone(UTC).isoformat()


def _rel(target: str, page: str) -> str:
    """`target` (a path under the output root) as a link from the page at `page`."""
    return "../" * page.count("/") + target


# What an editor or the system leaves beside the templates: a vim swap file, a backup, a
# .DS_Store. Never templates, and often not UTF-8.
_NOT_TEMPLATES = ("~", ".swp", ".swo", ".swn", ".bak", ".orig", ".tmp")


def _template_files(folder: Path | None) -> list[Path]:
    """The files of a `site.templates` folder that may be templates (any name: a page may
    include `icon.svg`), without hidden files and folders and editor backups."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and not p.name.endswith(_NOT_TEMPLATES)
        and p.is_file()
    )


def _template_names(folder: Path | None) -> tuple[str, ...]:
    return tuple(p.relative_to(folder).as_posix() for p in _template_files(folder)) if folder else ()


def _escape_output(value: Any) -> str:
    """`escape(value)` for a template's output: markupsafe 3 wraps each escaped string in a
    `Markup` (a Python `__new__`, ~0.7 µs; ~60 a post page, a tenth of its rendering), which
    output has no use for: Jinja only ever joins what its templates output (`render`, a
    macro's or block's buffer, which it wraps in one Markup itself). The same text."""
    if type(value) is str:
        return _escape_inner(value)
    return escape(value)


class _CodeGenerator(CodeGenerator):
    """Compiles templates to escape what they output with `_escape_output`."""

    def visit_Template(self, node: TemplateNode, frame: Frame | None = None) -> None:
        super().visit_Template(node, frame)
        # The template's functions look `escape` up in its module when they run: after this line
        # they find ours. Jinja's code uses that name for nothing but the output it escapes.
        self.writeline("escape = environment.escape_output")


class _Environment(Environment):
    """Looks a dotted name up in a dict's items first: the pages' view models are dicts, and
    Jinja tries the attribute first, an AttributeError raised and caught for each of the
    ~60 names a post page shows, a fifth of its rendering time. The view models have no
    key named like a dict method, so `post.title` means what it meant."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    code_generator_class = _CodeGenerator
    escape_output = staticmethod(_escape_output)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one dict, not Jinja's ChainMap over the environment's:
        each render copies them into its context twice (`new_context`, `Context`), and a
        ChainMap is read key by key in Python, ~5 µs a page. The same names and values:
        nothing changes the environment's globals once it is made."""
        return {**self.globals, **(d or {})}


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: str | None, names: tuple[str, ...]) -> Environment:
    """The Jinja environment for a templates folder, kept across publish runs: compiling the
    templates cost more than publishing one changed category. Still correct when templates
    change: Jinja checks a template's file for edits (auto_reload) whenever it is used, and
    a file added or removed (`names`) makes a new environment, so an override is never missed."""
    loaders: list[Any] = []
    if templates_dir is not None:
        loaders.append(FileSystemLoader(templates_dir))
    loaders.append(PackageLoader("aggregator", "templates"))
    env = _Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["naming"] = naming
    env.filters["words"] = in_words
    env.filters["isolate"] = isolate
    env.filters["quiet_arrows"] = quiet_arrows
    return env


_ARROW = re.compile(r"\s*[←→]\s*")


def quiet_arrows(words: str) -> Markup:
    """`words` (`← Newer`, `الأقدم ←`) with their arrows, and the space beside them, hidden
    from screen readers: the pager's links were named "leftwards arrow Newer"."""
    return Markup(_ARROW.sub(lambda m: Markup('<span aria-hidden="true">%s</span>') % m.group(), str(escape(words))))


@pass_context
def naming(
    context: Context, words: str, name: str, language: str | None = None, direction: str | None = None
) -> Markup:
    """`words` (`By {name}`, `العودة إلى {name}`) naming `name` in a `<bdi>`: a name written the
    other way from the page's, or ending in punctuation, is laid out apart from the words
    around it. On an Arabic page `بقلم John Smith, Jr.` showed its `.` left of `John`, and
    `العودة إلى C++` its `++` left of the `C`. The name's `language` and `direction`, when
    given (a category's name in another script than the site's); words in another language
    than the site's (`in_words`) leave the name in the site's."""
    if language is None and context.get("words_lang"):
        language = context["site"].language
    attributes = Markup("")
    if language is not None:
        attributes += Markup(' lang="%s"') % language
    if direction:
        attributes += Markup(' dir="%s"') % direction
    return in_words(context, escape(words).replace("{name}", Markup("<bdi%s>%s</bdi>") % (attributes, name)))


# Letters (and Arabic digits) of the scripts written right to left: Hebrew to NKo, Samaritan,
# Mandaic, Syriac and Arabic supplements, their presentation forms, and the historic ones.
_RTL_LETTER = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]")


@pass_context
def isolate(context: Context, text: str, direction: str | None = None) -> str:
    """`text` (a post's or category's name in the page's `<title>`) isolated by Unicode marks
    (`bidi_isolated`: a title holds no markup) when it holds letters written the other way
    than the page's: `عاجل!` on an English site showed in the tab as `!عاجل · My Site`, and
    `C++` on an Arabic one its `++` left of the `C`. Text all in the page's direction is left
    as it was. `direction` is the text's own when known (`rtl`, `ltr`), else its first letter's."""
    if context.get("direction") == "rtl":
        other = any(unicodedata.bidirectional(c) == "L" for c in text)
    else:
        other = _RTL_LETTER.search(text) is not None
    return bidi_isolated(text, direction) if other else text


@pass_context
def in_words(context: Context, text: str) -> Markup:
    """The pages' own `text` ("Home", "3 posts"), in a `<span>` saying its language when it
    is not the site's (`words_language`: English words on an Urdu site, which screen readers
    read in an Urdu voice) and, on a page laid out right to left, that it is written left
    to right; as it is otherwise."""
    language = context.get("words_lang")
    if not language:
        return escape(text)
    direction = context.get("words_dir")
    attributes = Markup(' lang="%s"') % language
    if direction:
        attributes += Markup(' dir="%s"') % direction
    return Markup("<span%s>%s</span>") % (attributes, text)


@dataclass(frozen=True)
class _Seen:
    """A post's page-independent view (`SiteRenderer._seen`)."""

    view: dict[str, Any]
    content: str
    path: str  # its page, under the output root
    cats: list[Category]


_VIEWS_KEPT = 256  # posts whose views are kept: a category read in one go (READ_ALL) is shown twice


class SiteRenderer:
    """Renders pages for one configuration; build once per publish run."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.site = settings.site
        self.zone = ZoneInfo(self.site.timezone)
        self.t = strings_for(self.site.language)
        self.direction = text_direction(self.site.language) or "ltr"
        # English words on a site in a language we have none for: said to be English (`words`)
        self.words_lang = words_language(self.site.language)
        self.words_dir = "ltr" if self.words_lang and self.direction == "rtl" else None
        if self.words_dir:  # on a page laid out right to left newer posts lie right, older left
            self.t = {**self.t, "newer": "Newer →", "older": "← Older"}
        folder = settings.templates_dir
        self.env = _environment(None if folder is None else str(folder), _template_names(folder))
        self.categories = {c.slug: c for c in settings.categories}
        self.templates: dict[str, Template] = {}  # loaded by `load`, once per publish run
        self._views: IdentityMemo[Post, _Seen] = IdentityMemo(_VIEWS_KEPT)  # see _seen

    def load(self) -> dict[str, Template]:
        """Compile every template, so that a broken one fails before any page is written.

        Once per publish run, and only when it has a page to write: compiling them costs
        more than a publish that finds nothing changed (a cycle of 304s). Getting a template
        checks its files' mtimes (four stat calls for a post page), so they are kept for
        the run, which is when an edited template is picked up.
        """
        if not self.templates:
            for name in PAGES:
                try:
                    self.templates[name] = self.env.get_template(name)
                except TemplateError as e:
                    raise _template_error(name, e) from None
                except (OSError, UnicodeDecodeError) as e:  # saved in another encoding than UTF-8: not a traceback
                    folder = self.settings.templates_dir
                    raise SiteError(f"template {folder / name if folder else name}: cannot read it: {e}") from None
        return self.templates

    @cached_property
    def fingerprint(self) -> str:
        """A digest of every template in use and the words they show: a changed one means every page changes.

        The folder's files as bytes: one that is no template (a logo, a swap file in another
        encoding than UTF-8) must not stop publishing; a template that cannot be read is
        said by `load`, naming it."""
        h = hashlib.sha256(__version__.encode())
        key = _language_key(self.site.language)  # and the words they show, which change with no template
        h.update(repr((self.t, _POST_FORMS.get(key))).encode() + b"\0")
        for prefix, folder in ((b"built-in/", _BUILT_IN), (b"site/", self.settings.templates_dir)):
            for path in _template_files(folder):
                try:
                    data = path.read_bytes()
                except OSError as e:  # said by `load` if a page uses it
                    data = repr(e).encode()
                name = path.relative_to(folder).as_posix().encode()  # type: ignore[arg-type]
                h.update(prefix + name + b"\0" + data + b"\0")
        return h.hexdigest()

    # -- view models ------------------------------------------------------------------

    def _local(self, dt: datetime) -> datetime:
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(self.zone)

    def _feeds(self, base: str, page: str, title: str) -> list[dict[str, str]]:
        """Feed links for a page: `href` relative (to click), `url` absolute (for readers),
        `title` the feed's own (a post page offers its category's feed, not one named after the post)."""
        return [
            {
                "label": label,
                "type": mime,
                "href": _rel(f"{base}.{ext}", page),
                "url": f"{self.site.url}{base}.{ext}",
                "title": title,
            }
            for ext, label, mime in FEED_TYPES
        ]

    def _seen(self, post: Post) -> _Seen:
        """What every page shows of `post` wherever it is linked from, worked out once per
        post (a post is shown by its category's listing, then on its own page), kept for
        the same Post object (the publisher hands the same one to both)."""
        hit = self._views.get(post)
        if hit is not None:
            return hit
        content = _page_text(post.content if post.content.strip() else post.summary)
        excerpt_of = _page_text(post.summary) if post.summary.strip() else content
        title = " ".join(_page_text(post.title).split()) or html_excerpt(excerpt_of, 80) or self.t["untitled"]
        title = bidi_closed(title)
        local = self._local(post.published)
        minute = f"{local:%Y-%m-%d %H:%M}"
        view: dict[str, Any] = {
            "id": post.id,
            "title": title,
            # http(s) only, as the normalizer keeps them: a post or source stored by an earlier
            # version may hold a `javascript:` home page, and these are links on our origin
            "original": _href(post.link),
            "date": minute,
            "date_full": f"{minute} ({_offset(local)})",
            "iso": _html_datetime(local),
            "source": bidi_closed(_page_text(post.source_title) or public_url(post.source_url or post.source)),
            "source_link": _href(post.source_link),
            "author": bidi_closed(_page_text(", ".join(bidi_closed(a.name) for a in post.authors if a.name))) or None,
            "excerpt": _excerpt_after(title, excerpt_of),
        }
        # `zh_TW` as `zh-TW` (what :lang() and browsers match); none if the text is evidently not in it
        shown = f"{title} {view['excerpt'] or ''}"  # what a reader sees of the post, to tell its script
        view["language"] = stated_language(post.language, shown)
        # An Arabic post on an English site (or an English one on an Arabic site) is laid out its own way
        direction = text_direction(view["language"])
        view["dir"] = direction if direction and direction != self.direction else None
        if view["language"] is None and not written_in(self.site.language, shown):
            # Named no language and evidently not in the site's (an Arabic post on a Chinese
            # site): `lang=""` (unknown) rather than the page's, and the direction of most of
            # its letters; `dir="auto"` (the first letter's) only for text with none
            view["language"], view["dir"] = "", letters_direction(shown) or "auto"
        # In config order, the first being the one Jekyll files the post under (the store's is by slug)
        cats = [c for c in self.categories.values() if c.slug in post.categories]
        seen = _Seen(view, content, post_page_path(self.site.url, post), cats)
        self._views.put(post, seen)
        return seen

    def _name(self, name: str, languages: Sequence[str | None] = ()) -> dict[str, str | None]:
        """`language` and `dir` of a category's name, as a post's are given: None when it may be
        in the site's language (then the page's; stated when the page's words are in another,
        the name being among them), else the one language of `languages` (its posts') it may
        be in, or "" (unknown), and its direction; in Latin letters over posts all in the
        site's language, the page's (`_terms_of_site`: `AI` on a Chinese site). An Arabic category on an English site
        was said to be English, and isolated by its first letter alone (`dir="auto"`)."""
        if written_in(self.site.language, name):
            return {"language": self.site.language if self.words_lang else None, "dir": None}
        if languages and self._terms_of_site(name, languages):
            return {"language": self.site.language if self.words_lang else None, "dir": None}
        known = {tag for tag in languages if tag and written_in(tag, name)}
        if len(known) == 1:
            language = known.pop()
            return {"language": language, "dir": text_direction(language)}
        return {"language": "", "dir": letters_direction(name) or "auto"}

    def _terms_of_site(self, name: str, languages: Sequence[str | None]) -> bool:
        """Whether `name`, in Latin letters on a site written in another script, is a term of
        the site's language: every post it is given for is in it (`languages`, None for the
        page's). `AI` or `Tech` over Chinese posts on a Chinese site is the vernacular (WCAG
        3.1.2), as a Chinese post naming an English product is Chinese; `lang=""` had screen
        readers switch to their default voice for it and dropped the page's `:lang(zh)` fonts."""
        site = (language_tag(self.site.language) or "").lower()
        return written_in("en", name, 1.0) and all(tag is None or tag.lower() == site for tag in languages)

    def _category_link(self, cat: Category, page: str, languages: Sequence[str | None]) -> dict[str, Any]:
        return {"name": cat.name, "href": _rel(category_page_path(cat.slug), page), **self._name(cat.name, languages)}

    def _languages(self, posts: Sequence[Post], slug: str) -> list[str | None]:
        """The languages the pages give `posts` of category `slug`, to tell its name's."""
        return [self._seen(p).view["language"] for p in posts if slug in p.categories]

    def _post(self, post: Post, page: str, full: bool = False) -> dict[str, Any]:
        seen = self._seen(post)
        view = dict(seen.view)
        view["href"] = _rel(seen.path, page)
        view["categories"] = [self._category_link(c, page, (view["language"],)) for c in seen.cats]
        if full:
            content = seen.content
            view["content"] = Markup(_scrolling_tables(_headings_below_title(content)))
            tags = (bidi_closed(" ".join(_page_text(t).split())) for t in post.tags)
            view["tags"] = [t for t in dict.fromkeys(tags) if t]
            enclosures = [e for e in post.enclosures if e.url.startswith(("http://", "https://"))]
            shown = pictures_shown(content, enclosures)
            view["enclosures"] = [
                {
                    "url": _href(e.url),
                    "type": e.type or "",
                    "name": e.url.rsplit("/", 1)[-1] or e.url,
                    "player": player(e.type),
                    "image": e.url in shown,
                    # what the picture shows (Mastodon's alt text), else none; its bidi controls closed
                    "alt": bidi_closed(e.description or ""),
                    "duration": _clock(e.duration),
                }
                for e in enclosures
            ]
        return view

    def _render(self, template: str, page: str, **context: Any) -> bytes:
        root = _rel("", page)
        try:
            html = self.load()[template].render(
                site=self.site,
                direction=self.direction,
                t=self.t,
                words_lang=self.words_lang,
                words_dir=self.words_dir,
                root=root,
                home=f"{root}index.html",
                page_url=self.site.url + ("" if page == "index.html" else page),
                stylesheet=f"{root}style.css",
                opml=f"{root}opml.xml",
                generator={"name": "aggregator", "version": __version__, "url": PROJECT_URL},
                **context,
            )
        except Exception as e:  # a user's template may fail any way at run time
            raise _template_error(template, e) from None
        return html.encode("utf-8")

    # -- pages ------------------------------------------------------------------------

    def stylesheet(self) -> bytes:
        try:
            return self.load()["style.css"].render().encode("utf-8")
        except Exception as e:  # a user's template may fail any way at run time
            raise _template_error("style.css", e) from None

    def index(self, posts: Sequence[Post], categories: Sequence[CategoryLink]) -> bytes:
        page = "index.html"
        cats = [
            {
                "name": c.name,
                "slug": c.slug,
                "count": c.count,
                "counted": count_phrase(self.site.language, c.count),
                "href": _rel(category_page_path(c.slug), page),
                "newest": f"{self._local(c.newest):%Y-%m-%d}" if c.newest else None,
                "feeds": self._feeds(f"category/{c.slug}", page, c.name),
                **self._name(c.name, self._languages(posts, c.slug)),
            }
            for c in categories
        ]
        return self._render(
            "index.html",
            page,
            title=self.site.title,
            description=self.site.description or "",
            feeds=self._feeds("feed", page, self.site.title),
            posts=[self._post(p, page) for p in posts],
            categories=cats,
        )

    def category(self, cat: Category, posts: Sequence[Post], number: int, pages: int, count: int) -> bytes:
        page = category_page_path(cat.slug, number)
        return self._render(
            "category.html",
            page,
            title=cat.name,
            description=" ".join(cat.tags),
            category={
                "name": cat.name,
                "slug": cat.slug,
                "tags": list(cat.tags),
                "count": count,
                "counted": count_phrase(self.site.language, count),
                **self._name(cat.name, self._languages(posts, cat.slug)),
            },
            feeds=self._feeds(f"category/{cat.slug}", page, cat.name),
            posts=[self._post(p, page) for p in posts],
            pagination={
                "number": number,
                "pages": pages,
                "newer": _rel(category_page_path(cat.slug, number - 1), page) if number > 1 else None,
                "older": _rel(category_page_path(cat.slug, number + 1), page) if number < pages else None,
                "label": self.t["page"].format(n=number, total=pages),
            },
        )

    def post(self, post: Post) -> bytes:
        page = self._seen(post).path
        view = self._post(post, page, full=True)
        cats = self._seen(post).cats
        if cats:
            feeds = self._feeds(f"category/{cats[0].slug}", page, cats[0].name)
        else:
            feeds = self._feeds("feed", page, self.site.title)
        return self._render(
            "post.html",
            page,
            title=view["title"],
            description=view["excerpt"],
            feeds=feeds,
            post=view,
        )


def player(kind: str | None) -> str:
    """`audio` or `video` for an enclosure a browser plays in place (a podcast's episode is
    listened to on its page, as in Miniflux), else "": a link only."""
    major = _major_type(kind)
    return major if major in ("audio", "video") else ""


def _major_type(kind: str | None) -> str:
    """The major part of a media type: `image` of `image/jpeg`."""
    return (kind or "").split("/", 1)[0].strip().lower()


# The images an HTML fragment shows: each <img>'s and <source>'s src and srcset, as the
# sanitizer writes them (values double-quoted, `&` as `&amp;`).
_PICTURE_TAG = re.compile(r"<(?:img|source)\s[^>]*>")
_PICTURE_URL = re.compile(r'\s(src|srcset)="([^"]*)"')


def pictures_shown(content: str, enclosures: Sequence[Enclosure]) -> set[str]:
    """The URLs of the image enclosures the post's page shows as pictures: those the content
    does not already show, as Miniflux does. A photo feed's entry (a gallery's picture, a
    Picasa album) is often an image enclosure and no text: its page showed an empty body
    and the picture only as a link among the attachments.

    A picture counts as shown by the content, or an earlier enclosure, by its URL or its
    file name: feeds give the same photo in several sizes under one name (Picasa's full
    size and its `s160-c/` thumbnail, the content showing the thumbnail), and one copy is
    enough. Lazy-loaded (`loading="lazy"`): a gallery's entry may have a dozen. The site's
    Content-Security-Policy restricts scripts, not images; `<meta name="referrer">` keeps
    the page's address from the image's host, as for the content's own images.

    Not added to the feeds' content: a reader shows an entry's image enclosures itself
    (Atom's rel=enclosure, RSS <enclosure>, JSON Feed attachments), and a picture added to
    the content too would be shown twice there.
    """
    if not any(_major_type(e.type) == "image" for e in enclosures):
        return set()  # most posts: their content need not be read
    seen: set[str] = set()  # URLs and file names
    for tag in _PICTURE_TAG.findall(content) if "<" in content else ():
        for attr, value in _PICTURE_URL.findall(tag):
            urls = [c.split()[0] for c in value.split(",") if c.strip()] if attr == "srcset" else [value]
            for url in map(unescape, urls):
                seen.update(k for k in (url, _file_name(url)) if k)
    shown = set()
    for e in enclosures:
        if _major_type(e.type) != "image" or e.url in seen:
            continue
        name = _file_name(e.url)
        if not name or name not in seen:
            shown.add(e.url)
        seen.update(k for k in (e.url, name) if k)
    return shown


def _file_name(url: str) -> str:
    """The last segment of a URL's path, decoded (`s160-c/Oreo.jpg`: `Oreo.jpg`), "" if none."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _clock(seconds: int | None) -> str:
    """An episode's length as players show it: `45:30`, `1:02:03`; "" when unknown."""
    if not seconds:
        return ""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# What `aggregator serve` knows a stub by, to answer it 301 (serve.REDIRECT_MARK: the same
# bytes, kept there so that serving imports nothing of the publisher; test_serve ties them).
REDIRECT_MARK = '<meta name="aggregator" content="redirect">'


def redirect_page(site_url: str, language: str, title: str, old: str, new: str) -> bytes:
    """A stub for the page at `old` (a path under the output root) that sends its readers on
    to `new`: a re-dated post's page moves, and its old URL was public (feed items link
    link-less posts there; links get shared). Static hosting cannot answer 301, so a
    refresh, a canonical link for search engines, and a plain link for the rest; the link
    is relative, as the site's are, so that it works from any folder."""
    href = escape(_rel(new, old))
    name = escape(bidi_closed(" ".join(_page_text(title).split())) or site_url + new)
    direction = ' dir="rtl"' if text_direction(language) == "rtl" else ""
    lines = [
        "<!doctype html>",
        f'<html lang="{escape(language)}"{direction}>',
        "<head>",
        '<meta charset="utf-8">',
        REDIRECT_MARK,
        '<meta name="robots" content="noindex">',
        f'<meta http-equiv="refresh" content="0; url={href}">',
        f'<link rel="canonical" href="{escape(site_url + new)}">',
        f"<title>{name}</title>",
        "</head>",
        "<body>",
        f'<p><a href="{href}">{name}</a></p>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def stale_pages(folder: Path, pages: int) -> list[Path]:
    """Pagination files beyond the last page (left from when the category had more posts)."""
    out = []
    for p in folder.glob("*.html"):
        if p.stem.isdigit() and int(p.stem) > pages:
            out.append(p)
    return sorted(out)
