"""Tokenizers: text to the int64 id arrays an Embedding takes, and back.

    base   the interface every tokenizer offers, SpecialTokens, the JSON file format,
           the registry TOKENIZERS and load_tokenizer
    byte   ByteTokenizer: UTF-8 bytes, one id each (nothing is ever unknown)
    char   CharTokenizer: characters of a vocabulary learned from a corpus
    bpe    BPETokenizer: byte-level BPE (GPT-2's), a readable trainer and encoder
    hf     HFTokenizer: any Hugging Face tokenizer.json (needs ``tokenizers``)

Every tokenizer: ``encode(text) -> int64 (n,)``, ``encode_batch``, ``decode(ids)``,
``vocab_size`` / ``len``, ``token_to_id``, ``id_to_token``, ``pad_id`` / ``unk_id`` /
``bos_id`` / ``eos_id``, ``save(path)`` and ``load(path)`` as JSON.

Examples:
    >>> from tinyembed.nn import Embedding
    >>> tok = BPETokenizer.train(["the cat sat on the mat"] * 3, vocab_size=270)
    >>> ids = tok.encode("the mat")
    >>> ids.dtype, tok.decode(ids)
    (dtype('int64'), 'the mat')
    >>> Embedding(len(tok), 4, seed=0)(ids).shape
    (2, 4)
"""

from .base import (
                   FORMAT,
                   FORMAT_VERSION,
                   TOKENIZERS,
                   SpecialTokens,
                   TokenizationStats,
                   Tokenizer,
                   as_ids,
                   from_dict,
                   load_tokenizer,
                   register_tokenizer,
                   tokenization_stats,
)
from .bpe import PRETOKENIZERS, BPETokenizer, learn_merges, pretokenize
from .byte import BYTE_TO_CHAR, ByteTokenizer
from .char import CharTokenizer
from .hf import HFTokenizer

__all__ = ["BPETokenizer", "BYTE_TO_CHAR", "ByteTokenizer", "CharTokenizer", "FORMAT",
           "FORMAT_VERSION", "HFTokenizer", "PRETOKENIZERS", "SpecialTokens", "TOKENIZERS",
           "TokenizationStats", "Tokenizer", "as_ids", "from_dict", "learn_merges", "load_tokenizer",
           "pretokenize", "register_tokenizer", "tokenization_stats"]
