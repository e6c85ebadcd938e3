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
import http.server
import os
import shutil
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


def test_download_and_check(isbi_dir, tmp_path, serve):
    target = tmp_path / "data"
    assert download_dataset.main(["--data_dir", str(target), "--base_url", serve(isbi_dir)]) == 0
    assert sorted(os.listdir(target)) == sorted(readers.ISBI_FILES.values())
    assert len(readers.read_isbi(str(target)).images) == 10


def _assert_fails_clean(argv, target, capsys, expected):
    with pytest.raises(SystemExit) as exit_info:
        download_dataset.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert expected in error
    assert ".download-" not in error  # the staging folder, deleted by then, is never named
    assert not os.path.exists(target) or os.listdir(target) == []
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
    target = tmp_path / "data"
    _assert_fails_clean(["--data_dir", str(target), "--base_url", "http://127.0.0.1:9/", "--timeout=5"], target,
                        capsys, "cannot download http://127.0.0.1:9/train-volume.tif")


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


def test_without_base_url_the_default_is_used_and_md5_differences_warn(isbi_dir, tmp_path, serve, capsys,
                                                                         monkeypatch):
    """No --base_url: DEFAULT_BASE_URL (pointed at 127.0.0.1 here; tests never reach the internet)."""
    import hashlib

    monkeypatch.setattr(download_dataset, "DEFAULT_BASE_URL", serve(isbi_dir))
    sums = {name: hashlib.md5(open(os.path.join(isbi_dir, name), "rb").read()).hexdigest()
            for name in readers.ISBI_FILES.values()}
    monkeypatch.setitem(download_dataset.LISTED_MD5, "test-volume.tif", sums["test-volume.tif"])
    target = tmp_path / "data"
    assert download_dataset.main(["--data_dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"downloading {download_dataset.DEFAULT_BASE_URL}train-volume.tif" in out
    assert f"md5 ok test-volume.tif {sums['test-volume.tif']}" in out
    assert (f"warning: train-labels.tif has MD5 {sums['train-labels.tif']}, the listed sum is "
            "657fe6b728c6dd0152e295c6d800001d; it decodes and passes the checks, so it is kept") in out
    assert sorted(os.listdir(target)) == sorted(readers.ISBI_FILES.values())
