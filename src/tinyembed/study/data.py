"""The capacity study's text: a corpus split by article into training and held-out text, the
tokenizers trained on the training part only, and both parts as token streams.

A prepared corpus holds one paragraph per line and an empty line between articles
(:mod:`tinyembed.text.corpus`). Every ``held_out_every``-th article (the 10th, 20th, ...) is
held out whole: neither training nor the BPE trainer ever sees a line of it, and the
articles are spread over the corpus rather than taken from its end (Wikipedia's dump is
alphabetical, so its end is one letter). Evaluation may read fewer bytes
(``eval_bytes``): the same number of leading lines of each held-out article.

Each part becomes one token stream: every line encoded with its ``"\\n"``, end to end, so
decoding the held-out stream gives back exactly the held-out text, and bits per byte divide
by exactly the bytes whose tokens were scored, line ends included.

Examples:
    >>> split = split_articles("a b\\nc\\n\\nd e\\n\\nf\\n", held_out_every=2)
    >>> split.train, split.held_out
    (['a b', 'c', 'f'], ['d e'])
    >>> split.held_out_text, split.held_out_bytes
    ('d e\\n', 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_positive_int
from ..text.tokenizers import BPETokenizer, ByteTokenizer, Tokenizer

__all__ = ["SplitText", "split_articles", "train_tokenizers", "encode_stream", "SPECIALS"]

# One special token: the padding that fills the window before the first token of a stream.
# It is never a target; unk is not needed (byte-level tokenizers encode any text).
SPECIALS = {"pad": "<pad>"}


@dataclass(frozen=True)
class SplitText:
    """A corpus's lines in two disjoint parts.

    Attributes:
        train: lines of the training articles (the only text the BPE trainer sees).
        held_out: lines of the held-out articles that evaluation reads.
        held_out_articles: how many articles were held out.
    """

    train: list[str]
    held_out: list[str]
    held_out_articles: int

    @property
    def train_text(self) -> str:
        return "".join(line + "\n" for line in self.train)

    @property
    def held_out_text(self) -> str:
        """The text evaluation scores: each held-out line with its line end."""
        return "".join(line + "\n" for line in self.held_out)

    @property
    def train_bytes(self) -> int:
        return sum(len(line.encode("utf-8")) + 1 for line in self.train)

    @property
    def held_out_bytes(self) -> int:
        """UTF-8 bytes of :attr:`held_out_text`: the denominator of bits per byte."""
        return sum(len(line.encode("utf-8")) + 1 for line in self.held_out)


def split_articles(text: str, held_out_every: int = 10, eval_bytes: int | None = None) -> SplitText:
    """Every ``held_out_every``-th article of ``text`` held out, the rest for training.

    Args:
        text: a corpus with articles apart by an empty line (``"\\n\\n"``).
        held_out_every: hold out articles ``k - 1, 2k - 1, ...`` (0-based), ``k`` this.
        eval_bytes: keep about this many held-out bytes: the same count of leading lines
            from each held-out article, the fewest that reach it (None: all of them). The
            lines left out are still held out: training never sees them either.

    Raises:
        ValueError: fewer than ``held_out_every`` articles (nothing would be held out).
    """
    check_positive_int(held_out_every, "held_out_every")
    articles = [[line for line in article.split("\n") if line.strip()] for article in text.split("\n\n")]
    articles = [lines for lines in articles if lines]
    if len(articles) < held_out_every or held_out_every < 2:
        raise ValueError(f"cannot hold out every {held_out_every}th article of a text with {len(articles)} articles "
                         f"(apart by an empty line): at least {max(2, held_out_every)} articles are needed")
    held = [lines for i, lines in enumerate(articles) if i % held_out_every == held_out_every - 1]
    train = [line for i, lines in enumerate(articles) if i % held_out_every != held_out_every - 1 for line in lines]
    if eval_bytes is not None:
        check_positive_int(eval_bytes, "eval_bytes")
        held = [lines[:_lines_per_article(held, eval_bytes)] for lines in held]
    return SplitText(train=train, held_out=[line for lines in held for line in lines], held_out_articles=len(held))


def _lines_per_article(articles: list[list[str]], target_bytes: int) -> int:
    """The fewest leading lines per article whose bytes reach ``target_bytes`` (or every line)."""
    longest = max(len(lines) for lines in articles)
    for n in range(1, longest + 1):
        if sum(len(line.encode("utf-8")) + 1 for lines in articles for line in lines[:n]) >= target_bytes:
            return n
    return longest


def train_tokenizers(train_lines: list[str], vocab_sizes: tuple[int, ...] | list[int]) -> dict[str, Tokenizer]:
    """The byte tokenizer and our BPE at each vocabulary size, trained on ``train_lines`` only.

    BPE is trained once, at the largest size; a smaller vocabulary is its first merges, which is
    exactly what training to that size gives (merges are learned greedily in rank order; a test
    checks it). Sizes count every id, the padding token included.

    Returns:
        name -> tokenizer, in order of vocabulary size: ``"byte"`` (257 ids), then ``"bpe-N"``.
        A corpus that supports fewer merges than asked gives a smaller BPE, named by the ids
        it has (and a size reached twice is kept once).
    """
    tokenizers: dict[str, Tokenizer] = {"byte": ByteTokenizer(specials=SPECIALS)}
    sizes = sorted({check_positive_int(v, "vocab size") for v in vocab_sizes})
    if not sizes:
        return tokenizers
    largest = BPETokenizer.train(train_lines, sizes[-1], specials=SPECIALS)
    base = largest.vocab_size - len(largest.merges)  # the bytes and the specials
    for size in sizes:
        tokenizer = BPETokenizer(largest.merges[:max(0, size - base)], specials=SPECIALS)
        tokenizers.setdefault(f"bpe-{tokenizer.vocab_size}", tokenizer)
    return tokenizers


def encode_stream(tokenizer, lines: list[str]) -> np.ndarray:
    """``lines`` as one token stream, each line with its ``"\\n"``: int64 (n_tokens,)."""
    encoded = tokenizer.encode_batch([line + "\n" for line in lines])
    return np.concatenate(encoded) if encoded else np.zeros(0, np.int64)
