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
"""Every flag of the model, in one place, with its default and meaning."""

import argparse

from common import npu_utils
from common.npu_utils import UserError
from data_loading import folds
from model import unet

EXEC_MODES = ("train", "evaluate", "predict", "train_and_predict", "train_and_evaluate")


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
                             "none: train on every slice")
    parser.add_argument("--max_steps", type=int, default=1000, help="training steps in all")
    parser.add_argument("--seed", type=int, default=0, help="drives folds, tiles, augmentation, weights")
    parser.add_argument("--weight_decay", type=float, default=0.0005, help="L2 factor on all weights")
    parser.add_argument("--log_every", type=int, default=100, help="steps between TRAIN lines")
    parser.add_argument("--learning_rate", type=float, default=0.0001, help="Adam, constant")
    npu_utils.add_bool_flag(parser, "--augment", "flips, rot90, crop-resize, elastic, brightness")
    npu_utils.add_bool_flag(parser, "--benchmark", "time steps after --warmup_steps; no checkpoints")
    parser.add_argument("--warmup_steps", type=int, default=200, help="steps left out of benchmark figures")
    npu_utils.add_bool_flag(parser, "--resume_training", "continue from the last checkpoint in --model_dir")
    parser.add_argument("--checkpoint_every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--keep_checkpoints", type=int, default=3, help="checkpoints kept in --model_dir")
    parser.add_argument("--base_filters", type=int, default=64, help="first level's width (64 = NVIDIA)")
    parser.add_argument("--tile_size", type=int, default=572, help="input tile side (572 -> 388 output)")
    parser.add_argument("--n_classes", type=int, default=2, help="classes of own data (ISBI: 2)")
    parser.add_argument("--pretrained_checkpoint", default=None,
                        help="--model_dir of an earlier run to start from (all but the last layer "
                             "when the class count differs)")
    npu_utils.add_device_flags(parser)
    return parser


def parse_args(argv=None):
    """Parse and check the flags.

    Raises:
      UserError: a value out of range or a mode that needs another flag.
    """
    args = build_parser().parse_args(argv)
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
    if "evaluate" in args.exec_mode and args.crossvalidation_idx is None and not args.benchmark:
        raise UserError(f"--exec_mode={args.exec_mode} needs --crossvalidation_idx (the validation slices)")
    try:
        unet.output_size(args.tile_size)
    except ValueError as error:
        raise UserError(f"--tile_size: {error}") from None
    return args
