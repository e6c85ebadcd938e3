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
"""Speed and memory of the full-size UNet on this machine: inference and training steps on 572x572 tiles.

    python3 benchmark.py [--tile_size 572] [--batch_size 1] [--steps 3] [--warmup_steps 2] [--use_amp] [--use_xla]

Random tiles (no dataset needed) go through the inference function and the
training step that main.py uses (NVIDIA's loss: cross-entropy + soft Dice +
L2; Adam). Prints one METRIC line per figure: ``inference_*`` and
``train_*`` (``throughput`` in tiles/s, ``latency_ms_mean``,
``latency_ms_p90/p95/p99``, of the steps after ``--warmup_steps``) and the
process's peak resident memory after each part (``*_peak_rss_mb``; inference
runs first, so the training figure includes it). For timed runs on the
dataset's own tiles, with the input pipeline, use ``main.py --benchmark``.
"""

import argparse
import os
import resource
import sys
import time

MODEL_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [MODEL_DIR, os.path.dirname(MODEL_DIR)]

try:
    from common import npu_utils
except ModuleNotFoundError as missing:  # the model directory copied without the repository around it
    if missing.name != "common":
        raise
    print(f"error: {MODEL_DIR} needs the repository's common/ folder beside it ({os.path.dirname(MODEL_DIR)}/"
          "common); copy the model directory with it", file=sys.stderr)
    sys.exit(2)
from common import cli, errors
from common.errors import UserError
from model import tile_sizes  # noqa: E402
from runtime import flags  # noqa: E402


def build_parser():
    """The benchmark's flags; the network's and the optimizer's defaults are main.py's (runtime/flags.py)."""
    main_flags = flags.build_parser()
    parser = cli.FlagParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, kind, meaning in (("tile_size", int, "input tile side (572 -> 388 output)"),
                                ("batch_size", int, "tiles per step"),
                                ("base_filters", int, "first level's width (64 = NVIDIA)"),
                                ("learning_rate", float, "Adam, constant"),
                                ("weight_decay", float, "L2 factor on all weights")):
        parser.add_argument(f"--{name}", type=kind, default=main_flags.get_default(name),
                            help=f"{meaning}; main.py's default")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each part, after the warm-up")
    parser.add_argument("--warmup_steps", type=int, default=2,
                        help="steps left out of the figures (the first one traces the graph)")
    parser.add_argument("--seed", type=int, default=0, help="weights and random tiles")
    npu_utils.add_device_flags(parser)
    return parser


def parse_args(argv=None):
    """Parse and check the flags.

    Raises:
      UserError: a count below 1 (or a negative warm-up), or an invalid ``--tile_size``.
    """
    args = build_parser().parse_args(argv)
    for name in ("steps", "batch_size", "base_filters"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name}={getattr(args, name)} must be at least 1")
    if args.warmup_steps < 0:
        raise UserError(f"--warmup_steps={args.warmup_steps} must be >= 0")
    try:
        tile_sizes.output_size(args.tile_size)
    except ValueError as error:
        raise UserError(f"--tile_size: {error}") from None
    return args


def peak_rss_mb():
    """The process's peak resident set size so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(step, count):
    """Wall-clock seconds of each of ``count`` calls of ``step()``."""
    seconds = []
    for _ in range(count):
        began = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - began)
    return seconds


def print_figures(prefix, figures):
    """One METRIC line per figure ({name: float}), its name prefixed with the part timed."""
    for name, value in figures.items():
        print(npu_utils.format_metric_line(f"{prefix}_{name}", value), flush=True)


@errors.exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    ctx = npu_utils.setup_device(args)  # device, precision, XLA (loads TensorFlow)

    import numpy as np
    import tensorflow as tf

    from common import stack
    from model import unet
    from runtime import inference, metrics

    stack.set_random_seed(args.seed)
    out = tile_sizes.output_size(args.tile_size)
    rng = np.random.default_rng(args.seed)
    tiles = rng.uniform(-1, 1, (args.batch_size, args.tile_size, args.tile_size, 1)).astype(np.float32)
    onehot = tf.one_hot(rng.integers(0, 2, (args.batch_size, out, out)), 2)
    with ctx.strategy.scope():
        model = unet.build_unet(base_filters=args.base_filters, tile_size=args.tile_size)
        optimizer = ctx.wrap_optimizer(stack.keras.optimizers.Adam(args.learning_rate))
    print(f"[benchmark] UNet base_filters={args.base_filters}, {model.count_params():,} parameters; "
          f"{args.batch_size} tile(s) of {args.tile_size}x{args.tile_size} -> {out}x{out}", flush=True)
    count = args.warmup_steps + args.steps

    probability_fn = inference.make_probability_fn(model, ctx.use_xla, args.batch_size)
    seconds = timed(lambda: probability_fn(tiles), count)
    print_figures("inference", metrics.benchmark_statistics(seconds, args.batch_size, args.warmup_steps))
    print_figures("inference", {"peak_rss_mb": peak_rss_mb()})

    def loss_fn(images, labels):
        return metrics.total_loss(model(images, training=True), labels, model.trainable_variables,
                                  args.weight_decay)

    train_step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
    images = tf.constant(tiles)
    seconds = timed(lambda: float(train_step(images, onehot)), count)  # float(): wait for the step's end
    print_figures("train", metrics.benchmark_statistics(seconds, args.batch_size, args.warmup_steps))
    print_figures("train", {"peak_rss_mb": peak_rss_mb()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
