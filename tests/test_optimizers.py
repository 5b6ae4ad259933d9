"""Each optimizer's rule against a step computed by hand, on every backend."""

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import optimizers as O

W0 = np.array([[1.0, -2.0], [0.5, 3.0]])
G1 = np.array([[0.1, -0.2], [0.3, 0.4]])
G2 = np.array([[-0.5, 0.1], [0.2, -0.1]])


def _two_steps(opt):
    """Apply the optimizer twice to one parameter ("0.W"); return host values after each step."""
    p = xpnet.asarray(W0.copy(), dtype="float64")  # asarray may share memory with its input (as np.asarray)
    params = {"0.W": p}
    out = []
    for g in (G1, G2):
        opt.update(params, {"0.W": xpnet.asarray(g, dtype="float64")})
        assert params["0.W"] is p, "updated in place: the layer's array keeps its identity"
        out.append(host(p).copy())
    return out


def _reference(name):
    w, lr = W0.copy(), 0.1
    if name == "sgd":
        return [W0 - lr * G1, W0 - lr * G1 - lr * G2]
    if name == "momentum":
        v1 = -lr * G1
        v2 = 0.9 * v1 - lr * G2
        return [W0 + v1, W0 + v1 + v2]
    if name == "nesterov":  # SEEDS.md: w' = w - μv + μv' + v'
        v0 = np.zeros_like(W0)
        v1 = 0.9 * v0 - lr * G1
        w1 = W0 - 0.9 * v0 + 0.9 * v1 + v1
        v2 = 0.9 * v1 - lr * G2
        return [w1, w1 - 0.9 * v1 + 0.9 * v2 + v2]
    if name == "adagrad":
        h1 = G1**2
        w1 = W0 - lr * G1 / (np.sqrt(h1) + 1e-7)
        h2 = h1 + G2**2
        return [w1, w1 - lr * G2 / (np.sqrt(h2) + 1e-7)]
    if name == "rmsprop":
        h1 = 0.01 * G1**2
        w1 = W0 - lr * G1 / (np.sqrt(h1) + 1e-7)
        h2 = 0.99 * h1 + 0.01 * G2**2
        return [w1, w1 - lr * G2 / (np.sqrt(h2) + 1e-7)]
    if name in ("adam", "adamw"):
        out, m, v = [], np.zeros_like(W0), np.zeros_like(W0)
        for t, g in enumerate((G1, G2), start=1):
            if name == "adamw":
                w = w * (1 - lr * 0.01)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            mhat, vhat = m / (1 - 0.9**t), v / (1 - 0.999**t)
            w = w - lr * mhat / (np.sqrt(vhat) + 1e-8)  # Algorithm 1 of the paper (and PyTorch)
            out.append(w.copy())
        return out
    raise KeyError(name)


@pytest.mark.parametrize("name", list(O.OPTIMIZERS))
def test_rule_matches_hand_computation(backend, name):
    xpnet.set_default_dtype("float64")
    got = _two_steps(O.OPTIMIZERS[name](lr=0.1))
    for step, (g, r) in enumerate(zip(got, _reference(name)), start=1):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12, err_msg=f"{name} step {step}")


def test_state_under_the_books_names():
    opt = O.Adam(lr=0.1)
    _two_steps(opt)
    assert set(opt.m) == {"0.W"} and opt.v["0.W"] is opt.state["0.W"]["v"]
    mom = O.Momentum(lr=0.1)
    _two_steps(mom)
    np.testing.assert_allclose(host(mom.v["0.W"]), 0.9 * (-0.1 * G1) - 0.1 * G2, rtol=1e-6)
    with pytest.raises(AttributeError):
        _ = O.SGD().v


def test_momentum_and_nesterov_differ_only_in_the_rule():
    a = _two_steps(O.Momentum(lr=0.1))
    b = _two_steps(O.Nesterov(lr=0.1))
    assert not np.allclose(a[1], b[1])


def test_weight_decay_is_added_to_weight_gradients_only(backend):
    xpnet.set_default_dtype("float64")
    W, b = xpnet.asarray(W0.copy()), xpnet.asarray(np.array([1.0, 2.0]))
    opt = O.SGD(lr=0.1, weight_decay=0.5)
    opt.update({"0.W": W, "0.b": b}, {"0.W": xpnet.asarray(G1), "0.b": xpnet.asarray(np.zeros(2))})
    np.testing.assert_allclose(host(W), W0 - 0.1 * (G1 + 0.5 * W0))
    np.testing.assert_allclose(host(b), [1.0, 2.0])
    assert float(opt.penalty({"0.W": W, "0.b": b})) == pytest.approx(0.25 * np.sum(host(W) ** 2))


def test_adamw_decay_is_decoupled():
    assert O.AdamW().penalty({"0.W": xpnet.asarray(W0)}) == 0.0
    assert O.AdamW().weight_decay == 0.01


def test_float32_state_stays_float32(backend):
    p = xpnet.asarray(W0)  # float32
    opt = O.Adam(lr=0.01)
    opt.update({"0.W": p}, {"0.W": xpnet.asarray(G1)})
    assert p.dtype == backend.xp.float32
    assert all(a.dtype == backend.xp.float32 for a in opt.state["0.W"].values())


def test_missing_gradient_is_a_clear_error():
    with pytest.raises(ValueError, match="backward"):
        O.SGD(0.1).update({"0.W": xpnet.asarray(W0)}, {"0.W": None})


@pytest.mark.parametrize("kwargs", [{"lr": 0}, {"lr": -1}, {"lr": 0.1, "weight_decay": -1}])
def test_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        O.SGD(**kwargs)


def test_state_dict_round_trip(backend):
    xpnet.set_default_dtype("float64")
    a = O.Adam(lr=0.1)
    _two_steps(a)
    b = O.Adam(lr=0.1)
    b.load_state_dict(a.state_dict())
    assert b.t == 2
    np.testing.assert_array_equal(host(b.state["0.W"]["m"]), host(a.state["0.W"]["m"]))
    with pytest.raises(ValueError, match="slots"):
        O.Momentum().load_state_dict(a.state_dict())


def test_step_uses_model_params_and_grads(rng):
    model = xpnet.Sequential([xpnet.layers.Affine(3, 2)])
    before = host(model.params["0.W"]).copy()
    model.gradient(rng.standard_normal((4, 3)), np.array([0, 1, 1, 0]))
    O.SGD(0.5).step(model)
    np.testing.assert_allclose(host(model.params["0.W"]), before - 0.5 * host(model.grads["0.W"]), rtol=1e-6)
