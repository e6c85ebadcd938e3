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
"""Speed on this machine: training patches/s, the data pipeline's own patches/s,
and whole-volume inference seconds with the block and the window method.

    python3 benchmark.py [--model_name dense24] [--shape 240 240 155] [--windows 48] [--use_amp]

With ``--use_amp`` (or a mixed ``--precision_mode``) training and block
inference are timed in float32 and in the device's mixed policy
(mixed_bfloat16 on a CPU with bf16 arithmetic) in one run, with the share of
head voxels whose labels agree between the two.

The block method predicts every voxel of the head (its bounding box, in
fully convolutional blocks); the window method runs the reference's grid of
38^3 windows (3,564 on 240x240x155, the clamped last window of each axis
included), which covers every voxel at least 13 from the border. Its time is
measured on ``--windows`` windows and extrapolated to the windows it runs
(those with a non-zero input voxel) and to all windows of the grid; on the
timed windows' centres the block method's labels are compared with the
window method's. Prints one line per figure.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

# The repository root holds common/; this directory model/, data_loading/ and runtime/.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from common import npu_utils  # noqa: E402
from common.npu_utils import keras  # noqa: E402
from data_loading import synthetic  # noqa: E402
from data_loading.cases import discover_cases  # noqa: E402
from data_loading.nifti import load_case  # noqa: E402
from data_loading.patches import patch_dataset  # noqa: E402
from model import specs, tf_models  # noqa: E402
from runtime import flags, inference, metrics  # noqa: E402


def parse_args(argv=None):
    """The benchmark's flags; the model, block size, window batch, batch size and learning rate default to
    main.py's (runtime/flags.py)."""
    main_flags = flags.build_parser()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name", default=main_flags.get_default("model_name"), choices=specs.MODEL_NAMES,
                        help="network (default %(default)s)")
    parser.add_argument("--shape", type=int, nargs=3, default=(240, 240, 155),
                        help="volume for inference timing (default %(default)s)")
    parser.add_argument("--block_size", type=int, default=main_flags.get_default("block_size"),
                        help="block inference: kept block edge (default %(default)s)")
    parser.add_argument("--windows", type=int, default=48,
                        help="windows timed for the extrapolation (default %(default)s)")
    parser.add_argument("--window_batch", type=int, default=main_flags.get_default("window_batch"),
                        help="windows per network call (default %(default)s)")
    parser.add_argument("--train_steps", type=int, default=10,
                        help="timed training steps (after 2 warm-up) (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=main_flags.get_default("batch_size"),
                        help="training patches per step (default %(default)s)")
    parser.add_argument("--learning_rate", type=float, default=main_flags.get_default("learning_rate"),
                        help="Adam learning rate of the timed steps (default %(default)s)")
    parser.add_argument("--pipeline_cases", type=int, default=2,
                        help="synthetic full-size cases for the pipeline (default %(default)s)")
    parser.add_argument("--pipeline_batches", type=int, default=200,
                        help="batches read from the pipeline (default %(default)s)")
    parser.add_argument("--data_path", "--data_dir", dest="data_path", default=None,
                        help="case folders for the pipeline (default: synthetic, written to a temporary folder)")
    npu_utils.add_device_flags(parser)
    return parser.parse_args(argv)


def time_training(ctx, model_name, batch_size, learning_rate, steps):
    """Patches/s of the real training step (loss of both heads, Adam) on random 38^3 patches."""
    with ctx.strategy.scope():
        model = tf_models.build_model(model_name)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(learning_rate))
    step = npu_utils.make_train_step(ctx, model, optimizer, metrics.make_loss_fn(model))
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size, 38, 38, 38, 4)).astype(np.float32))
    labels = tf.constant(rng.choice([0, 1, 2, 4], size=(batch_size, 12, 12, 12)).astype(np.int32))
    for _ in range(2):
        float(step(images, labels))
    start = time.time()
    for _ in range(steps):
        float(step(images, labels))
    return batch_size * steps / (time.time() - start)


def time_pipeline(data_dir, batches, batch_size):
    """Patches/s of data_loading.patches.patch_dataset alone (loading, normalising, sampling, cutting)."""
    cases = discover_cases(data_dir)[0]

    def load_fn(index):
        loaded = load_case(cases[index])
        return loaded.image, loaded.label

    dataset = patch_dataset(load_fn, len(cases), num_tumour=200, num_background=200,
                            patch_size=(38, 38, 38), label_size=(12, 12, 12), batch_size=batch_size,
                            seed=0, epoch=0).take(batches)
    start = time.time()
    count = sum(int(images.shape[0]) for images, _ in dataset)
    return count / (time.time() - start), len(cases)


def time_block(model, model_name, image, block_size):
    """Seconds and (X, Y, Z) labels of block inference with ``model``'s weights under the current dtype policy."""
    block_fn = inference.make_predict_fn(tf_models.inference_twin(model, model_name), "block_predict")
    # Trace the block shape before timing.
    block_fn(np.zeros((1,) + (block_size + 2 * specs.CROP_MARGIN,) * 3 + (4,), np.float32))
    start = time.time()
    labels = inference.predict_labels(block_fn, image, "block", block_size)
    return time.time() - start, labels


def time_windows(model, image, block_labels, num_windows, window_batch):
    """The window method on ``num_windows`` random windows of the reference grid.

    Returns:
      (seconds measured, windows timed, windows with a non-zero input (what
      the window method runs), all windows of the grid, block labels equal on
      the timed windows' centres).
    """
    window_fn = inference.make_predict_fn(model, "window_predict")
    window_fn(np.zeros((window_batch, 38, 38, 38, 4), np.float32))  # trace before timing
    corners = inference.nonzero_window_corners(image)
    chosen = corners[np.random.default_rng(0).choice(len(corners), size=min(num_windows, len(corners)),
                                                     replace=False)]
    start = time.time()
    window_logits, counts = inference.predict_windows(window_fn, image, batch_size=window_batch, corners=chosen)
    seconds = time.time() - start
    covered = counts > 0
    window_labels = np.where(inference.head_mask(image), inference.logits_to_labels(window_logits), 0)
    same = np.array_equal(block_labels[covered], window_labels[covered])
    return seconds, len(chosen), len(corners), len(inference.window_corners(image.shape[:3])), same


def report_inference(args, image, policies):
    """Print the block and window lines in float32, then the block line of each other policy."""
    keras.mixed_precision.set_global_policy("float32")
    model = tf_models.build_model(args.model_name)  # untrained, seeded: the same weights for every policy
    block_s, labels = time_block(model, args.model_name, image, args.block_size)
    window_s, timed, run, total, same = time_windows(model, image, labels, args.windows, args.window_batch)
    window_run, window_all = window_s / timed * run, window_s / timed * total
    print(f"inference {image.shape[:3]} float32: block method {block_s:.1f} s (blocks of "
          f"{args.block_size}^3 kept); window method {window_s:.1f} s for {timed} windows -> "
          f"{window_run:.0f} s for the {run} with a non-zero input ({window_all:.0f} s for all {total}); "
          f"block is {window_run / block_s:.1f}x faster ({window_all / block_s:.1f}x against all windows); "
          f"labels on the timed windows {'equal' if same else 'DIFFER'}", flush=True)
    inside = inference.head_mask(image)
    for policy in policies[1:]:
        keras.mixed_precision.set_global_policy(policy)
        seconds, other = time_block(model, args.model_name, image, args.block_size)
        agree = float((other[inside] == labels[inside]).mean())
        print(f"inference {image.shape[:3]} {policy}: block method {seconds:.1f} s ({block_s / seconds:.2f}x "
              f"float32); labels equal to float32's on {agree:.2%} of the head's voxels (untrained weights)",
              flush=True)


@npu_utils.exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    ctx = npu_utils.setup_device(args)
    # --use_amp / --precision_mode: time float32 and the device's mixed policy side by side.
    policies = ["float32"] + ([ctx.precision.policy] if ctx.precision.policy != "float32" else [])
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        npu_utils.set_random_seed(0)
        rate = time_training(ctx, args.model_name, args.batch_size, args.learning_rate, args.train_steps)
        print(f"training {policy}: {rate:.2f} patches/s ({args.model_name}, batch {args.batch_size}, 38^3, "
              f"{rate * 12 ** 3:.0f} labelled voxels/s)", flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_path or scratch
        if args.data_path is None:
            synthetic.write_dataset(scratch, args.pipeline_cases, args.shape, seed=0)
        rate, cases = time_pipeline(data_dir, args.pipeline_batches, args.batch_size)
        print(f"pipeline: {rate:.1f} patches/s ({cases} cases, no training)", flush=True)
        case = load_case(discover_cases(data_dir)[0][0], with_label=False)
    npu_utils.set_random_seed(0)
    report_inference(args, case.image, policies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
