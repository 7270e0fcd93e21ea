"""The study's text: held-out articles never reach training or the BPE trainer; streams decode to the text."""

import numpy as np
import pytest

from tinyembed.study import capacity, run_capacity_study
from tinyembed.study.data import SPECIALS, encode_stream, split_articles, train_tokenizers
from tinyembed.text.tokenizers import BPETokenizer, ByteTokenizer


def test_every_kth_article_is_held_out_whole_and_no_line_is_on_both_sides(tiny_corpus):
    text = tiny_corpus(articles=20, lines=4)
    split = split_articles(text, held_out_every=5)
    articles = [a.split("\n") for a in text.strip("\n").split("\n\n")]
    held = [a for i, a in enumerate(articles) if i % 5 == 4]
    assert split.held_out_articles == 4
    assert split.held_out == [line for a in held for line in a]
    assert not set(split.held_out) & set(split.train)
    assert len(split.train) + len(split.held_out) == 20 * 4
    assert split.held_out_text == "".join(line + "\n" for line in split.held_out)
    assert split.held_out_bytes == len(split.held_out_text.encode("utf-8"))


def test_fewer_evaluation_bytes_keep_the_same_leading_lines_of_every_held_out_article(tiny_corpus):
    text = tiny_corpus(articles=20, lines=6)
    whole, cut = split_articles(text, 5), split_articles(text, 5, eval_bytes=600)
    assert cut.held_out_bytes >= 600 and cut.held_out_bytes < whole.held_out_bytes
    per_article = len(cut.held_out) // cut.held_out_articles
    assert all(f"line {i}:" in line for i in range(per_article)
               for line in cut.held_out[i::per_article])
    assert cut.train == whole.train  # the lines left out of the evaluation are not given to training


def test_a_corpus_with_too_few_articles_is_refused_naming_the_count():
    with pytest.raises(ValueError, match="3 articles"):
        split_articles("a\n\nb\n\nc\n", held_out_every=10)


def test_a_smaller_bpe_is_the_first_merges_of_the_largest_which_is_what_training_it_gives(tiny_corpus):
    lines = tiny_corpus(articles=10).splitlines()
    tokenizers = train_tokenizers(lines, (290, 330))
    assert list(tokenizers) == ["byte", "bpe-290", "bpe-330"]
    trained = BPETokenizer.train(lines, 290, specials=SPECIALS)
    assert tokenizers["bpe-290"].merges == trained.merges
    assert tokenizers["bpe-290"].vocab_size == 290 and tokenizers["byte"].vocab_size == 257


def test_a_stream_decodes_to_exactly_the_text_whose_bytes_it_is_scored_over(tiny_corpus):
    split = split_articles(tiny_corpus(articles=12), 6)
    for tokenizer in (ByteTokenizer(specials=SPECIALS), train_tokenizers(split.train, (320,))["bpe-320"]):
        stream = encode_stream(tokenizer, split.held_out)
        assert tokenizer.decode(stream) == split.held_out_text
        assert tokenizer.pad_id not in stream


def test_the_study_never_shows_a_held_out_line_to_training_or_to_the_bpe_trainer(monkeypatch, tiny_corpus,
                                                                                 tiny_capacity_config):
    text = tiny_corpus()
    config = tiny_capacity_config(budgets=(2e6,), untied=())
    held = split_articles(text, config.held_out_every, config.eval_bytes).held_out
    bpe_saw, training_saw = [], []
    real_train, real_run = BPETokenizer.train.__func__, capacity.train_run

    def spy_bpe(cls, lines, *args, **kwargs):
        bpe_saw.extend(lines)
        return real_train(cls, lines, *args, **kwargs)

    def spy_run(lm_config, train, *args, **kwargs):
        training_saw.append(train.stream)
        return real_run(lm_config, train, *args, **kwargs)

    monkeypatch.setattr(BPETokenizer, "train", classmethod(spy_bpe))
    monkeypatch.setattr(capacity, "train_run", spy_run)
    document = run_capacity_study(config, text=text, show_progress=False)

    assert bpe_saw and not set(bpe_saw) & set(held)
    byte_stream = next(s for s in training_saw if s.max() < 257)  # the byte tokenizer's run
    seen = ByteTokenizer(specials=SPECIALS).decode(byte_stream[byte_stream != 0])
    assert all(line in text for line in held) and not any(line in seen for line in held)
    assert document["corpus"]["held_out_lines"] == len(held)
    assert len(training_saw) == len(document["points"]) == 2


def test_the_padding_token_is_the_only_special_and_is_never_a_target(tiny_corpus):
    split = split_articles(tiny_corpus(articles=12), 6)
    tokenizer = train_tokenizers(split.train, (300,))["bpe-300"]
    assert tokenizer.special_ids == (tokenizer.pad_id,) == (0,)
    assert np.all(encode_stream(tokenizer, split.train) != 0)
