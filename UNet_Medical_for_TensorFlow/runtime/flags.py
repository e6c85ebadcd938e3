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
"""Every flag of the model, in one place, with its default and meaning, and the run's config.json.

evaluate and predict read the training run's ``config.json`` in
``--model_dir``: the network's shape (and, for evaluate, the fold) come from
there, so they need not be repeated and cannot silently differ.
"""

import argparse
import json
import os

from common import npu_utils
from common.npu_utils import UserError
from data_loading import folds
from model import unet

EXEC_MODES = ("train", "evaluate", "predict", "train_and_predict", "train_and_evaluate")
CONFIG_FILE = "config.json"  # the run's flags, written by every training run into --model_dir
# What evaluate and predict take from the training run: the checkpoint only
# fits a network of the same width and class count, so these must agree.
ARCHITECTURE_FLAGS = ("base_filters", "n_classes")
# What evaluate also takes: they fix the validation slices (the fold split).
FOLD_FLAGS = ("seed", "crossvalidation_idx")
# Taken from the training run only when not given: the network is fully
# convolutional, so any valid tile size works with the same weights.
TILE_FLAGS = ("tile_size",)
_NOT_GIVEN = object()  # marks a flag absent from the command line


def build_parser():
    """The argparse parser of main.py (the seed README's flags, ours, and common/npu_utils's)."""
    parser = argparse.ArgumentParser(description="UNet for the ISBI 2012 EM stack (NVIDIA UNet_Medical).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--exec_mode", default="train", choices=EXEC_MODES,
                        help="what to run (the seed README's default: train)")
    parser.add_argument("--model_dir", default="./results",
                        help="checkpoints, config.json, TensorBoard, the exported model, predictions/")
    parser.add_argument("--log_dir", default=None, help="also write JSON lines to LOG_DIR/log.jsonl")
    parser.add_argument("--data_dir", default="./data",
                        help="ISBI stacks (train-volume.tif, train-labels.tif, test-volume.tif) "
                             "or own data (images/, masks/, optional test/)")
    parser.add_argument("--batch_size", type=int, default=1, help="tiles per step per device")
    parser.add_argument("--crossvalidation_idx", type=int, default=None,
                        help=f"fold 0..{folds.NUM_FOLDS - 1} to validate on (6 of 30 slices); "
                             "none: train on every slice; evaluate: the training run's")
    parser.add_argument("--max_steps", type=int, default=1000, help="training steps in all")
    parser.add_argument("--seed", type=int, default=0,
                        help="drives folds, tiles, augmentation, weights; evaluate: the training run's")
    parser.add_argument("--weight_decay", type=float, default=0.0005, help="L2 factor on all weights")
    parser.add_argument("--log_every", type=int, default=100, help="steps between TRAIN lines")
    parser.add_argument("--learning_rate", type=float, default=0.0001, help="Adam, constant")
    npu_utils.add_bool_flag(parser, "--augment", "flips, rot90, crop-resize, elastic, brightness")
    npu_utils.add_bool_flag(parser, "--benchmark", "time steps after --warmup_steps; no checkpoints")
    parser.add_argument("--warmup_steps", type=int, default=200, help="steps left out of benchmark figures")
    npu_utils.add_bool_flag(parser, "--resume_training", "continue from the last checkpoint in --model_dir")
    parser.add_argument("--checkpoint_every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--keep_checkpoints", type=int, default=3, help="checkpoints kept in --model_dir")
    parser.add_argument("--base_filters", type=int, default=64,
                        help="first level's width (64 = NVIDIA); evaluate/predict: the training run's")
    parser.add_argument("--tile_size", type=int, default=572,
                        help="input tile side (572 -> 388 output); evaluate/predict: the training run's "
                             "unless given")
    parser.add_argument("--n_classes", type=int, default=2,
                        help="classes of own data (ISBI: 2); evaluate/predict: the training run's")
    parser.add_argument("--pretrained_checkpoint", default=None,
                        help="--model_dir of an earlier run to start from (all but the last layer "
                             "when the class count differs)")
    npu_utils.add_device_flags(parser)
    return parser


def write_config(args):
    """Save the run's flags as ``config.json`` in ``--model_dir`` (never deletes anything there)."""
    os.makedirs(args.model_dir, exist_ok=True)
    with open(os.path.join(args.model_dir, CONFIG_FILE), "w", encoding="utf-8") as handle:
        json.dump(vars(args), handle, indent=2, sort_keys=True)


def read_config(model_dir):
    """The flags an earlier training run saved in ``model_dir/config.json`` as a dict, or None.

    Raises:
      UserError: the file exists but is not a JSON object.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
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


def _flag(name, value):
    return f"--{name}={value}" if value is not None else f"no --{name}"


def take_from_training_run(args, given):
    """evaluate / predict: the network's shape (evaluate: also the fold) from the training run's config.json.

    A flag that is also on the command line must agree with the training
    run; ``--tile_size`` may differ. Prints one line with what was taken.
    Nothing changes when ``--model_dir`` holds no config.json (a benchmark
    of random weights, or the missing-checkpoint error later).

    Args:
      args: the parsed namespace (changed in place).
      given: names of the flags present on the command line.
    Raises:
      UserError: a flag contradicts the training run, or evaluate has no
        held-out fold.
    """
    if args.exec_mode not in ("evaluate", "predict"):
        return
    config = read_config(args.model_dir)
    if config is None:
        return
    path = os.path.join(args.model_dir, CONFIG_FILE)
    names = ARCHITECTURE_FLAGS + (FOLD_FLAGS if args.exec_mode == "evaluate" and not args.benchmark else ())
    taken = []
    for name in names + TILE_FLAGS:
        if name not in config:
            continue
        if name in given and getattr(args, name) != config[name]:
            if name in TILE_FLAGS:
                continue
            what = ("the validation slices would include slices it trained on" if name in FOLD_FLAGS
                    else "its checkpoint fits only that network")
            raise UserError(f"{_flag(name, getattr(args, name))} contradicts the training run in {path}, "
                            f"which used {_flag(name, config[name])} ({what}); leave --{name} out, "
                            f"--exec_mode={args.exec_mode} takes it from there")
        setattr(args, name, config[name])
        taken.append(_flag(name, config[name]))
    if taken:
        print(f"[flags] from {path}: {' '.join(taken)}", flush=True)
    if "crossvalidation_idx" in names and args.crossvalidation_idx is None:
        raise UserError(f"--exec_mode=evaluate: the training run in {path} trained on every slice "
                        "(no --crossvalidation_idx), so no slice is held out to evaluate on")


def parse_args(argv=None):
    """Parse and check the flags; evaluate and predict also read the training run's config.json.

    Raises:
      UserError: a value out of range, a mode that needs another flag, or a
        flag that contradicts the training run of --model_dir.
    """
    parser = build_parser()
    # argparse fills in a default only for an attribute the namespace lacks,
    # so these placeholders show which of them the command line gave.
    unset = argparse.Namespace(**{name: _NOT_GIVEN for name in ARCHITECTURE_FLAGS + FOLD_FLAGS + TILE_FLAGS})
    args = parser.parse_args(argv, namespace=unset)
    given = set()
    for name in ARCHITECTURE_FLAGS + FOLD_FLAGS + TILE_FLAGS:
        if getattr(args, name) is _NOT_GIVEN:
            setattr(args, name, parser.get_default(name))
        else:
            given.add(name)
    for name in ("batch_size", "max_steps", "log_every", "checkpoint_every", "keep_checkpoints",
                 "base_filters"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name}={getattr(args, name)} must be at least 1")
    if args.warmup_steps < 0 or args.learning_rate <= 0 or args.weight_decay < 0:
        raise UserError("--warmup_steps and --weight_decay must be >= 0 and --learning_rate > 0")
    if args.benchmark and args.exec_mode.startswith("train") and args.max_steps <= args.warmup_steps:
        raise UserError(f"--benchmark: --max_steps={args.max_steps} leaves no step after "
                        f"--warmup_steps={args.warmup_steps}")
    if args.n_classes < 2:
        raise UserError(f"--n_classes={args.n_classes} must be at least 2")
    if args.crossvalidation_idx is not None and not 0 <= args.crossvalidation_idx < folds.NUM_FOLDS:
        raise UserError(f"--crossvalidation_idx={args.crossvalidation_idx} must be in 0..{folds.NUM_FOLDS - 1}")
    take_from_training_run(args, given)
    # train_and_evaluate evaluates even after a --benchmark training; evaluate
    # --benchmark times random tiles and needs no validation slices.
    needs_fold = args.exec_mode == "train_and_evaluate" or (args.exec_mode == "evaluate" and not args.benchmark)
    if needs_fold and args.crossvalidation_idx is None:
        raise UserError(f"--exec_mode={args.exec_mode} needs --crossvalidation_idx (the validation slices)")
    try:
        unet.output_size(args.tile_size)
    except ValueError as error:
        raise UserError(f"--tile_size: {error}") from None
    return args
