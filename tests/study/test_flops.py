"""FLOPs from the model's shapes against a brute-force count of one training step of a tiny model.

The brute force writes the step's matrix products as scalar loops that count every multiply and
every add, and does the rest (GELU, LayerNorm, the softmax) with NumPy, uncounted. It must give the
model's own logits and every parameter's gradient, so what it counts is the step the model takes.
"""

import math

import numpy as np
import pytest

from tinyembed.nn import functional as F
from tinyembed.study.flops import forward_flops_per_token, train_flops_per_token
from tinyembed.train.lm import LMConfig, WindowLM

C = math.sqrt(2 / math.pi)


class Counter:
    flops = 0

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a (n, m) @ b (m, p), one multiply and one add per term."""
        n, m = a.shape
        p = b.shape[1]
        out = np.zeros((n, p))
        for i in range(n):
            for j in range(p):
                total = 0.0
                for t in range(m):
                    total += a[i, t] * b[t, j]
                    self.flops += 2
                out[i, j] = total
        return out


def brute_force_step(model: WindowLM, ids: np.ndarray, targets: np.ndarray):
    """(logits, {parameter name: gradient of the mean cross entropy}, FLOPs of the products)."""
    w = {name: p.data for name, p in model.named_parameters()}
    count = Counter()
    b, k = ids.shape
    d = model.config.dim
    table, positions = w["embed.tokens.weight"], w["embed.positions.weight"]
    x = (table[ids] + positions[None, :k]).reshape(b, -1)                    # the lookup: no products
    a1 = count.matmul(x, w["hidden.weight"].T) + w["hidden.bias"]
    inner = C * (a1 + 0.044715 * a1**3)
    h = 0.5 * a1 * (1 + np.tanh(inner))
    a2 = count.matmul(h, w["project.weight"].T) + w["project.bias"]
    mean, var = a2.mean(1, keepdims=True), a2.var(1, keepdims=True)
    xhat = (a2 - mean) / np.sqrt(var + 1e-5)
    feats = (xhat * w["norm.weight"] + w["norm.bias"]) / math.sqrt(d)
    logits = count.matmul(feats, table.T)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = (p - np.eye(table.shape[0])[targets]) / b
    grads = {"embed.tokens.weight": count.matmul(dlogits.T, feats)}          # the output product's weight gradient
    dxn = count.matmul(dlogits, table) / math.sqrt(d)                        # ... and its input gradient
    grads["norm.weight"], grads["norm.bias"] = (dxn * xhat).sum(0), dxn.sum(0)
    dxhat = dxn * w["norm.weight"]
    da2 = (dxhat - dxhat.mean(1, keepdims=True) - xhat * (dxhat * xhat).mean(1, keepdims=True)) / np.sqrt(var + 1e-5)
    grads["project.weight"], grads["project.bias"] = count.matmul(da2.T, h), da2.sum(0)
    dh = count.matmul(da2, w["project.weight"])
    t = np.tanh(inner)
    da1 = dh * (0.5 * (1 + t) + 0.5 * a1 * (1 - t * t) * C * (1 + 3 * 0.044715 * a1**2))
    grads["hidden.weight"], grads["hidden.bias"] = count.matmul(da1.T, x), da1.sum(0)
    dx = count.matmul(da1, w["hidden.weight"]).reshape(b, k, d)             # the table trains: its rows' gradient
    np.add.at(grads["embed.tokens.weight"], ids, dx)
    grads["embed.positions.weight"] = dx.sum(0)
    return logits, grads, count.flops


@pytest.mark.parametrize("vocab, dim, hidden, context", [(7, 3, 4, 2), (11, 4, 6, 3)])
def test_train_flops_per_token_equal_a_brute_force_count_of_one_step(vocab, dim, hidden, context):
    model = WindowLM(LMConfig(vocab_size=vocab, context=context, dim=dim, hidden=hidden, seed=1))
    for p in model.parameters():
        p.data = p.data.astype(np.float64)  # so the two computations agree to 1e-12
    rng = np.random.default_rng(0)
    batch = 3
    ids, targets = rng.integers(0, vocab, (batch, context)), rng.integers(0, vocab, batch)

    logits, grads, flops = brute_force_step(model, ids, targets)
    ours = model(ids)
    F.cross_entropy(ours, targets).backward()
    np.testing.assert_allclose(logits, ours.data, rtol=1e-12, atol=1e-12)
    for name, param in model.named_parameters():
        np.testing.assert_allclose(grads[name], param.grad, rtol=1e-10, atol=1e-12, err_msg=name)

    assert flops == train_flops_per_token(model) * batch
    assert train_flops_per_token(model) == 3 * forward_flops_per_token(model)
    assert forward_flops_per_token(model) == 2 * (context * dim * hidden + hidden * dim + dim * vocab)


def test_an_untied_model_does_the_same_products():
    shape = dict(vocab_size=100, context=4, dim=16, hidden=32)
    tied, untied = WindowLM(LMConfig(**shape)), WindowLM(LMConfig(**shape, tied=False))
    assert train_flops_per_token(tied) == train_flops_per_token(untied) > 0
