import json
import os

import numpy as np
import pytest
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet import losses
from xpnet.optimizers import Adam


def trained(rng):
    xpnet.seed(1)
    model = xpnet.Sequential(
        [L.Affine(4, 6), L.BatchNorm(6), L.Swish(), L.Dropout(0.2), L.Affine(6, 3)],
        loss=losses.Flooding(losses.SoftmaxCrossEntropy(), 0.01),
    )
    opt = Adam(0.01)
    x, t = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)
    xpnet.Trainer(model, opt, epochs=2, batch_size=5, verbose=False).fit(x, t)
    return model, opt, x


def test_round_trip_on_every_backend(backend, rng, tmp_path):
    model, opt, x = trained(rng)
    path = tmp_path / "m.npz"
    model.save(path, optimizer=opt)
    loaded, opt2 = xpnet.load_checkpoint(path)
    assert loaded.backend == backend
    np.testing.assert_allclose(host(loaded.predict(x)), host(model.predict(x)), rtol=1e-6)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert isinstance(loaded.loss_layer, losses.Flooding) and loaded.loss_layer.b == 0.01
    assert isinstance(opt2, Adam) and opt2.t == opt.t and opt2.lr == 0.01
    for k in opt.state:
        np.testing.assert_allclose(host(opt2.state[k]["m"]), host(opt.state[k]["m"]))
    np.testing.assert_allclose(host(loaded.buffers["1.running_var"]), host(model.buffers["1.running_var"]))


def test_train_on_one_backend_load_on_another(cpu_backend, rng, tmp_path):
    model, _, x = trained(rng)
    model.save(tmp_path / "m.npz")
    with xpnet.use_backend("numpy"):
        on_numpy = xpnet.load(tmp_path / "m.npz")
    assert on_numpy.backend.name == "numpy"
    np.testing.assert_allclose(host(on_numpy.predict(x)), host(model.predict(x)), rtol=1e-5, atol=1e-6)
    assert xpnet.load(tmp_path / "m.npz", backend="numpy").backend.name == "numpy"


def test_loading_does_not_disturb_the_seeded_stream(rng, tmp_path):
    model, _, _ = trained(rng)
    model.save(tmp_path / "m.npz")
    xpnet.seed(5)
    a = host(L.Affine(3, 3).W)
    xpnet.seed(5)
    xpnet.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(host(L.Affine(3, 3).W), a)


def test_failed_save_keeps_old_file_and_leaves_no_temp(rng, tmp_path, monkeypatch):
    model, _, _ = trained(rng)
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_file_is_a_value_error_naming_it(rng, tmp_path, cut):
    model, _, _ = trained(rng)
    path = tmp_path / "m.npz"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match="m.npz"):
        xpnet.load(path)


def test_corrupt_bytes_are_a_value_error(rng, tmp_path):
    model, _, _ = trained(rng)
    path = tmp_path / "m.npz"
    model.save(path)
    data = bytearray(path.read_bytes())
    for i in range(200, 260):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="m.npz"):
        xpnet.load(path)


def _rewrite(path, edit_meta=None, edit_arrays=None):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.fixture
def saved(rng, tmp_path):
    """The path of a trained model saved as m.npz."""
    model, _, _ = trained(rng)
    path = tmp_path / "m.npz"
    model.save(path)
    return path


def test_mismatched_architecture_is_refused(saved):
    path = saved
    _rewrite(path, edit_meta=lambda m: m["layers"][4]["config"].update(out_features=5, in_features=6))
    with pytest.raises(ValueError, match=r"m.npz.*'4.W'.*shape"):
        xpnet.load(path)


def test_missing_weights_are_refused(saved):
    path = saved
    _rewrite(path, edit_arrays=lambda a: a.pop("param/0.b"))
    with pytest.raises(ValueError, match=r"m.npz.*missing \['0.b'\]"):
        xpnet.load(path)


def test_non_finite_weights_are_refused(saved):
    path = saved
    _rewrite(path, edit_arrays=lambda a: a.__setitem__("param/0.W", a["param/0.W"] * np.nan))
    with pytest.raises(ValueError, match="not finite"):
        xpnet.load(path)


def test_other_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="other.npz"):
        xpnet.load(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="text.npz"):
        xpnet.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        xpnet.load(tmp_path / "absent.npz")


def test_load_restores_a_given_optimizer(rng, tmp_path):
    model, opt, _x = trained(rng)
    model.save(tmp_path / "m.npz", optimizer=opt)
    fresh = Adam(0.01)
    loaded = xpnet.load(tmp_path / "m.npz", optimizer=fresh)
    assert fresh.t == opt.t
    assert loaded.params["0.W"].shape == model.params["0.W"].shape
    with pytest.raises(ValueError, match="Adam state, not SGD"):
        xpnet.load(tmp_path / "m.npz", optimizer=xpnet.optimizers.SGD(0.1))
    model.save(tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="no optimizer state"):
        xpnet.load(tmp_path / "plain.npz", optimizer=Adam())


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["layers"][0].update({"class": "Teleporter"}),
        lambda m: m["layers"][0]["config"].update(out_features=7),  # sizes no longer chain
        lambda m: m["layers"][0]["config"].update(bogus=1),
        lambda m: m.pop("loss"),
    ],
)
def test_invalid_architecture_descriptions_name_the_file(saved, edit):
    path = saved
    _rewrite(path, edit_meta=edit)
    with pytest.raises(ValueError, match=r"m.npz: (invalid architecture description|parameter '0.W' has shape)"):
        xpnet.load(path)
