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

import pytest

from common.tests import processes
from common.tests.readme_commands import commands
from conftest import MODEL_DIR
from runtime import flags

with open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8") as handle:
    README = handle.read()
MAINS = commands(README, "python3 main.py")
BENCHMARKS = commands(README, "python3 benchmark.py")
SCRIPTS = commands(README, "bash test/")


def test_the_readme_shows_commands():
    assert len(MAINS) + len(BENCHMARKS) + len(SCRIPTS) > 10


@pytest.mark.parametrize("command", MAINS, ids=[text for text, _, _ in MAINS])
def test_main_py_commands_parse(command):
    flags.build_parser().parse_args(command[2][2:])


@pytest.mark.parametrize("command", BENCHMARKS, ids=[text for text, _, _ in BENCHMARKS])
def test_benchmark_commands_parse(command):
    import benchmark

    benchmark.build_parser().parse_args(command[2][2:])


def dry_run(command, data_path, work_dir):
    """Run a README ``bash test/...`` command (``commands()``'s tuple) as common/train_script.sh's
    MZ_DRY_RUN=1 does: the script parses every flag as it would (an unknown flag or a bad value is one line
    and exit 2), prints the launcher's command and runs nothing. The wrapper scripts (train_5fold_1p.sh,
    train_nvidia_5fold_1p.sh) take part, which parsing here would not. --data_path points at ``data_path``;
    relative folders (a --ckpt_path) land in ``work_dir``."""
    _, assignments, words = command
    env = dict(os.environ, MZ_DRY_RUN="1", MZ_OUTPUT_DIR=os.path.join(work_dir, "output"))
    env.pop("RANK_SIZE", None)
    env.update((name, value) for name, value in assignments.items() if name == "RANK_SIZE")
    argv = [f"--data_path={data_path}" if word.startswith("--data_path=") else word for word in words[2:]]
    os.makedirs(os.path.join(work_dir, "work"), exist_ok=True)
    return processes.run(["bash", os.path.join(MODEL_DIR, words[1]), *argv], capture_output=True, text=True,
                         cwd=os.path.join(work_dir, "work"), env=env, timeout=120)


@pytest.mark.subprocess
@pytest.mark.parametrize("command", SCRIPTS, ids=[text for text, _, _ in SCRIPTS])
def test_script_commands_take_their_flags(command, isbi_dir, tmp_path):
    script = command[2][1]
    assert os.path.isfile(os.path.join(MODEL_DIR, script)), script
    if script.endswith("quickstart_1p.sh"):  # a data folder, no flags
        return
    result = dry_run(command, isbi_dir, str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert os.path.join(MODEL_DIR, "main.py") in result.stdout.splitlines()  # the launcher's command


@pytest.mark.subprocess
def test_a_script_command_with_a_flag_no_script_takes_fails(isbi_dir, tmp_path):
    for text in ("bash test/train_full_1p.sh --data_path=./data --no_such_flag=3",
                 "bash test/train_nvidia_5fold_1p.sh --data_path=./data --no_such_flag=3"):
        (command,) = commands("    " + text, "bash test/")
        result = dry_run(command, isbi_dir, str(tmp_path))
        assert result.returncode == 2 and "unrecognized arguments: --no_such_flag=3" in result.stderr, result.stderr
