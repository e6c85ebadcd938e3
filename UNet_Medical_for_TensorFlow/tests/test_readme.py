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
"""The README's commands name files that exist and flags the code takes (none is run here)."""

import os
import re
import shlex
import subprocess

import pytest

from conftest import MODEL_DIR
from runtime import flags

README = open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8").read()
COMMANDS = [line.strip() for line in README.splitlines() if line.startswith("    ") and
            re.match(r"\s+(RANK_SIZE=\d+ |data_dir=\S+ |PATH=\S+ )?(bash test/|python3 main.py|python3 benchmark.py|"
                     r"python3 download_dataset.py)",
                     line)]


def test_the_readme_shows_commands():
    assert len(COMMANDS) > 10


@pytest.mark.parametrize("command", [c for c in COMMANDS if "python3 main.py" in c])
def test_main_py_commands_parse(command):
    argv = shlex.split(command)
    flags.build_parser().parse_args(argv[argv.index("main.py") + 1:])


@pytest.mark.parametrize("command", [c for c in COMMANDS if "python3 benchmark.py" in c])
def test_benchmark_commands_parse(command):
    import benchmark

    argv = shlex.split(command)
    benchmark.build_parser().parse_args(argv[argv.index("benchmark.py") + 1:])


@pytest.mark.parametrize("command", [c for c in COMMANDS if "bash test/" in c])
def test_script_commands_take_their_flags(command):
    """Every flag before --help is checked by the script's flag loop (an unknown one exits 1)."""
    argv = shlex.split(command)
    argv = argv[argv.index("bash"):]
    assert os.path.isfile(os.path.join(MODEL_DIR, argv[1])), argv[1]
    if argv[1].endswith("quickstart_1p.sh"):
        return
    result = subprocess.run(["bash", argv[1], *argv[2:], "--help"], capture_output=True, text=True, cwd=MODEL_DIR,
                            timeout=60)
    assert result.returncode == 0, result.stderr
