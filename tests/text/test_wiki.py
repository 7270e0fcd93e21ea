"""tinyembed.text.wiki: wiki markup stripped to plain text, articles read from an XML export.

Hand-written wikitext with known answers, a hand-written export, and the real dump in
gensim's wheel (the full dump through the prepared corpus, cached once per machine:
parsing it takes about 10 s).
"""

import bz2
import re
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("mwparserfromhell")

from tinyembed.io import assets
from tinyembed.text import corpus
from tinyembed.text.wiki import Article, iter_articles, strip_markup

EXPORT_010 = "http://www.mediawiki.org/xml/export-0.10/"


# ---------------------------------------------------------------------------
# strip_markup: known answers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("wikitext, plain", [
    ("[[Political philosophy|political theory]] and [[Anarchy]]", "political theory and Anarchy"),
    ("[[bus]]es", "buses"),  # a link's trail joins its text
    ("[[wikt:anarchy|anarchy]] and [[:Category:Philosophy]]", "anarchy and Category:Philosophy"),
    ("'''Bold''', ''italic'', '''''both''''' and ''Rasa'il''", "Bold, italic, both and Rasa'il"),
], ids=["links", "link-trail", "interwiki-and-colon-links", "bold-italic"])
def test_strip_markup_keeps_what_links_and_styles_show(wikitext, plain):
    assert strip_markup(wikitext) == plain


@pytest.mark.parametrize("wikitext, plain", [
    ("Paris{{citation needed|date=May 2010}} is big.", "Paris is big."),
    ("Big.<ref name=a>{{cite web|url=http://x.org|title=T}}</ref> Yes.<ref name=a/>", "Big. Yes."),
    ("{{Infobox person\n| name = X\n| birth = {{birth date|1900|1|1}}\n}}\nX was born.",
     "X was born."),
    ('Intro\n{| class="wikitable"\n! Year !! Title\n|-\n| 1999 || [[Film]]\n|}\nOutro',
     "Intro\nOutro"),
    ("<table><tr><td>cell</td></tr></table>Prose.", "Prose."),
    ("[[File:Cat.jpg|thumb|A [[cat]] sitting]]A cat.[[Category:Cats]][[Image:x.png]]"
     "[[media:y.ogg]]\n[[fr:Chat]]\n[[zh-min-nan:Niau]]", "A cat."),
    ("Visible<!-- hidden [[link]] --> text", "Visible text"),
    ("x <math>x^2</math> y<gallery>\nFile:A.jpg|a\n</gallery>", "x y"),
    ("__NOTOC__\nThe aardvark ({{IPA-en|ˈɑːrd|}}; {{lang|nl|aardvark}}) is.", "The aardvark is."),
    ("{{only a template}}", ""),
], ids=["template", "refs", "nested-templates", "wikitable", "html-table", "files-categories-langs",
        "comment", "math-gallery", "magic-word-and-emptied-parens", "nothing-left"])
def test_strip_markup_drops_what_is_not_prose(wikitext, plain):
    assert strip_markup(wikitext) == plain


@pytest.mark.parametrize("wikitext, plain", [
    ("==History==\n===Early years===\nText.", "History\nEarly years\nText."),
    ("A&nbsp;B &amp; C &lt;D&gt;", "A B & C <D>"),
    ("[http://example.com Example site] and http://bare.example.com end", "Example site and end"),
    ('x<br/>y <span style="a">in span</span>', "x\ny in span"),
    ("<div>one</div>\n<blockquote>quoted</blockquote>", "one\nquoted"),
    ("* item one\n* item two\n# numbered\n; term : definition",
     "item one\nitem two\nnumbered\nterm definition"),
    ("First   paragraph\n\n\n  Second\tone  \n----\n.\n", "First paragraph\nSecond one"),
], ids=["headings", "entities", "external-links", "br-and-span", "block-tags", "lists", "whitespace"])
def test_strip_markup_keeps_text_and_lines(wikitext, plain):
    assert strip_markup(wikitext) == plain


def test_strip_markup_rejects_bytes():
    with pytest.raises(TypeError, match="bytes"):
        strip_markup(b"[[A]]")


# ---------------------------------------------------------------------------
# iter_articles: a hand-written export
# ---------------------------------------------------------------------------

def _page(title, ns, text, redirect=None, revisions=1):
    redirect_element = f'<redirect title="{redirect}" />' if redirect else ""
    ns_element = f"<ns>{ns}</ns>" if ns is not None else ""
    old = "<revision><id>1</id><text xml:space=\"preserve\">An older revision.</text></revision>"
    return (f"<page><title>{title}</title>{ns_element}<id>7</id>{redirect_element}"
            + old * (revisions - 1)
            + f'<revision><id>2</id><text xml:space="preserve">{text}</text></revision></page>')


def _export(pages, namespace=EXPORT_010):
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    return (f'<mediawiki{xmlns} version="0.10" xml:lang="en"><siteinfo><sitename>W</sitename>'
            f"</siteinfo>{''.join(pages)}</mediawiki>").encode()


PAGES = [
    _page("Anarchism", 0, "'''Anarchism''' is a [[political philosophy]].&lt;ref&gt;A.&lt;/ref&gt;"),
    _page("AccessibleComputing", 0, "#REDIRECT [[Computer accessibility]]",
          redirect="Computer accessibility"),
    _page("Talk:Anarchism", 1, "Talk about [[Anarchism]]."),
    _page("OldRedirect", 0, "#redirect [[Anarchism]]"),  # no <redirect> element: older dumps
    _page("Only templates", 0, "{{Disambiguation}}"),
    _page("Autism", 0, "==Signs==\nAutism &amp; [[speech|talk]].", revisions=2),
]


@pytest.mark.parametrize("namespace", [EXPORT_010, "http://www.mediawiki.org/xml/export-0.11/", ""])
@pytest.mark.parametrize("compress", [True, False])
def test_iter_articles_keeps_main_namespace_articles_only(namespace, compress):
    xml = _export(PAGES, namespace)
    articles = list(iter_articles(bz2.compress(xml) if compress else xml))
    # Left out: a redirect (by element, and by #REDIRECT text), a talk page, a page that
    # is only a template; the last revision is the one read.
    assert articles == [Article("Anarchism", "Anarchism is a political philosophy."),
                        Article("Autism", "Signs\nAutism & talk.")]
    assert articles[0].to_dict() == {"title": "Anarchism", "text": "Anarchism is a political philosophy."}


def test_iter_articles_rejects_text_and_malformed_xml():
    with pytest.raises(TypeError, match="str"):
        list(iter_articles(_export(PAGES).decode()))
    with pytest.raises(ET.ParseError, match="mismatched tag"):
        list(iter_articles(b"<mediawiki><page><title>A</page>"))


# ---------------------------------------------------------------------------
# The real dump
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dump_xml():
    return bz2.decompress(assets.gensim_test_data(corpus.WIKIPEDIA_DUMP)).decode("utf-8")


def _reference_articles(xml_text):
    """Titles of main-namespace non-redirect pages, found with plain string search."""
    titles = []
    for page in xml_text.split("<page>")[1:]:
        if "<ns>0</ns>" in page and "<redirect" not in page:
            titles.append(re.search(r"<title>(.*?)</title>", page).group(1))
    return titles


def test_real_dump_first_pages_give_the_articles_a_string_search_finds(dump_xml):
    # The first 60 pages (a quick slice of the 206, mostly redirects) as an export of their own.
    head, *pages = dump_xml.split("<page>")
    sliced = head + "".join("<page>" + p for p in pages[:60]).rsplit("</page>", 1)[0] + "</page></mediawiki>"
    articles = list(iter_articles(sliced.encode("utf-8")))
    assert [a.title for a in articles] == _reference_articles(sliced)
    assert [a.title for a in articles] == ["Anarchism", "Autism", "Albedo", "A"]
    assert articles[0].text.startswith("Anarchism is a political philosophy that advocates "
                                       "self-governed societies based on voluntary institutions.")


def test_real_dump_strips_to_clean_text_one_article_per_page(dump_xml):
    text = corpus.corpus_text("wikipedia")  # prepared once per cache: the whole dump, stripped
    articles = text.rstrip("\n").split("\n\n")
    assert len(articles) == len(_reference_articles(dump_xml)) == 106
    for marker in ("[[", "]]", "{{", "}}", "<ref", "</ref", "&lt;", "&amp;", "''", "{|", "|}",
                   "<!--", "__NOTOC__", "[http", "Category:", "File:"):
        assert marker not in text, marker
    assert all(line.strip() == line and line for article in articles for line in article.split("\n"))
    words = re.findall(r"\w+", text)
    assert 400_000 < len(words) < 500_000  # gensim's filter, which keeps table cells, finds 486k
