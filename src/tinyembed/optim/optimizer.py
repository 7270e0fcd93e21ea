"""Optimizer: the shared machinery of every update rule in :mod:`tinyembed.optim`.

An optimizer holds *param groups* (a list of parameters with their own
hyper-parameters, as in PyTorch) and *state* (one dict of NumPy arrays and
numbers per parameter, created on the parameter's first step). Subclasses add
three things: the hyper-parameters they take and how to check them, which
gradient layouts they accept, and the update of one parameter, which calls a
pure array function next to it (the functional layer, as ``torch.optim._functional``).

Every update writes into ``param.data`` in place: modules, tied weights and the
optimizer's own state keep references to those arrays.

``state_dict()`` gives plain dicts of NumPy arrays and Python numbers (no
pickling needed: it maps onto JSON or safetensors), and ``load_state_dict()``
checks everything before it changes anything.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..checks import FLOAT_DTYPES
from ..sparse import RowSparseGrad, zeros_like_grad
from ..tensor import Tensor, enable_grad

__all__ = ["Optimizer"]


def _normalize(owner: str, name: str, kind: str, value):
    """One hyper-parameter as a plain Python value (JSON-friendly), or a TypeError naming it."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # a number that went through safetensors comes back 0-d
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{owner}: {name} must be a bool, got {value!r}")
        return bool(value)
    if kind == "betas":
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise TypeError(f"{owner}: betas must be a pair of numbers, got {value!r}")
        pair = tuple(value)
        if len(pair) != 2:
            raise TypeError(f"{owner}: betas must be a pair of numbers, got {value!r}")
        return tuple(_normalize(owner, f"betas[{i}]", "float", b) for i, b in enumerate(pair))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    return float(value)


def _param_where(group_index: int, param_index: int) -> str:
    return f"param_groups[{group_index}]['params'][{param_index}]"


class Optimizer:
    """Base class: param groups, per-parameter state, ``step``, ``zero_grad`` and state dicts.

    Args:
        params: an iterable of Parameters, or of dicts (param groups) each with a
            ``"params"`` entry and any hyper-parameters that override ``defaults``.
        defaults: every hyper-parameter of the optimizer with its default value.

    Subclasses define:
        ``_OPTION_KINDS``: hyper-parameter name -> "float" | "bool" | "betas".
        ``_check_options(group)``: range checks, raising ValueError naming the bad value.
        ``_check_grad(param, grad, group, where)``: refuse gradient layouts they cannot use.
        ``_state_spec(param, group)``: the state one parameter has once stepped
            (name -> ``int`` for a counter, or ``(shape, dtype)`` for an array).
        ``_update(param, grad, state, group)``: one parameter's step, in place.
    """

    _OPTION_KINDS: dict[str, str] = {}

    def __init__(self, params, defaults: dict[str, Any]):
        self.defaults = self._normalize_options(dict(defaults))
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params must be an iterable of Parameters or of dicts, got a single "
                f"{type(params).__name__}; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    # -- param groups ----------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (missing ones take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a param group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a param group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                f"{self._name}: params must be an ordered iterable, not a set (the order fixes state_dict ids)"
            )
        else:
            params = list(params)
        unknown = sorted(set(param_group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(f"{self._name}: unknown hyper-parameters {unknown}; known: {sorted(self.defaults)}")

        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{self._name} can only optimize Parameters (Tensors), got {type(p).__name__} at index {i}"
                )
            if p.dtype not in FLOAT_DTYPES:
                raise TypeError(
                    f"{self._name} can only optimize float32/float64 parameters, got {p.dtype} at index {i}"
                )
            if not p.is_leaf:
                raise ValueError(f"{self._name} can't optimize a non-leaf Tensor (index {i})")
            if id(p) in seen:
                raise ValueError(
                    f"{self._name}: parameter at index {i} appears more than once (in this group or an "
                    "earlier one); each parameter must be in exactly one group"
                )
            seen.add(id(p))
            self._check_param(p, i)

        options = {k: v for k, v in param_group.items() if k != "params"}
        group = self._normalize_options({**self.defaults, **options})
        group["params"] = params
        self.param_groups.append(group)

    def _normalize_options(self, options: dict) -> dict:
        out = {name: _normalize(self._name, name, self._OPTION_KINDS[name], options[name])
               for name in self._OPTION_KINDS}
        self._check_options(out)
        return out

    # -- hooks for subclasses --------------------------------------------------------------
    def _check_options(self, group: dict) -> None:
        pass

    def _check_param(self, param: Tensor, index: int) -> None:
        pass

    def _check_grad(self, param: Tensor, grad, group: dict, where: str) -> None:
        pass

    def _state_spec(self, param: Tensor, group: dict) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, param: Tensor, grad, state: dict, group: dict) -> None:
        raise NotImplementedError

    def refuse_row_sparse(self, grad, where: str, why: str = "") -> None:
        """The error of a dense-only rule given a RowSparseGrad: name the optimizer and the fix."""
        if isinstance(grad, RowSparseGrad):
            why = f" {why}" if why else ""
            raise RuntimeError(
                f"{self._name}{why} does not support row-sparse gradients, but {where} has a "
                f"RowSparseGrad of shape {grad.shape}. Use SparseAdam or RowWiseAdagrad for sparse "
                "embedding tables, or build the embedding with sparse=False to get a dense gradient."
            )

    # -- the step --------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set them to None, or to zeros of the same layout.

        A row-sparse gradient becomes an empty RowSparseGrad (no rows), as a sparse
        ``.grad.zero_()`` does in PyTorch, so a sparse-only optimizer still accepts it.
        """
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None if set_to_none or p.grad is None else zeros_like_grad(p.grad)

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; parameters whose ``.grad`` is None are skipped.

        Every gradient is checked before any parameter moves, so a refused
        gradient leaves all parameters and state as they were.

        Args:
            closure: optional callable that recomputes the loss (and the gradients); its
                result is returned.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                where = _param_where(gi, pi)
                self._check_grad_layout(p, grad, where)
                self._check_grad(p, grad, group, where)
                work.append((p, grad, group))
        for p, grad, group in work:
            state = self.state.get(p, {})
            self._update(p, grad, state, group)
            p.increment_version(f"{self._name}.step()")
            if state:
                self.state[p] = state
        return loss

    def _check_grad_layout(self, param: Tensor, grad, where: str) -> None:
        if isinstance(grad, RowSparseGrad):
            shape, dtype = grad.shape, grad.dtype
        elif isinstance(grad, np.ndarray):
            shape, dtype = grad.shape, grad.dtype
        else:
            raise TypeError(
                f"{self._name}: {where}.grad must be an ndarray or RowSparseGrad, got {type(grad).__name__}"
            )
        if tuple(shape) != param.shape:
            raise ValueError(f"{self._name}: {where}.grad has shape {tuple(shape)}, the parameter has {param.shape}")
        if dtype != param.dtype:
            raise TypeError(f"{self._name}: {where}.grad has dtype {dtype}, the parameter has {param.dtype}")

    # -- state dicts -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data, laid out as PyTorch's.

        Returns:
            ``{"state": {param_id: {name: ndarray | int}}, "param_groups": [{option: value,
            "params": [param_id, ...]}]}``, where param ids number the parameters
            0, 1, ... across groups in order. Arrays are copies: stepping again does
            not change a saved state dict.
        """
        ids: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                ids[id(p)] = len(ids)
                packed["params"].append(ids[id(p)])
            groups.append(packed)
        state = {
            ids[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items()
        }
        state = dict(sorted(state.items()))
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict from :meth:`state_dict` (or its JSON / safetensors round trip).

        Param ids may be ints or their decimal strings (JSON keys); arrays may be
        any array-like and are copied, cast to the parameter's dtype. The saved
        hyper-parameters replace the current ones, as in PyTorch.

        Raises:
            ValueError / TypeError: the dict does not fit this optimizer (group count or
                sizes, hyper-parameters, state names, shapes). Nothing is changed then.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{self._name}.load_state_dict: expected keys ['param_groups', 'state'], got {keys}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, dict) for g in saved_groups):
            raise TypeError(f"{self._name}.load_state_dict: param_groups must be a list of dicts")
        if not isinstance(saved_state, dict):
            raise TypeError(f"{self._name}.load_state_dict: state must be a dict, got {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{self._name}.load_state_dict: loaded state dict has {len(saved_groups)} parameter "
                f"groups, the optimizer has {len(self.param_groups)}"
            )

        new_options: list[dict] = []
        id_to_param: dict[int, tuple[Tensor, dict]] = {}
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            saved_ids = [_as_param_id(self._name, i) for i in saved.get("params", ())]
            if len(saved_ids) != len(group["params"]):
                raise ValueError(
                    f"{self._name}.load_state_dict: param group {gi} has {len(saved_ids)} parameters "
                    f"in the state dict, {len(group['params'])} in the optimizer"
                )
            names = set(saved) - {"params"}
            if names != set(self._OPTION_KINDS):
                raise ValueError(
                    f"{self._name}.load_state_dict: param group {gi} has hyper-parameters {sorted(names)}, "
                    f"expected {sorted(self._OPTION_KINDS)}"
                )
            options = self._normalize_options({k: saved[k] for k in names})
            new_options.append(options)
            for saved_id, p in zip(saved_ids, group["params"], strict=True):
                if saved_id in id_to_param:
                    raise ValueError(f"{self._name}.load_state_dict: param id {saved_id} appears twice")
                id_to_param[saved_id] = (p, options)

        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, entry in saved_state.items():
            saved_id = _as_param_id(self._name, key)
            if saved_id not in id_to_param:
                raise ValueError(f"{self._name}.load_state_dict: state for unknown param id {key!r}")
            p, options = id_to_param[saved_id]
            new_state[p] = self._load_param_state(p, options, entry, saved_id)

        # Everything checked: now change the optimizer.
        for group, options in zip(self.param_groups, new_options, strict=True):
            group.update(options)
        self.state = new_state

    def _load_param_state(self, param: Tensor, group: dict, entry, saved_id: int) -> dict[str, Any]:
        where = f"{self._name}.load_state_dict: state of param {saved_id}"
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
        spec = self._state_spec(param, group)
        if set(entry) != set(spec):
            raise ValueError(f"{where} has entries {sorted(entry)}, expected {sorted(spec)}")
        out: dict[str, Any] = {}
        for name, want in spec.items():
            value = entry[name]
            if want is int:
                if isinstance(value, np.ndarray) and value.ndim == 0:
                    value = value.item()
                bad = f"{where}: {name} must be a non-negative integer, got {value!r}"
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                    raise ValueError(bad)
                # typeshed's numbers.Real declares no __int__; the Reals a state holds (int, float, NumPy's) have one.
                whole = int(value)  # type: ignore[call-overload]
                if value != whole or value < 0:
                    raise ValueError(bad)
                out[name] = whole
                continue
            shape, dtype = want
            array = np.asarray(value)
            if array.dtype.kind not in "fiu":
                raise TypeError(f"{where}: {name} must be a real numeric array, got dtype {array.dtype}")
            if array.shape != tuple(shape):
                raise ValueError(f"{where}: {name} has shape {array.shape}, expected {tuple(shape)}")
            out[name] = np.array(array, dtype=dtype, copy=True)
        return out

    # -- printing --------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


def _as_param_id(owner: str, key) -> int:
    """A param id from a state dict: an int, or its decimal string after a JSON round trip."""
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"{owner}.load_state_dict: param ids must be integers, got {key!r}")
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    raise TypeError(f"{owner}.load_state_dict: param ids must be integers, got {key!r}")
