"""Module, Parameter and the thin layers (Linear, LayerNorm, Dropout); torch.nn is the reference."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from tinyembed.nn import functional as F
from tinyembed.nn.layers import Dropout, LayerNorm, Linear
from tinyembed.nn.module import Module, ModuleList, Parameter, Sequential
from tinyembed.tensor import Tensor

torch = pytest.importorskip("torch")


class Block(Module):
    def __init__(self, seed):
        super().__init__()
        self.fc = Linear(4, 4, seed=seed)
        self.norm = LayerNorm(4)

    def forward(self, x):
        return self.norm(self.fc(x).relu())


class Net(Module):
    """Own parameter, a ModuleList of nested blocks, a bias-free head and a parameter-free child."""

    def __init__(self, seed=0):
        super().__init__()
        self.embed = Parameter(np.random.default_rng(seed).standard_normal((10, 4)).astype(np.float32))
        self.blocks = ModuleList([Block(seed + 1), Block(seed + 2)])
        self.drop = Dropout(0.1, seed=seed)
        self.head = Linear(4, 10, bias=False, seed=seed + 3)

    def forward(self, ids):
        x = self.embed[ids]  # (B, 4)
        for block in self.blocks:
            x = block(x)
        return self.head(self.drop(x))  # (B, 10)


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Parameter(torch.zeros(10, 4))
        self.blocks = torch.nn.ModuleList([TorchBlock(), TorchBlock()])
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(4, 10, bias=False)


# == Module traversal ======================================================================
def test_named_parameters_names_and_order_match_torch():
    ours = [(n, p.shape) for n, p in Net().named_parameters()]
    theirs = [(n, tuple(p.shape)) for n, p in TorchNet().named_parameters()]
    assert ours == theirs
    assert ours[0][0] == "embed" and ours[1][0] == "blocks.0.fc.weight" and ours[-1][0] == "head.weight"


def test_named_modules_lists_every_submodule_in_order():
    names = [n for n, _ in Net().named_modules()]
    assert names == [n for n, _ in TorchNet().named_modules()]


def test_tied_parameter_is_counted_once_but_saved_under_both_names_like_torch():
    net, tnet = Net(), TorchNet()
    net.head.weight = net.embed  # (10, 4) both: tie the output projection to the embedding
    tnet.head.weight = tnet.embed
    params = list(net.parameters())
    assert sum(p is net.embed for p in params) == 1
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert net.num_parameters() == sum(p.numel() for p in tnet.parameters()) == 40 + 2 * (20 + 8)
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert net.state_dict()["head.weight"] is net.state_dict()["embed"]


def test_num_parameters_trainable_only_skips_frozen_parameters():
    net = Net()
    net.embed.requires_grad = False
    assert net.num_parameters() == 40 + 2 * (20 + 8) + 40
    assert net.num_parameters(trainable_only=True) == 2 * (20 + 8) + 40


def test_parameter_defaults_to_requires_grad_and_float32():
    p = Parameter([1.0, 2.0])
    assert p.requires_grad and p.dtype == np.float32 and p.is_leaf
    assert Parameter(np.ones(2)).dtype == np.float64
    assert not Parameter(np.ones(2), requires_grad=False).requires_grad


def test_reassigning_an_attribute_moves_it_between_registries():
    net = Net()
    net.head = Parameter(np.ones(3, dtype=np.float32))
    assert "head" not in dict(net.named_modules())
    assert "head" in dict(net.named_parameters())
    del net.head
    assert "head" not in dict(net.named_parameters())


def test_zero_grad_clears_gradients_of_every_parameter():
    net = Net()
    net(np.array([1, 2, 3])).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(isinstance(p.grad, np.ndarray) and not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_propagate_to_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.blocks.train(False)
    assert net.training and not net.blocks[1].fc.training


def test_eval_makes_the_network_deterministic_through_nested_dropout():
    net = Net()
    net.drop.p = 0.9
    ids = np.arange(10)
    net.eval()
    np.testing.assert_array_equal(net(ids).data, net(ids).data)
    net.train()
    assert not np.array_equal(net(ids).data, net(ids).data)


def test_assigning_attributes_before_module_init_raises():
    class Forgetful(Module):
        def __init__(self):
            self.fc = Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match="__init__"):
        Forgetful()


def test_forward_not_defined_raises():
    with pytest.raises(NotImplementedError, match="Module"):
        Module()(1)


def test_repr_shows_nested_configuration():
    seq = Sequential([Linear(4, 3), Dropout(0.2), LayerNorm(3, elementwise_affine=False)])
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): Dropout(p=0.2)\n"
        "  (2): LayerNorm((3,), eps=1e-05, elementwise_affine=False)\n"
        ")"
    )
    text = repr(Net())
    assert ("  (blocks): ModuleList(\n    (0): Block(\n"
            "      (fc): Linear(in_features=4, out_features=4, bias=True)") in text
    assert "(head): Linear(in_features=4, out_features=10, bias=False)" in text


# == state_dict =============================================================================
class WithBuffer(Module):
    def __init__(self):
        super().__init__()
        self.fc = Linear(2, 3, seed=0)
        self.register_buffer("counts", np.zeros(3, dtype=np.int64))
        self.register_buffer("unused", None)


def test_state_dict_has_parameters_and_buffers_in_torch_order():
    assert list(Net().state_dict()) == list(TorchNet().state_dict())
    # torch saves a module's own parameters and buffers before its children's; None buffers are skipped.
    assert list(WithBuffer().state_dict()) == ["counts", "fc.weight", "fc.bias"]


def test_state_dict_round_trip_reproduces_outputs():
    src, dst = Net(seed=0), Net(seed=10)
    src.eval(), dst.eval()
    ids = np.array([0, 5, 9])
    assert not np.allclose(src(ids).data, dst(ids).data)
    weight_before = dst.blocks[0].fc.weight
    assert dst.load_state_dict(src.state_dict()) == ([], [])
    np.testing.assert_array_equal(src(ids).data, dst(ids).data)
    assert dst.blocks[0].fc.weight is weight_before  # loaded in place: optimizers keep their references


def test_load_state_dict_copies_values_instead_of_aliasing():
    src, dst = Net(seed=0), Net(seed=1)
    state = src.state_dict()
    dst.load_state_dict(state)
    state["embed"][...] = 123.0
    assert not np.any(dst.embed.data == 123.0)


def test_load_state_dict_round_trips_buffers_and_accepts_tensors():
    src, dst = WithBuffer(), WithBuffer()
    src.counts[...] = [1, 2, 3]
    state = OrderedDict((k, Tensor(v)) for k, v in src.state_dict().items())
    dst.load_state_dict(state)
    np.testing.assert_array_equal(dst.counts, [1, 2, 3])


def test_strict_load_raises_on_missing_key_and_changes_nothing():
    net = Net(seed=1)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    state = Net(seed=2).state_dict()
    del state["blocks.1.norm.bias"]
    with pytest.raises(KeyError, match="blocks.1.norm.bias"):
        net.load_state_dict(state)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_strict_load_raises_on_unexpected_key():
    state = Net().state_dict()
    state["blocks.2.fc.weight"] = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(KeyError, match="blocks.2.fc.weight"):
        Net().load_state_dict(state)


def test_non_strict_load_reports_keys_and_loads_the_rest():
    src, dst = Net(seed=0), Net(seed=5)
    state = src.state_dict()
    del state["head.weight"]
    state["extra"] = np.zeros(1)
    missing, unexpected = dst.load_state_dict(state, strict=False)
    assert missing == ["head.weight"] and unexpected == ["extra"]
    np.testing.assert_array_equal(dst.embed.data, src.embed.data)
    assert not np.array_equal(dst.head.weight.data, src.head.weight.data)


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("bad_value, message", [
    (np.zeros((10, 5), dtype=np.float32), r"head.weight has shape \(10, 5\), expected \(10, 4\)"),
    (np.zeros((10, 4), dtype=np.float64), "head.weight has dtype float64, expected float32"),
])
def test_failed_load_changes_nothing_even_after_a_good_entry(strict, bad_value, message):
    net = Net(seed=1)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    good = Net(seed=2).state_dict()
    state = OrderedDict((k, v) for k, v in good.items() if k != "head.weight")
    state["head.weight"] = bad_value  # after every good entry
    assert list(state)[-1] == "head.weight" and not np.array_equal(good["embed"], before["embed"])
    with pytest.raises(ValueError, match=message):
        net.load_state_dict(state, strict=strict)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


# == Linear =================================================================================
def test_linear_initialization_is_uniform_within_torch_bound():
    layer = Linear(100, 300, seed=0)
    bound = 1 / np.sqrt(100)
    w, b = layer.weight.data, layer.bias.data
    assert w.shape == (300, 100) and b.shape == (300,)
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.03)  # variance of U(-a, a) is a^2 / 3
    assert abs(w.mean()) < 0.05 * bound


def test_linear_same_seed_same_weights_different_seed_different_weights():
    a, b, c = Linear(5, 3, seed=7), Linear(5, 3, seed=7), Linear(5, 3, seed=8)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_linear_float64_and_bias_free_options():
    layer = Linear(3, 2, bias=False, dtype=np.float64, seed=0)
    assert layer.weight.dtype == np.float64 and layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert layer.num_parameters() == 6
    assert Linear(4, 3).num_parameters() == torch.nn.Linear(4, 3).weight.numel() + 3


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_linear_forward_and_gradients_match_torch(dtype, tol):
    layer = Linear(4, 3, dtype=dtype, seed=0)
    ref = torch.nn.Linear(4, 3, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.data))
        ref.bias.copy_(torch.tensor(layer.bias.data))
    x = np.random.default_rng(1).standard_normal((2, 5, 4)).astype(dtype)
    out, tout = layer(Tensor(x)), ref(torch.tensor(x))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=tol)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(layer.weight.grad, ref.weight.grad.numpy(), atol=tol * 10)
    np.testing.assert_allclose(layer.bias.grad, ref.bias.grad.numpy(), atol=tol * 10)


def test_linear_repr_matches_torch():
    assert repr(Linear(4, 3)) == repr(torch.nn.Linear(4, 3)) == "Linear(in_features=4, out_features=3, bias=True)"
    assert repr(Linear(4, 3, bias=False)) == repr(torch.nn.Linear(4, 3, bias=False))


@pytest.mark.parametrize("kwargs, error, bad", [
    (dict(in_features=0, out_features=3), ValueError, "in_features must be a positive integer, got 0"),
    (dict(in_features=4, out_features=-2), ValueError, "out_features must be a positive integer, got -2"),
    (dict(in_features=2.5, out_features=3), ValueError, "got 2.5"),
    (dict(in_features=True, out_features=3), ValueError, "got True"),
    (dict(in_features=4, out_features=3, dtype=np.int64), TypeError, "dtype must be float32 or float64, got int64"),
])
def test_linear_rejects_bad_configuration_naming_the_value(kwargs, error, bad):
    with pytest.raises(error, match=bad):
        Linear(**kwargs)


# == LayerNorm ==============================================================================
def test_layer_norm_starts_as_plain_normalization_and_matches_torch():
    norm = LayerNorm((2, 3), dtype=np.float64)
    ref = torch.nn.LayerNorm((2, 3), dtype=torch.float64)
    np.testing.assert_array_equal(norm.weight.data, np.ones((2, 3)))
    np.testing.assert_array_equal(norm.bias.data, np.zeros((2, 3)))
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    out, tout = norm(Tensor(x)), ref(torch.tensor(x))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(out.data, F.layer_norm(Tensor(x), (2, 3)).data, atol=0)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(norm.bias.grad, ref.bias.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(norm.weight.grad, ref.weight.grad.numpy(), atol=1e-12)


def test_layer_norm_without_affine_has_no_parameters():
    norm = LayerNorm(5, elementwise_affine=False)
    assert norm.weight is None and norm.bias is None and norm.num_parameters() == 0
    assert list(norm.state_dict()) == []


def test_layer_norm_repr_shows_shape_eps_and_affine():
    assert repr(LayerNorm(8, eps=1e-6)) == "LayerNorm((8,), eps=1e-06, elementwise_affine=True)"


@pytest.mark.parametrize("args, bad", [
    ((0,), "got 0"),
    (((3, -1),), "got -1"),
    (((),), r"got \(\)"),
    ((4, -1e-5), "eps must be >= 0, got -1e-05"),
])
def test_layer_norm_rejects_bad_configuration_naming_the_value(args, bad):
    with pytest.raises(ValueError, match=bad):
        LayerNorm(*args)


# == Dropout ================================================================================
def test_dropout_module_follows_training_mode():
    drop = Dropout(0.5, seed=0)
    x = Tensor(np.ones((10, 10), dtype=np.float32))
    out = drop(x)
    assert (out.data == 0).any() and set(np.unique(out.data)) <= {0.0, 2.0}
    drop.eval()
    assert drop(x) is x


def test_dropout_module_seed_reproduces_the_sequence_of_masks():
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    x = Tensor(np.ones(64))
    first, second = a(x).data, a(x).data
    assert not np.array_equal(first, second)  # a fresh mask per call
    np.testing.assert_array_equal(first, b(x).data)
    np.testing.assert_array_equal(second, b(x).data)


def test_dropout_module_repr_and_validation():
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
    assert Dropout().num_parameters() == 0
    for bad in (-0.5, 1.5, "0.5"):
        with pytest.raises(ValueError, match=repr(bad).replace(".", r"\.")):
            Dropout(bad)


def test_reassigning_a_buffer_keeps_it_in_state_dict():
    from tinyembed.nn.module import Module

    class Counter(Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("counts", np.zeros(4))

    m = Counter()
    m.counts = np.ones(4)
    np.testing.assert_array_equal(m.state_dict()["counts"], np.ones(4))
