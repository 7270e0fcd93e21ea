import argparse
import json
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyembed.cli import evaluate as command
from tinyembed.io import assets
from tinyembed.vectors import WordVectors
from tinyembed.vectors import evaluate as ev
from tinyembed.vectors.evaluate import (
    AnalogyQuestion,
    WordPair,
    evaluate,
    evaluate_analogies,
    evaluate_word_pairs,
    format_report,
    load_analogies,
    load_simlex999,
    load_wordsim353,
    parse_analogies,
    parse_word_pairs,
    pearson,
    rank_average,
    spearman,
)


@pytest.fixture(scope="module")
def questions():
    return load_analogies()


@pytest.fixture(scope="module")
def wordsim():
    return load_wordsim353()


@pytest.fixture(scope="module")
def simlex():
    return load_simlex999()


# ---------------------------------------------------------------------------
# Rank correlation
# ---------------------------------------------------------------------------

# Small integers: many ties.
samples = st.integers(2, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(-5, 5), min_size=n, max_size=n),
    st.lists(st.integers(-5, 5), min_size=n, max_size=n)))


@settings(max_examples=200, deadline=None)
@given(samples)
def test_spearman_matches_scipy_with_ties(pair):
    stats = pytest.importorskip("scipy.stats")
    x, y = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns of constant input, then returns nan
        expected = stats.spearmanr(x, y).statistic
    ours = spearman(x, y)
    if np.isnan(expected):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(expected, abs=1e-12)
    np.testing.assert_array_equal(rank_average(x), stats.rankdata(x))


milli = st.integers(-10**6, 10**6).map(lambda i: i / 1000)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(
    st.lists(milli, min_size=n, max_size=n), st.lists(milli, min_size=n, max_size=n))))
def test_pearson_matches_numpy_corrcoef(pair):
    x, y = (np.array(v) for v in pair)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert np.isnan(pearson(x, y))
    else:
        assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-9)


def test_pearson_of_a_constant_sample_is_nan_even_when_its_mean_rounds():
    # The mean of three 0.901s is not exactly 0.901 in float64.
    assert np.mean([0.901] * 3) != 0.901
    assert np.isnan(pearson([0.0, 0.0, 0.001], [0.901] * 3))


def test_pearson_of_tiny_values_does_not_underflow():
    # Squaring 1e-246 gives 0 in float64; the correlation is still exactly 1.
    assert pearson([0.0, 1.0, 2.0], [0.0, 1e-246, 2e-246]) == pytest.approx(1.0)


def test_spearman_without_ties_is_the_textbook_formula():
    rng = np.random.default_rng(0)
    x, y = rng.permutation(20), rng.permutation(20)
    n, d = 20, x - y  # the values are their own ranks minus one
    assert spearman(x, y) == pytest.approx(1 - 6 * np.sum(d ** 2) / (n * (n ** 2 - 1)))
    assert spearman(x, x * 3 + 1) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_rank_average_gives_ties_their_mean_rank():
    np.testing.assert_array_equal(rank_average([10, 20, 20, 5, 20]), [2, 4, 4, 1, 4])


@pytest.mark.parametrize("x, y, message", [
    ([1, 2], [1, 2, 3], "same length"),
    ([1], [1], "at least 2"),
    ([1, np.nan], [1, 2], "not finite"),
    ([[1, 2]], [[1, 2]], "1-D"),
])
def test_spearman_refuses_bad_samples(x, y, message):
    with pytest.raises(ValueError, match=message):
        spearman(x, y)


# ---------------------------------------------------------------------------
# Benchmark files
# ---------------------------------------------------------------------------

def test_wordsim353_and_simlex999_have_all_their_pairs(wordsim, simlex):
    assert len(wordsim) == 353 and len(simlex) == 999  # the two '#' header lines skipped
    assert wordsim[0] == WordPair("love", "sex", 6.77)
    assert wordsim[-1] == WordPair("architecture", "century", 3.78)
    assert simlex[0] == WordPair("old", "new", 1.58) and simlex[-1] == WordPair("attend", "arrive", 6.08)
    assert all(0 <= p.score <= 10 for p in wordsim + simlex)


def test_analogies_have_fourteen_sections_in_file_order(questions):
    raw = assets.gensim_test_data("questions-words.txt").decode().splitlines()
    headers = [line[2:] for line in raw if line.startswith(": ")]
    sizes = Counter(q.section for q in questions)
    assert list(sizes) == headers and len(headers) == 14
    assert len(questions) == 19544 == len(raw) - len(headers)
    assert sizes["capital-common-countries"] == 506 and sizes["gram9-plural-verbs"] == 870
    assert questions[0] == AnalogyQuestion("capital-common-countries", "Athens", "Greece",
                                           "Baghdad", "Iraq")


@pytest.mark.parametrize("text, message", [
    ("a\tb\t1\nc\td\n", r"<pairs>, line 2: expected 'word1<TAB>word2<TAB>score', got 2"),
    ("# c\na\tb\tx\n", r"line 2: expected two words and a finite score"),
    ("a\tb\tnan\n", r"line 1: expected two words and a finite score"),
])
def test_malformed_pair_lines_are_errors_naming_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_word_pairs(text)


@pytest.mark.parametrize("text, message", [
    ("a b c d\n", r"line 1: a question before the first ': section' line"),
    (": s\na b c d\na b c\n", r"line 3: expected four words 'a b c expected', got 3"),
    (":\n", r"line 1: a section header needs a name"),
])
def test_malformed_analogy_lines_are_errors_naming_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_analogies(text)


def test_parsers_skip_comments_and_blank_lines():
    assert parse_word_pairs(b"# x\n\na\tb\t2.5\r\n") == [WordPair("a", "b", 2.5)]
    assert parse_analogies(": s1\n\na b c d\n: s2\ne f g h\n") == [
        AnalogyQuestion("s1", "a", "b", "c", "d"), AnalogyQuestion("s2", "e", "f", "g", "h")]


# ---------------------------------------------------------------------------
# Word pairs
# ---------------------------------------------------------------------------

def vectors_for(words, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    return WordVectors(list(words), rng.standard_normal((len(words), dim)).astype(np.float32))


def test_out_of_vocabulary_pairs_are_counted_and_the_rest_scored(wordsim):
    stats = pytest.importorskip("scipy.stats")
    words = sorted({w for p in wordsim for w in (p.word1, p.word2)})
    kept = words[::2]  # every other word: many pairs lose one
    wv = vectors_for(kept)
    result = evaluate_word_pairs(wv, wordsim, name="WordSim-353")
    used = [p for p in wordsim if p.word1 in wv and p.word2 in wv]
    assert result.pairs_used == len(used) and result.oov_pairs == 353 - len(used) > 0
    assert result.oov_ratio == pytest.approx((353 - len(used)) / 353)
    assert set(result.oov_words) == {w for p in wordsim for w in (p.word1, p.word2)} - set(kept)
    cosines = [wv.similarity(p.word1, p.word2) for p in used]
    expected = stats.spearmanr([p.score for p in used], cosines).statistic
    assert result.spearman == pytest.approx(expected, abs=1e-9)


def test_word_pairs_match_case_insensitively_most_frequent_variant_first():
    # 'Tiger' (row 0) stands for 'tiger' too; 'CAT' only exists upper-case.
    wv = WordVectors(["Tiger", "tiger", "CAT", "dog"],
                     np.array([[1, 0], [0, 1], [1, 0.1], [0, 1]], dtype=np.float32))
    pairs = [WordPair("tiger", "cat", 1.0), WordPair("tiger", "dog", 0.0), WordPair("cow", "dog", 2.0)]
    result = evaluate_word_pairs(wv, pairs)
    assert (result.pairs_used, result.oov_pairs, result.oov_words) == (2, 1, ["cow"])
    assert result.spearman == pytest.approx(1.0)  # cos(Tiger, CAT) > cos(Tiger, dog): same order
    exact = evaluate_word_pairs(wv, pairs, case_insensitive=False)
    assert (exact.pairs_used, exact.spearman) == (1, None)  # one pair cannot be correlated


def test_all_pairs_out_of_vocabulary_is_a_result_not_a_crash(wordsim):
    result = evaluate_word_pairs(vectors_for(["zzz", "yyy"]), wordsim)
    assert (result.spearman, result.pairs_used, result.oov_pairs, result.oov_ratio) == (None, 0, 353, 1.0)
    json.dumps(result.to_dict())


def test_restrict_vocab_drops_rare_words():
    wv = vectors_for(["a", "b", "c", "d"])
    pairs = [WordPair("a", "b", 1), WordPair("a", "d", 2), WordPair("b", "c", 3)]
    assert evaluate_word_pairs(wv, pairs, restrict_vocab=3).oov_pairs == 1


# ---------------------------------------------------------------------------
# Analogies
# ---------------------------------------------------------------------------

def royal_vectors():
    """Vectors where king - man + woman = queen exactly, for unit vectors too.

    Each word is a sum of named unit axes; the words of one analogy have equally many,
    so their unit vectors are the raw ones over the same norm and the offsets stay exact.
    """
    axes = {
        "man": "man male common", "woman": "man female common",
        "king": "king male royal", "queen": "king female royal",
        "boy": "boy male common", "girl": "boy female common",
        "paris": "paris city", "france": "paris country",
        "rome": "rome city", "italy": "rome country",
        "apple": "apple", "chair": "chair",
    }
    names = sorted({axis for spec in axes.values() for axis in spec.split()})
    table = np.array([[float(name in spec.split()) for name in names] for spec in axes.values()],
                     dtype=np.float32)
    return WordVectors(list(axes), table)


def test_analogy_answers_known_questions_on_hand_built_vectors():
    wv = royal_vectors()
    questions = parse_analogies(": family\nman woman king queen\nking queen boy girl\n"
                                "woman man girl boy\nman woman king girl\n"
                                ": capitals\nparis france rome italy\nrome italy paris france\n"
                                "paris france london england\n")
    result = evaluate_analogies(wv, questions)
    family, capitals = result.per_section
    # The fourth family question expects 'girl'; 3CosAdd says 'queen': wrong.
    assert (family.section, family.correct, family.total, family.skipped) == ("family", 3, 4, 0)
    assert (capitals.correct, capitals.total, capitals.skipped) == (2, 2, 1)  # london: OOV
    assert (result.correct, result.total, result.skipped) == (5, 6, 1)
    assert result.accuracy == pytest.approx(5 / 6) and result.oov_ratio == pytest.approx(1 / 7)
    top = wv.most_similar(positive=["king", "woman"], negative=["man"], topn=1)
    assert top[0][0] == "queen" and top[0][1] == pytest.approx(1.0)


def brute_force_analogies(wv, questions, restrict_vocab):
    """gensim's loop: most_similar(top 5) per question, first non-variant of a, b, c."""
    ok = {}
    for word in reversed(wv.words[:restrict_vocab]):
        ok[word.upper()] = word
    correct, total, skipped = Counter(), Counter(), Counter()
    for q in questions:
        a, b, c, expected = (w.upper() for w in (q.a, q.b, q.c, q.expected))
        if not all(w in ok for w in (a, b, c, expected)):
            skipped[q.section] += 1
            continue
        sims = wv.most_similar(positive=[ok[b], ok[c]], negative=[ok[a]], topn=5,
                               restrict_vocab=restrict_vocab)
        predicted = None
        for word, _ in sims:
            predicted = word.upper()
            if predicted not in {a, b, c}:
                break
        total[q.section] += 1
        correct[q.section] += predicted == expected
    return correct, total, skipped


def structured_vectors(questions, dim=16, seed=1, drop=150, variants=300):
    """Vectors where every analogy section is roughly an offset, some words missing,
    and case-variants (lower, upper, capitalized) of others added as rarer or
    commoner words: the accuracy is far from 0 and from 1, and the case rules matter."""
    rng = np.random.default_rng(seed)
    offsets, vec = {}, {}
    for q in questions:
        offset = offsets.setdefault(q.section, rng.standard_normal(dim) * 2)
        for x, y in ((q.a, q.b), (q.c, q.expected)):
            if x not in vec and y not in vec:
                vec[x] = rng.standard_normal(dim)
            if y not in vec:
                vec[y] = vec[x] + offset + 0.5 * rng.standard_normal(dim)
            elif x not in vec:
                vec[x] = vec[y] - offset + 0.5 * rng.standard_normal(dim)
    vocab = list(vec)
    rng.shuffle(vocab)
    vocab = vocab[drop:]
    extra = [w.lower() for w in vocab[:variants // 2]] + [w.upper() for w in vocab[variants // 2:variants]]
    for w in extra:
        vec.setdefault(w, rng.standard_normal(dim))
    vocab = list(dict.fromkeys(vocab + extra))
    rng.shuffle(vocab)
    return WordVectors(vocab, np.array([vec[w] for w in vocab], dtype=np.float32))


@pytest.fixture(scope="module")
def some_questions(questions):
    return questions[::10]  # every section, ~2000 questions


@pytest.fixture(scope="module")
def structured(questions):
    return structured_vectors(questions)


@pytest.mark.parametrize("restrict_vocab", [None, 600])
def test_analogies_match_a_brute_force_loop(structured, some_questions, restrict_vocab):
    limit = restrict_vocab or len(structured)
    result = evaluate_analogies(structured, some_questions, restrict_vocab)
    correct, total, skipped = brute_force_analogies(structured, some_questions, limit)
    assert result.restrict_vocab == limit
    assert 0.1 < result.accuracy < 0.9 and result.skipped > 0
    for section in result.per_section:
        name = section.section
        assert (section.correct, section.total, section.skipped) == (
            correct[name], total[name], skipped[name]), name
    assert result.correct == sum(correct.values()) and result.total == sum(total.values())


def test_analogies_do_not_depend_on_the_block_size(structured, some_questions, monkeypatch):
    whole = evaluate_analogies(structured, some_questions)
    monkeypatch.setattr(ev, "_BLOCK_ELEMENTS", 7 * len(structured))  # blocks of 7 questions
    blocked = evaluate_analogies(structured, some_questions)
    assert blocked.to_dict() == whole.to_dict()


def test_semantic_and_syntactic_accuracy_split_on_gram_sections(structured, some_questions):
    result = evaluate_analogies(structured, some_questions)
    syntactic = [s for s in result.per_section if s.section.startswith("gram")]
    assert len(syntactic) == 9
    expected = sum(s.correct for s in syntactic) / sum(s.total for s in syntactic)
    assert result.syntactic_accuracy == pytest.approx(expected)
    assert min(result.semantic_accuracy, result.syntactic_accuracy) <= result.accuracy \
        <= max(result.semantic_accuracy, result.syntactic_accuracy)


# ---------------------------------------------------------------------------
# The same numbers as gensim
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gensim_kv(structured):
    models = pytest.importorskip("gensim.models", reason="gensim is the optional reference")
    kv = models.KeyedVectors(structured.dim)
    kv.add_vectors(structured.words, structured.vectors)
    return kv


@pytest.fixture(scope="module")
def benchmark_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benchmarks")
    for name in ("wordsim353.tsv", "simlex999.txt", "questions-words.txt"):
        (folder / name).write_bytes(assets.gensim_test_data(name))
    return folder


@pytest.mark.parametrize("restrict_vocab", [300_000, 700])
@pytest.mark.parametrize("filename, loader", [("wordsim353.tsv", load_wordsim353),
                                              ("simlex999.txt", load_simlex999)])
def test_word_pairs_equal_gensims_evaluate_word_pairs(structured, gensim_kv, benchmark_dir,
                                                      filename, loader, restrict_vocab):
    # The structured vocabulary is the analogy words; give the pair words random vectors.
    pair_words = [w for p in loader() for w in (p.word1, p.word2) if w.upper() not in
                  {x.upper() for x in structured.words}]
    rng = np.random.default_rng(5)
    words = structured.words + list(dict.fromkeys(pair_words))[::2]
    extra = rng.standard_normal((len(words) - len(structured), structured.dim)).astype(np.float32)
    wv = WordVectors(words, np.vstack([structured.vectors, extra]))
    kv = type(gensim_kv)(wv.dim)
    kv.add_vectors(wv.words, wv.vectors)
    pearson_r, spearman_r, oov_percent = kv.evaluate_word_pairs(
        str(benchmark_dir / filename), restrict_vocab=restrict_vocab)
    ours = evaluate_word_pairs(wv, loader(), restrict_vocab=restrict_vocab)
    assert ours.spearman == pytest.approx(spearman_r.statistic, abs=1e-9)
    assert ours.pearson == pytest.approx(pearson_r.statistic, abs=1e-6)  # theirs is float32
    assert ours.oov_ratio * 100 == pytest.approx(oov_percent)


@pytest.mark.parametrize("restrict_vocab", [300_000, 1000])
def test_analogies_equal_gensims_evaluate_word_analogies(structured, gensim_kv, benchmark_dir,
                                                         questions, restrict_vocab):
    score, sections = gensim_kv.evaluate_word_analogies(
        str(benchmark_dir / "questions-words.txt"), restrict_vocab=restrict_vocab)
    ours = evaluate_analogies(structured, questions, restrict_vocab)
    assert sections[-1]["section"] == "Total accuracy"
    assert ours.accuracy == pytest.approx(score)
    for mine, theirs in zip(ours.per_section, sections[:-1], strict=True):
        assert mine.section == theirs["section"]
        assert (mine.correct, mine.total) == (len(theirs["correct"]),
                                              len(theirs["correct"]) + len(theirs["incorrect"]))


# ---------------------------------------------------------------------------
# The whole evaluation and the command
# ---------------------------------------------------------------------------

def test_evaluate_collects_every_benchmark_and_formats_a_table(structured):
    report = evaluate(structured, restrict_vocab=800, query_words=["Paris", "nowhere"], topn=3)
    names = [p.name for p in report.word_pairs]
    assert names == ["WordSim-353", "SimLex-999"]
    assert report.word_pairs[0].pairs_total == 353 and report.word_pairs[1].pairs_total == 999
    assert report.analogies.total + report.analogies.skipped == 19544
    assert [n.word for n in report.neighbours] == ["Paris"] and report.missing_query_words == ["nowhere"]
    assert report.neighbours[0].neighbours == structured.most_similar("Paris", topn=3)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["analogies"]["correct"] == report.analogies.correct
    text = format_report(report)
    for expected in ["WordSim-353", "SimLex-999", "capital-world", "3CosAdd over the 800",
                     "Paris: ", "nowhere: not in the vocabulary",
                     f"{report.analogies.correct}/{report.analogies.total}"]:
        assert expected in text


def run_command(argv):
    parser = argparse.ArgumentParser(prog="tinyembed evaluate")
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    return command.run(args, parser)


def test_command_evaluates_text_and_safetensors_vectors_alike(tmp_path, structured, capsys):
    structured.save_word2vec_text(tmp_path / "v.txt")
    structured.save(tmp_path / "v.safetensors")
    queries = structured.words[:2]
    outputs = []
    for name in ("v.txt", "v.safetensors"):
        assert run_command([str(tmp_path / name), "--json", "--restrict-vocab", "800",
                            "--most-similar", *queries, "--topn", "2"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert outputs[0]["analogies"]["restrict_vocab"] == 800
    assert outputs[0]["analogies"] == evaluate_analogies(structured, load_analogies(), 800).to_dict()
    assert [n["word"] for n in outputs[0]["neighbours"]] == queries
    assert run_command([str(tmp_path / "v.txt"), "--limit", "500"]) == 0
    assert "Word vectors: 500 words x 16 dimensions" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "No such file"),
    (b"2 2\na 1 2\nb 1 oops\n", "line 3: value 'oops'"),
    (b"\x00\x01garbage", "line 1: the header must be two integers"),
])
def test_command_reports_bad_vector_files_with_exit_code_2(tmp_path, capsys, content, message):
    path = tmp_path / "v.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        run_command([str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "cannot read word vectors from" in err and message in err


# -- scores that mean little are said to mean little ---------------------------------------------
def _pairs(used, total):
    return ev.PairResult(name="WordSim-353", spearman=0.1, pearson=0.1, pairs_used=used, oov_pairs=total - used,
                         oov_ratio=(total - used) / total)


def _analogies(answered, skipped):
    return ev.AnalogyResult(accuracy=0.0, correct=0, total=answered, skipped=skipped, restrict_vocab=30000,
                            per_section=[])


def test_parallel_vectors_and_low_coverage_are_named_in_warnings():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(200)]
    parallel = WordVectors(words, (np.ones((200, 16)) + 1e-3 * rng.standard_normal((200, 16))).astype(np.float32))
    found = ev.warnings_of(parallel, [_pairs(40, 353)], _analogies(100, 19444))
    assert any("WordSim-353 scored only 40 of its 353 pairs" in w for w in found)
    assert any("only 100 of 19544 analogy questions" in w for w in found)
    assert any("nearly parallel (mean cosine 1.000" in w for w in found)


def test_vectors_that_tell_words_apart_with_full_coverage_get_no_warning():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(500)]
    spread = WordVectors(words, rng.standard_normal((500, 32)).astype(np.float32))
    assert abs(ev.mean_cosine(spread)) < 0.05
    assert ev.warnings_of(spread, [_pairs(353, 353)], _analogies(19000, 544)) == []


def test_mean_cosine_equals_the_average_over_distinct_pairs_by_brute_force():
    rng = np.random.default_rng(2)
    vectors = WordVectors([f"w{i}" for i in range(30)], rng.standard_normal((30, 5)).astype(np.float32))
    unit = vectors.normalized().astype(np.float64)
    brute = np.mean([unit[i] @ unit[j] for i in range(30) for j in range(30) if i != j])
    assert ev.mean_cosine(vectors) == pytest.approx(brute, rel=1e-9)


def test_command_prints_each_warning_on_stderr_and_still_the_scores(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = ["king", "queen", "man", "woman", "computer", "tiger", "cat"]
    parallel = WordVectors(words, (np.ones((7, 8)) + 1e-3 * rng.standard_normal((7, 8))).astype(np.float32))
    parallel.save_word2vec_text(tmp_path / "v.txt")
    assert run_command([str(tmp_path / "v.txt"), "--json"]) == 0
    out = capsys.readouterr()
    warned = [line for line in out.err.splitlines() if line.startswith("warning: ")]
    assert any("nearly parallel" in w for w in warned) and any("WordSim-353 scored only" in w for w in warned)
    assert json.loads(out.out)["warnings"] == [w.removeprefix("warning: ") for w in warned]
