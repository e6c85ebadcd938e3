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
"""The command line every model shares, free of TensorFlow (so ``main.py --help`` answers at once).

:class:`FlagParser` (one-line errors, no abbreviations), the shared flags
(``--mode`` and its vocabulary, booleans, checkpoints), which flags a user
gave, and the run folder's files that flags read before TensorFlow starts:
``config.json`` (a training run's flags) and where its checkpoints live.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NoReturn

from common.errors import UserError


RUN_CONFIG = "config.json"  # the training run's flags, in its --model_dir


CHECKPOINT_SUBDIR = "checkpoints"  # a run folder's checkpoints: <run folder>/checkpoints/ckpt-<step>


CHECKPOINT_LIST = "checkpoint"  # TensorFlow's file naming a folder's checkpoints, rewritten after each save


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a UserError of one line, without the usage text (exit 2
    through ``exit_on_user_error``), and which takes a flag only as spelled in full: a prefix that
    happens to match one flag today would silently mean another once a flag is added."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(**kwargs)

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see --help)")


# The repository's --mode vocabulary, the same words in every model (export where the model has it).
MODES = ("train", "evaluate", "train_and_evaluate", "predict", "export")


class _ModeAction(argparse.Action):
    """Stores the mode a spelling runs in ``dest`` and the flag as typed (``--mode=test``) in ``mode_flag``.

    It checks the word itself (no argparse ``choices``), so that a wrong one is named as typed
    (``--exec_mode=tran``), not as argparse names the flag (``argument --mode/--exec_mode``).
    """

    def __init__(self, option_strings, dest, spellings=None, words=(), **kwargs):
        self.spellings, self.words = spellings or {}, tuple(words)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if values not in self.words:
            parser.error(f"{option_string}={values}: expected one of {', '.join(self.words)}")
        setattr(namespace, self.dest, self.spellings.get(values, values))
        setattr(namespace, "mode_flag", f"{option_string}={values}")


def add_mode_flag(parser: argparse.ArgumentParser, modes: Sequence[str], help_text: str,
                  reference_modes: Mapping[str, str] | None = None, aliases: Sequence[str] = (),
                  default: str = "train") -> argparse.ArgumentParser:
    """Add ``--mode`` (dest ``mode``): ``modes``, the words of :data:`MODES` this model runs, in that order.

    ``reference_modes`` ({spelling: mode}): a reference's own spellings,
    accepted too; ``args.mode`` is the mode a spelling runs (``test`` ->
    ``evaluate``); a spelling that maps to itself is a reference's mode kept
    as it is. ``args.mode_flag`` is the flag as the user typed it
    (``--mode=test``, ``--exec_mode=evaluate``), for messages. ``aliases``:
    other option strings of the flag.

    Raises:
      ValueError: ``modes`` are not words of :data:`MODES` in its order, or a spelling runs no mode.
    """
    reference_modes = dict(reference_modes or {})
    if list(modes) != [mode for mode in MODES if mode in modes]:
        raise ValueError(f"modes {modes} are not words of {MODES} in its order")
    bad = [s for s, mode in reference_modes.items() if mode not in modes and mode != s]
    if bad:
        raise ValueError(f"reference spellings {bad} run no mode of {modes}")
    choices = tuple(modes) + tuple(reference_modes)
    parser.add_argument("--mode", *aliases, dest="mode", action=_ModeAction, spellings=reference_modes,
                        words=choices, default=default, metavar="{" + ",".join(choices) + "}", help=help_text)
    parser.set_defaults(mode_flag=f"--mode={default}")
    return parser


def str2bool(value: str | bool) -> bool:
    """argparse type for ModelZoo booleans: ``--flag=True|False|1|0|yes|no``."""
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def add_bool_flag(parser: argparse.ArgumentParser, name: str, help_text: str,
                  default: bool | None = False, aliases: Sequence[str] = (), dest: str | None = None) -> None:
    """Add ``--name`` (True), ``--name=True`` and ``--name=False``; ``aliases`` are other spellings."""
    extra = {"dest": dest} if dest else {}
    parser.add_argument(name, *aliases, type=str2bool, nargs="?", const=True, default=default,
                        metavar="True|False", help=f"{help_text} (default %(default)s)", **extra)


def positive_int(value: str | int) -> int:
    """argparse type: an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return number


def add_checkpoint_flags(parser: argparse.ArgumentParser, checkpoint_every: int, resume_aliases: Sequence[str] = (),
                         every_aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Add the checkpoint flags every model shares (``RunCheckpoints`` applies them).

    ``--resume`` (dest ``resume``): True continues the run folder's last
    checkpoint (a fresh start when it has none), False starts over and deletes
    its checkpoints, not given refuses a folder that holds one, so that no run
    is continued or overwritten by accident. ``--checkpoint_every`` (dest
    ``checkpoint_every``): steps between checkpoints; ``--keep_checkpoints``:
    how many of the newest stay.
    """
    group = parser.add_argument_group("checkpoints (common/checkpoints.py)")
    add_bool_flag(group, "--resume", "True: continue from the last checkpoint in the run folder (none: start "
                  "fresh); False: start over, deleting its checkpoints; not given: refuse a folder that holds one",
                  default=None, aliases=resume_aliases, dest="resume")
    group.add_argument("--checkpoint_every", *every_aliases, dest="checkpoint_every", type=positive_int,
                       default=checkpoint_every, help="steps between checkpoints (default %(default)s)")
    group.add_argument("--keep_checkpoints", type=positive_int, default=3,
                       help="how many of the newest checkpoints stay (default %(default)s)")
    return parser


def checkpoint_folder(run_dir: str) -> str:
    """Where the checkpoints of run folder ``run_dir`` live (common/checkpoints.RunCheckpoints)."""
    return os.path.join(run_dir, CHECKPOINT_SUBDIR)


def has_checkpoint(run_dir: str) -> bool:
    """Whether run folder ``run_dir`` names a checkpoint (its list exists; reading it is latest_checkpoint's job).

    Cheap and free of TensorFlow, for flag parsing.
    """
    return os.path.isfile(os.path.join(checkpoint_folder(run_dir), CHECKPOINT_LIST))


def parse_args_given(parser: argparse.ArgumentParser,
                     argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, set[str]]:
    """``parser.parse_args(argv)``, and the set of ``dest`` names whose flag was on the command line.

    argparse fills in a default only for a flag the command line lacks, so a
    second parse with every default set to a sentinel (``set_defaults``, put
    back afterwards) shows which flags the user gave.
    """
    args = parser.parse_args(argv)
    defaults = {dest: parser.get_default(dest) for dest in vars(args)}
    unset = object()
    parser.set_defaults(**{dest: unset for dest in defaults})
    try:
        marked = parser.parse_args(argv)
    finally:
        parser.set_defaults(**defaults)
    return args, {dest for dest in defaults if getattr(marked, dest) is not unset}


def write_run_config(model_dir: str, values: Mapping[str, Any]) -> None:
    """Write ``model_dir/config.json`` atomically (a reader never sees half a file).

    Training writes it once every check passed and the restore succeeded, so a
    failed run never changes what evaluate and predict will read.
    """
    os.makedirs(model_dir, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=model_dir, prefix=".config-", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(values, out, indent=2, sort_keys=True, default=str)
    os.replace(tmp, os.path.join(model_dir, RUN_CONFIG))


def read_run_config(model_dir: str) -> dict[str, Any] | None:
    """The dict a training run saved in ``model_dir/config.json``, or None when there is none."""
    path = os.path.join(model_dir, RUN_CONFIG)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a JSON object of flags")
    return config


def take_from_run_config(args: argparse.Namespace, given: Collection[str], names: Iterable[str], model_dir: str,
                         why: str = "its checkpoint fits only that") -> dict[str, Any] | None:

    """Set ``args.<name>`` from the training run's config.json for each of ``names`` it holds.

    A flag the user gave (in ``given``) that differs from the saved value is
    refused; one line says what was taken. Returns the config, or None.
    """
    config = read_run_config(model_dir)
    if config is None:
        return None
    path = os.path.join(model_dir, RUN_CONFIG)
    taken = []
    for name in (n for n in names if n in config):
        if name in given and getattr(args, name) != config[name]:
            raise UserError(f"--{name}={getattr(args, name)} contradicts the training run in {path}, which "
                            f"used --{name}={config[name]} ({why}); leave --{name} out")
        setattr(args, name, config[name])
        taken.append(f"--{name}={config[name]}")
    if taken:
        print(f"[flags] from {path}: {' '.join(taken)}", flush=True)
    return config
