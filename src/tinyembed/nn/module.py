"""Module and Parameter: containers that own weights and configuration.

Modules are thin, as in PyTorch: they hold Parameters (and buffers that are
saved but not trained), find their children by attribute, and call functional
code to do the work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from ..checks import check_finite
from ..sparse import zeros_like_grad
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "ModuleList", "Sequential"]


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a Module (requires_grad by default)."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer. Subclasses set attributes in ``__init__`` and define ``forward``."""

    # Set in __init__ through object.__setattr__ (bypassing the registries), so declared here for the type checker.
    training: bool
    _parameters: OrderedDict[str, Parameter]
    _buffers: OrderedDict[str, np.ndarray | None]
    _modules: OrderedDict[str, Module]

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("call Module.__init__() before assigning attributes")
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            self._buffers[name] = value  # reassigning a buffer keeps it in state_dict
            object.__setattr__(self, name, value)
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """State saved in ``state_dict`` but not trained (for example a frozen table)."""
        object.__setattr__(self, name, array)
        self._buffers[name] = array

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # -- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter once, even if shared (tied) between modules."""
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Start (or stop) training every parameter, as PyTorch's ``Module.requires_grad_``; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameter count; a tied weight counts once."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            p.grad = None if set_to_none or p.grad is None else zeros_like_grad(p.grad)

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Name -> array for every parameter and buffer. The arrays are the live data, not copies.

        Tied parameters appear under every name that holds them, as in PyTorch.
        """
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for mod_name, module in self.named_modules():
            for name, p in module._parameters.items():
                state[f"{mod_name}.{name}" if mod_name else name] = p.data
            for name, b in module._buffers.items():
                if b is not None:
                    state[f"{mod_name}.{name}" if mod_name else name] = b
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy arrays into this module's parameters and buffers.

        Every entry is checked (names, shapes, dtypes) before anything is copied, so
        a failed call changes nothing.

        Returns:
            (missing_keys, unexpected_keys), both empty under ``strict=True``.

        Raises:
            KeyError: strict and names are missing or unexpected.
            ValueError: an entry's shape or dtype differs from the module's, or it holds
                NaN or infinity (named, as :meth:`Embedding.from_pretrained` names them).
        """
        targets: dict[str, np.ndarray] = {}  # name -> the live array a loaded value is copied into
        params: dict[str, Parameter] = {}    # name -> the parameter, whose version a load bumps
        for mod_name, module in self.named_modules():
            for name, p in module._parameters.items():
                key = f"{mod_name}.{name}" if mod_name else name
                targets[key], params[key] = p.data, p
            for name, b in module._buffers.items():
                if b is not None:
                    targets[f"{mod_name}.{name}" if mod_name else name] = b
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        updates = []
        for key, value in state_dict.items():
            if key not in targets:
                continue
            current = targets[key]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: {key} has shape {value.shape}, expected {current.shape}")
            if value.dtype != current.dtype:
                raise ValueError(f"load_state_dict: {key} has dtype {value.dtype}, expected {current.dtype}")
            check_finite(value, f"load_state_dict: {key}")  # the rule from_pretrained applies too
            updates.append((key, current, value))
        for key, current, value in updates:
            current[...] = value  # in place: optimizers and tied modules keep their references
            if key in params:
                params[key].increment_version("load_state_dict")
        return missing, unexpected

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if not self._modules:
            return lines[0] + ")"
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters the parent finds."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another."""

    def forward(self, x):
        for m in self:
            x = m(x)
        return x
