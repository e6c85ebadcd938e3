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
"""The README's commands name files that exist and flags the code takes: main.py's and benchmark.py's parsed
here, the scripts' by the scripts themselves in a dry run (nothing trains)."""

import os
import re
import shlex

import pytest

from common.tests import processes
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


def dry_run(command, data_path, work_dir):
    """Run a README ``bash test/...`` command as common/train_script.sh's MZ_DRY_RUN=1 does: the script
    parses every flag as it would (an unknown flag or a bad value is one line and exit 2), prints the
    launcher's command and runs nothing. --data_path points at ``data_path``; relative folders (a
    --ckpt_path) land in ``work_dir``."""
    words = shlex.split(command)
    start = words.index("bash")
    env = dict(os.environ, MZ_DRY_RUN="1", MZ_OUTPUT_DIR=os.path.join(work_dir, "output"))
    env.pop("RANK_SIZE", None)
    env.update(word.split("=", 1) for word in words[:start] if word.startswith("RANK_SIZE="))
    argv = [f"--data_path={data_path}" if word.startswith("--data_path=") else word for word in words[start + 2:]]
    os.makedirs(os.path.join(work_dir, "work"), exist_ok=True)
    return processes.run(["bash", os.path.join(MODEL_DIR, words[start + 1]), *argv], capture_output=True, text=True,
                         cwd=os.path.join(work_dir, "work"), env=env, timeout=120)


SCRIPT_COMMANDS = [c for c in COMMANDS if "bash test/" in c]


@pytest.mark.subprocess
@pytest.mark.parametrize("command", SCRIPT_COMMANDS)
def test_script_commands_take_their_flags(command, isbi_dir, tmp_path):
    words = shlex.split(command)
    script = words[words.index("bash") + 1]
    assert os.path.isfile(os.path.join(MODEL_DIR, script)), script
    if script.endswith("quickstart_1p.sh"):  # a data folder, no flags
        return
    result = dry_run(command, isbi_dir, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert os.path.join(MODEL_DIR, "main.py") in result.stdout.splitlines()  # the launcher's command


@pytest.mark.subprocess
def test_a_script_command_with_a_flag_no_script_takes_fails(isbi_dir, tmp_path):
    for command in ("bash test/train_full_1p.sh --data_path=./data",
                    "bash test/train_nvidia_5fold_1p.sh --data_path=./data"):
        result = dry_run(command + " --no_such_flag=3", isbi_dir, str(tmp_path))
        assert result.returncode == 2 and "unrecognized arguments: --no_such_flag=3" in result.stderr, result.stderr
