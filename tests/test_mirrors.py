"""``download()`` against misbehaving mirrors: a local HTTP server in a thread per mirror (no network)."""

import hashlib
import os
import socket
import socketserver
import struct
import threading
import time

import pytest

from xpnet import datasets
from xpnet.data import download as downloads

PAYLOAD = bytes(range(256)) * 20
SIZE = len(PAYLOAD)
PUBLISHED = datasets.Published(hashlib.sha256(PAYLOAD).hexdigest(), SIZE)
T = 0.2  # download(timeout=T): a mirror's file is abandoned after 5·T = 1 s
BOUND = downloads.DEADLINE_TIMEOUTS * T + 3.0  # plus a generous allowance for a busy machine
STALL = 30.0  # a misbehaving server gives up after this long (what the old per-read timeout waited for)


def _head(status=b"HTTP/1.0 200 OK", length=SIZE):
    return status + (b"\r\nContent-Length: %d" % length if length is not None else b"") + b"\r\n\r\n"


def _good(h):
    h.send(_head() + PAYLOAD)


def _wrong_checksum(h):
    h.send(_head() + PAYLOAD[::-1])


def _not_found(h):
    h.send(_head(b"HTTP/1.0 404 Not Found", 0))


def _garbage_status(h):
    h.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def _huge_header(h):
    h.send(b"HTTP/1.0 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n" + PAYLOAD)


def _many_headers(h):
    h.send(b"HTTP/1.0 200 OK\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(150)) + b"\r\n" + PAYLOAD)


def _announces_too_much(h):
    h.send(_head(length=10**12) + PAYLOAD)


def _endless(h):
    """No Content-Length, zeros until the client hangs up (or 64 MiB)."""
    h.send(_head(length=None))
    chunk = bytes(1 << 16)
    while h.server.sent < 64 << 20 and h.send(chunk):
        pass


def _trickle(h):
    """The right length announced, then one byte every 0.05 s (each read waits less than T)."""
    h.send(_head())
    for i in range(len(PAYLOAD)):
        if h.server.closing.wait(0.05) or not h.send(PAYLOAD[i : i + 1]):
            return


def _slow_headers(h):
    h.send(b"HTTP/1.0 200 OK\r\n")
    while not h.server.closing.wait(0.05) and h.send(b"X"):
        pass


def _cut_short(h):
    """Half the body, then a reset."""
    h.send(_head() + PAYLOAD[: len(PAYLOAD) // 2])
    h.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # the request's head
            pass
        self.server.requests += 1
        self.server.behaviour(self)

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the client is gone or the test is over."""
        if self.server.closing.is_set() or time.monotonic() > self.server.started + STALL:
            return False
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        self.server.sent += len(data)
        return True


class _Mirror(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, behaviour):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour, self.requests, self.sent = behaviour, 0, 0
        self.closing, self.started = threading.Event(), time.monotonic()
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture
def mirror():
    """mirror(behaviour) → a running server that answers every request with ``behaviour``."""
    servers = []

    def start(behaviour):
        server = _Mirror(behaviour)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.closing.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def tiny(monkeypatch):
    """A dataset ``tiny`` of one file, ``a.bin`` (PAYLOAD), and umask 022."""
    monkeypatch.setitem(datasets.DOWNLOADS, "tiny", {"files": {"a.bin": PUBLISHED}, "mirrors": ()})
    old = os.umask(0o022)
    yield
    os.umask(old)


MISBEHAVIOURS = [
    _wrong_checksum,
    _not_found,
    _garbage_status,
    _huge_header,
    _many_headers,
    _announces_too_much,
    _endless,
    _trickle,
    _slow_headers,
    _cut_short,
]


@pytest.mark.parametrize("behaviour", MISBEHAVIOURS, ids=lambda f: f.__name__.strip("_"))
def test_a_misbehaving_mirror_is_left_for_the_next_in_bounded_time(tmp_path, mirror, tiny, behaviour):
    bad, good = mirror(behaviour), mirror(_good)
    lines = []
    start = time.monotonic()
    folder = datasets.download("tiny", tmp_path / "d", mirror=[bad.url, good.url], log=lines.append, timeout=T)
    elapsed = time.monotonic() - start
    assert elapsed < BOUND, f"{elapsed:.1f} s"
    assert bad.requests == 1 and good.requests == 1
    assert bad.sent < len(PAYLOAD) + (32 << 20)  # what sat in socket buffers, not the 64 MiB on offer
    assert lines == [f"a.bin: downloaded from {good.url}, SHA-256 verified"]
    assert os.listdir(folder) == ["a.bin"]  # no partial, lock or registry file
    assert (folder / "a.bin").read_bytes() == PAYLOAD
    assert (folder / "a.bin").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("behaviour", [_endless, _trickle, _garbage_status], ids=lambda f: f.__name__.strip("_"))
def test_when_every_mirror_fails_nothing_is_left(tmp_path, mirror, tiny, behaviour):
    start = time.monotonic()
    with pytest.raises(datasets.DownloadError, match="no mirror delivered a.bin") as info:
        datasets.download("tiny", tmp_path / "d", mirror=[mirror(behaviour).url], timeout=T)
    assert time.monotonic() - start < BOUND
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path / "d") == []


def test_stale_partial_files_are_removed(tmp_path, mirror, tiny):
    folder = tmp_path / "d"
    folder.mkdir()
    for stale in (".a.bin.x8k2_q0a.tmp", ".a.bin.x8k2_q.part"):  # xpnet.atomic's, and the old downloader's
        (folder / stale).write_bytes(b"half")
    (folder / "notes.txt").write_text("the user's")  # not ours: kept
    datasets.download("tiny", folder, mirror=[mirror(_good).url], timeout=T)
    assert sorted(os.listdir(folder)) == ["a.bin", "notes.txt"]


def _steady(h):
    """The file in 10 pieces, 0.05 s apart (0.5 s in all)."""
    h.send(_head())
    for i in range(0, SIZE, SIZE // 10):
        time.sleep(0.05)
        h.send(PAYLOAD[i : i + SIZE // 10])


def test_two_downloads_into_one_folder_take_turns(tmp_path, mirror, tiny):
    """The second waits for the first (a lock on the folder itself), so it removes no partial file of the first."""
    folder, slow = tmp_path / "d", mirror(_steady)
    folder.mkdir()
    first: list = []
    thread = threading.Thread(target=lambda: first.append(datasets.download("tiny", folder, [slow.url], timeout=1)))
    thread.start()
    while slow.requests == 0:
        time.sleep(0.01)
    lines = []
    datasets.download("tiny", folder, [mirror(_not_found).url], log=lines.append, timeout=1)
    thread.join()
    assert first == [folder] and lines[-1] == "a.bin: already there, SHA-256 verified"
    assert os.listdir(folder) == ["a.bin"]


def test_a_kept_file_is_checked_by_size_and_checksum(tmp_path, mirror, tiny):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.bin").write_bytes(PAYLOAD[:-1])  # truncated: fetched again
    datasets.download("tiny", folder, mirror=[mirror(_good).url], timeout=T)
    assert (folder / "a.bin").read_bytes() == PAYLOAD
    lines = []
    datasets.download("tiny", folder, mirror=[mirror(_not_found).url], log=lines.append, timeout=T)
    assert lines == ["a.bin: already there, SHA-256 verified"]


def test_umask_decides_the_mode(tmp_path, mirror, tiny):
    os.umask(0o027)
    datasets.download("tiny", tmp_path / "d", mirror=[mirror(_good).url], timeout=T)
    assert (tmp_path / "d" / "a.bin").stat().st_mode & 0o777 == 0o640


def test_wrong_file_on_every_mirror_gives_no_offline_advice(tmp_path, mirror, tiny):
    wrong = [mirror(_wrong_checksum).url, mirror(_announces_too_much).url]
    with pytest.raises(datasets.DownloadError) as info:
        datasets.download("tiny", tmp_path / "d", mirror=wrong, timeout=T)
    msg = str(info.value)
    assert "offline" not in msg and "other than the published one" in msg and str(tmp_path / "d") in msg
    with pytest.raises(datasets.DownloadError, match="If this machine is offline"):  # one unreachable: may help
        datasets.download("tiny", tmp_path / "d", mirror=[wrong[0], mirror(_garbage_status).url], timeout=T)


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_timeout_must_be_a_positive_number(tmp_path, tiny, timeout):
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        datasets.download("tiny", tmp_path / "d", mirror=["http://127.0.0.1:9/"], timeout=timeout)
    assert not (tmp_path / "d").exists()


def test_a_file_where_the_folder_should_be(tmp_path, tiny):
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="f: not a folder"):
        datasets.download("tiny", tmp_path / "f", mirror=["http://127.0.0.1:9/"], timeout=T)


# -- issue 24 item 4: what the command line says when data is missing, damaged or interrupted ----------------
def _xpnet(argv, capsys):
    from xpnet.cli import main

    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_data_path_not_found_suggests_the_command_that_fills_it(tmp_path, capsys):
    folder = tmp_path / "my data"
    folder.mkdir()
    code, err = _xpnet(["train", "--dataset", "mnist", "--data-path", str(folder)], capsys)
    assert code == 2 and "\n" not in err and "--data-path: " in err  # a bad command line
    assert f"`xpnet data mnist --dir '{folder}'`" in err


def test_data_path_that_is_a_file_is_not_a_folder(tmp_path, capsys):
    (tmp_path / "f.gz").write_bytes(b"")
    code, err = _xpnet(["train", "--dataset", "mnist", "--data-path", str(tmp_path / "f.gz")], capsys)
    assert code == 2 and "\n" not in err and "--data-path: " in err
    assert f"{tmp_path / 'f.gz'}: not a folder" in err
    code, err = _xpnet(["data", "mnist", "--dir", str(tmp_path / "f.gz"), "--mirror", "http://127.0.0.1:9/"], capsys)
    assert code == 1 and "\n" not in err
    assert f"{tmp_path / 'f.gz'}: not a folder" in err


def test_a_truncated_local_file_says_to_run_xpnet_data_again(tmp_path, capsys):
    from test_datasets import _write_idx

    _write_idx(tmp_path / "d", truncate=7)
    code, err = _xpnet(["train", "--dataset", "mnist", "--data-path", str(tmp_path / "d")], capsys)
    assert code == 1 and "\n" not in err
    assert "train-images-idx3-ubyte.gz" in err
    assert f"to fetch it again, run `xpnet data mnist --dir {tmp_path / 'd'}`" in err


def test_sigterm_during_xpnet_data_suggests_no_checkpoint(tmp_path, mirror):
    import signal
    import subprocess
    import sys

    stalled = mirror(_slow_headers)
    env = {k: v for k, v in os.environ.items() if k not in ("XPNET_DATA", "XPNET_MIRRORS")}
    argv = [sys.executable, "-m", "xpnet", "data", "mnist", "--dir", str(tmp_path / "d"), "--mirror", stalled.url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while stalled.requests == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert stalled.requests == 1, proc.poll()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    err = err.strip()
    assert "\n" not in err and "--checkpoint" not in err
    assert f"run `xpnet data mnist --dir {tmp_path / 'd'} --mirror {stalled.url}` again" in err
    assert os.listdir(tmp_path / "d") == []  # the partial file is removed


def test_one_mirror_may_be_given_as_a_string(tmp_path, mirror, tiny):
    url = mirror(_good).url
    datasets.download("tiny", tmp_path / "d", mirror=url, timeout=T)
    assert os.listdir(tmp_path / "d") == ["a.bin"]
    with pytest.raises(TypeError, match="mirror must be a list of base URLs"):
        datasets.download("tiny", tmp_path / "d", mirror=[url, 5], timeout=T)
