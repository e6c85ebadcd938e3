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
"""For the models' README tests: the commands a README shows, and a script's flags parsed as the script
parses them, so that a command with a flag nothing takes fails its test."""

import os
import re
import shlex

ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def commands(readme_text, *programs):
    """The README's commands (lines indented by 4 spaces or more) that run one of ``programs``.

    ``programs`` are the words a command starts with, e.g. ``"bash test/"`` or
    ``"python3 main.py"``. A line ending in a backslash goes on on the next one;
    a ``#`` comment after a command is dropped, and so are the environment
    assignments in front of it (``RANK_SIZE=2``), which are kept apart.
    Returns ``[(command_text, assignments, words)]``.
    """
    found, lines, index = [], readme_text.splitlines(), 0
    while index < len(lines):
        text = lines[index].strip() if lines[index].startswith("    ") else ""
        while text.endswith("\\") and index + 1 < len(lines):
            index += 1
            text = text[:-1] + " " + lines[index].strip()
        index += 1
        try:
            words = shlex.split(text, comments=True)
        except ValueError:  # not a shell line (an unclosed quote in prose or output)
            continue
        assignments = dict(word.split("=", 1) for word in words if ASSIGNMENT.match(word))
        words = [word for word in words if not ASSIGNMENT.match(word)]
        if any(" ".join(words).startswith(program) for program in programs):
            found.append((text, assignments, words))
    return found


def parse_script_flags(build_parser, argv):
    """A model's test/*.sh flags ``argv`` parsed as common/script_flags.py parses them: the script's own
    (--ckpt_path, --train_steps, --rank_table_file), the rest by main.py's parser ``build_parser()``.

    Only names and values are checked (not whether a folder exists); a flag that
    neither takes, or a bad value, raises the parsers' one-line ``UserError``.
    Returns main.py's parsed namespace.
    """
    from common import script_flags

    _, rest = script_flags.launcher_parser().parse_known_args(argv)
    return build_parser().parse_args(rest)


def check_script_command(model_dir, build_parser, words):
    """A README's ``bash test/X.sh FLAGS`` (``words``, as :func:`commands` splits it): the script exists in
    ``model_dir`` and its flags parse (:func:`parse_script_flags`); a quickstart script takes a data folder,
    no flags."""
    assert os.path.isfile(os.path.join(model_dir, words[1])), words[1]
    if not words[1].endswith("quickstart_1p.sh"):
        parse_script_flags(build_parser, words[2:])
