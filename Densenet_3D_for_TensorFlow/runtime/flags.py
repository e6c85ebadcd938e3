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
"""Every flag of main.py, with its default and help, the checks between flags, and the run config.

Parsed names are the repository's common ones (``args.data_path``,
``model_dir``, ``mode``, ``max_steps``, ``train_epochs``, ``batch_size``,
``learning_rate``, ``log_every``, ``seed``, ``resume``, ``checkpoint_every``,
``keep_checkpoints``). The reference ``train.py`` flags stay accepted as
aliases under their short names (-gpu, -bs, -mn, -nc, -e, -r, -sp, -lp, -c,
-ws/-hs/-cs, -ps), and so do this model's earlier spellings (--epochs,
--log_every_steps, --save_every_steps, --continue_training); -nc and -c are
real booleans here (``-nc False`` is off; the reference's ``type=bool`` read
"False" as True). A run's config.json stores the parsed names; what evaluate,
predict and a resume read from it (:data:`RUN_CONFIG_NAMES`) kept its names,
so an older run's config.json reads as before.

Imports no TensorFlow (only ``model.specs`` and common's ``cli``, ``errors`` and
``npu_utils``): ``--help`` and a flag error answer at once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Mapping, Sequence

from common import cli, npu_utils
from common.errors import UserError
from model.specs import CROP_MARGIN, MODEL_NAMES, canonical_model_name

MODES = cli.MODES[:4]  # train, evaluate, train_and_evaluate, predict: the repository's words
# The reference's spellings, accepted as they were: test is evaluate, train_test is train_and_evaluate.
REFERENCE_MODES = {"test": "evaluate", "train_test": "train_and_evaluate"}
# What evaluate, predict and a resumed training take from the training run's
# config.json: the network its checkpoint holds and the data it was trained on.
RUN_CONFIG_NAMES = ("model_name", "width_multiplier", "n4_correction", "normalisation")


def build_parser() -> cli.FlagParser:
    parser = cli.FlagParser(
        description="Hierarchical densely connected 3D CNN for BraTS (Chen et al. 2018): "
                    "train, evaluate or predict.")
    cli.add_mode_flag(parser, MODES, reference_modes=REFERENCE_MODES,
                      help_text="train; evaluate (Dice etc. on the held-out cases; the reference's test); "
                                      "train_and_evaluate (both; the reference's train_test); predict (label "
                                      "every case of -r, no ground truth needed) (default %(default)s)")
    parser.add_argument("-r", "--data_path", required=True,
                        help="folder of case folders <case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz, "
                             "e.g. BraTS 2017's HGG/; train.txt/test.txt in it choose the split")
    parser.add_argument("-mn", "--model_name", default="dense24", choices=MODEL_NAMES + ("no_dense",),
                        help="network (default %(default)s); dense24_nocorrection is dense24 on uncorrected data")
    parser.add_argument("-nc", "--n4_correction", "--n4", type=cli.str2bool, nargs="?", const=True, default=None,
                        metavar="True|False", help="N4 bias-field correction, cached beside the data "
                        "(default True, False for dense24_nocorrection)")
    parser.add_argument("--train_epochs", "-e", "--epochs", dest="train_epochs", type=int, default=5,
                        help="training epochs of --tumour_centres + --background_centres patches per case "
                             "(default %(default)s)")
    parser.add_argument("-bs", "--batch_size", type=int, default=2, help="patches per device and step "
                        "(default %(default)s)")
    parser.add_argument("-lr", "--learning_rate", type=float, default=5e-4,
                        help="Adam learning rate, constant (default %(default)s)")
    parser.add_argument("--model_dir", default=None,
                        help="checkpoints, the split lists, config and logs (default results/<model_name>)")
    parser.add_argument("-sp", "--save_path", default=None,
                        help="folder for predicted NIfTI, PNG and metrics.csv (default <model_dir>/predictions)")
    parser.add_argument("-lp", "--load_path", default=None,
                        help="initial weights from an earlier run: its model_dir, checkpoints folder or "
                             "checkpoint prefix (fine-tuning; optimizer state is not taken)")
    parser.add_argument("-ws", "--patch_width", type=int, default=38, help="training patch X (default %(default)s)")
    parser.add_argument("-hs", "--patch_height", type=int, default=38, help="training patch Y (default %(default)s)")
    parser.add_argument("-cs", "--patch_depth", type=int, default=38, help="training patch Z (default %(default)s)")
    parser.add_argument("-ps", "--label_size", type=int, default=12,
                        help="labelled centre of a patch; must be patch size - 26 (default %(default)s)")
    parser.add_argument("--patch_size", type=int, default=None, metavar="N",
                        help="a cubic training patch: -ws, -hs and -cs N and -ps N - 26")
    parser.add_argument("--centres", type=int, default=None, metavar="N",
                        help="--tumour_centres and --background_centres N")
    parser.add_argument("--tumour_centres", type=int, default=200,
                        help="patch centres in the tumour per case and epoch (default %(default)s)")
    parser.add_argument("--background_centres", type=int, default=200,
                        help="patch centres in brain background per case and epoch (default %(default)s)")
    parser.add_argument("--normalisation", choices=("reference", "zero_background"), default="reference",
                        help="reference: each modality z-scored with the mean and std of its non-zero voxels over "
                             "the whole volume, the background becoming -mean/std, as the reference code does; "
                             "zero_background: the same z-score of the non-zero voxels, the background kept 0 "
                             "(this model's earlier inputs; a run folder whose config.json predates the flag) "
                             "(default %(default)s)")
    parser.add_argument("--sampling", choices=("reference", "mixed"), default="reference",
                        help="reference: distinct centres, one case's patches in a run of batches, as the "
                             "reference code; mixed: two cases' patches interleaved and shuffled in a buffer of 64 "
                             "(default %(default)s)")
    parser.add_argument("--max_steps", type=int, default=0,
                        help="stop training after this many steps in total (0: run every epoch; default %(default)s)")
    cli.add_bool_flag(parser, "--benchmark", help_text="time training only: no checkpoints or test; "
                      "20 steps unless --max_steps; prints patches/s and voxels/s")
    cli.add_bool_flag(parser, "--skip_bad_cases", help_text="leave out bad cases (listed) instead of stopping")
    parser.add_argument("--log_every", "--log_every_steps", dest="log_every", type=int, default=20,
                        help="print a TRAIN line every N steps (default %(default)s)")
    parser.add_argument("--inference", choices=("block", "window"), default="block",
                        help="block: fully convolutional blocks, every head voxel; window: the reference's "
                             "grid of 38^3 windows (3,564 on 240x240x155), every voxel at least 13 from the "
                             "border (the border stays 0) (default %(default)s)")
    # auto: of the shapes reading at most 128^3 voxels (the memory of the former default, a 102^3 cube), the
    # one that splits the run's head boxes with the least work (runtime/inference.fit_block).
    parser.add_argument("--block_size", type=block_shape, default="auto", metavar="auto|N|X,Y,Z",
                        help="voxels a block of block inference keeps, one shape for every case of the run: "
                             "auto (fitted to the run's head boxes, at most 128^3 voxels read), a cube N or "
                             "X,Y,Z; every block reads them plus a 13-voxel margin, memory grows with their "
                             "product (default %(default)s)")
    parser.add_argument("--val_cases", default="0",
                        help="validation cases taken out of the training list: N (a seeded choice of N) or a FILE "
                             "of case ids, one a line; scored every --eval_every steps, the best mean Dice's "
                             "weights kept in <model_dir>/best beside the last checkpoint (default %(default)s: "
                             "none)")
    parser.add_argument("--eval_every", type=int, default=1000,
                        help="training steps between validations, one more at the end (default %(default)s)")
    parser.add_argument("--test_weights", choices=("best", "last"), default="best",
                        help="test and predict: best, the best validation weights (<model_dir>/best) when the "
                             "run has them, else the last checkpoint; last, the newest checkpoint "
                             "(default %(default)s)")
    parser.add_argument("--metrics", choices=("brats", "brats2023"), default="brats",
                        help="brats: Dice, sensitivity, specificity (over the brain) and HD95 (medpy's "
                             "definition) per region, this repository's BraTS 2017 conventions; brats2023: the "
                             "columns of BraTS 2023's evaluation code in its conventions (legacy Dice and HD95 "
                             "by DeepMind's surface distances, sensitivity, specificity, lesion-wise Dice and "
                             "HD95, Num_TP/FP/FN, truth volume; adult glioma rules) (default %(default)s)")
    parser.add_argument("--window_batch", type=int, default=8,
                        help="windows per network call of window inference (default %(default)s)")
    cli.add_bool_flag(parser, "--save_png", help_text="write a PNG per case (slices of FLAIR, prediction, "
                      "truth)", default=True)
    parser.add_argument("--n4_cache_dir", default=None,
                        help="corrected volumes of read-only case folders (default: a folder per data folder in "
                             "the user's cache, $XDG_CACHE_HOME or ~/.cache, densenet3d_n4/)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="parallel N4 processes and case-check threads (default: CPU count, %(default)s)")
    parser.add_argument("--width_multiplier", type=float, default=1.0,
                        help="scale every network width; 1.0 is the paper (smaller for smoke tests) "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=1234,
                        help="one seed for the split, the patch sampling, NumPy and TensorFlow (default %(default)s)")
    parser.add_argument("-gpu", "--gpu", default=None,
                        help="GPU id(s) for CUDA_VISIBLE_DEVICES, as in the reference (GPU only; "
                             "multi-device runs use RANK_SIZE)")
    # --resume, --checkpoint_every (besides every epoch's end: a BraTS epoch is 33,600 steps) and
    # --keep_checkpoints; the reference's spellings are aliases.
    cli.add_checkpoint_flags(parser, checkpoint_every=1000, resume_aliases=("-c", "--continue_training"),
                             every_aliases=("--save_every_steps",))
    npu_utils.add_device_flags(parser)
    return parser


def _take_from_run_config(args, given):
    """Take :data:`RUN_CONFIG_NAMES` from the weights' run config.json; one written before --normalisation
    existed trained on zero_background inputs."""
    folder = weights_run_folder(args)
    config = cli.take_from_run_config(args, given, RUN_CONFIG_NAMES, folder)
    if config is not None and "normalisation" not in config and "normalisation" not in given:
        args.normalisation = "zero_background"
        print(f"[flags] {os.path.join(folder, cli.RUN_CONFIG)} predates --normalisation: its run trained on "
              "--normalisation=zero_background, so this run reads the cases so", flush=True)


def block_shape(text: str) -> str | tuple[int, int, int]:
    """--block_size: "auto", "N" (a cube) or "X,Y,Z" -> "auto" or the (X, Y, Z) voxels a block keeps, each at
    least 1."""
    if text == "auto":
        return text
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) not in (1, 3) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected auto, N or X,Y,Z (whole numbers of voxels, at least 1), got "
                                         f"{text!r}")
    return sizes * 3 if len(sizes) == 1 else sizes


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the flags; fill in the defaults that depend on other flags.

    evaluate, predict and a resumed training take -mn, --width_multiplier and -nc
    from the training run's config.json (see :func:`weights_run_folder`) and
    refuse a flag that contradicts it; training from -lp's weights refuses a
    source run with another -nc.

    Raises:
      UserError: flags that contradict each other, the run config, or are out of range.
    """
    args, given = cli.parse_args_given(build_parser(), argv)
    args.model_name = canonical_model_name(args.model_name)
    _apply_shorthands(args, given)
    args.model_dir = args.model_dir or os.path.join("results", args.model_name)
    if not trains(args) or (args.resume and not args.benchmark):
        _take_from_run_config(args, given)
    if args.n4_correction is None:
        args.n4_correction = args.model_name != "dense24_nocorrection"
    elif args.n4_correction and args.model_name == "dense24_nocorrection":
        raise UserError("-nc True contradicts -mn dense24_nocorrection (the model trained on uncorrected data)")
    _check_ranges(args)
    _check_patch_size(args)
    _check_fine_tuning_n4(args)
    _check_sources(args)
    if args.benchmark and args.max_steps == 0:
        args.max_steps = 20
    _note_unused_by_benchmark(args, given)
    args.save_path = args.save_path or os.path.join(args.model_dir, "predictions")
    args.n4_cache_dir = args.n4_cache_dir or default_n4_cache_dir(args.data_path)
    return args


def _apply_shorthands(args, given):
    """--patch_size and --centres: one value for the flags they stand for, which may not be given too."""
    shorthands = {"patch_size": {"patch_width": 0, "patch_height": 0, "patch_depth": 0,
                                 "label_size": -2 * CROP_MARGIN},
                  "centres": {"tumour_centres": 0, "background_centres": 0}}
    for shorthand, targets in shorthands.items():
        value = getattr(args, shorthand)
        if value is None:
            continue
        both = sorted(given & set(targets))
        if both:
            raise UserError(f"--{shorthand} sets --{', --'.join(targets)}: give it or them, not both "
                            f"(--{both[0]} given)")
        for name, offset in targets.items():
            setattr(args, name, value + offset)


def default_n4_cache_dir(data_path: str, env: Mapping[str, str] | None = None) -> str:
    """Where N4 corrections of a read-only ``data_path`` go: a per-user folder that every run finds again.

    ``$XDG_CACHE_HOME/densenet3d_n4/<name>-<hash of the absolute path>`` (``~/.cache`` when
    XDG_CACHE_HOME is unset): outside every run folder, so a rerun reuses it.
    """
    env = os.environ if env is None else env
    root = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    data_path = os.path.abspath(data_path)
    digest = hashlib.sha1(data_path.encode("utf-8")).hexdigest()[:12]
    return os.path.join(root, "densenet3d_n4", f"{os.path.basename(data_path) or 'data'}-{digest}")


# The flags of test and predict, which a --benchmark run (training only) has no use for.
INFERENCE_FLAGS = ("inference", "block_size", "window_batch", "save_path", "save_png")


def _note_unused_by_benchmark(args, given):
    """One line naming the inference flags given to a --benchmark run (test/train_performance_*.sh pass them)."""
    unused = [f"--{name}" for name in INFERENCE_FLAGS if name in given]
    if args.benchmark and unused:
        print(f"[flags] {' '.join(unused)} not used: --benchmark times training only, without a test")


def _check_ranges(args):
    for flag, value in (("--train_epochs", args.train_epochs), ("-bs", args.batch_size),
                        ("--log_every", args.log_every), ("--window_batch", args.window_batch),
                        ("--eval_every", args.eval_every),
                        ("--workers", args.workers)):
        if value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    for flag, value in (("--max_steps", args.max_steps), ("--tumour_centres", args.tumour_centres),
                        ("--background_centres", args.background_centres)):
        if value < 0:
            raise UserError(f"{flag} must not be negative, got {value}")
    if args.tumour_centres + args.background_centres < args.batch_size:
        raise UserError("--tumour_centres + --background_centres must give at least one batch (-bs) per case")
    if not args.width_multiplier > 0:
        raise UserError(f"--width_multiplier must be positive, got {args.width_multiplier}")
    if not args.learning_rate > 0:
        raise UserError(f"-lr must be positive, got {args.learning_rate}")


def _check_patch_size(args):
    if args.label_size < 1:
        raise UserError(f"-ps must be at least 1, got {args.label_size}")
    for flag, size in (("-ws", args.patch_width), ("-hs", args.patch_height), ("-cs", args.patch_depth)):
        if size - 2 * CROP_MARGIN != args.label_size:
            raise UserError(f"{flag}={size} and -ps={args.label_size} do not fit the network: it labels the "
                            f"centre {size - 2 * CROP_MARGIN} voxels of a {size}-voxel patch "
                            f"(patch size = -ps + {2 * CROP_MARGIN})")


def run_folder_of(load_path: str) -> str:
    """The run folder of -lp: a run folder, its checkpoints/ folder, or a checkpoint prefix inside it."""
    folder = os.path.normpath(load_path)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)  # a prefix such as .../checkpoints/ckpt-100
    return os.path.dirname(folder) if os.path.basename(folder) == "checkpoints" else folder


def weights_run_folder(args: argparse.Namespace) -> str:
    """The training run whose config.json describes the weights this run uses.

    evaluate and predict with -lp: the run folder of -lp; otherwise --model_dir.
    """
    if trains(args) or not args.load_path:
        return args.model_dir
    return run_folder_of(args.load_path)


def _check_sources(args):
    """-lp and --val_cases must name what is there before anything runs: the data preparation writes the
    split lists into --model_dir, and a refused flag creates nothing.

    Raises:
      UserError: -lp names no checkpoint, or --val_cases (training) is neither a number nor a file.
    """
    if args.load_path and not (os.path.isfile(args.load_path + ".index")
                               or cli.has_checkpoint(run_folder_of(args.load_path))):
        raise UserError(f"-lp {args.load_path}: no checkpoint there (expected a run's model_dir, its checkpoints/ "
                        "folder or a checkpoint prefix such as .../ckpt-100)")
    if trains(args) and not args.benchmark and not (args.val_cases.isdigit() or os.path.isfile(args.val_cases)):
        raise UserError(f"--val_cases={args.val_cases}: expected a number of cases or a file of case ids, one a line")


def _check_fine_tuning_n4(args):
    """Training from -lp's weights: its run must have used this run's N4 setting (the intensities the
    weights learned differ with and without the correction)."""
    if not trains(args) or not args.load_path:
        return
    folder = run_folder_of(args.load_path)
    source = cli.read_run_config(folder) or {}
    if "n4_correction" in source and bool(source["n4_correction"]) != args.n4_correction:
        raise UserError(f"-lp {args.load_path}: its run used -nc {bool(source['n4_correction'])} "
                        f"({os.path.join(folder, cli.RUN_CONFIG)}), this run -nc {args.n4_correction}: "
                        "fine-tune with the N4 setting its weights were trained with")


def trains(args: argparse.Namespace) -> bool:
    """True for the modes that train (train, train_and_evaluate)."""
    return args.mode in ("train", "train_and_evaluate")


def write_run_config(args: argparse.Namespace, ctx: npu_utils.RunContext) -> None:

    """Write the run's flags, device and precision as ``<model_dir>/config.json``.

    Training calls it once every check passed and the checkpoint restore
    succeeded (chief only), so evaluate, predict and a resume read what
    trained the weights (:func:`parse_args`).
    """
    values = dict(vars(args), device=ctx.device, precision=ctx.precision.policy, rank_size=ctx.ranks.rank_size)
    cli.write_run_config(args.model_dir, values)
