"""``xpnet data`` and ``load_mnist(download=True)`` against a local HTTP server (no network)."""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest
from shared_data import NO_MNIST, shared_data

from xpnet import datasets
from xpnet.data import download as downloads

MNIST = shared_data("mnist")
pytestmark = pytest.mark.skipif(MNIST is None, reason=NO_MNIST)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on the test output
        pass


@pytest.fixture
def serve():
    """serve(folder) → the base URL of an HTTP server on 127.0.0.1 serving ``folder``."""
    servers = []

    def start(folder):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _dead_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("XPNET_DATA", "XPNET_MIRRORS")}
    env["HOME"] = str(tmp_path / "home")  # never the real ~/.cache
    env.update(extra)
    return env


def _xpnet(*argv, env):
    return subprocess.run(
        [sys.executable, "-m", "xpnet", *argv], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_published_checksums_and_sizes_are_those_of_the_shared_mnist():
    for name, published in datasets.DOWNLOADS["mnist"]["files"].items():
        assert downloads._sha256(MNIST / name) == published.sha256
        assert (MNIST / name).stat().st_size == published.size


def test_data_then_train_finds_the_files(tmp_path, serve):
    """`xpnet data mnist` (mirrors from XPNET_MIRRORS, dead one first) then `xpnet train --dataset mnist`."""
    env = _env(tmp_path, XPNET_DATA=str(tmp_path / "data"), XPNET_MIRRORS=f"{_dead_url()},{serve(MNIST)}")
    run = _xpnet("data", "mnist", env=env)
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "data" / "mnist"
    assert str(folder) in run.stdout
    assert sorted(p.name for p in folder.iterdir()) == sorted(datasets.DOWNLOADS["mnist"]["files"])  # no temporaries
    again = _xpnet("data", "mnist", env=env)  # verified, not fetched again
    assert again.returncode == 0 and "already there" in again.stdout
    train = _xpnet("train", "--dataset", "mnist", "--hidden", "20", "--epochs", "1", "--quiet", env=env)
    assert train.returncode == 0, train.stderr
    assert "| relu" in train.stdout


def test_default_cache_is_home_cache_and_mirror_option(tmp_path, serve):
    env = _env(tmp_path, XPNET_MIRRORS=_dead_url())  # --mirror replaces the list
    run = _xpnet("data", "mnist", "--mirror", serve(MNIST), env=env)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "home" / ".cache" / "xpnet" / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_load_mnist_download_into_cache(tmp_path, serve, monkeypatch):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XPNET_MIRRORS", serve(MNIST))
    with pytest.raises(FileNotFoundError, match="xpnet data mnist"):
        datasets.load_mnist()
    (x, _), (xt, _) = datasets.load_mnist(download=True)
    assert x.shape == (60000, 784) and xt.shape == (10000, 784)
    assert datasets.load_mnist()[1][1].shape == (10000,)  # found later without download


def test_offline_error_is_one_paragraph(tmp_path):
    env = _env(tmp_path, XPNET_MIRRORS=_dead_url())
    run = _xpnet("data", "mnist", "--dir", str(tmp_path / "d"), env=env)
    assert run.returncode == 1
    err = run.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(tmp_path / "d") in err
    for name in datasets.DOWNLOADS["mnist"]["files"]:
        assert name in err
    assert list((tmp_path / "d").iterdir()) == []  # nothing half-written


def test_checksum_mismatch_keeps_nothing_and_tries_the_next_mirror(tmp_path, serve):
    bad = tmp_path / "bad"
    shutil.copytree(MNIST, bad, ignore=shutil.ignore_patterns("README.md"))
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the published file")
    folder = datasets.download("mnist", tmp_path / "d", mirror=[serve(bad), serve(MNIST)])
    assert (
        downloads._sha256(folder / "t10k-labels-idx1-ubyte.gz")
        == datasets.DOWNLOADS["mnist"]["files"]["t10k-labels-idx1-ubyte.gz"].sha256
    )
    with pytest.raises(datasets.DownloadError, match="SHA-256"):
        datasets.download("mnist", tmp_path / "e", mirror=[serve(bad)])
    assert not (tmp_path / "e" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in (tmp_path / "e").iterdir() if p.name.startswith(".")]


def test_fashion_mnist_runs_the_same_code_with_its_own_checksums(tmp_path, serve, monkeypatch):
    """MNIST files served as Fashion-MNIST fail Fashion-MNIST's checksums; with MNIST's sums they pass."""
    url = serve(MNIST)
    with pytest.raises(datasets.DownloadError, match="fashion-mnist"):
        datasets.download("fashion-mnist", tmp_path / "f", mirror=[url])
    assert not list((tmp_path / "f").glob("*.gz"))
    monkeypatch.setitem(datasets.DOWNLOADS["fashion-mnist"], "files", dict(datasets.DOWNLOADS["mnist"]["files"]))
    monkeypatch.setenv("XPNET_DATA", str(tmp_path))
    monkeypatch.setenv("XPNET_MIRRORS", url)
    assert datasets.load_fashion_mnist(download=True)[1][0].shape == (10000, 784)
    assert (tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file()
