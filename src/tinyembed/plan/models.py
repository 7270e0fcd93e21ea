"""Published configurations of real language models: the embedding-relevant shape.

Only these numbers are typed in anywhere in tinyembed, each with its source in a
comment; every memory figure is computed from them (see :mod:`tinyembed.plan.memory`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..checks import check_choice, check_int, check_positive_int

__all__ = ["MODELS", "POSITIONAL_KINDS", "ModelConfig"]


# ---------------------------------------------------------------------------
# Model configurations
# ---------------------------------------------------------------------------


def _learned_position_params(context_length: int | None, hidden_size: int) -> int:
    # A learned table has one D-wide row per position the model can attend to.
    if context_length is None:
        raise ValueError("learned position embeddings need a context_length")
    return context_length * hidden_size


def _no_position_params(context_length: int | None, hidden_size: int) -> int:
    # RoPE rotates queries and keys by a fixed function of the position and
    # relative-bias tables are tiny and counted in extra_position_params, so
    # neither has a per-position table of width D.
    return 0


# Position-embedding kind -> parameters of its table, as a function of
# (context_length, hidden_size). Adding a kind is adding one entry.
POSITIONAL_KINDS: dict[str, Callable[[int | None, int], int]] = {
    "learned": _learned_position_params,
    "rope": _no_position_params,
    "relative": _no_position_params,
    "none": _no_position_params,
}


@dataclass(frozen=True)
class ModelConfig:
    """The embedding-relevant shape of a model.

    Args:
        name: short name shown in reports.
        vocab_size: rows V of the token table.
        hidden_size: width D of each row (the model dimension).
        context_length: longest sequence in tokens, or None if unknown.
        tied: True if the output projection reuses the input token table.
        positional: one of ``POSITIONAL_KINDS`` ("learned", "rope",
            "relative", "none").
        total_params: all parameters of the model, counting a tied table
            once, or None if unknown.
        extra_position_params: parameters of small position-like tables
            that are not a (context x D) table, e.g. T5's relative-bias
            buckets or BERT's token-type rows.
        source: where the published numbers come from.
    """

    name: str
    vocab_size: int
    hidden_size: int
    context_length: int | None
    tied: bool
    positional: str
    total_params: int | None
    extra_position_params: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        # Validate up front, naming the bad value, so a report never shows
        # numbers computed from a nonsensical config.
        for field in ("vocab_size", "hidden_size"):
            check_positive_int(getattr(self, field), field)
        check_int(self.context_length, "context_length", low=1, none_ok=True)
        check_choice(self.positional, sorted(POSITIONAL_KINDS), "positional")
        if self.positional == "learned" and self.context_length is None:
            raise ValueError("positional='learned' needs a context_length (one row per position)")
        if self.extra_position_params < 0:
            raise ValueError(
                f"extra_position_params must be >= 0, got {self.extra_position_params!r}"
            )
        if self.total_params is not None and self.total_params < self.embedding_params:
            raise ValueError(
                f"total_params={self.total_params} is smaller than the embedding "
                f"parameters alone ({self.embedding_params})"
            )

    @property
    def input_embedding_params(self) -> int:
        """Parameters of the V x D input token table."""
        return self.vocab_size * self.hidden_size

    @property
    def output_embedding_params(self) -> int:
        """Parameters of the output projection; 0 when tied (a shared table counts once)."""
        return 0 if self.tied else self.vocab_size * self.hidden_size

    @property
    def position_params(self) -> int:
        """Parameters of the position embeddings, including extra_position_params."""
        table = POSITIONAL_KINDS[self.positional](self.context_length, self.hidden_size)
        return table + self.extra_position_params

    @property
    def embedding_params(self) -> int:
        """Input table + untied output head + position embeddings."""
        return self.input_embedding_params + self.output_embedding_params + self.position_params


# Published configurations. Only these numbers are typed in; totals are the
# parameter counts of the Hugging Face model (tied tables counted once) unless
# a paper is named. Each total can be rebuilt from the architecture; see
# tests/test_memory.py.
MODELS: dict[str, ModelConfig] = {
    # HF openai-community/gpt2 config.json: vocab_size 50257, n_embd 768,
    # n_positions 1024, lm_head tied to wte; total = GPT2LMHeadModel count.
    "gpt2": ModelConfig(
        name="gpt2",
        vocab_size=50257,
        hidden_size=768,
        context_length=1024,
        tied=True,
        positional="learned",
        total_params=124_439_808,
        source="HF openai-community/gpt2 config.json; GPT2LMHeadModel parameter count",
    ),
    # HF openai-community/gpt2-xl config.json: n_embd 1600, n_layer 48.
    "gpt2-xl": ModelConfig(
        name="gpt2-xl",
        vocab_size=50257,
        hidden_size=1600,
        context_length=1024,
        tied=True,
        positional="learned",
        total_params=1_557_611_200,
        source="HF openai-community/gpt2-xl config.json; GPT2LMHeadModel parameter count",
    ),
    # Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1:
    # d_model 12288, n_ctx 2048, 175.0B parameters (the paper gives no exact
    # count). The paper reuses GPT-2's BPE (50257 tokens) and architecture,
    # including learned positions and the tied output head.
    "gpt3-175b": ModelConfig(
        name="gpt3-175b",
        vocab_size=50257,
        hidden_size=12288,
        context_length=2048,
        tied=True,
        positional="learned",
        total_params=175_000_000_000,
        source="Brown et al. 2020 (GPT-3) Table 2.1; GPT-2 tokenizer",
    ),
    # HF google-bert/bert-base-uncased config.json: vocab_size 30522,
    # hidden_size 768, max_position_embeddings 512, type_vocab_size 2. The MLM
    # head's decoder is tied to the word embeddings. Token-type embeddings are
    # a second additive per-token table (2 x 768), counted with positions.
    # Total = BertModel count (includes the pooler, excludes the MLM head).
    "bert-base": ModelConfig(
        name="bert-base",
        vocab_size=30522,
        hidden_size=768,
        context_length=512,
        tied=True,
        positional="learned",
        total_params=109_482_240,
        extra_position_params=2 * 768,
        source="HF google-bert/bert-base-uncased config.json; BertModel parameter count",
    ),
    # HF google-t5/t5-base config.json: vocab_size 32128, d_model 768,
    # num_heads 12, relative_attention_num_buckets 32, n_positions 512,
    # tie_word_embeddings true (T5 v1.0). The first self-attention layer of
    # the encoder and of the decoder each own a 32 x 12 relative-bias table.
    "t5-base": ModelConfig(
        name="t5-base",
        vocab_size=32128,
        hidden_size=768,
        context_length=512,
        tied=True,
        positional="relative",
        total_params=222_903_552,
        extra_position_params=2 * 32 * 12,
        source="HF google-t5/t5-base config.json; T5ForConditionalGeneration parameter count",
    ),
    # HF meta-llama/Llama-2-7b-hf config.json: vocab_size 32000,
    # hidden_size 4096, max_position_embeddings 4096, tie_word_embeddings false.
    "llama2-7b": ModelConfig(
        name="llama2-7b",
        vocab_size=32000,
        hidden_size=4096,
        context_length=4096,
        tied=False,
        positional="rope",
        total_params=6_738_415_616,
        source="HF meta-llama/Llama-2-7b-hf config.json; LlamaForCausalLM parameter count",
    ),
    # HF meta-llama/Meta-Llama-3-8B config.json: vocab_size 128256,
    # hidden_size 4096, max_position_embeddings 8192, tie_word_embeddings false.
    "llama3-8b": ModelConfig(
        name="llama3-8b",
        vocab_size=128256,
        hidden_size=4096,
        context_length=8192,
        tied=False,
        positional="rope",
        total_params=8_030_261_248,
        source="HF meta-llama/Meta-Llama-3-8B config.json; LlamaForCausalLM parameter count",
    ),
    # HF mistralai/Mistral-7B-v0.1 config.json: vocab_size 32000,
    # hidden_size 4096, max_position_embeddings 32768 (sliding window 4096),
    # tie_word_embeddings false.
    "mistral-7b": ModelConfig(
        name="mistral-7b",
        vocab_size=32000,
        hidden_size=4096,
        context_length=32768,
        tied=False,
        positional="rope",
        total_params=7_241_732_096,
        source="HF mistralai/Mistral-7B-v0.1 config.json; MistralForCausalLM parameter count",
    ),
    # HF google/gemma-7b config.json: vocab_size 256000, hidden_size 3072,
    # max_position_embeddings 8192; the output head reuses the embedding.
    "gemma-7b": ModelConfig(
        name="gemma-7b",
        vocab_size=256000,
        hidden_size=3072,
        context_length=8192,
        tied=True,
        positional="rope",
        total_params=8_537_680_896,
        source="HF google/gemma-7b config.json; GemmaForCausalLM parameter count",
    ),
}
