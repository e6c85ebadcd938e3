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
"""The flags of a model's test/*.sh, parsed by the model's own main.py parser (common/train_script.sh calls this).

    python3 common/script_flags.py MODEL_DIR SCRIPT OUTPUT_ROOT N SETTING_1 .. SETTING_N USER_FLAG ...

A script takes the ModelZoo flags below (the launcher's) and every flag of the
model's ``main.py`` (the ModelZoo/Ascend debugging flags among them, declared
once in common/ascend.py), spelled as ``main.py`` spells them (``--flag=value``,
``--flag value``, a bare boolean), with ``main.py``'s defaults: the model's
``runtime/flags.py`` is the one source of each flag and default. The script's
SETTINGS (its own main.py flags, e.g. ``--mode=train``) come first, so a flag
the user gives wins. ``main.py``'s ``--model_dir`` (under any of its spellings)
is the script's ``--ckpt_path``.

Prints shell assignments for ``eval``: ``mz_main_args`` (main.py's arguments;
``{output_dir}`` stands for the rank's output folder), ``mz_launch_args`` (the
launcher's), and ``arg_<name>`` for each parsed main.py value. ``--help`` prints
the script's help and exits 0; a bad flag or value is one line and exit 2,
before anything runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from common import ascend  # noqa: E402
from common.cli import FlagParser, parse_args_given  # noqa: E402
from common.cluster import env_int  # noqa: E402
from common.errors import USER_ERROR_EXIT, UserError  # noqa: E402

RUN_FOLDER_PLACEHOLDER = "{output_dir}/ckpt"  # the launcher's per-rank folder, made anew by every run
DEFAULT_RANK_TABLE = os.path.join("configs", "rank_table_8p.json")  # in the model directory, as ModelZoo's


def launcher_parser() -> FlagParser:
    """The flags a script handles itself (the run folder, the step cap, the rank table); the rest are main.py's."""
    parser = FlagParser(add_help=False, prog="script")
    group = parser.add_argument_group("script flags (ModelZoo; common/train_script.sh)")
    group.add_argument("--ckpt_path", metavar="DIR",
                       help="run folder kept across reruns: checkpoints, config.json, every run's logs in "
                            "logs/segment-NNN/ (default: output/<device>/ckpt, made anew by every run); main.py's "
                            "--model_dir is the same flag")
    group.add_argument("--train_steps", "--max_step", metavar="N", type=int,
                       help="the ModelZoo name of main.py's --max_steps (step cap)")
    group.add_argument("--rank_table_file", metavar="FILE",
                       help="several devices (train_*_8p.sh) on Ascend: the HCCL rank table, exported as "
                            f"RANK_TABLE_FILE (default: $RANK_TABLE_FILE, else {DEFAULT_RANK_TABLE}, a template "
                            "to fill in; with CM_CHIEF_IP set, none)")
    return parser


def _script_help(script):
    """The comment block under the script's shebang: what the script runs."""
    lines = []
    with open(script, encoding="utf-8") as handle:
        for line in handle.read().splitlines()[1:]:
            if not line.startswith("#"):
                break
            lines.append(line[2:] if line.startswith("# ") else line[1:])
    return "\n".join(lines)


def print_help(script: str, settings: list[str], given: Sequence[str], launcher: argparse.ArgumentParser,
               build_parser: Callable[[], argparse.ArgumentParser]) -> None:
    name = os.path.basename(os.environ.get("MZ_SCRIPT") or script)
    print(f"usage: bash test/{name} --data_path=DIR [flags]\n")
    print(_script_help(os.environ.get("MZ_SCRIPT") or script) + "\n")
    print(_without_usage(launcher) + "\n")
    passed = [flag for flag in given if flag not in ("-h", "--help")]  # from a script that calls this one
    print("Every main.py flag below is a flag of this script too, with main.py's default"
          + (f"; this script sets {' '.join(settings + passed)} (a flag you give wins)" if settings + passed else "")
          + ":\n")
    print(_without_usage(build_parser()))


def _without_usage(parser):
    """The parser's help from its description on (its usage block is long and says nothing the list does not)."""
    return parser.format_help().split("\n\n", 1)[-1].rstrip()


def _one_line(error_text):
    """argparse's error (after its usage text) or a UserError, as one line."""
    lines = [line for line in error_text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "bad flags"


def _model_flags(model_dir):
    """The model's runtime/flags.py (free of TensorFlow), imported as main.py imports it."""
    sys.path.insert(0, model_dir)
    from runtime import flags  # pylint: disable=import-outside-toplevel
    return flags


def _parse(parse, argv):
    """``parse(argv)``, its notes held back (main.py prints them again), any error as a UserError of one line."""
    notes = io.StringIO()
    try:
        with contextlib.redirect_stderr(notes), contextlib.redirect_stdout(notes):
            result = parse(argv)
    except SystemExit as stop:
        if stop.code in (0, None):
            raise
        raise UserError(_one_line(notes.getvalue())) from None
    return result


def _rank_table(script_args, model_dir):
    """The launcher's ``--rank_table_file`` for this run, or None: only with several ranks (RANK_SIZE, which
    train_script.sh set: 1 unless an 8p script called it), never beside CM_CHIEF_IP unless asked for."""
    rank_size = env_int(os.environ, "RANK_SIZE", 1, 1)
    if rank_size == 1:
        if script_args.rank_table_file:
            raise UserError("--rank_table_file is for several devices (train_full_8p.sh, "
                            "train_performance_8p.sh); this run has one")
        return None
    if script_args.rank_table_file:
        return os.path.abspath(script_args.rank_table_file)
    if os.environ.get("RANK_TABLE_FILE") or os.environ.get("CM_CHIEF_IP"):
        return None  # the environment's, exported as it is
    return os.path.join(model_dir, DEFAULT_RANK_TABLE)


def _dump_folders(parsed, given, output_root):
    """A switched-on dump or profiling goes under the script's output folder unless the user named its folder."""
    return [f"--{switch.path_flag}={os.path.join(output_root, switch.folder)}" for switch in ascend.SWITCHES
            if switch.path_flag and getattr(parsed, switch.flag) and switch.path_flag not in given]


def resolve(model_dir: str, output_root: str, settings: Sequence[str], user_flags: Sequence[str],
            launcher: argparse.ArgumentParser) -> tuple[list[str], list[str], dict[str, Any]]:
    """The main.py arguments, the launcher's options and the parsed main.py values; raises UserError."""
    script_args, rest = launcher.parse_known_args(user_flags)
    flags = _model_flags(model_dir)
    main_args = list(settings) + rest
    parsed, given = _parse(lambda argv: parse_args_given(flags.build_parser(), argv), main_args)
    ckpt_path = script_args.ckpt_path
    if "model_dir" in given:
        if ckpt_path:
            raise UserError("--ckpt_path and main.py's --model_dir name the same run folder: give one")
        ckpt_path = parsed.model_dir
    if not parsed.data_path or "data_path" not in given:
        raise UserError('para "data_path" must be config')
    if not os.path.isdir(parsed.data_path):
        raise UserError(f"--data_path={parsed.data_path} is not a folder")
    rank_table = _rank_table(script_args, model_dir)
    resume = parsed.resume if "resume" in given else True
    if ckpt_path:
        if os.path.exists(ckpt_path) and not os.path.isdir(ckpt_path):
            raise UserError(f"--ckpt_path={ckpt_path} is a file, not a folder")
    run_folder = os.path.abspath(ckpt_path) if ckpt_path else RUN_FOLDER_PLACEHOLDER
    main_args += _dump_folders(parsed, given, output_root)
    main_args += [f"--data_path={os.path.abspath(parsed.data_path)}", f"--model_dir={run_folder}",
                  f"--resume={bool(resume and ckpt_path)}"]
    if script_args.train_steps is not None:
        main_args.append(f"--max_steps={script_args.train_steps}")
    with tempfile.TemporaryDirectory() as fresh:  # the checks of a fresh per-rank run folder
        checked = [arg.replace("{output_dir}", fresh) for arg in main_args]
        values = _parse(flags.parse_args, checked)
    if ckpt_path:  # made once every flag passed: a refused flag creates nothing
        os.makedirs(ckpt_path, exist_ok=True)
    launch_args = [f"--run_folder={run_folder}"] if ckpt_path else []
    if rank_table:
        launch_args.append(f"--rank_table_file={rank_table}")
    return main_args, launch_args, vars(values)


def shell_assignments(main_args: Sequence[str], launch_args: Sequence[str], values: Mapping[str, Any]) -> str:
    """Bash code that sets mz_main_args, mz_launch_args and arg_<name> for each scalar value."""
    lines = ["mz_main_args=(" + " ".join(map(shlex.quote, main_args)) + ")",
             "mz_launch_args=(" + " ".join(map(shlex.quote, launch_args)) + ")"]
    for name, value in sorted(values.items()):
        if name.isidentifier() and (value is None or isinstance(value, (str, int, float, bool))):
            lines.append(f"arg_{name}={shlex.quote('' if value is None else str(value))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    model_dir, script, output_root, count = argv[0], argv[1], argv[2], int(argv[3])
    settings, user_flags = argv[4:4 + count], argv[4 + count:]
    launcher = launcher_parser()
    if "-h" in user_flags or "--help" in user_flags:
        print_help(script, settings, user_flags, launcher, _model_flags(model_dir).build_parser)
        return 0
    try:
        print(shell_assignments(*resolve(model_dir, output_root, settings, user_flags, launcher)))
    except UserError as error:
        print(f"[Error] {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
