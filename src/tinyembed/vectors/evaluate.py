"""Intrinsic evaluation of word vectors: word similarity, analogies, neighbours.

Three benchmarks, read from gensim's test data (``tinyembed.io.assets.gensim_test_data``):

    WordSim-353   wordsim353.tsv       353 pairs scored 0-10 by people (relatedness)
    SimLex-999    simlex999.txt        999 pairs scored 0-10 (similarity, not relatedness)
    analogies     questions-words.txt  19544 questions "a is to b as c is to ?" in 14
                                       sections (5 semantic, 9 syntactic ``gram*``)

The numbers are the ones gensim's ``KeyedVectors.evaluate_word_pairs`` and
``evaluate_word_analogies`` report with their defaults, so they can be compared:

* **Case.** Words are matched case-insensitively (gensim's ``case_insensitive=True``):
  benchmark words and vocabulary are upper-cased, and when several vocabulary words
  upper-case alike the most frequent (earliest row) stands for them all.
* **Restricted vocabulary.** Only the first ``restrict_vocab`` rows count (rows are
  most-frequent-first). Word pairs default to gensim's 300000, analogies to
  30000 (word2vec's ``compute-accuracy`` threshold; gensim's default is 300000).
* **Out-of-vocabulary.** A pair or question with a word outside the restricted
  vocabulary is skipped and counted, not scored (gensim's ``dummy4unknown=False``);
  scores are over the rest, and ``oov_ratio`` = skipped / all (a fraction; gensim
  prints it as a percentage).
* **Similarity** is the cosine of the two vectors; the score is the Spearman rank
  correlation (our :func:`spearman`: Pearson correlation of ranks, ties given
  their average rank, as ``scipy.stats.spearmanr``) with the human scores.
* **3CosAdd.** The answer to a : b :: c : ? is the word w of the restricted
  vocabulary that maximizes cos(w, b^ - a^ + c^) (hats: unit vectors), w not one
  of a, b, c nor, case-insensitively, a variant of them; correct if it upper-cases
  to the expected word. gensim looks for the first non-variant among its top 5 and
  counts the question wrong if there is none; we take the best non-variant, which
  differs only when five case-variants of the question words outrank every other
  word.

Unlike gensim, a malformed line in a benchmark file is an error naming the line,
not silently skipped.

Examples:
    >>> spearman([1, 2, 3, 4], [10, 20, 20, 40])
    0.9486832980505138
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .word_vectors import WordVectors

__all__ = [
    "AnalogyQuestion",
    "AnalogyResult",
    "DEFAULT_QUERY_WORDS",
    "EvaluationReport",
    "Neighbours",
    "PairResult",
    "SectionResult",
    "WordPair",
    "evaluate",
    "evaluate_analogies",
    "evaluate_word_pairs",
    "format_report",
    "load_analogies",
    "load_simlex999",
    "load_wordsim353",
    "parse_analogies",
    "parse_word_pairs",
    "pearson",
    "rank_average",
    "spearman",
]

WORDSIM353 = "wordsim353.tsv"
SIMLEX999 = "simlex999.txt"
ANALOGIES = "questions-words.txt"
DEFAULT_QUERY_WORDS = ("king", "computer", "university", "france", "good", "water")

# Elements of one (questions x vocabulary) similarity block: 16M float32 = 64 MB.
_BLOCK_ELEMENTS = 1 << 24

Sample = Sequence[float] | np.ndarray  # a list of numbers or an array: np.asarray takes either


# ---------------------------------------------------------------------------
# Rank correlation
# ---------------------------------------------------------------------------

def _as_sample(x: Sample, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has a value that is not finite: "
                         f"{array[~np.isfinite(array)][0]!r}")
    return array


def rank_average(x: Sample) -> np.ndarray:
    """Ranks 1..n of ``x``, tied values sharing the average of their ranks.

    Shape: (n,) in, (n,) float64 out. ``rank_average([10, 20, 20, 5])`` is
    ``[2, 3.5, 3.5, 1]``.
    """
    values = _as_sample(x, "x")
    n = values.size
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Start of each run of equal values; run k covers sorted positions [starts[k], starts[k+1]).
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]
    average = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def pearson(x: Sample, y: Sample) -> float:
    """Pearson correlation of two equally long samples (n >= 2); nan if either is constant."""
    a, b = _as_sample(x, "x"), _as_sample(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"a correlation needs at least 2 values, got {a.size}")
    if np.ptp(a) == 0.0 or np.ptp(b) == 0.0:
        # Tested on the samples themselves: the mean of a constant sample can round away from
        # its value, which would leave deviations of 1e-17 and a meaningless correlation.
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    scale_a, scale_b = np.abs(a).max(), np.abs(b).max()
    a, b = a / scale_a, b / scale_b  # so that tiny values do not underflow when squared
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(np.clip((a @ b) / denominator, -1.0, 1.0))


def spearman(x: Sample, y: Sample) -> float:
    """Spearman's rank correlation: Pearson correlation of the average ranks.

    Shape: two (n,) samples, n >= 2. Returns nan if either is constant (as scipy).
    """
    a, b = _as_sample(x, "x"), _as_sample(y, "y")
    if a.shape != b.shape:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    return pearson(rank_average(a), rank_average(b))


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------------
# Benchmark files
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class WordPair:
    """One similarity judgement: two words and the human score."""

    word1: str
    word2: str
    score: float


@dataclass(frozen=True)
class AnalogyQuestion:
    """a is to b as c is to expected, in a named section."""

    section: str
    a: str
    b: str
    c: str
    expected: str


def _text(data: str | bytes, source: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source}: not valid UTF-8 at byte {e.start} ({e.reason})") from None


def parse_word_pairs(data: str | bytes, source: str = "<pairs>") -> list[WordPair]:
    """Pairs from ``word1<TAB>word2<TAB>score`` lines; lines starting with ``#`` and
    blank lines are skipped (gensim's format for wordsim353.tsv and simlex999.txt).

    Raises:
        ValueError: a line without exactly three tab-separated fields or whose score
            is not a finite number; the message names ``source`` and the line.
    """
    pairs = []
    for line_no, line in enumerate(_text(data, source).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{source}, line {line_no}: expected 'word1<TAB>word2<TAB>score', "
                             f"got {len(fields)} tab-separated fields: {line[:80]!r}")
        word1, word2, score = (f.strip() for f in fields)
        try:
            value = float(score)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or not word1 or not word2:
            raise ValueError(f"{source}, line {line_no}: expected two words and a finite "
                             f"score, got {line[:80]!r}")
        pairs.append(WordPair(word1, word2, value))
    return pairs


def parse_analogies(data: str | bytes, source: str = "<analogies>") -> list[AnalogyQuestion]:
    """Questions from word2vec's ``questions-words.txt`` format: ``: section`` lines
    start a section, every other non-blank line is four words ``a b c expected``.

    Raises:
        ValueError: a question before the first section, or a line that is not
            four words; the message names ``source`` and the line.
    """
    questions = []
    section: str | None = None
    for line_no, line in enumerate(_text(data, source).splitlines(), start=1):
        if line.startswith(":"):
            section = line[1:].strip()
            if not section:
                raise ValueError(f"{source}, line {line_no}: a section header needs a name")
            continue
        words = line.split()
        if not words:
            continue
        if section is None:
            raise ValueError(f"{source}, line {line_no}: a question before the first "
                             f"': section' line")
        if len(words) != 4:
            raise ValueError(f"{source}, line {line_no}: expected four words 'a b c expected', "
                             f"got {len(words)}: {line[:80]!r}")
        questions.append(AnalogyQuestion(section, *words))
    return questions


def _gensim_file(filename: str) -> bytes:
    from ..io.assets import gensim_test_data  # fetches gensim's wheel on first use
    return gensim_test_data(filename)


def load_wordsim353() -> list[WordPair]:
    """WordSim-353's 353 pairs (gensim's ``wordsim353.tsv``; fetches gensim's wheel once)."""
    return parse_word_pairs(_gensim_file(WORDSIM353), WORDSIM353)


def load_simlex999() -> list[WordPair]:
    """SimLex-999's 999 pairs (gensim's ``simlex999.txt``; fetches gensim's wheel once)."""
    return parse_word_pairs(_gensim_file(SIMLEX999), SIMLEX999)


def load_analogies() -> list[AnalogyQuestion]:
    """The 19544 questions of word2vec's ``questions-words.txt`` in 14 sections."""
    return parse_analogies(_gensim_file(ANALOGIES), ANALOGIES)


# ---------------------------------------------------------------------------
# Matching benchmark words to the vocabulary
# ---------------------------------------------------------------------------

def _check_restrict(restrict_vocab: int | None) -> None:
    if restrict_vocab is not None and (isinstance(restrict_vocab, bool)
                                       or not isinstance(restrict_vocab, (int, np.integer))
                                       or restrict_vocab < 1):
        raise ValueError(f"restrict_vocab must be a positive integer or None, got {restrict_vocab!r}")


def _lookup(vectors: WordVectors, restrict_vocab: int | None,
            case_insensitive: bool) -> tuple[dict[str, int], np.ndarray]:
    """(key -> row, canon) over the first ``restrict_vocab`` rows.

    The key is the word, upper-cased if ``case_insensitive``; a key shared by several
    words maps to the earliest (most frequent) row. ``canon[i]`` (int64, (R,)) is the
    row that row i's key maps to, so i is a case-variant of j iff canon[i] == canon[j].
    """
    _check_restrict(restrict_vocab)
    words = vectors.words[:restrict_vocab]
    keys = [w.upper() for w in words] if case_insensitive else words
    lookup: dict[str, int] = {}
    for i, key in enumerate(keys):
        lookup.setdefault(key, i)
    canon = np.fromiter((lookup[k] for k in keys), dtype=np.int64, count=len(keys))
    return lookup, canon


# ---------------------------------------------------------------------------
# Word similarity
# ---------------------------------------------------------------------------

@dataclass
class PairResult:
    """How well cosine similarity ranks word pairs like people do.

    ``spearman`` and ``pearson`` are None when fewer than two pairs were in the
    vocabulary or the similarities are all equal. ``oov_ratio`` is a fraction.
    """

    name: str
    spearman: float | None
    pearson: float | None
    pairs_used: int
    oov_pairs: int
    oov_ratio: float
    oov_words: list[str] = field(default_factory=list)

    @property
    def pairs_total(self) -> int:
        return self.pairs_used + self.oov_pairs

    def to_dict(self) -> dict:
        return asdict(self) | {"pairs_total": self.pairs_total}


def evaluate_word_pairs(vectors: WordVectors, pairs: Iterable[WordPair], *, name: str = "pairs",
                        restrict_vocab: int | None = 300_000,
                        case_insensitive: bool = True) -> PairResult:
    """Spearman (and Pearson) correlation between cosine similarities and human scores.

    Pairs with a word outside the first ``restrict_vocab`` rows are skipped and
    counted in ``oov_pairs`` (their distinct missing words, as written in the
    benchmark, in ``oov_words``). See the module doc for gensim's rules we follow.
    """
    pairs = list(pairs)
    lookup, _ = _lookup(vectors, restrict_vocab, case_insensitive)
    key = str.upper if case_insensitive else (lambda w: w)
    unit = vectors.normalized()
    gold, model = [], []
    oov = 0
    missing: dict[str, None] = {}
    for pair in pairs:
        i, j = lookup.get(key(pair.word1)), lookup.get(key(pair.word2))
        if i is None or j is None:
            oov += 1
            missing.update((w, None) for w, k in ((pair.word1, i), (pair.word2, j)) if k is None)
            continue
        gold.append(pair.score)
        model.append(float(unit[i] @ unit[j]))
    rho = r = None
    if len(gold) >= 2:
        rho, r = _or_none(spearman(model, gold)), _or_none(pearson(model, gold))
    return PairResult(name=name, spearman=rho, pearson=r, pairs_used=len(gold), oov_pairs=oov,
                      oov_ratio=oov / len(pairs) if pairs else 0.0, oov_words=list(missing))


# ---------------------------------------------------------------------------
# Analogies
# ---------------------------------------------------------------------------

@dataclass
class SectionResult:
    """One section of the analogy questions. ``accuracy`` is None if none was answered."""

    section: str
    correct: int
    total: int
    skipped: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def to_dict(self) -> dict:
        return asdict(self) | {"accuracy": self.accuracy}


@dataclass
class AnalogyResult:
    """3CosAdd accuracy: ``correct`` of the ``total`` questions answered; ``skipped``
    questions had a word outside the first ``restrict_vocab`` rows."""

    accuracy: float | None
    correct: int
    total: int
    skipped: int
    restrict_vocab: int
    per_section: list[SectionResult]

    @property
    def oov_ratio(self) -> float:
        asked = self.total + self.skipped
        return self.skipped / asked if asked else 0.0

    def _accuracy_where(self, syntactic: bool) -> float | None:
        # word2vec's split: the syntactic sections are named gram1-..., gram9-...
        chosen = [s for s in self.per_section if s.section.startswith("gram") == syntactic]
        total = sum(s.total for s in chosen)
        return sum(s.correct for s in chosen) / total if total else None

    @property
    def semantic_accuracy(self) -> float | None:
        return self._accuracy_where(syntactic=False)

    @property
    def syntactic_accuracy(self) -> float | None:
        return self._accuracy_where(syntactic=True)

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "correct": self.correct, "total": self.total,
                "skipped": self.skipped, "oov_ratio": self.oov_ratio,
                "restrict_vocab": self.restrict_vocab,
                "semantic_accuracy": self.semantic_accuracy,
                "syntactic_accuracy": self.syntactic_accuracy,
                "per_section": [s.to_dict() for s in self.per_section]}


def _answer_analogies(unit: np.ndarray, canon: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows answering each question by 3CosAdd, or -1 where every candidate is excluded.

    Args:
        unit: (R, D) float32 unit rows of the restricted vocabulary.
        canon: (R,) int64, the canonical row of each row's case-insensitive key.
        ids: (Q, 3) int64 canonical rows of a, b, c.

    Returns:
        (Q,) int64 rows into ``unit``.
    """
    rows, _ = unit.shape
    # Rows sharing a key with another row (case-variants); usually few or none.
    counts = np.bincount(canon, minlength=rows)
    variants = {int(g): np.flatnonzero(canon == g) for g in np.flatnonzero(counts > 1)}
    answers = np.empty(len(ids), dtype=np.int64)
    batch = max(1, _BLOCK_ELEMENTS // max(rows, 1))
    for start in range(0, len(ids), batch):
        block = ids[start:start + batch]  # (B, 3)
        # b^ - a^ + c^; its length does not change the argmax of the cosine.
        query = unit[block[:, 1]] - unit[block[:, 0]] + unit[block[:, 2]]  # (B, D)
        scores = query @ unit.T  # (B, R)
        scores[np.arange(len(block))[:, None], block] = -np.inf
        if variants:
            for q, words in enumerate(block):
                for g in set(words.tolist()) & variants.keys():
                    scores[q, variants[g]] = -np.inf
        best = np.argmax(scores, axis=1)
        excluded_all = np.isneginf(scores[np.arange(len(block)), best])
        answers[start:start + batch] = np.where(excluded_all, -1, best)
    return answers


def evaluate_analogies(vectors: WordVectors, questions: Iterable[AnalogyQuestion],
                       restrict_vocab: int | None = 30_000, *,
                       case_insensitive: bool = True) -> AnalogyResult:
    """Accuracy of 3CosAdd on analogy questions over the first ``restrict_vocab`` rows.

    Questions with any of their four words outside those rows are skipped (counted
    per section). Vectorized: questions go in blocks against the whole restricted
    vocabulary, (block, R) float32 scores at a time.
    """
    questions = list(questions)
    lookup, canon = _lookup(vectors, restrict_vocab, case_insensitive)
    key = str.upper if case_insensitive else (lambda w: w)
    sections: dict[str, SectionResult] = {}
    answerable, ids = [], []
    for question in questions:
        section = sections.setdefault(question.section, SectionResult(question.section, 0, 0, 0))
        found = [lookup.get(key(w)) for w in (question.a, question.b, question.c, question.expected)]
        if None in found:
            section.skipped += 1
            continue
        answerable.append(section)
        ids.append(found)
    if ids:
        ids_array = np.array(ids, dtype=np.int64)  # (Q, 4)
        unit = vectors.normalized()[:len(canon)]
        answers = _answer_analogies(unit, canon, ids_array[:, :3])
        right = (answers >= 0) & (canon[np.maximum(answers, 0)] == ids_array[:, 3])
        for section, ok in zip(answerable, right.tolist(), strict=True):
            section.total += 1
            section.correct += ok
    correct = sum(s.correct for s in sections.values())
    total = sum(s.total for s in sections.values())
    return AnalogyResult(accuracy=correct / total if total else None, correct=correct,
                         total=total, skipped=sum(s.skipped for s in sections.values()),
                         restrict_vocab=len(canon), per_section=list(sections.values()))


# ---------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------

@dataclass
class Neighbours:
    """The nearest words to ``word`` by cosine, best first."""

    word: str
    neighbours: list[tuple[str, float]]

    def to_dict(self) -> dict:
        return {"word": self.word, "neighbours": [[w, c] for w, c in self.neighbours]}


@dataclass
class EvaluationReport:
    """All benchmarks of one set of word vectors."""

    vocab_size: int
    dim: int
    word_pairs: list[PairResult]
    analogies: AnalogyResult
    neighbours: list[Neighbours]
    missing_query_words: list[str]
    warnings: list[str] = field(default_factory=list)  # why the scores may mean little (:func:`warnings_of`)

    def to_dict(self) -> dict:
        return {"vocab_size": self.vocab_size, "dim": self.dim,
                "word_pairs": [p.to_dict() for p in self.word_pairs],
                "analogies": self.analogies.to_dict(),
                "neighbours": [n.to_dict() for n in self.neighbours],
                "missing_query_words": list(self.missing_query_words),
                "warnings": list(self.warnings)}


# Below these, a score is computed on too little to mean much; say so rather than print a bare number.
MIN_PAIR_COVERAGE = 0.5       # of a word-similarity benchmark's pairs
MIN_ANALOGY_COVERAGE = 0.1    # of the analogy questions
MAX_MEAN_COSINE = 0.9         # between the most frequent words: above, the vectors barely differ


def mean_cosine(vectors: WordVectors, words: int = 1000) -> float:
    """Mean cosine similarity between distinct pairs of the ``words`` most frequent words: near 0
    for vectors that tell words apart, near 1 for vectors that all point one way (untrained)."""
    unit = vectors.normalized()[:words].astype(np.float64)
    n = len(unit)
    if n < 2:
        return 0.0
    total = unit.sum(axis=0)
    return float((total @ total - (unit * unit).sum()) / (n * (n - 1)))  # sum over i != j of u_i . u_j


def warnings_of(vectors: WordVectors, pairs: list[PairResult], analogies: AnalogyResult) -> list[str]:
    """What makes these scores weak evidence: low coverage of a benchmark, or degenerate vectors."""
    found = []
    for p in pairs:
        if p.pairs_total and p.pairs_used / p.pairs_total < MIN_PAIR_COVERAGE:
            found.append(f"{p.name} scored only {p.pairs_used} of its {p.pairs_total} pairs (the vocabulary "
                         f"misses the rest): its correlation says little")
    total = analogies.total + analogies.skipped
    if total and analogies.total / total < MIN_ANALOGY_COVERAGE:
        found.append(f"only {analogies.total} of {total} analogy questions could be answered with this vocabulary")
    cosine = mean_cosine(vectors)
    if cosine > MAX_MEAN_COSINE:
        found.append(f"the vectors are nearly parallel (mean cosine {cosine:.3f} between the most frequent "
                     "words): they do not tell words apart, as after too little training (a smoke run)")
    return found


def evaluate(vectors: WordVectors, *, restrict_vocab: int | None = 30_000,
             pairs_restrict_vocab: int | None = 300_000,
             query_words: Sequence[str] | None = None, topn: int = 10,
             case_insensitive: bool = True) -> EvaluationReport:
    """WordSim-353, SimLex-999, the analogies and nearest neighbours of ``query_words``.

    Args:
        vectors: the word vectors, most frequent first.
        restrict_vocab: analogy candidates and words: the first N rows (None: all).
        pairs_restrict_vocab: word-pair words: the first N rows (gensim's default).
        query_words: words whose ``topn`` neighbours to list (default
            ``DEFAULT_QUERY_WORDS``); those not in the vocabulary (exact spelling)
            are listed in ``missing_query_words``.
    """
    if not isinstance(vectors, WordVectors):
        raise TypeError(f"vectors must be a WordVectors, got {type(vectors).__name__}")
    pairs = [evaluate_word_pairs(vectors, load_wordsim353(), name="WordSim-353",
                                 restrict_vocab=pairs_restrict_vocab,
                                 case_insensitive=case_insensitive),
             evaluate_word_pairs(vectors, load_simlex999(), name="SimLex-999",
                                 restrict_vocab=pairs_restrict_vocab,
                                 case_insensitive=case_insensitive)]
    analogies = evaluate_analogies(vectors, load_analogies(), restrict_vocab,
                                   case_insensitive=case_insensitive)
    words = list(DEFAULT_QUERY_WORDS if query_words is None else query_words)
    present = [w for w in dict.fromkeys(words) if w in vectors]
    neighbours = [Neighbours(w, vectors.most_similar(w, topn=topn)) for w in present
                  if len(vectors) > 1]
    return EvaluationReport(vocab_size=len(vectors), dim=vectors.dim, word_pairs=pairs,
                            analogies=analogies, neighbours=neighbours,
                            missing_query_words=[w for w in dict.fromkeys(words) if w not in vectors],
                            warnings=warnings_of(vectors, pairs, analogies))


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def format_report(report: EvaluationReport) -> str:
    """The report as plain-text tables."""
    lines = [f"Word vectors: {report.vocab_size} words x {report.dim} dimensions"]
    lines += [f"warning: {w}" for w in report.warnings] + [""]
    lines.append(f"{'word similarity':<16} {'Spearman':>8} {'Pearson':>8} {'pairs used':>11} "
                 f"{'skipped (OOV)':>14}")
    for p in report.word_pairs:
        lines.append(f"{p.name:<16} {_fmt(p.spearman):>8} {_fmt(p.pearson):>8} "
                     f"{f'{p.pairs_used}/{p.pairs_total}':>11} "
                     f"{f'{p.oov_pairs} ({p.oov_ratio:.1%})':>14}")
    a = report.analogies
    lines += ["", f"Analogies, 3CosAdd over the {a.restrict_vocab} most frequent words",
              f"{'section':<28} {'accuracy':>8} {'correct/answered':>17} {'skipped (OOV)':>14}"]
    for s in a.per_section:
        lines.append(f"{s.section:<28} {_fmt(s.accuracy, '.1%'):>8} "
                     f"{f'{s.correct}/{s.total}':>17} {s.skipped:>14}")
    lines.append(f"{'semantic':<28} {_fmt(a.semantic_accuracy, '.1%'):>8}")
    lines.append(f"{'syntactic':<28} {_fmt(a.syntactic_accuracy, '.1%'):>8}")
    lines.append(f"{'total':<28} {_fmt(a.accuracy, '.1%'):>8} {f'{a.correct}/{a.total}':>17} "
                 f"{f'{a.skipped} ({a.oov_ratio:.1%})':>14}")
    if report.neighbours or report.missing_query_words:
        lines += ["", "Nearest neighbours (cosine)"]
        for n in report.neighbours:
            lines.append(f"{n.word}: " + ", ".join(f"{w} {c:.3f}" for w, c in n.neighbours))
        for word in report.missing_query_words:
            lines.append(f"{word}: not in the vocabulary")
    return "\n".join(lines)
