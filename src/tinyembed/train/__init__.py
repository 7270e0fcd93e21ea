"""Training embeddings on real text.

    vocab      words of a corpus: tokenization, the vocabulary (min_count, most frequent
               first), subsampling keep-probabilities and the unigram^0.75 noise distribution
    skipgram   word2vec's skip-gram with negative sampling on tinyembed's Embedding,
               row-sparse gradients and SGD / SparseAdam (``tinyembed train skipgram``), in
               one process or with both tables sharded over Ray actors (``--shards N``)
    lm         a small language model on tinyembed's layers (import ``tinyembed.train.lm``)
"""

from .skipgram import (
                       EpochStats,
                       NoiseSampler,
                       ShardingConfig,
                       SkipGram,
                       SkipGramConfig,
                       SkipGramResult,
                       negative_sampling_loss,
                       skipgram_pairs,
                       subsample,
                       train_skipgram,
                       write_outputs,
)
from .vocab import EncodedCorpus, Vocabulary, tokenize, tokenize_lines

__all__ = ["EncodedCorpus", "EpochStats", "SkipGram", "SkipGramConfig", "SkipGramResult", "Vocabulary",
           "NoiseSampler", "ShardingConfig", "negative_sampling_loss", "skipgram_pairs", "subsample", "tokenize",
           "tokenize_lines", "train_skipgram", "write_outputs"]
