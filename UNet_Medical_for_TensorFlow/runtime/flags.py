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
"""Every flag of the model, in one place, with its default and meaning; the checks; config.json.

The parsed names (``args.<dest>``) are the ones every model of the
repository shares (``data_path``, ``model_dir``, ``mode``, ``max_steps``,
``batch_size``, ``resume``, ...). The reference's spellings (NVIDIA:
``--exec_mode``, ``--data_dir``, ``--resume_training``, ``--xla``, ``--amp``,
``--no-augment``) are aliases of those flags. NVIDIA's ``--fold N`` is ``--crossvalidation_idx=N``
with NVIDIA's folds (``--fold_scheme=nvidia`` unless given), and NVIDIA's
``--log_dir FILE.json`` writes NVIDIA's JSON lines to that file, so the
commands of NVIDIA's TF2 README and ``examples/*.sh`` run as written.

``config.json`` in ``--model_dir`` (common/cli.RUN_CONFIG) is written
here (:func:`write_run_config`), by training once every check passed and the
checkpoint restore succeeded. evaluate, predict and a resumed training read it here:
the network's shape (evaluate and resume: also the fold and seed) come from
there, so they need not be repeated and cannot silently differ. A config.json
written before the common names (``data_dir``, ``exec_mode`` keys) reads the same.

Imports no TensorFlow: ``--help`` and a flag error answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from common import cli, npu_utils
from common.errors import UserError
from data_loading import folds
from model import tile_sizes

# NumPy seeds its generators (the folds' permutation, the tiles) from 0..2**32-1 only.
MAX_SEED = 2 ** 32 - 1
MODES = cli.MODES[:4]  # train, evaluate, train_and_evaluate, predict: the repository's words
# NVIDIA's own mode, kept as it is: train, then predict the test images (train_and_evaluate, then predict).
REFERENCE_MODES = {"train_and_predict": "train_and_predict"}
INPUT_MODES = ("overlap_tile", "resize")
AUGMENT_SETS = ("nvidia", "full")
# What evaluate, predict and a resume take from the training run: the
# checkpoint only fits a network of the same width and class count.
ARCHITECTURE_FLAGS = ("base_filters", "n_classes")
# What evaluate and a resume also take: they fix the validation slices.
FOLD_FLAGS = ("seed", "crossvalidation_idx", "fold_scheme")
# Taken from the training run by evaluate and predict (a resume: unless given).
# The tile size and batch size may differ: the network is fully convolutional,
# so any valid overlap tile runs the same weights at the same scale, and the
# batch size only groups NVIDIA's eval_dice_score. The input path may not: a
# network trained on resized slices scores native-resolution tiles wrongly,
# and the reverse; nor may the tile size of a resize run, which sets the scale.
INPUT_FLAGS = ("tile_size", "input_mode", "batch_size")
FREE_INPUT_FLAGS = ("tile_size", "batch_size")
WHY = {"evaluate": "its checkpoint fits only that network, and another fold or seed would score slices "
                   "it trained on",
       "predict": "its checkpoint fits only that network",
       "resume": "a resumed run continues that run's network and training slices; use another "
                 "--model_dir or --resume=False to start a new one"}


def build_parser() -> cli.FlagParser:
    """The argparse parser of main.py (NVIDIA's flags, the common aliases, ours, common/cli.py's and common/npu_utils.py's)."""
    parser = cli.FlagParser(description="UNet for the ISBI 2012 EM stack (NVIDIA UNet_Medical).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.add_mode_flag(parser, MODES, reference_modes=REFERENCE_MODES, aliases=("--exec_mode",),
                      help_text="what to run (the seed README's default: train); train_and_predict: "
                                      "NVIDIA's, training then predict's output")
    parser.add_argument("--model_dir", default="./results",
                        help="the run folder: checkpoints, config.json, TensorBoard, the exported unet.keras "
                             "(unet.h5 on TF 2.6), predictions/")
    parser.add_argument("--log_dir", default=None,
                        help="a folder: also write JSON lines to LOG_DIR/log.jsonl; a path ending in .json "
                             "(NVIDIA's --log_dir $3/log.json): NVIDIA's dllogger lines to that file")
    parser.add_argument("--data_path", "--data_dir", dest="data_path", default="./data",
                        help="ISBI stacks (train-volume.tif, train-labels.tif, test-volume.tif) "
                             "or own data (images/, masks/, optional test/)")
    parser.add_argument("--batch_size", type=int, default=1, help="tiles per step per device")
    parser.add_argument("--crossvalidation_idx", type=int, default=None,
                        help=f"fold 0..{folds.NUM_FOLDS - 1} to validate on (6 of 30 slices); "
                             "none: train on every slice; evaluate/resume: the training run's")
    parser.add_argument("--fold", type=int, default=None,
                        help="NVIDIA's spelling: --crossvalidation_idx=FOLD with --fold_scheme=nvidia "
                             "(unless --fold_scheme is given; evaluate/resume: the training run's scheme)")
    parser.add_argument("--fold_scheme", default="partition", choices=folds.FOLD_SCHEMES,
                        help="partition: five disjoint validation folds covering every slice; nvidia: NVIDIA's "
                             "five overlapping folds exactly (slices 2, 10, 13, 28 of ISBI never validated); "
                             "evaluate/resume: the training run's")
    parser.add_argument("--max_steps", type=int, default=1000,
                        help="step cap of training (0: none, then --train_epochs caps it)")
    parser.add_argument("--train_epochs", type=int, default=0,
                        help="epoch cap of training (0: none); an epoch is as many tiles as the "
                             "training fold has slices; training stops at the first cap reached")
    parser.add_argument("--seed", type=int, default=0,
                        help="drives folds, tiles, augmentation, weights; evaluate/resume: the training run's")
    parser.add_argument("--weight_decay", type=float, default=0.0005, help="L2 factor on all weights")
    parser.add_argument("--log_every", type=int, default=100, help="steps between TRAIN lines")
    parser.add_argument("--learning_rate", type=float, default=0.0001, help="Adam, constant")
    cli.add_bool_flag(parser, "--augment", "augment the training tiles (see --augment_set)")
    # SUPPRESS: --augment sets the default (False); the help then shows no default of its own for this spelling.
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=argparse.SUPPRESS,
                        help="NVIDIA's --augment=False")
    parser.add_argument("--augment_set", default="nvidia", choices=AUGMENT_SETS,
                        help="nvidia: flips, crop-resize, brightness (NVIDIA's exact set); "
                             "full: also rot90 and elastic deformation")
    parser.add_argument("--input_mode", default="overlap_tile", choices=INPUT_MODES,
                        help="overlap_tile: random tiles at native resolution, mirrored borders (paper); "
                             "resize: NVIDIA's whole slice resized to the output size and zero-padded; "
                             "evaluate/predict: the training run's (another one is refused)")
    cli.add_bool_flag(parser, "--benchmark", "time steps after --warmup_steps; no checkpoints")
    parser.add_argument("--no-benchmark", dest="benchmark", action="store_false", default=argparse.SUPPRESS,
                        help="NVIDIA's --benchmark=False")
    parser.add_argument("--evaluate_every", type=int, default=0,
                        help="training: evaluate the validation fold every N steps (NVIDIA's; 0: only "
                             "train_and_evaluate's evaluation at the end)")
    cli.add_bool_flag(parser, "--use_savedmodel", "evaluate/predict: the weights of the exported model "
                      "file (unet.keras, unet.h5 on TF 2.6) instead of the last checkpoint (NVIDIA's "
                      "saved_model_*); training always exports it")
    cli.add_bool_flag(parser, "--use_tftrt", "accepted for NVIDIA's commands; TF-TRT is not part of this "
                      "repository, so the Keras model runs")
    parser.add_argument("--warmup_steps", type=int, default=200, help="steps left out of benchmark figures")
    parser.add_argument("--base_filters", type=int, default=64,
                        help="first level's width (64 = NVIDIA); evaluate/predict/resume: the training run's")
    parser.add_argument("--tile_size", type=int, default=572,
                        help="input tile side (572 -> 388 output); evaluate/predict: the training run's "
                             "unless given")
    parser.add_argument("--n_classes", type=int, default=2,
                        help="classes of own data (ISBI: 2); evaluate/predict/resume: the training run's")
    cli.add_bool_flag(parser, "--save_probabilities", "predict: also write each pixel's cell probability as a "
                      "32-bit float TIFF beside the masks (ISBI: test-probabilities.tif, one page per slice, "
                      "the ISBI 2012 challenge's submission format: 0 = membrane, 1 = cell interior)")
    parser.add_argument("--pretrained_checkpoint", default=None,
                        help="--model_dir of an earlier run to start from (all but the last layer "
                             "when the class count differs)")
    # --resume (dest resume), --checkpoint_every, --keep_checkpoints: the rules every model shares;
    # NVIDIA's --resume_training stays an alias.
    cli.add_checkpoint_flags(parser, checkpoint_every=100, resume_aliases=("--resume_training",))
    npu_utils.add_device_flags(parser)
    cli.add_bool_flag(parser, "--xla", "NVIDIA's spelling of --use_xla", dest="use_xla")
    cli.add_bool_flag(parser, "--amp", "NVIDIA's spelling of --use_amp", dest="use_amp")
    return parser


def write_run_config(args: argparse.Namespace, ctx: npu_utils.RunContext) -> None:
    """Write the run's flags, device and precision as ``<model_dir>/config.json`` (cli.RUN_CONFIG).

    Training's chief calls it once every check passed and the restore
    succeeded, so evaluate, predict and a resume read what trained the weights
    (:func:`take_from_training_run`).
    """
    cli.write_run_config(args.model_dir, dict(vars(args), device=ctx.device,
                                                    precision=ctx.precision.policy, rank_size=ctx.ranks.rank_size))


def nvidia_log_file(log_dir: str | None) -> bool:
    """True when ``--log_dir`` names NVIDIA's JSON log file (``.json``) rather than a folder."""
    return bool(log_dir) and log_dir.endswith(".json")


def trains(args: argparse.Namespace) -> bool:
    """True for the modes that train (train, train_and_evaluate, train_and_predict)."""
    return args.mode.startswith("train")


def check_step_plan(args: argparse.Namespace, total_steps: int) -> None:
    """A training --benchmark needs steps after its warm-up.

    Raises:
      UserError: ``total_steps`` leaves none.
    """
    if args.benchmark and total_steps <= args.warmup_steps:
        raise UserError(f"--benchmark: training ends at step {total_steps} (--max_steps={args.max_steps}, "
                        f"--train_epochs={args.train_epochs}), which leaves no step after "
                        f"--warmup_steps={args.warmup_steps}")


def _check_values(args):
    for name in ("batch_size", "log_every", "base_filters"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name}={getattr(args, name)} must be at least 1")
    if args.max_steps < 0 or args.train_epochs < 0:
        raise UserError(f"--max_steps={args.max_steps} and --train_epochs={args.train_epochs} must be >= 0")
    if args.max_steps == 0 and (args.train_epochs == 0 or not trains(args)):
        raise UserError("--max_steps=0 needs --train_epochs (training) as the cap; evaluate and predict "
                        "--benchmark time --max_steps batches")
    if args.evaluate_every < 0:
        raise UserError(f"--evaluate_every={args.evaluate_every} must be >= 0 (0: never during training)")
    if args.warmup_steps < 0 or args.learning_rate <= 0 or args.weight_decay < 0:
        raise UserError("--warmup_steps and --weight_decay must be >= 0 and --learning_rate > 0")
    if trains(args) and not args.train_epochs:
        check_step_plan(args, args.max_steps)
    if args.n_classes < 2:
        raise UserError(f"--n_classes={args.n_classes} must be at least 2")
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed={args.seed} must be in 0..{MAX_SEED} (NumPy's seed range)")
    if args.save_probabilities and not args.mode.endswith("predict"):
        raise UserError(f"--save_probabilities writes predictions; {args.mode_flag} makes none "
                        "(predict or train_and_predict)")
    folds.check_fold(args.crossvalidation_idx)
    if args.model_dir:
        check_folder_flag("model_dir", args.model_dir)
    if nvidia_log_file(args.log_dir):
        if os.path.isdir(args.log_dir):
            raise UserError(f"--log_dir={args.log_dir} is a folder; a path ending in .json names NVIDIA's log file")
        check_folder_flag("log_dir", os.path.dirname(os.path.abspath(args.log_dir)))
    elif args.log_dir:
        check_folder_flag("log_dir", args.log_dir)


def _apply_nvidia_fold(args, given):
    """NVIDIA's ``--fold N``: ``--crossvalidation_idx=N`` on NVIDIA's folds unless ``--fold_scheme`` is given.

    Evaluate takes the scheme from the training run (config.json), so only training sets it here.

    Raises:
      UserError: ``--fold`` and ``--crossvalidation_idx`` name different folds.
    """
    if "fold" not in given:
        return
    if "crossvalidation_idx" in given and args.crossvalidation_idx != args.fold:
        raise UserError(f"--fold={args.fold} and --crossvalidation_idx={args.crossvalidation_idx} name different "
                        "folds; give one of them")
    args.crossvalidation_idx = args.fold
    given.add("crossvalidation_idx")
    if trains(args) and "fold_scheme" not in given:
        args.fold_scheme = "nvidia"
        given.add("fold_scheme")


def check_folder_flag(name: str, path: str) -> None:
    """``--name=path`` must be a folder or creatable as one: no file at ``path`` or on the way to it.

    Raises:
      UserError: naming the flag and the file in the way.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--{name}={path} is a file; expected a folder (it is created when missing)")
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"--{name}={path}: {existing} is a file, so the folder cannot be created")


def take_from_training_run(args: argparse.Namespace, given: set[str]) -> None:
    """evaluate, predict and a resume: the network (evaluate, resume: also the fold) from config.json.

    A flag also on the command line must agree with the training run (one
    line naming both values otherwise); ``--tile_size`` (but for evaluate and
    predict of an ``--input_mode=resize`` run) and ``--batch_size`` may differ
    (and, in a resume, ``--input_mode``). evaluate and predict say
    when ``--data_path`` is not the run's. Nothing changes when ``--model_dir``
    holds no config.json.

    Raises:
      UserError: a contradicting flag, or evaluate of a run with no held-out fold.
    """
    if trains(args):
        if args.resume and not args.benchmark and cli.has_checkpoint(args.model_dir):
            names = ARCHITECTURE_FLAGS + FOLD_FLAGS + tuple(n for n in INPUT_FLAGS if n not in given)
            cli.take_from_run_config(args, given, names, args.model_dir, WHY["resume"])
        return
    evaluates = args.mode == "evaluate" and not args.benchmark
    config = cli.read_run_config(args.model_dir)
    if config is None:
        if not args.benchmark:  # a --benchmark of random weights needs no training run
            raise UserError(f"--model_dir={args.model_dir}: no training run there (no {cli.RUN_CONFIG}); "
                            f"{args.mode_flag} needs the --model_dir of a training run")
        return
    if evaluates and config.get("crossvalidation_idx", 0) is None:
        raise UserError(f"{args.mode_flag}: the training run in "
                        f"{os.path.join(args.model_dir, cli.RUN_CONFIG)} trained on every slice "
                        "(no --crossvalidation_idx), so no slice is held out to evaluate on")
    _check_input_of_training_run(args, given, config)
    names = ARCHITECTURE_FLAGS + (FOLD_FLAGS if evaluates else ())
    names += tuple(name for name in INPUT_FLAGS if name not in given or name not in FREE_INPUT_FLAGS)
    cli.take_from_run_config(args, given, names, args.model_dir,
                             WHY["evaluate" if evaluates else "predict"])


def _check_input_of_training_run(args, given, config):
    """evaluate/predict: refuse another ``--input_mode`` than the run's, and another ``--tile_size`` than a
    resize run's (the scale its slices were resized to); say when ``--data_path`` differs.

    Raises:
      UserError: ``--input_mode``, or a resize run's ``--tile_size``, given and not the training run's.
    """
    path = os.path.join(args.model_dir, cli.RUN_CONFIG)
    trained_mode = config.get("input_mode")
    if "input_mode" in given and trained_mode and args.input_mode != trained_mode:
        raise UserError(f"--input_mode={args.input_mode} contradicts the training run in {path}, which used "
                        f"--input_mode={trained_mode} (the network learned that input path; the other one would "
                        f"score it wrongly); leave --input_mode out")
    trained_tile = config.get("tile_size")
    if (trained_mode == "resize" and "tile_size" in given and args.tile_size != trained_tile
            and not args.benchmark):  # a --benchmark times random tiles: no scale to keep
        raise UserError(f"--tile_size={args.tile_size} contradicts the training run in {path}, which resized every "
                        f"slice to the output of --tile_size={trained_tile} (--input_mode=resize: another tile size "
                        "shows the network another scale); leave --tile_size out")
    trained_data = config.get("data_path", config.get("data_dir"))  # a run of an earlier version: data_dir
    if trained_data and os.path.realpath(trained_data) != os.path.realpath(args.data_path):
        print(f"[flags] --data_path={args.data_path} is not the training run's --data_path={trained_data} "
              f"({path}; a relative path there is relative to where training ran): "
              f"{args.mode_flag} reads {args.data_path}", flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:

    """Parse and check the flags; evaluate, predict and a resume also read the training run's config.json.

    Raises:
      UserError: a value out of range, a mode that needs another flag, a
        path that is a file, or a flag that contradicts the training run.
    """
    args, given = cli.parse_args_given(build_parser(), argv)
    _apply_nvidia_fold(args, given)
    _check_values(args)
    take_from_training_run(args, given)
    # train_and_evaluate evaluates even after a --benchmark training; evaluate
    # --benchmark times random tiles and needs no validation slices.
    needs_fold = args.mode == "train_and_evaluate" or (args.mode == "evaluate" and not args.benchmark)
    if needs_fold and args.crossvalidation_idx is None:
        raise UserError(f"{args.mode_flag} needs --crossvalidation_idx (the validation slices)")
    if trains(args) and args.evaluate_every and args.crossvalidation_idx is None:
        raise UserError(f"--evaluate_every={args.evaluate_every} needs --crossvalidation_idx or --fold "
                        "(the validation slices)")
    if args.use_tftrt:
        print("[run] --use_tftrt: TF-TRT is not part of this repository; the Keras model runs", file=sys.stderr)
    try:
        tile_sizes.output_size(args.tile_size)
    except ValueError as error:
        raise UserError(f"--tile_size: {error}") from None
    if args.save_probabilities and args.n_classes != 2:
        raise UserError(f"--save_probabilities writes one probability per pixel (cell against membrane); "
                        f"--n_classes={args.n_classes} has {args.n_classes} classes")
    return args
