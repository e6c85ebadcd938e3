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
"""The README's commands name scripts that exist and flags the code takes: each is parsed here by the
parser that will read it (a script's flags as common/script_flags.py parses them); nothing runs."""

import os

import pytest

from common.errors import UserError
from common.tests.readme_commands import check_script_command, commands, parse_script_flags
from conftest import MODEL_DIR
from runtime import flags

with open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8") as handle:
    README = handle.read()
SCRIPTS = commands(README, "bash test/")
MAINS = commands(README, "python3 main.py")


def test_the_readme_shows_commands():
    assert len(SCRIPTS) >= 3 and len(MAINS) >= 3


@pytest.mark.parametrize("command", SCRIPTS, ids=[text for text, _, _ in SCRIPTS])
def test_script_commands_take_their_flags(command):
    check_script_command(MODEL_DIR, flags.build_parser, command[2])


@pytest.mark.parametrize("command", MAINS, ids=[text for text, _, _ in MAINS])
def test_main_py_commands_parse(command):
    flags.build_parser().parse_args(command[2][2:])


def test_a_flag_nothing_takes_fails_the_check():
    with pytest.raises(UserError, match="unrecognized arguments: --no_such_flag=3"):
        parse_script_flags(flags.build_parser, ["--data_path=/data/shapes", "--no_such_flag=3"])
