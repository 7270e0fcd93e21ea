"""Plain text from a MediaWiki XML export (a Wikipedia dump), markup stripped.

:func:`iter_articles` streams the ``<page>`` elements of an export (bz2-compressed or
not) with ``xml.etree.ElementTree.iterparse``, keeps main-namespace articles (``ns``
0) that are not redirects, and gives each one's text through :func:`strip_markup`.

:func:`strip_markup` parses wikitext with mwparserfromhell (the ``text`` extra) and
keeps what a reader sees as running prose:

    kept                                         dropped
    [[Target|label]] -> label                    templates {{...}} and arguments {{{...}}}
    [[Target]] -> Target, [[bus]]es -> buses     <ref>, <references/>, tables ({| |}, <table>)
    '''bold''', ''italic'' -> bold, italic       [[File:]], [[Image:]], [[Media:]], [[Category:]]
    contents of <i>, <span>, <div>, ...          interlanguage links ([[fr:...]]), bare URLs
    heading text, without the = signs            <!-- comments -->, <math>, <gallery>, ...
    [http://url label] -> label                  magic words (__NOTOC__), list and rule markers
    HTML entities, decoded (&amp; -> &)

Lines are kept as lines (a wikitext paragraph is one line), runs of blanks within a
line collapse to one space, parentheses emptied by dropped templates are removed, and
lines without a letter or digit are dropped, so the result is one paragraph, heading
or list item per line.

Examples:
    >>> strip_markup("'''Anarchism''' is a [[political philosophy]] that advocates "
    ...              "[[self-governance|self-governed]] societies.<ref>A source.</ref>")
    'Anarchism is a political philosophy that advocates self-governed societies.'
    >>> print(strip_markup("{{Infobox|a=1}}\\n==History==\\nText.[[Category:Things]]"))
    History
    Text.
"""

from __future__ import annotations

import bz2
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass

__all__ = ["Article", "iter_articles", "strip_markup"]

# Link namespaces that show no text where they stand: files and images render as
# pictures, categories and interlanguage links go to the page's footer and sidebar.
HIDDEN_LINK_NAMESPACES = frozenset({"file", "image", "media", "category"})
# A language prefix such as "fr", "zh-min-nan" or "simple" (links like [[fr:Anarchisme]]).
_LANGUAGE_PREFIX = re.compile(r"(?:[a-z]{2,3}(?:-[a-z]+)*|simple)")

# Tags whose contents are not prose: footnotes, tables, formulas, pictures, code.
DROPPED_TAGS = frozenset({
    "ref", "references", "table", "math", "chem", "ce", "hiero", "score", "timeline",
    "graph", "gallery", "imagemap", "inputbox", "categorytree", "templatedata",
    "syntaxhighlight", "source", "style", "noinclude"})
# Tags that break a line where they stand (<br>, and ---- which parses as <hr>).
LINE_BREAK_TAGS = frozenset({"br", "hr"})

_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_STYLE_QUOTES = re.compile(r"'{2,}")  # ''italic'', '''bold''', '''''both'''''
_BLANKS = re.compile(r"[^\S\n]+")  # whitespace other than newlines, \xa0 from &nbsp; included
# Parentheses left with only punctuation inside once templates are gone, e.g. the
# "({{IPA-en|...}}; {{lang-el|...}})" after a lead's title.
_EMPTY_PARENS = re.compile(r" ?\([\s,;:.\-–—]*\)")
_PARENS_OPENING_WITH_PUNCTUATION = re.compile(r"\(\s*[,;:]+\s*")  # "( ; Orycteropus afer)"
_WORD_CHARACTER = re.compile(r"\w")


@dataclass(frozen=True)
class Article:
    """One main-namespace page of a dump: its title and its text as plain text
    (one paragraph, heading or list item per line)."""

    title: str
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def _parser():
    try:
        import mwparserfromhell
    except ImportError as e:
        raise ImportError("stripping wiki markup needs mwparserfromhell: "
                          "pip install 'tinyembed[text]'") from e
    return mwparserfromhell


def _link_text(link) -> str:
    """What a [[...]] link shows in running text ('' for files, categories, interlanguage)."""
    title = str(link.title).strip()
    if title.startswith(":"):
        # [[:Category:X]] and [[:fr:X]] are ordinary inline links to those pages.
        shown = link.text if link.text is not None else title[1:]
        return _render(shown) if link.text is not None else shown
    prefix, colon, _ = title.partition(":")
    prefix = prefix.strip().lower()
    if colon and prefix in HIDDEN_LINK_NAMESPACES:
        return ""
    if link.text is not None:
        return _render(link.text)
    if colon and _LANGUAGE_PREFIX.fullmatch(prefix):
        return ""
    return title


def _render(code) -> str:
    """The visible text of a parsed Wikicode, before whitespace is tidied."""
    nodes = _parser().nodes
    parts: list[str] = []
    for node in code.nodes:
        if isinstance(node, nodes.Text):
            parts.append(node.value)
        elif isinstance(node, nodes.Wikilink):
            parts.append(_link_text(node))
        elif isinstance(node, nodes.Tag):
            tag = str(node.tag).strip().lower()
            if tag in LINE_BREAK_TAGS:
                parts.append("\n")
            elif tag not in DROPPED_TAGS and node.contents is not None:
                parts.append(_render(node.contents))
        elif isinstance(node, nodes.Heading):
            parts.append("\n" + _render(node.title) + "\n")
        elif isinstance(node, nodes.HTMLEntity):
            parts.append(node.normalize())
        elif isinstance(node, nodes.ExternalLink):
            # [http://url label] shows its label; a bare or unlabelled URL is not prose.
            if node.title is not None:
                parts.append(_render(node.title))
        # Templates, template arguments and comments show nothing.
    return "".join(parts)


def strip_markup(wikitext: str) -> str:
    """Plain text of a page's wikitext: one paragraph, heading or list item per line.

    Args:
        wikitext: the source of a page (str).

    Returns:
        str: lines joined with ``"\\n"``, each with a letter or digit, no leading or
        trailing blanks and single spaces within; ``""`` if nothing visible is left.

    Raises:
        TypeError: ``wikitext`` is not a str.
        ImportError: mwparserfromhell is missing (``pip install 'tinyembed[text]'``).
    """
    if not isinstance(wikitext, str):
        raise TypeError(f"wikitext must be a str, got {type(wikitext).__name__}")
    # '' and ''' are left as text and removed afterwards: parsed as style tags, an
    # apostrophe inside them (''Rasa'il'') can make the parser give up on the whole
    # enclosing <ref> or link and return it as text, markup and all.
    text = _render(_parser().parse(wikitext, skip_style_tags=True))
    text = _MAGIC_WORD.sub("", _STYLE_QUOTES.sub("", text))
    lines = []
    for line in text.split("\n"):
        line = _BLANKS.sub(" ", line)
        line = _PARENS_OPENING_WITH_PUNCTUATION.sub("(", _EMPTY_PARENS.sub("", line)).strip()
        # A line with no letter or digit is what is left of a formula, template or list marker.
        if _WORD_CHARACTER.search(line):
            lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The XML export
# ---------------------------------------------------------------------------

def _local(tag: str) -> str:
    """A tag without its namespace: '{http://www.mediawiki.org/xml/export-0.10/}page' -> 'page'.

    Each export schema version (0.3 to 0.11) has its own namespace URI, so none is assumed.
    """
    return tag.rsplit("}", 1)[-1]


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _page_fields(page) -> tuple[str, str, bool, str]:
    """(title, namespace, is_redirect, wikitext of the last revision) of a <page> element."""
    title = _child(page, "title")
    ns = _child(page, "ns")
    redirect = _child(page, "redirect") is not None
    revisions = [child for child in page if _local(child.tag) == "revision"]
    text = _child(revisions[-1], "text") if revisions else None
    return ((title.text or "") if title is not None else "",
            (ns.text or "").strip() if ns is not None else "0",
            redirect,
            (text.text or "") if text is not None else "")


def iter_articles(xml_bytes: bytes) -> Iterator[Article]:
    """The articles of a MediaWiki XML export, in file order, as plain text.

    Kept: pages in the main namespace (``<ns>0</ns>``; exports older than 0.6 have no
    ``<ns>`` and count as main) that are not redirects (a ``<redirect>`` element, or
    wikitext starting ``#REDIRECT``) and whose text is not empty once stripped.
    For a page with several revisions, the last one is used.

    Args:
        xml_bytes: the export as bytes, bz2-compressed (as dumps are published) or not.

    Yields:
        Article(title, text) with ``text = strip_markup(wikitext)``.

    Raises:
        TypeError: ``xml_bytes`` is not bytes.
        xml.etree.ElementTree.ParseError: the XML is malformed.
    """
    if not isinstance(xml_bytes, (bytes, bytearray, memoryview)):
        raise TypeError(f"xml_bytes must be bytes, got {type(xml_bytes).__name__}")
    stream: io.BufferedIOBase = io.BytesIO(xml_bytes)
    if bytes(xml_bytes[:3]) == b"BZh":
        stream = bz2.BZ2File(stream)
    events = ET.iterparse(stream, events=("start", "end"))
    _, root = next(events)  # the root's start (no document without one: ParseError instead)
    for event, element in events:
        if event == "start":
            continue
        if _local(element.tag) != "page":
            continue
        title, ns, redirect, wikitext = _page_fields(element)
        # Free the page just read: the whole dump would otherwise build up under the root.
        root.clear()
        if ns != "0" or redirect or wikitext.lstrip()[:9].upper() == "#REDIRECT":
            continue
        text = strip_markup(wikitext)
        if text:
            yield Article(title=title, text=text)
