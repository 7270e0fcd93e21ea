"""Shared test helpers: run our optimizer and torch's on the same gradients, step by step."""

from __future__ import annotations

import numpy as np
import torch

from tinyembed.nn.module import Parameter

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


def max_abs_diff(ours: np.ndarray, theirs: torch.Tensor) -> float:
    if ours.size == 0:
        return 0.0
    return float(np.max(np.abs(ours.astype(np.float64) - theirs.detach().numpy().astype(np.float64))))


def dense_trajectories(make_ours, make_torch, shapes, dtype, steps: int, seed: int,
                       param_groups=None) -> float:
    """Step both optimizers ``steps`` times on the same random gradients; return the worst difference.

    Every step's parameters are compared, not just the last ones. ``param_groups``,
    if given, is a list of (start, stop, options) slicing the parameter list into groups.
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    inits = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [Parameter(x.copy()) for x in inits]
    theirs = [torch.tensor(x.copy(), requires_grad=True) for x in inits]
    if param_groups is None:
        opt, topt = make_ours(ours), make_torch(theirs)
    else:
        opt = make_ours([{"params": ours[a:b], **o} for a, b, o in param_groups])
        topt = make_torch([{"params": theirs[a:b], **o} for a, b, o in param_groups])
    worst = 0.0
    for _ in range(steps):
        for p, t in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = g.copy()
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for p, t in zip(ours, theirs, strict=True):
            worst = max(worst, max_abs_diff(p.data, t))
    return worst
