# Copyright 2026 The ModelZoo TF2 medical imaging authors. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""download_dataset.py against a local HTTP server on 127.0.0.1."""

import functools
import hashlib
import http.server
import os
import shutil
import socket
import threading

import pytest

import download_dataset
from data_loading import readers


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def serve(tmp_path):
    """Start a server of a folder; yields a function folder -> base URL."""
    servers = []

    def start(folder):
        handler = functools.partial(QuietHandler, directory=folder)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def raw_server():
    """Start a TCP server on 127.0.0.1 that answers every request with fixed bytes, then closes;
    yields a function answer -> base URL."""
    sockets = []

    def start(answer):
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def serve_forever():
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:  # closed at teardown
                    return
                with connection:
                    connection.recv(65536)
                    connection.sendall(answer)

        threading.Thread(target=serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/"

    yield start
    for listener in sockets:
        listener.close()


def test_download_and_check(isbi_dir, tmp_path, serve):
    target = tmp_path / "data"
    # The synthetic stacks are not the listed files: their sums differ.
    assert download_dataset.main(["--data_dir", str(target), "--base_url", serve(isbi_dir),
                                  "--allow_checksum_mismatch"]) == 0
    assert sorted(os.listdir(target)) == sorted(readers.ISBI_FILES.values())
    assert len(readers.read_isbi(str(target)).images) == 10


def _assert_fails_clean(argv, target, capsys, expected):
    with pytest.raises(SystemExit) as exit_info:
        download_dataset.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert expected in error
    assert len(error.strip().splitlines()) == 1 and error.startswith("error: ")
    assert ".download-" not in error  # the staging folder, deleted by then, is never named
    assert not os.path.exists(target)  # nor the folder the run would have created
    return error


def test_missing_file_on_server_leaves_nothing(isbi_dir, tmp_path, serve, capsys):
    partial = tmp_path / "served"
    shutil.copytree(isbi_dir, partial)
    os.remove(partial / "test-volume.tif")
    target = tmp_path / "data"
    _assert_fails_clean(["--data_dir", str(target), "--base_url", serve(str(partial))], target, capsys,
                        "test-volume.tif: HTTP 404")


def test_bad_file_on_server_fails_the_check(isbi_dir, tmp_path, serve, capsys):
    broken = tmp_path / "served"
    shutil.copytree(isbi_dir, broken)
    (broken / "train-labels.tif").write_bytes(b"garbage")
    target = tmp_path / "data"
    base_url = serve(str(broken))
    error = _assert_fails_clean(["--data_dir", str(target), "--base_url", base_url], target, capsys,
                                f"error: {base_url}train-labels.tif: cannot be decoded")
    assert error.rstrip().endswith(f"; not saved as {target}/train-labels.tif")


def test_unreachable_server(tmp_path, capsys):
    target = tmp_path / "data" / "isbi"
    error = _assert_fails_clean(["--data_dir", str(target), "--base_url", "http://127.0.0.1:9/", "--timeout=5"],
                                target, capsys, "cannot download http://127.0.0.1:9/train-volume.tif")
    assert error.rstrip().endswith(f"; {download_dataset.RETRY}")
    assert not os.path.exists(tmp_path / "data")


@pytest.mark.parametrize("answer,expected", [
    # A chunked body cut in its second chunk (http.client.IncompleteRead).
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n400\r\nabc",
     "the connection closed in the middle of the body"),
    # A body shorter than its Content-Length.
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nabc",
     "the connection closed after 3 of 1000 bytes"),
    # Not HTTP at all (http.client.BadStatusLine).
    (b"SSH-2.0-OpenSSH_9.6\r\n", "the server's answer is not valid HTTP (BadStatusLine: "),
    # Nothing: the connection closes at once (http.client.RemoteDisconnected).
    (b"", "the server's answer is not valid HTTP (RemoteDisconnected: "),
])
def test_broken_answers_are_one_line_and_leave_nothing(tmp_path, raw_server, capsys, answer, expected):
    target = tmp_path / "data"
    base_url = raw_server(answer)
    error = _assert_fails_clean(["--data_dir", str(target), "--base_url", base_url, "--timeout=5"], target, capsys,
                                f"error: cannot download {base_url}train-volume.tif: {expected}")
    assert "Traceback" not in error


def test_a_server_that_never_answers_times_out(tmp_path, capsys):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog) but never answers
    with listener:
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        target = tmp_path / "data"
        _assert_fails_clean(["--data_dir", str(target), "--base_url", base_url, "--timeout=1"], target, capsys,
                            f"error: cannot download {base_url}train-volume.tif: timed out; ")


def test_data_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        download_dataset.main(["--data_dir", str(path), "--base_url", "http://127.0.0.1:9/"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (f"error: --data_dir={path} is a file; expected a folder (it is created "
                                       "when missing)\n")


def test_default_url_and_sums_are_the_reference_ones():
    assert download_dataset.DEFAULT_BASE_URL == "http://brainiac2.mit.edu/isbi_challenge/sites/default/files/"
    assert download_dataset.LISTED_MD5 == {"train-volume.tif": "465461edbe0254630c4ec5577f1e7764",
                                           "train-labels.tif": "657fe6b728c6dd0152e295c6d800001d",
                                           "test-volume.tif": "9767660d7abe4e0ecbdd0061a16058ad"}


def test_without_base_url_the_default_is_used_and_md5_differences_stop(isbi_dir, tmp_path, serve, capsys,
                                                                         monkeypatch):
    """No --base_url: DEFAULT_BASE_URL (pointed at 127.0.0.1 here; tests never reach the internet). An MD5
    that differs from the listed one stops the download; --allow_checksum_mismatch keeps the file with a warning."""
    monkeypatch.setattr(download_dataset, "DEFAULT_BASE_URL", serve(isbi_dir))
    sums = {name: hashlib.md5(open(os.path.join(isbi_dir, name), "rb").read()).hexdigest()
            for name in readers.ISBI_FILES.values()}
    monkeypatch.setitem(download_dataset.LISTED_MD5, "test-volume.tif", sums["test-volume.tif"])
    target = tmp_path / "data"
    error = _assert_fails_clean(["--data_dir", str(target)], target, capsys,
                                f"error: {download_dataset.DEFAULT_BASE_URL}train-volume.tif has MD5 "
                                f"{sums['train-volume.tif']}, the listed sum is 465461edbe0254630c4ec5577f1e7764; "
                                f"not saved as {target}/train-volume.tif (")
    assert error.rstrip().endswith("--allow_checksum_mismatch keeps such a re-saved or other copy)")
    assert download_dataset.main(["--data_dir", str(target), "--allow_checksum_mismatch"]) == 0
    out = capsys.readouterr().out
    assert f"downloading {download_dataset.DEFAULT_BASE_URL}train-volume.tif" in out
    assert f"md5 ok test-volume.tif {sums['test-volume.tif']}" in out
    assert (f"warning: train-labels.tif has MD5 {sums['train-labels.tif']}, the listed sum is "
            "657fe6b728c6dd0152e295c6d800001d; it decodes and passes the checks, so it is kept "
            "(--allow_checksum_mismatch)") in out
    assert sorted(os.listdir(target)) == sorted(readers.ISBI_FILES.values())
