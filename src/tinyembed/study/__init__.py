"""Studies: questions about embeddings answered by training and timing, each a ``tinyembed study`` command.

    data         a corpus split by article into training and held-out text; tokenizers trained on
                 the training part only; token streams
    flops        FLOPs of the window language model from its shapes; bits per byte
    throughput   the training step's FLOPs/s against this machine's matrix product
    capacity     the vocabulary x width x compute grid (IsoFLOPs), its Pareto fronts
    decode       one generated token's output projection timed over vocabulary x width x storage;
                 the published models' heads per token; the output rows real text asks for
    results      studies saved as JSON with their date and command; the last one, for the report
    summary      each study's tables (text and Markdown) and what it found
"""

from .capacity import CapacityConfig, CapacityPoint, run_capacity_study
from .decode import (
    DecodeGrid,
    DecodePoint,
    DecodeStudy,
    measure_decode,
    model_decode_costs,
    output_coverage,
    run_decode_study,
)
from .flops import bits_per_byte, forward_flops_per_token, train_flops_per_token
from .results import last_study, save_study, study_path

__all__ = ["CapacityConfig", "CapacityPoint", "run_capacity_study", "DecodeGrid", "DecodePoint", "DecodeStudy",
           "measure_decode", "model_decode_costs", "output_coverage", "run_decode_study", "bits_per_byte",
           "forward_flops_per_token", "train_flops_per_token", "last_study", "save_study", "study_path"]
