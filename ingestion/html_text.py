"""HTML -> text as a reader sees the page: inline elements (code, links, emphasis) stay inside their sentence, blocks
(paragraphs, headings, list items, table rows, preformatted code) stay blocks, and h1-h6 open sections.

lxml parses (libxml2: linear, and it caps nesting depth), Sift drops what is not the page's content (scripts,
styles, navigation, sidebars; only ``<main>`` when the page has one), and inscriptis lays the rest out as text and
tells where each heading landed. docs/extraction.md compares it with other HTML-to-text libraries.

Example::

    >>> doc = load_html(b"<title>Docs</title><h1>Usage</h1>"
    ...                 b"<p>Run <code>cargo doc</code> with <a href=#>--open</a>.</p>")
    >>> doc.text, doc.title, doc.sections[0].path
    ('Usage\\n\\nRun cargo doc with --open.', 'Docs', ('Usage',))
"""

from __future__ import annotations

import contextlib
import logging
import re
from copy import deepcopy
from functools import cache

from sift.ingestion.document import LoadedDocument, TextBuilder, UnreadableFile
from sift.ingestion.text import decode_text, parse_date

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/html"

_DATE_META = ("date", "dc.date", "dcterms.date", "article:published_time", "dc.date.issued", "pubdate")
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)
# Never content: active or embedded parts, and the page's furniture (menus, sidebars, the site's header and footer).
_NOT_CONTENT = (
    "//script | //style | //noscript | //template | //svg | //math | //iframe | //object | //canvas"
    " | //nav | //aside | //button | //*[@hidden] | //*[@role='navigation' or @role='search']"
    " | //header[not(ancestor::article or ancestor::main)]"
    " | //footer[not(ancestor::article or ancestor::main)]"
)
# Inline elements that inscriptis would otherwise reset to collapsed whitespace inside <pre> (its profile gives
# unlisted tags `white-space: normal` instead of inheriting), which flattened every highlighted code block.
_INLINE = (
    "a",
    "abbr",
    "b",
    "cite",
    "code",
    "del",
    "dfn",
    "em",
    "i",
    "ins",
    "kbd",
    "mark",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "time",
    "u",
    "var",
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}


def load_html(data: bytes, max_chars: int | None = None) -> LoadedDocument:
    import lxml.etree
    import lxml.html
    from inscriptis.html_engine import Inscriptis

    declared = _CHARSET.search(data[:4096])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        # A wrong declaration is ignored: decode_text falls back to UTF-8 / Windows-1252.
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            data = data.decode(declared.group(1).decode()).encode("utf-8")
    try:
        # Bytes in a known encoding: lxml refuses a str that carries an XML encoding declaration (XHTML pages).
        tree = lxml.html.document_fromstring(
            decode_text(data).encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8")
        )
    except (lxml.etree.ParserError, ValueError) as exc:
        raise UnreadableFile(f"unreadable HTML ({str(exc)[:200]})") from exc
    title = tree.findtext(".//title")
    date = _date(tree)
    for node in tree.xpath(_NOT_CONTENT):
        node.drop_tree()
    scope = (tree.xpath("//main") or tree.xpath("//body") or [tree])[0]
    try:
        layout = Inscriptis(scope, _config())
        text = layout.get_text()
    except RecursionError as exc:
        raise UnreadableFile("refused: the HTML is nested too deeply to lay out") from exc
    headings = sorted((a.start, _HEADINGS[a.metadata]) for a in layout.get_annotations())
    builder = TextBuilder(max_chars)
    cuts = [0] + [start for start, _ in headings] + [len(text)]
    builder.add(text[: cuts[1]])
    for (start, level), end in zip(headings, cuts[2:], strict=False):
        heading_end = text.find("\n", start, end)
        heading_end = end if heading_end < 0 else heading_end
        builder.open_section(level, text[start:heading_end])
        builder.add(text[start:heading_end])
        builder.add(text[heading_end:end])
    return builder.build(MEDIA_TYPE, title, date)


@cache
def _config():
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_properties import Display
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.html_element import HtmlElement

    css = deepcopy(CSS_PROFILES["strict"])
    for tag in _INLINE:
        css[tag] = HtmlElement(display=Display.inline, whitespace=None)  # None: inherit, as CSS does
    return ParserConfig(css=css, annotation_rules={tag: [tag] for tag in _HEADINGS})


def _date(tree):
    for meta in tree.iter("meta"):
        key = (meta.get("name") or meta.get("property") or "").lower()
        if key in _DATE_META and (date := parse_date(meta.get("content"))):
            return date
    times = tree.xpath("//time[@datetime]")
    return parse_date(times[0].get("datetime")) if times else None
