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
"""The one place that defines the flags and their defaults (``python3 main.py --help`` shows them),
and the run's config.json: written here (:func:`write_run_config`) and read here (:func:`parse_args`).

Loads no TensorFlow, so ``--help`` and a flag error answer at once. The
seed's config/config.json keys (model, height, width, class_number,
learning_rate, batch, epochs, train_dir, eval_dir, save_dir, weights) are
flags here, with the seed's values as defaults and its spellings as aliases.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Sequence

from common import cli, cluster, npu_utils
from common.errors import UserError

MODES = cli.MODES  # train, evaluate, train_and_evaluate, predict, export: the repository's words
# The paper's ImageNet training (Section 5.1): "RMSPropOptimizer with 0.9 momentum ... initial learning
# rate of 0.1, with batch size 4096 ... learning rate decay rate of 0.01 every 3 epochs ... dropout of
# 0.8 [keep probability], and l2 weight decay 1e-5 ... exponential moving average with decay 0.9999".
# Its colour distortion: TF-slim's inception_preprocessing, which TF-slim's MobileNet training uses.
PAPER_RECIPE = {"optimizer": "rmsprop", "lr_schedule": "step", "lr_decay_epochs": 3.0, "lr_decay_rate": 0.99,
                "warmup_epochs": 0.0, "weight_decay": 1e-5, "weight_decay_mode": "l2", "ema_momentum": 0.9999,
                "dropout": 0.2, "bn_momentum": 0.99, "color_distortion": "inception"}
PAPER_LEARNING_RATE, PAPER_BATCH = 0.1, 4096
TRAINING_MODES = ("train", "train_and_evaluate")
# Precision and compiler requests that slow this network down on a CPU. The figures are measured, so they live
# in the README (section 性能, with the command that gave them), not here.
CPU_COSTS = {
    "mixed_bfloat16": "mixed_bfloat16 trains this network slower than float32 on a CPU (its depthwise "
                      "convolutions; measured figures: README, 性能); --precision_mode=must_keep_origin_dtype "
                      "keeps float32",
    "xla": "--use_xla trains this network several times slower than float32 without XLA on a CPU "
           "(keras.applications' MobileNetV3 alike; measured figures: README, 性能); leave it out for speed",
}
# What evaluate, predict, export and a resumed training take from the training
# run's config.json: the network and its input. A flag that contradicts them is an error.
RUN_KEYS = ("task", "model", "alpha", "height", "width", "class_number")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" to help texts that do not state their default already."""

    def _get_help_string(self, action):
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> cli.FlagParser:
    """The argparse parser of main.py: every flag, its default and its help."""
    parser = cli.FlagParser(  # a flag error is one line (exit 2), not the usage text
        description="MobileNetV3 Small/Large classification and LR-ASPP segmentation (TF 2.21 / Keras 3 or "
                    "TF 2.6.5 / Keras 2.6).",
        formatter_class=_HelpFormatter, allow_abbrev=False)
    cli.add_mode_flag(parser, MODES, help_text="train; evaluate (validation split); train_and_evaluate; "
                                                     "predict (--input); export (SavedModel + the Keras model file)")
    parser.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                        help="class folders, or image/mask pairs with the LR-ASPP head")

    # The seed's config/config.json keys, with its values as the defaults.
    run = parser.add_argument_group("network, input and run folder")
    run.add_argument("--model", choices=("small", "large"), default="small", help="MobileNetV3 size")
    run.add_argument("--height", type=int, default=224, help="input height in pixels")
    run.add_argument("--width", type=int, default=224, help="input width in pixels")
    run.add_argument("--class_number", type=int, default=2,
                     help="classes; classification: must equal the class folders, 0 = take it "
                          "from the folders; segmentation: mask classes incl. background")
    run.add_argument("--model_dir", "--save_dir", "--modeldir", dest="model_dir", default="results", metavar="DIR",
                     help="run folder: checkpoints, best model, config.json, logs, exports")
    run.add_argument("--weights", default="",
                     help="training: where to start: imagenet (keras.applications' ImageNet weights of "
                          "the same --model and --alpha), a keras.applications .h5 weights file, or an "
                          "earlier run (of either stack): its folder, its model file or a checkpoint "
                          "(backbone only when the class count differs); evaluate, predict and export ignore "
                          "it; empty = newly initialised")

    data = parser.add_argument_group("data")
    data.add_argument("--data_path", default=None,
                      help="folder holding train/ and validation/ (or eval/); sets --train_dir and --eval_dir")
    data.add_argument("--train_dir", default="", help="training folder (instead of --data_path)")
    data.add_argument("--eval_dir", default="", help="validation folder (instead of --data_path)")
    cli.add_bool_flag(data, "--skip_bad_images", "skip images that fail to decode (found when they are "
                      "read) and list them at the end of the epoch, instead of stopping")
    data.add_argument("--cache_budget_mb", type=float, default=300,
                      help="keep a split's decoded images in memory when they need at most this many MB "
                           "per process, else stream them from the files every epoch; 0 = always stream")
    data.add_argument("--max_rotation", type=float, default=0.0, metavar="DEGREES",
                      help="training augmentation: also rotate each image by a random angle of up to this many "
                           "degrees (0 = the Inception-style crop, resize and flip alone; its cost: README)")
    data.add_argument("--color_distortion", choices=("jitter", "inception"), default="jitter",
                      help="training colour distortion: jitter = brightness +-0.2, contrast and saturation "
                           "x[0.8, 1.2], hue +-0.02 (for small datasets); inception = TF-slim "
                           "inception_preprocessing's (fast mode): brightness +-32/255, saturation x[0.5, 1.5], "
                           "in a random order (--recipe=paper's)")
    data.add_argument("--color_jitter", type=float, default=1.0, metavar="STRENGTH",
                      help="multiplies the ranges of --color_distortion, in [0, 2]; 0 = no colour distortion")
    data.add_argument("--input", default=None, help="predict: an image file or a folder of images")
    data.add_argument("--output", default=None,
                      help="predict: CSV file (classification) or folder of PNG masks (segmentation); "
                           "default <save_dir>/predictions.csv or <save_dir>/predictions/")

    net = parser.add_argument_group("network")
    net.add_argument("--alpha", type=float, default=1.0, help="width multiplier")
    net.add_argument("--bn_momentum", type=float, default=0.99,
                     help="BatchNormalization moving-average momentum (paper 0.99; use ~0.9 for "
                          "runs of a few hundred steps, whose moving statistics lag otherwise)")
    net.add_argument("--dropout", type=float, default=0.2, help="dropout before the classifier (paper: 0.2)")

    train = parser.add_argument_group("training")
    train.add_argument("--batch_size", "--batch", dest="batch_size", type=int, default=2, metavar="N",
                       help="images per device and step")
    train.add_argument("--train_epochs", "--epochs", dest="train_epochs", type=int, default=20, metavar="N",
                       help="training epochs")
    train.add_argument("--learning_rate", type=float, default=0.001,
                       help="peak learning rate (after warm-up), for the global batch")
    train.add_argument("--recipe", choices=("seed", "paper"), default="seed",
                       help="seed: the flags' own defaults (Adam, cosine); paper: the paper's ImageNet recipe "
                            "for every flag not given: --optimizer=rmsprop --lr_schedule=step "
                            "--lr_decay_epochs=3 --lr_decay_rate=0.99 --weight_decay=1e-5 --weight_decay_mode=l2 "
                            "--ema_momentum=0.9999 --color_distortion=inception, --learning_rate 0.1 x global "
                            "batch / 4096")
    train.add_argument("--optimizer", choices=("adam", "rmsprop"), default="adam",
                       help="adam (the seed's); rmsprop: TF1's RMSPropOptimizer as the paper ran it (squared-"
                            "gradient average starting at 1, epsilon 1e-3 inside the square root, decay 0.9, "
                            "momentum 0.9)")
    train.add_argument("--weight_decay", type=float, default=0.0,
                       help="weight decay of the kernels (not BN, not biases; the paper: 1e-5), as "
                            "--weight_decay_mode says; 0 = none")
    train.add_argument("--weight_decay_mode", choices=("l2", "decoupled"), default="l2",
                       help="l2: weight_decay x sum(w^2)/2 added to the loss (the paper's, TF-slim's "
                            "l2_regularizer); decoupled: w -= learning_rate x weight_decay x w each step "
                            "(Keras 3's optimizer weight_decay)")
    train.add_argument("--ema_momentum", type=float, default=0.0,
                       help="keep TF's ExponentialMovingAverage of the weights and BatchNorm moving statistics "
                            "with this decay and its warm-up min(decay, (1 + step) / (10 + step)) (the paper: "
                            "0.9999); the best and final models and so evaluate, predict and export use it; "
                            "0 = none")
    train.add_argument("--lr_schedule", choices=("cosine", "step", "constant"), default="cosine",
                       help="decay after warm-up")
    train.add_argument("--warmup_epochs", type=float, default=0.0, help="linear warm-up from 0, in epochs")
    train.add_argument("--lr_decay_epochs", type=float, default=3.0, help="step schedule: epochs between decays")
    # The paper: "decay rate of 0.01 every 3 epochs", read as x0.99 per 3 epochs.
    train.add_argument("--lr_decay_rate", type=float, default=0.99,
                       help="step schedule: learning-rate factor per decay")
    train.add_argument("--label_smoothing", type=float, default=0.0, help="classification label smoothing")
    train.add_argument("--max_steps", "--max_step", dest="max_steps", type=int, default=0, metavar="N",
                       help="stop after this many steps in total (0 = no cap)")
    train.add_argument("--log_every", type=int, default=1, help="print a TRAIN line every N steps")
    train.add_argument("--freeze_backbone_epochs", type=int, default=0,
                       help="train only the classifier (or LR-ASPP head) for the first N epochs")
    train.add_argument("--loss_scale", type=_loss_scale, default=None, metavar="X|True|False",
                       help="loss scale under float16 mixed precision: on GPU the initial dynamic scale "
                            "(default 32768), on Ascend a static scale (NpuLossScaleOptimizer(dynamic=False, "
                            "initial_scale=X); default: its dynamic scaling); 0 = no loss scaling; the seed's "
                            "True: dynamic at the default scale, False: none")
    train.add_argument("--seed", type=int, default=0, help="one seed for order, augmentation and initialisation")
    cli.add_bool_flag(train, "--benchmark", "time training only: no checkpoints (none read, none written), "
                      "no validation, no best/ or final model; TRAIN lines as usual")
    # Every epoch's end is a checkpoint too; --save_interval is the seed's spelling.
    cli.add_checkpoint_flags(parser, checkpoint_every=100, every_aliases=("--save_interval",))
    npu_utils.add_device_flags(parser)
    return parser


def _loss_scale(value):
    """argparse type of --loss_scale: an initial scale (0: none), or the seed's True (None: dynamic at the
    default scale whenever float16 is used) and False (0.0: none), as the scripts read them."""
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return None if lowered == "true" else 0.0
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an initial scale, True or False, got {value!r}") from None


def apply_paper_recipe(args: argparse.Namespace, given: Collection[str]) -> None:
    """Set the paper's ImageNet recipe (Howard et al. 2019, Section 5.1) on every flag not in ``given``.

    RMSProp with momentum 0.9, learning rate 0.1 at batch 4096 scaled linearly
    to this run's global batch (--batch_size x RANK_SIZE), x0.99 every 3
    epochs, weight decay 1e-5, a moving average of the weights (0.9999),
    dropout 0.2 and BN momentum 0.99 (both already the defaults), and
    TF-slim's Inception colour distortion.
    """
    global_batch = args.batch_size * cluster.read_ranks().rank_size
    values = dict(PAPER_RECIPE, learning_rate=PAPER_LEARNING_RATE * global_batch / PAPER_BATCH)
    taken = [name for name in values if name not in given]
    for name in taken:
        setattr(args, name, values[name])
    # The values the run uses: the recipe's, then the ones given on the command line that it keeps.
    line = f"[recipe] paper: {_flag_values(args, taken)}"
    if "learning_rate" in taken:
        line += f" (learning rate {PAPER_LEARNING_RATE} x {global_batch}/{PAPER_BATCH})"
    kept = [name for name in values if name in given]
    if kept:
        line += f"; as given: {_flag_values(args, kept)}"
    print(line, flush=True)


def _flag_values(args, names):
    """``--name=value ...`` of ``names`` in ``args`` (floats in their shortest form)."""
    return " ".join(f"--{name}={getattr(args, name):g}" if isinstance(getattr(args, name), float)
                    else f"--{name}={getattr(args, name)}" for name in names)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the flags and check their values; evaluate, predict, export and a resumed training take the
    network and its input (:data:`RUN_KEYS`) from the run's config.json.

    Returns:
      The argparse.Namespace with every flag set.
    Raises:
      UserError: a value out of range, or a flag that contradicts the training run.
    """
    args, given = cli.parse_args_given(build_parser(), argv)
    if args.class_number == 0:
        given.discard("class_number")  # 0 means "from the folders", not a value to compare
    if args.recipe == "paper":
        apply_paper_recipe(args, given)
    if args.data_path:
        from data_loading.folders import split_folders
        args.train_dir, args.eval_dir = split_folders(args.data_path)
    _check_values(args)
    if args.benchmark and args.mode not in TRAINING_MODES:
        raise UserError(f"--benchmark times training; {args.mode_flag} does not train")
    if args.mode == "predict" and not args.input:
        raise UserError(f"{args.mode_flag} needs --input (an image file or a folder of images)")
    _take_from_training_run(args, given)
    return args


def _check_values(args):
    """Each flag's value within its range: one UserError naming the flag otherwise."""
    positive = {"height": args.height, "width": args.width, "batch_size": args.batch_size,
                "train_epochs": args.train_epochs, "log_every": args.log_every}
    for name, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise UserError(f"--{name}={value} must be a positive integer")
    if args.height < 32 or args.width < 32:
        raise UserError(f"--height={args.height} --width={args.width}: the network needs at least 32x32")
    if args.task == "segmentation" and (args.height % 32 or args.width % 32):
        raise UserError(f"--height={args.height} --width={args.width}: segmentation needs multiples of 32")
    if not args.cache_budget_mb >= 0:
        raise UserError(f"--cache_budget_mb={args.cache_budget_mb} must be 0 (always stream) or a size in MB")
    if not 0 <= args.max_rotation <= 180:
        raise UserError(f"--max_rotation={args.max_rotation} must be in [0, 180] degrees")
    if not 0 <= args.color_jitter <= 2:  # beyond 2 a contrast or saturation factor would go below 0
        raise UserError(f"--color_jitter={args.color_jitter} must be in [0, 2] (0 = no colour distortion)")
    if not args.learning_rate > 0:
        raise UserError(f"--learning_rate={args.learning_rate} must be positive")
    if not args.alpha > 0:
        raise UserError(f"--alpha={args.alpha} must be positive")
    if not 0 <= args.bn_momentum < 1:
        raise UserError(f"--bn_momentum={args.bn_momentum} must be in [0, 1)")
    if not args.weight_decay >= 0:
        raise UserError(f"--weight_decay={args.weight_decay} must be 0 (none) or positive")
    if not 0 <= args.ema_momentum < 1:
        raise UserError(f"--ema_momentum={args.ema_momentum} must be 0 (no average) or in (0, 1)")
    if not 0 <= args.label_smoothing < 1:
        raise UserError(f"--label_smoothing={args.label_smoothing} must be in [0, 1)")
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout={args.dropout} must be in [0, 1)")
    if args.max_steps < 0:
        raise UserError(f"--max_steps={args.max_steps} must be 0 (no cap) or a step count")
    if args.class_number < 0:
        raise UserError(f"class_number={args.class_number} must be 0 (from the folders) or a class count")
    if not args.model_dir:
        raise UserError("--model_dir is empty: pass the run folder")
    if args.loss_scale is not None and args.loss_scale < 0:
        raise UserError(f"--loss_scale={args.loss_scale} must be a positive initial scale, or 0 for none")


def trains(args: argparse.Namespace) -> bool:
    """True for the modes that train (train, train_and_evaluate)."""
    return args.mode in TRAINING_MODES


def _take_from_training_run(args, given):
    """The network and its input from the run's config.json: every key of :data:`RUN_KEYS` for evaluate,
    predict and export (the model of --model_dir), all but the class count (read from the folders) for a
    resumed training, before the data is read (--task decides how the folders are read). A flag that
    contradicts the saved run is refused (common/cli.take_from_run_config)."""
    if not trains(args):
        cli.take_from_run_config(args, given, RUN_KEYS, args.model_dir, why="its model was trained so")
    elif args.resume and not args.benchmark and cli.has_checkpoint(args.model_dir):
        cli.take_from_run_config(args, given, [key for key in RUN_KEYS if key != "class_number"],
                                 args.model_dir, why="its checkpoint continues only that network; "
                                                           "--resume=False starts over")


def write_run_config(args: argparse.Namespace, ctx: npu_utils.RunContext) -> None:
    """Write every resolved flag, the device and the precision as the run's ``<model_dir>/config.json``
    (training's chief, once every check passed and the restore succeeded)."""
    cli.write_run_config(args.model_dir, dict(sorted(vars(args).items()), device=ctx.device,
                                                    precision=ctx.precision.policy, rank_size=ctx.ranks.rank_size))


def note_cpu_costs(ctx: npu_utils.RunContext) -> None:
    """Print a :data:`CPU_COSTS` line for each such request of this run on a CPU (``ctx``: npu_utils.RunContext)."""
    asked = [ctx.precision.policy] + (["xla"] if ctx.use_xla else []) if ctx.device == "cpu" else []
    for name in asked:
        if name in CPU_COSTS:
            print(f"[device] note: {CPU_COSTS[name]}", flush=True)


def cache_bytes(args: argparse.Namespace) -> int:

    """--cache_budget_mb in bytes: the decoded images a split may keep in memory."""
    return int(args.cache_budget_mb * 1024 ** 2)
