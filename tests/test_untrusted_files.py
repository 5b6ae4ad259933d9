"""Untrusted model files (issue 26, items 1, 2, 3, 5): check first, allocate last; one ValueError naming
the file for any corrupt or crafted file; only regular files are read or replaced.

Crafted files are built here (tests/crafted.py); loads that could allocate or hang on a regression run in
a child process with an address-space limit and a timeout."""

import io
import math
import os
import zipfile

import numpy as np
import pytest
from crafted import affine, load_in_child, members_of, meta, meta_bytes, npy, npy_header, rewrite, write_zip
from xptest import host

import xpnet
from xpnet import layers as L
from xpnet.cli import main
from xpnet.history import History


@pytest.fixture
def saved(tmp_path):
    xpnet.seed(1)
    model = xpnet.Sequential([L.Affine(4, 6), L.ReLU(), L.Affine(6, 3)])
    path = tmp_path / "m.npz"
    model.save(path, optimizer=xpnet.optimizers.Adam())
    return path


def refused(path, *words):
    """The ValueError of loading ``path``; it names the file and each of ``words``."""
    with pytest.raises(ValueError) as info:
        xpnet.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for w in words:
        assert w in message, message
    return message


# -- 1. check first, allocate last --------------------------------------------------------------
@pytest.mark.parametrize(
    "members",
    [
        lambda: [("meta", meta_bytes(meta([affine(20000, 20000)])))],  # 427 bytes: "missing 0.W" after 4.7 GB
        lambda: [("meta", meta_bytes(meta([affine(10**6, 10**6)])))],  # a MemoryError traceback
        lambda: [  # headers that match the declared sizes, but only 48 bytes of data
            ("meta", meta_bytes(meta([affine(20000, 20000)]))),
            ("param/0.W", npy_header((20000, 20000)) + bytes(48)),
            ("param/0.b", npy_header((20000,)) + bytes(48)),
        ],
    ],
)
def test_a_crafted_file_of_a_few_kb_is_refused_within_200_mb(tmp_path, members):
    path = write_zip(tmp_path / "crafted.npz", members())
    assert path.stat().st_size < 4096
    result, peak = load_in_child(path)
    assert result.startswith(f"ValueError {path}: "), result
    assert peak < 200, f"{peak:.0f} MB to refuse a {path.stat().st_size}-byte file"


def test_loading_builds_layers_from_the_saved_arrays_without_drawing_weights(saved, monkeypatch):
    def no_draws():
        raise AssertionError("a load drew random initial weights")

    monkeypatch.setattr(L.base, "host_rng", no_draws)
    model = xpnet.load(saved)
    assert host(model.params["0.W"]).shape == (4, 6)


# -- 2. zip bombs, duplicates, oversized members -----------------------------------------------
def test_an_npy_header_claiming_more_than_the_member_holds_is_refused(tmp_path, saved):
    members = [(n, npy_header((400000, 300000), "<f8") + bytes(48) if n == "param/0.W" else d) for n, d in _m(saved)]
    rewrite(saved, members=members)
    result, peak = load_in_child(saved)
    assert result.startswith("ValueError") and "'param/0.W' declares shape (400000, 300000)" in result, result
    assert peak < 200


def test_an_unknown_member_is_refused_before_it_is_decompressed(tmp_path, saved):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in _m(saved):
            zf.writestr(name + ".npy", data)
        with zf.open("zeros.npy", "w") as f:  # 400 MB of zeros, deflated to ~400 KB
            chunk = bytes(1 << 20)
            for _ in range(400):
                f.write(chunk)
    assert path.stat().st_size < 1 << 20
    result, peak = load_in_child(path)
    assert result.startswith("ValueError") and "unexpected entry 'zeros.npy'" in result, result
    assert peak < 200


def test_duplicate_members_are_refused(saved):
    members = _m(saved)
    weights = next(d for n, d in members if n == "param/0.W")
    with pytest.warns(UserWarning, match="Duplicate name"):  # zipfile warns, and would read the last one
        rewrite(saved, members=[*members, ("param/0.W", npy(np.zeros_like(np.load(_bytes(weights)))))])
    refused(saved, "'param/0.W' appears twice")


def test_the_description_has_a_size_cap(saved):
    rewrite(saved, edit_meta=lambda m: m.update(note="x" * (20 << 20)))  # 20 MB of JSON (1 GB loaded today)
    refused(saved, "description of")


@pytest.mark.parametrize("levels", [40, 100_000])
def test_the_description_has_a_nesting_cap(saved, levels):
    def nest(m):
        m["note"] = "NEST"

    rewrite(saved, edit_meta=nest)
    members = _m(saved)
    text = np.load(_bytes(dict(members)["meta"])).tobytes().decode()
    deep = text.replace('"NEST"', "[" * levels + "]" * levels)
    rewrite(saved, members=[(n, _json_entry(deep) if n == "meta" else d) for n, d in members])
    refused(saved, "nests")


# -- 3. one ValueError for any corrupt or crafted file ----------------------------------------
def _flip_zip_field(path, offset_in_central, value, size=2):
    """Overwrite a field of the first central-directory record (offsets per the zip specification)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    data[at + offset_in_central : at + offset_in_central + size] = value.to_bytes(size, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "field, value",
    [
        (8, 0x1),  # general purpose flags: encrypted (zipfile: RuntimeError)
        (6, 99),  # version needed to extract (zipfile: NotImplementedError "zip file version")
        (10, 12),  # compression method bzip2, whose data is not there
    ],
)
def test_zip_level_faults_are_one_value_error(saved, field, value):
    _flip_zip_field(saved, field, value)
    refused(saved, "corrupt or truncated")


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 6,",  # tokenize.TokenError / SyntaxError
        b"{'descr': '<f4', 'fortran_order': False, 'shape': " + b"(" * 3000 + b")" * 3000 + b"}",
        b"{'descr': 'O', 'fortran_order': False, 'shape': (4, 6)}",
        b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4, 6)}",
        b"{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 6)}",
    ],
)
def test_crafted_npy_headers_are_one_value_error(saved, header):
    body = header.ljust(118) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + bytes(96)
    rewrite(saved, members=[(n, data if n == "param/0.W" else d) for n, d in _m(saved)])
    refused(saved)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.update(layers="Affine"),
        lambda m: m.update(layers=[]),
        lambda m: m["layers"].__setitem__(0, 5),
        lambda m: m["layers"][0].update({"class": 5}),
        lambda m: m["layers"][0].update(config=[1, 2]),
        lambda m: m["layers"][0]["config"].update(in_features="4"),
        lambda m: m["layers"][0]["config"].update(in_features=1e400),  # inf: OverflowError
        lambda m: m["layers"][0]["config"].update(init=0.0),
        lambda m: m["layers"][1].update({"class": "Activation"}),  # abstract: it loaded and failed at forward
        lambda m: m["layers"][1].update({"class": "Layer"}),
        lambda m: m["layers"][1].update({"class": "_Pool"}),
        lambda m: m["layers"][1].update({"class": "__class__"}),
        lambda m: m.update(loss={"class": "Flooding", "b": math.nan, "inner": {"class": "SoftmaxCrossEntropy"}}),
        lambda m: m.update(loss={"class": "Flooding", "b": 0.1, "inner": None}),
        lambda m: m.update(loss="SoftmaxCrossEntropy"),
        lambda m: m.update(input_shape="abc"),
        lambda m: m.update(input_shape=[-4]),
        lambda m: m.update(input_grad="yes"),
        lambda m: m["optimizer"].update({"class": "__class__"}),
        lambda m: m["optimizer"]["config"].update(beta1=1.0),  # ZeroDivisionError at the first step today
        lambda m: m["optimizer"]["config"].update(lr=math.inf),
        lambda m: m["optimizer"]["config"].update(bogus=1),
        lambda m: m["optimizer"].update(t=-3),
        lambda m: m["optimizer"].update(t=1.5),
        lambda m: m.update(dtypes={"param/0.W": "bfloat16"}),
        lambda m: m.update(dtypes=[1]),
        lambda m: m.update(version=2),
    ],
)
def test_crafted_descriptions_are_one_value_error_naming_the_file(saved, edit):
    rewrite(saved, edit_meta=edit)
    refused(saved)


def test_user_subclasses_defined_before_loading_load(tmp_path):
    class Cube(L.Activation):
        def fn(self, x, train):
            return x * x * x, 3.0 * x * x if train else None

    model = xpnet.Sequential([L.Affine(3, 4), Cube(), L.Affine(4, 2)])
    model.save(tmp_path / "cube.npz")
    loaded = xpnet.load(tmp_path / "cube.npz")
    assert isinstance(loaded.layers[1], Cube)
    x = np.ones((2, 3))
    np.testing.assert_allclose(host(loaded.predict(x)), host(model.predict(x)), rtol=1e-6)


@pytest.mark.parametrize(
    "edit", [lambda p: _flip_zip_field(p, 8, 0x1), lambda p: rewrite(p, edit_meta=lambda m: m.update(layers=[7]))]
)
def test_the_cli_answers_a_crafted_checkpoint_in_one_line(saved, capsys, edit):
    edit(saved)
    assert main(["train", "--resume", str(saved)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(saved) in err and "Traceback" not in err, err


# -- 5. only regular files -----------------------------------------------------------------------
def test_a_named_pipe_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    result, _ = load_in_child(fifo, timeout=30)
    assert result.startswith(f"ValueError {fifo}: is a named pipe"), result
    history = tmp_path / "pipe.json"
    os.mkfifo(history)
    result, _ = load_in_child(history, kind="history", timeout=30)
    assert result.startswith(f"ValueError {history}: is a named pipe"), result


def test_saving_onto_a_special_file_is_refused(tmp_path, saved):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    model = xpnet.load(saved)
    with pytest.raises(ValueError, match="is a named pipe"):
        model.save(fifo)
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(ValueError, match="is a named pipe"):
        History().save(tmp_path / "pipe.json")
    with pytest.raises(ValueError, match="is a character device"):
        model.save(os.devnull)
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
    assert not os.path.isfile(fifo) and sorted(os.listdir(tmp_path)) == ["m.npz", "pipe.json", "pipe.npz"]


def _m(path):
    return members_of(path)


def _bytes(data):
    return io.BytesIO(data)


def _json_entry(text):
    return npy(np.frombuffer(text.encode(), dtype=np.uint8))
