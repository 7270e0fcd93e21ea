"""Pictures of embeddings, drawn with matplotlib (the optional ``plot`` extra), headless.

Each figure is one function that returns a matplotlib Figure, so tests and the
report can inspect or save it; :func:`save_positional_plots` writes them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io.files import atomic_open

__all__ = ["sinusoidal_heatmap", "position_similarity", "rope_spectrum", "save_positional_plots",
           "POSITIONAL_PLOTS"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:  # an optional extra: say how to get it
        raise ImportError("plots need matplotlib: pip install 'tinyembed[plot]'") from e
    matplotlib.use("Agg")  # headless: no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def cosine_similarity_matrix(table: np.ndarray) -> np.ndarray:
    """(n, d) rows -> (n, n) cosine similarities, in float64."""
    t = np.asarray(table, dtype=np.float64)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return t @ t.T


def sinusoidal_heatmap(num_positions: int = 256, embedding_dim: int = 128):
    """The sinusoidal table as an image: fast waves in the first dims, slow ones in the last."""
    from ..positional import sinusoidal_table

    plt = _pyplot()
    table = sinusoidal_table(np.arange(num_positions), embedding_dim)
    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.imshow(table, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_title(f"Sinusoidal position encoding (d = {embedding_dim}, base 10000)")
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("position (tokens)")
    fig.colorbar(im, ax=ax, label="value")
    fig.tight_layout()
    return fig


def rope_similarity(num_positions: int, head_dim: int = 64) -> np.ndarray:
    """(n, n) similarity <R(m)q, R(n)q> / |q|^2 of one vector rotated to every position.

    q = all ones puts equal energy in every rotation pair; the result depends only on m - n.
    """
    from ..positional import RotaryEmbedding

    q = np.ones((1, 1, num_positions, head_dim))
    rotated, _ = RotaryEmbedding(head_dim).apply(q, q)
    r = rotated.data[0, 0]  # (n, head_dim)
    return r @ r.T / head_dim


def position_similarity(learned_table: np.ndarray | None = None, num_positions: int = 512,
                        dim: int = 384):
    """Cosine similarity between positions: sinusoidal, RoPE and a real learned table side by side."""
    from ..positional import sinusoidal_table

    plt = _pyplot()
    panels = [("sinusoidal", cosine_similarity_matrix(sinusoidal_table(np.arange(num_positions), dim))),
              ("RoPE (rotated copies of one vector)", rope_similarity(num_positions, 64))]
    if learned_table is not None:
        panels.append(("learned: all-MiniLM-L6-v2", cosine_similarity_matrix(learned_table[:num_positions])))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), layout="constrained")
    for ax, (name, sim) in zip(np.atleast_1d(axes), panels, strict=True):
        im = ax.imshow(sim, cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("position (tokens)")
        ax.set_ylabel("position (tokens)")
    fig.colorbar(im, ax=list(np.atleast_1d(axes)), label="cosine similarity", shrink=0.8)
    fig.suptitle("Similarity between position encodings")
    return fig


# The context-extension scalings drawn, in Hugging Face's rope_parameters form, for a
# model trained on `original` tokens and extended by `factor` (LLaMA-3.1's llama3 settings).
def _rope_scalings(original: int, factor: float) -> dict[str, dict]:
    return {
        "linear": {"rope_type": "linear", "factor": factor},
        "dynamic": {"rope_type": "dynamic", "factor": factor, "original_max_position_embeddings": original},
        "yarn": {"rope_type": "yarn", "factor": factor, "original_max_position_embeddings": original},
        "llama3": {"rope_type": "llama3", "factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": original},
    }


def rope_spectrum(head_dim: int = 128, base: float = 10000.0, original: int = 4096, factor: float = 4.0):
    """Wavelength of each rotary frequency, unscaled and under every scaling, at factor x the original length."""
    from ..positional import RotaryEmbedding

    plt = _pyplot()
    seq_len = int(original * factor)
    fig, ax = plt.subplots(figsize=(8, 5))
    pairs = np.arange(head_dim // 2)
    unscaled = RotaryEmbedding(head_dim, base=base)
    ax.plot(pairs, 2 * np.pi / unscaled.inv_freq, label="no scaling", color="black", linewidth=2)
    for name, scaling in _rope_scalings(original, factor).items():
        rope = RotaryEmbedding(head_dim, base=base, scaling=scaling)
        rope.cos_sin(np.array([seq_len - 1]))  # 'dynamic' picks its frequencies from the length
        ax.plot(pairs, 2 * np.pi / rope.inv_freq, label=f"{name} (factor {factor:g})", linestyle="--")
    ax.axhline(original, color="gray", linewidth=0.8)
    ax.axhline(seq_len, color="gray", linewidth=0.8, linestyle=":")
    ax.text(0, original * 1.15, f"original context {original}", color="gray")
    ax.text(0, seq_len * 1.15, f"extended context {seq_len}", color="gray")
    ax.set_yscale("log")
    ax.set_title(f"RoPE wavelengths (head_dim {head_dim}, base {base:g}) and context-extension scalings")
    ax.set_xlabel("rotation pair index i")
    ax.set_ylabel("wavelength 2\u03c0 / \u03b8\u1d62 (tokens)")
    ax.legend()
    fig.tight_layout()
    return fig


def _minilm_positions() -> np.ndarray:
    from ..io.assets import minilm_tensor

    return minilm_tensor("embeddings.position_embeddings.weight")


# name -> figure builder; the report and the CLI iterate over this.
POSITIONAL_PLOTS: dict[str, Callable[[], object]] = {
    "sinusoidal_heatmap": sinusoidal_heatmap,
    "position_similarity": lambda: position_similarity(_minilm_positions()),
    "rope_spectrum": rope_spectrum,
}


def save_positional_plots(out_dir: str | os.PathLike) -> list[Path]:
    """Write every positional plot as PNG into ``out_dir``; returns the paths."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in POSITIONAL_PLOTS.items():
        fig = build()
        path = out / f"{name}.png"
        try:  # no half-written PNG if drawing fails
            with atomic_open(path) as f:
                fig.savefig(f, dpi=110, format="png")
        finally:
            plt.close(fig)
        paths.append(path)
    return paths
