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
"""Download the ISBI 2012 stacks, check them like the loader does, and compare their MD5 sums.

    python3 download_dataset.py --data_dir ./data

fetches train-volume.tif, train-labels.tif and test-volume.tif from the
challenge site's files folder (``--base_url`` for a mirror) into a temporary
folder inside DATA_DIR, decodes and checks them with data_loading.readers,
and only then moves them into DATA_DIR. Each file's MD5 is compared with the
sum one public loader lists; a difference stops the download naming both sums,
unless ``--allow_checksum_mismatch`` keeps such a copy (the site may serve a
re-saved one). Any failure (an HTTP error, a refused or timed-out connection,
an answer that is not HTTP, a body cut short) leaves no partial file or
folder behind and prints one line naming the URL and what to do; exit status 2.
"""

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

# The repository root holds common/; this makes the script run from anywhere.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import cli, errors  # noqa: E402
from common.errors import UserError  # noqa: E402
from data_loading import readers  # noqa: E402
from runtime import flags  # noqa: E402

CHUNK_BYTES = 1 << 20
# The challenge site's files folder (NVIDIA's TF1 download script and several
# public loaders use it; the site may ask for a registration first).
DEFAULT_BASE_URL = "http://brainiac2.mit.edu/isbi_challenge/sites/default/files/"
# MD5 sums one public loader lists for the three files.
LISTED_MD5 = {"train-volume.tif": "465461edbe0254630c4ec5577f1e7764",
              "train-labels.tif": "657fe6b728c6dd0152e295c6d800001d",
              "test-volume.tif": "9767660d7abe4e0ecbdd0061a16058ad"}


RETRY = "check the URL and the network and run the command again, or give a mirror's folder with --base_url"


def fetch(url, path, timeout):
    """Copy ``url`` to ``path``; a body shorter than the server's Content-Length is an error.

    Raises:
      UserError: one line naming ``url``: the server cannot be reached, times
        out, answers with an HTTP error or not in HTTP, or cuts the body short.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK_BYTES)
            expected, received = response.headers.get("Content-Length"), out.tell()
        if expected is not None and expected.isdigit() and received < int(expected):
            raise UserError(f"cannot download {url}: the connection closed after {received} of {expected} "
                            f"bytes; {RETRY}")
    except urllib.error.HTTPError as error:
        raise UserError(f"cannot download {url}: HTTP {error.code} {error.reason}; {RETRY}") from None
    except http.client.IncompleteRead:
        raise UserError(f"cannot download {url}: the connection closed in the middle of the body (a chunked "
                        f"body cut short); {RETRY}") from None
    except http.client.HTTPException as error:  # BadStatusLine, RemoteDisconnected, LineTooLong, ...
        raise UserError(f"cannot download {url}: the server's answer is not valid HTTP "
                        f"({type(error).__name__}: {str(error)[:80]!r}); {RETRY}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:  # refused, timed out, reset, bad URL
        reason = getattr(error, "reason", None) or error
        raise UserError(f"cannot download {url}: {str(reason) or type(reason).__name__}; {RETRY}") from None


def check(staging, data_dir, base_url):
    """Check the staged stacks like the loader does.

    Raises:
      UserError: the loader's message, with each staged file (deleted
        afterwards) replaced by its URL, and the final file names not written.
    """
    try:
        readers.read_isbi(staging)
    except UserError as error:
        message, finals = str(error), []
        for name in readers.ISBI_FILES.values():
            staged = os.path.join(staging, name)
            if staged in message:
                message = message.replace(staged, f"{base_url.rstrip('/')}/{name}")
                finals.append(os.path.join(data_dir, name))
        not_written = f"; not saved as {', '.join(finals)}" if finals else f"; nothing saved in {data_dir}"
        raise UserError(message + not_written) from None


def check_md5(path, url, final, allow_mismatch):
    """One line, ``md5 ok NAME SUM`` or (``allow_mismatch``) a warning naming both sums.

    Raises:
      UserError: the MD5 of ``path`` (fetched from ``url``) differs from the
        listed one and ``allow_mismatch`` is False; ``final`` is not written.
    """
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    name = os.path.basename(final)
    actual, listed = digest.hexdigest(), LISTED_MD5[name]
    if actual == listed:
        return f"md5 ok {name} {actual}"
    if not allow_mismatch:
        raise UserError(f"{url} has MD5 {actual}, the listed sum is {listed}; not saved as {final} (it decodes "
                        "and passes the checks: --allow_checksum_mismatch keeps such a re-saved or other copy)")
    return (f"warning: {name} has MD5 {actual}, the listed sum is {listed}; it decodes and passes the "
            "checks, so it is kept (--allow_checksum_mismatch)")


def _created_folders(path):
    """The folders ``os.makedirs(path)`` would create, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def download(data_dir, base_url, timeout=60, allow_checksum_mismatch=False):
    """Fetch and check the three stacks; returns their final paths.

    A failure leaves ``data_dir`` as it was: the staging folder goes, and so
    do the folders this call created.

    Raises:
      UserError: ``data_dir`` is (or lies under) a file, or a download, check
        or (without ``allow_checksum_mismatch``) MD5 comparison fails.
    """
    flags.check_folder_flag("data_dir", data_dir)
    created = _created_folders(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".download-", dir=data_dir)
    finished = False
    try:
        for name in readers.ISBI_FILES.values():
            url = f"{base_url.rstrip('/')}/{name}"
            print(f"downloading {url}", flush=True)
            fetch(url, os.path.join(staging, name), timeout)
        check(staging, data_dir, base_url)
        for name in readers.ISBI_FILES.values():
            print(check_md5(os.path.join(staging, name), f"{base_url.rstrip('/')}/{name}",
                            os.path.join(data_dir, name), allow_checksum_mismatch), flush=True)
        paths = []
        for name in readers.ISBI_FILES.values():
            paths.append(os.path.join(data_dir, name))
            os.replace(os.path.join(staging, name), paths[-1])
        finished = True
        return paths
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not finished:
            for folder in created:  # deepest first; a folder something else wrote into stays
                try:
                    os.rmdir(folder)
                except OSError:
                    break


@errors.exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="where the three stacks go")
    parser.add_argument("--base_url", default=DEFAULT_BASE_URL,
                        help="URL of the folder holding train-volume.tif, train-labels.tif, test-volume.tif "
                             "(default: the challenge site's files folder; a mirror's URL here)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per request (default %(default)s)")
    cli.add_bool_flag(parser, "--allow_checksum_mismatch", "keep files whose MD5 differs from the listed "
                      "sum once they decode and pass the checks (a re-saved copy of the stack)")
    args = parser.parse_args(argv)
    for path in download(args.data_dir, args.base_url, args.timeout, args.allow_checksum_mismatch):
        print(f"ok {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
