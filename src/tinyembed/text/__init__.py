"""Real text: corpora as plain text, and their token streams.

    wiki     a MediaWiki XML export (a Wikipedia dump) -> articles as plain text
    corpus   named corpora (``CORPORA``: wikipedia, lee), prepared once and cached;
             any UTF-8 text file; token streams under all-MiniLM-L6-v2's tokenizer

Stripping wiki markup needs mwparserfromhell and tokenizing needs Hugging Face
tokenizers (both in ``pip install 'tinyembed[text]'``); they are imported only when used.
"""

from .corpus import (
                     CORPORA,
                     Corpus,
                     CorpusInfo,
                     TokenStream,
                     corpus_text,
                     list_corpora,
                     minilm_token_ids,
                     prepare,
                     prepared_dir,
)
from .wiki import Article, iter_articles, strip_markup

__all__ = ["Article", "CORPORA", "Corpus", "CorpusInfo", "TokenStream", "corpus_text",
           "iter_articles", "list_corpora", "minilm_token_ids", "prepare", "prepared_dir",
           "strip_markup"]
