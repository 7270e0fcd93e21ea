"""What every optimizer shares: validation, skipping, in-place updates, zero_grad and state dicts."""

import json

import numpy as np
import pytest

from tinyembed.nn.module import Parameter
from tinyembed.optim import SGD, Adam, AdamW, Optimizer, RowWiseAdagrad, SparseAdam
from tinyembed.sparse import RowSparseGrad

torch = pytest.importorskip("torch")

# (optimizer, bad keyword arguments, text the message must contain)
BAD_HYPERPARAMETERS = [
    (SGD, dict(lr=-0.1), "lr=-0.1"),
    (SGD, dict(lr=float("nan")), "lr=nan"),
    (SGD, dict(momentum=-0.5), "momentum=-0.5"),
    (SGD, dict(weight_decay=-1e-3), "weight_decay=-0.001"),
    (SGD, dict(nesterov=True), "momentum=0.0"),
    (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "dampening=0.1"),
    (Adam, dict(lr=-1.0), "lr=-1.0"),
    (Adam, dict(eps=-1e-8), "eps=-1e-08"),
    (Adam, dict(betas=(1.0, 0.999)), "betas[0]=1.0"),
    (Adam, dict(betas=(-0.1, 0.999)), "betas[0]=-0.1"),
    (Adam, dict(betas=(0.9, 1.5)), "betas[1]=1.5"),
    (Adam, dict(weight_decay=-0.1), "weight_decay=-0.1"),
    (AdamW, dict(lr=-1e-3), "lr=-0.001"),
    (AdamW, dict(betas=(0.9, 1.0)), "betas[1]=1.0"),
    (AdamW, dict(eps=-1.0), "eps=-1.0"),
    (AdamW, dict(weight_decay=-0.01), "weight_decay=-0.01"),
    (SparseAdam, dict(lr=-0.1), "lr=-0.1"),
    (SparseAdam, dict(lr=0.0), "lr=0.0"),  # PyTorch's SparseAdam wants lr > 0 and eps > 0
    (SparseAdam, dict(eps=0.0), "eps=0.0"),
    (SparseAdam, dict(betas=(0.9, 1.0)), "betas[1]=1.0"),
    (RowWiseAdagrad, dict(lr=-0.01), "lr=-0.01"),
    (RowWiseAdagrad, dict(eps=-1e-10), "eps=-1e-10"),
    (RowWiseAdagrad, dict(weight_decay=-2.0), "weight_decay=-2.0"),
    (RowWiseAdagrad, dict(initial_accumulator_value=-0.1), "initial_accumulator_value=-0.1"),
]

ALL = [SGD, Adam, AdamW, SparseAdam, RowWiseAdagrad]


def table(value=1.0, shape=(4, 3), dtype=np.float64):
    return Parameter(np.full(shape, value, dtype=dtype))


def sparse_grad(rows, shape=(4, 3), dtype=np.float64, seed=0):
    rows = np.asarray(rows)
    values = np.random.default_rng(seed).standard_normal((len(rows), shape[1])).astype(dtype)
    return RowSparseGrad.from_rows(rows, values, shape)


def grad_for(cls, seed=0, shape=(4, 3)):
    """A gradient the optimizer accepts: row-sparse for SparseAdam, dense otherwise."""
    if cls is SparseAdam:
        return sparse_grad([0, 2, 2], shape, seed=seed)
    return np.random.default_rng(seed).standard_normal(shape)


def make(cls, params, **kw):
    return cls(params, **({"lr": 0.1, "momentum": 0.9} if cls is SGD else {}), **kw)


@pytest.mark.parametrize("cls, kw, text", BAD_HYPERPARAMETERS,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_are_refused_naming_the_value(cls, kw, text):
    with pytest.raises(ValueError) as info:
        cls([table()], **kw)
    assert text in str(info.value) and cls.__name__ in str(info.value)


@pytest.mark.parametrize("cls, kw, text", BAD_HYPERPARAMETERS,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters_in_a_param_group_are_refused_too(cls, kw, text):
    with pytest.raises(ValueError, match=text.replace("[", r"\[").replace("]", r"\]")):
        cls([{"params": [table()]}, {"params": [table()], **kw}])


@pytest.mark.parametrize("kw", [dict(lr="0.1"), dict(betas=(0.9,)), dict(betas=0.9), dict(amsgrad="yes")])
def test_hyperparameters_of_the_wrong_type_are_refused(kw):
    with pytest.raises(TypeError):
        Adam([table()], **kw)


def test_unknown_param_group_options_are_refused():
    with pytest.raises(ValueError, match="momentun"):
        SGD([{"params": [table()], "momentun": 0.9}])


@pytest.mark.parametrize("params, error", [
    ([], ValueError), (Parameter(np.zeros(3)), TypeError), ([np.zeros(3)], TypeError),
    ({Parameter(np.zeros(3))}, TypeError),
])
def test_bad_params_are_refused(params, error):
    with pytest.raises(error):
        SGD(params if not isinstance(params, set) else [{"params": params}])


def test_a_parameter_in_two_groups_is_refused():
    p = table()
    with pytest.raises(ValueError, match="more than once"):
        Adam([{"params": [p]}, {"params": [p]}])


def test_grad_of_the_wrong_shape_is_refused():
    p = table()
    p.grad = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        Adam([p]).step()


@pytest.mark.parametrize("cls", ALL)
def test_parameters_whose_grad_is_none_are_skipped(cls):
    a, b = table(), table()
    a.grad = grad_for(cls)
    opt = make(cls, [a, b])
    opt.step()
    assert not np.array_equal(a.data, 1.0)
    np.testing.assert_array_equal(b.data, 1.0)
    assert b not in opt.state and a in opt.state


@pytest.mark.parametrize("cls", ALL)
def test_updates_are_in_place_so_views_and_references_follow(cls):
    p = table()
    data, view = p.data, p.data[0]
    opt = make(cls, [p])
    for seed in range(3):
        p.grad = grad_for(cls, seed)
        opt.step()
    assert p.data is data
    assert not np.array_equal(view, 1.0)


def test_step_returns_the_closures_loss():
    p = table()
    opt = SGD([p], lr=0.1)

    def closure():
        p.grad = np.ones(p.shape)
        return 3.5

    assert opt.step(closure) == 3.5
    np.testing.assert_allclose(p.data, 0.9)


def test_zero_grad_sets_to_none_or_zeros_of_the_same_layout():
    dense, sparse, none = table(), table(), table()
    dense.grad, sparse.grad = np.ones((4, 3)), sparse_grad([1, 3])
    opt = SGD([dense, sparse, none], lr=0.1)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(dense.grad, 0)
    assert isinstance(sparse.grad, RowSparseGrad) and sparse.grad.nnz_rows == 0 and sparse.grad.shape == (4, 3)
    assert none.grad is None
    opt.zero_grad()
    assert dense.grad is None and sparse.grad is None


# -- state dicts -------------------------------------------------------------------------------
TORCH = {SGD: torch.optim.SGD, Adam: torch.optim.Adam, AdamW: torch.optim.AdamW,
         SparseAdam: torch.optim.SparseAdam}


@pytest.mark.parametrize("cls, kw", [(SGD, {}), (Adam, {}), (Adam, dict(amsgrad=True)), (AdamW, {}),
                                     (AdamW, dict(amsgrad=True)), (SparseAdam, {})])
def test_state_dict_uses_torchs_layout_names_and_defaults(cls, kw):
    p = table()
    t = torch.ones(4, 3, dtype=torch.float64, requires_grad=True)
    opt, topt = make(cls, [p], **kw), TORCH[cls]([t], **({"lr": 0.1, "momentum": 0.9} if cls is SGD else {}), **kw)
    p.grad = grad_for(cls)
    g = p.grad
    t.grad = torch.from_numpy(g.to_dense() if isinstance(g, RowSparseGrad) else g).to_sparse() \
        if cls is SparseAdam else torch.from_numpy(g)
    opt.step()
    topt.step()
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert list(ours["state"]) == list(theirs["state"]) == [0]
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert set(ours["param_groups"][0]) <= set(theirs["param_groups"][0])
    for name in ours["param_groups"][0]:
        assert ours["param_groups"][0][name] == theirs["param_groups"][0][name], name
    assert cls.__init__.__defaults__ == TORCH[cls].__init__.__defaults__
    ours_kw, theirs_kw = cls.__init__.__kwdefaults__ or {}, TORCH[cls].__init__.__kwdefaults__ or {}
    assert all(theirs_kw[k] == v for k, v in ours_kw.items())


def _to_json_and_back(state_dict):
    def plain(x):
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x
    return json.loads(json.dumps(plain(state_dict)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", ALL)
def test_state_dict_through_json_resumes_exactly_where_it_left_off(cls, dtype):
    def fresh():
        return [Parameter(np.linspace(-1, 1, 12).reshape(4, 3).astype(dtype)),
                Parameter(np.linspace(0, 2, 12).reshape(4, 3).astype(dtype))]

    def run(params, opt, seeds):
        for s in seeds:
            for i, p in enumerate(params):
                g = grad_for(cls, 10 * s + i)
                p.grad = g.astype(dtype) if isinstance(g, np.ndarray) else \
                    RowSparseGrad(g.indices, g.values.astype(dtype), g.shape)
            opt.step()

    kw = dict(amsgrad=True) if cls in (Adam, AdamW) else {}
    straight = fresh()
    opt = make(cls, [{"params": straight[:1]}, {"params": straight[1:], "lr": 0.05}], **kw)
    run(straight, opt, range(6))

    first = fresh()
    opt1 = make(cls, [{"params": first[:1]}, {"params": first[1:], "lr": 0.05}], **kw)
    run(first, opt1, range(3))
    saved = _to_json_and_back(opt1.state_dict())
    resumed = [Parameter(p.data.copy()) for p in first]
    opt2 = make(cls, [{"params": resumed[:1]}, {"params": resumed[1:], "lr": 0.05}], **kw)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == 0.05
    run(resumed, opt2, range(3, 6))
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_a_snapshot_not_the_live_state():
    p = table()
    opt = Adam([p])
    p.grad = np.ones((4, 3))
    opt.step()
    saved = opt.state_dict()
    before = saved["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)


def _stepped_adam():
    a, b = table(), table(shape=(2,))
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], amsgrad=True)
    a.grad, b.grad = np.ones((4, 3)), np.ones(2)
    opt.step()
    return opt


def _corrupt(kind, sd):
    if kind == "wrong_shape":
        sd["state"][1]["exp_avg_sq"] = np.zeros((3,))  # the first entry is fine, the second is not
    elif kind == "missing_entry":
        del sd["state"][1]["max_exp_avg_sq"]
    elif kind == "extra_entry":
        sd["state"][0]["momentum_buffer"] = np.zeros((4, 3))
    elif kind == "negative_step":
        sd["state"][1]["step"] = -1
    elif kind == "unknown_param_id":
        sd["state"][7] = sd["state"].pop(1)
    elif kind == "group_count":
        sd["param_groups"].pop()
    elif kind == "group_size":
        sd["param_groups"][1]["params"].append(5)
    elif kind == "bad_hyperparameter":
        sd["param_groups"][1]["lr"] = -1.0
    elif kind == "missing_hyperparameter":
        del sd["param_groups"][1]["eps"]
    elif kind == "string_array":
        sd["state"][1]["exp_avg"] = np.array(["a", "b"])
    return sd


@pytest.mark.parametrize("kind", ["wrong_shape", "missing_entry", "extra_entry", "negative_step",
                                  "unknown_param_id", "group_count", "group_size", "bad_hyperparameter",
                                  "missing_hyperparameter", "string_array"])
def test_load_state_dict_refuses_a_mismatch_and_leaves_the_optimizer_unchanged(kind):
    opt = _stepped_adam()
    target = _stepped_adam()
    for p in (q for g in target.param_groups for q in g["params"]):
        target.state[p]["exp_avg"] += 7.0  # so a partial load would show
    before = target.state_dict()
    state_objects = {id(s) for s in target.state.values()}
    with pytest.raises((ValueError, TypeError)):
        target.load_state_dict(_corrupt(kind, opt.state_dict()))
    after = target.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i in before["state"]:
        for name, value in before["state"][i].items():
            np.testing.assert_array_equal(after["state"][i][name], value)
    assert {id(s) for s in target.state.values()} == state_objects


def test_load_state_dict_accepts_string_ids_and_casts_arrays_to_the_parameter_dtype():
    p = table(dtype=np.float32)
    opt = RowWiseAdagrad([p])
    opt.load_state_dict({"state": {"0": {"sum": [1, 2, 3, 4]}},
                         "param_groups": [{"lr": 0.1, "eps": 0.0, "weight_decay": 0.0,
                                           "initial_accumulator_value": 0.0, "params": ["0"]}]})
    assert opt.state[p]["sum"].dtype == np.float32
    np.testing.assert_array_equal(opt.state[p]["sum"], [1, 2, 3, 4])
    assert opt.param_groups[0]["lr"] == 0.1


def test_optimizer_base_is_exported_and_subclassable():
    assert issubclass(SGD, Optimizer) and issubclass(AdamW, Adam)
