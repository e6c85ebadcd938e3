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
whole-volume inference seconds with the block and the window method, and the seconds of one case's scores.

    python3 benchmark.py [--model_name dense24] [--width_multiplier 1.0] [--shape 240 240 155] [--windows 48]
                         [--parts training pipeline inference scores] [--use_amp]

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
window method's. The scores part times ``runtime.metrics.case_metrics`` in
both conventions (``--metrics=brats`` and ``brats2023``) on the first
synthetic case's labels against a prediction made from them (shifted, part
of the enhancing tumour dropped, three false-positive blobs). Prints one line
per figure. ``--help`` answers without loading TensorFlow.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

# The repository root holds common/; this directory model/, data_loading/ and runtime/.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

# Only modules without TensorFlow at the top, so that --help and flag errors answer at once; each timing
# function imports what it times.
from common import errors, npu_utils  # noqa: E402
from data_loading import synthetic  # noqa: E402
from data_loading.cases import discover_cases  # noqa: E402
from data_loading.nifti import load_case  # noqa: E402
from data_loading.preprocessing import head_mask  # noqa: E402
from model import specs  # noqa: E402
from runtime import flags  # noqa: E402

PARTS = ("training", "pipeline", "inference", "scores")


def parse_args(argv=None):
    """The benchmark's flags; the model, block size, window batch, batch size and learning rate default to
    main.py's (runtime/flags.py)."""
    main_flags = flags.build_parser()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name", default=main_flags.get_default("model_name"), choices=specs.MODEL_NAMES,
                        help="network (default %(default)s)")
    parser.add_argument("--width_multiplier", type=float, default=main_flags.get_default("width_multiplier"),
                        help="scales every width, as main.py's flag (default %(default)s)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="what to time (default: all of %(choices)s)")
    parser.add_argument("--shape", type=int, nargs=3, default=(240, 240, 155),
                        help="volume for inference timing (default %(default)s)")
    parser.add_argument("--block_size", type=flags.block_shape, default=main_flags.get_default("block_size"),
                        metavar="auto|N|X,Y,Z", help="block inference: voxels a block keeps, as main.py's flag "
                        "(default %(default)s)")
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


def time_training(ctx, args):
    """Patches/s of the real training step (loss of both heads, Adam) on random 38^3 patches."""
    import tensorflow as tf
    from common.stack import keras
    from model import tf_models
    from runtime import metrics

    batch_size, steps = args.batch_size, args.train_steps
    with ctx.strategy.scope():
        model = tf_models.build_model(args.model_name, args.width_multiplier)
        optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(args.learning_rate))
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
    from data_loading.patches import patch_dataset

    cases = discover_cases(data_dir)[0]

    def load_fn(index):
        loaded = load_case(cases[index])
        return loaded.image, loaded.label, loaded.background

    dataset = patch_dataset(load_fn, len(cases), num_tumour=200, num_background=200,
                            patch_size=(38, 38, 38), label_size=(12, 12, 12), batch_size=batch_size,
                            seed=0, epoch=0).take(batches)
    start = time.time()
    count = sum(int(images.shape[0]) for images, _ in dataset)
    return count / (time.time() - start), len(cases)


def reset_peak_memory():
    """Start a new peak of resident memory (Linux: VmHWM); elsewhere :func:`peak_memory_gb` is the process's."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def peak_memory_gb():
    """The resident memory's peak, GB: since :func:`reset_peak_memory` on Linux, else of the whole process."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2 ** 20
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def time_block(model, args, case, block, name):
    """Block inference with ``model``'s weights under the current dtype policy, blocks keeping ``block`` (X, Y, Z).

    Returns:
      (seconds of the case, (X, Y, Z) labels, traces of the block shape (the warm-up's included), peak resident
      memory in GB during the case).
    """
    from model import tf_models
    from runtime import inference

    twin = tf_models.inference_twin(model, args.model_name, args.width_multiplier)
    block_fn = inference.make_predict_fn(twin, name)
    # Trace the block shape before timing; the case must not trace again.
    block_fn(np.zeros(inference.block_input_shape(block), np.float32))
    reset_peak_memory()
    start = time.time()
    labels = inference.predict_labels(block_fn, case.image, "block", block, background=case.background)
    return time.time() - start, labels, npu_utils.TRACES[name], peak_memory_gb()


def time_windows(model, case, block_labels, num_windows, window_batch):
    """The window method on ``num_windows`` random windows of the reference grid.

    Returns:
      (seconds measured, windows timed, windows with a non-zero input (what
      the window method runs), all windows of the grid, block labels equal on
      the timed windows' centres).
    """
    from runtime import inference

    window_fn = inference.make_predict_fn(model, "window_predict")
    window_fn(np.zeros((window_batch, 38, 38, 38, 4), np.float32))  # trace before timing
    image, background = case.image, case.background
    corners = inference.nonzero_window_corners(image, background=background)
    chosen = corners[np.random.default_rng(0).choice(len(corners), size=min(num_windows, len(corners)),
                                                     replace=False)]
    start = time.time()
    window_logits, counts = inference.predict_windows(window_fn, image, batch_size=window_batch, corners=chosen)
    seconds = time.time() - start
    covered = counts > 0
    window_labels = np.where(head_mask(image, background), inference.logits_to_labels(window_logits), 0)
    same = np.array_equal(block_labels[covered], window_labels[covered])
    return seconds, len(chosen), len(corners), len(inference.window_corners(image.shape[:3])), same


def report_inference(args, case, policies):
    """Print the block and window lines in float32, then the block line of each other policy."""
    from common.stack import keras
    from model import tf_models
    from runtime import inference

    keras.mixed_precision.set_global_policy("float32")
    # Untrained, seeded: the same weights for every policy.
    model = tf_models.build_model(args.model_name, args.width_multiplier)
    block = args.block_size
    if block == "auto":
        block = inference.fit_block([inference.head_box_size(case.image, case.background)])
    block_s, labels, traces, peak_gb = time_block(model, args, case, block, "block_predict_float32")
    window_s, timed, run, total, same = time_windows(model, case, labels, args.windows, args.window_batch)
    image = case.image
    window_run, window_all = window_s / timed * run, window_s / timed * total
    kept = "x".join(str(size) for size in block) + (" (auto)" if args.block_size == "auto" else "")
    print(f"inference {image.shape[:3]} float32 ({args.model_name}, width {args.width_multiplier:g}): block "
          f"method {block_s:.1f} s (blocks of {kept} kept, {traces} trace(s), peak memory {peak_gb:.1f} GB); "
          f"window method {window_s:.1f} s for {timed} windows -> "
          f"{window_run:.0f} s for the {run} with a non-zero input ({window_all:.0f} s for all {total}); "
          f"block is {window_run / block_s:.1f}x faster ({window_all / block_s:.1f}x against all windows); "
          f"labels on the timed windows {'equal' if same else 'DIFFER'}", flush=True)
    inside = head_mask(image, case.background)
    for policy in policies[1:]:
        keras.mixed_precision.set_global_policy(policy)
        seconds, other, traces, peak_gb = time_block(model, args, case, block, f"block_predict_{policy}")
        agree = float((other[inside] == labels[inside]).mean())
        print(f"inference {image.shape[:3]} {policy}: block method {seconds:.1f} s ({block_s / seconds:.2f}x "
              f"float32; {traces} trace(s), peak memory {peak_gb:.1f} GB); labels equal to float32's on "
              f"{agree:.2%} of the head's voxels (untrained weights)", flush=True)


def scored_prediction(truth):
    """A plausible (X, Y, Z) prediction from a truth label volume: shifted 2 voxels along X, the enhancing
    tumour of the upper half of Z read as necrosis, three 5^3 false-positive blobs of oedema."""
    prediction = np.roll(truth, 2, axis=0)
    upper = prediction[:, :, truth.shape[2] // 2:]
    upper[upper == 4] = 1
    for fraction in (0.2, 0.5, 0.8):
        corner = [int(size * fraction) for size in truth.shape]
        prediction[tuple(slice(c, c + 5) for c in corner)] = 2
    return prediction


def time_scores(case):
    """Print the seconds of ``metrics.case_metrics`` on one loaded case, in each set of conventions."""
    from runtime import metrics

    prediction = scored_prediction(case.label)
    brain = head_mask(case.image, case.background)
    for scores in metrics.SCORES:
        start = time.time()
        row = metrics.case_metrics(prediction, case.label, case.spacing, brain, scores=scores)
        seconds = time.time() - start
        extra = (f", WT lesions TP/FP/FN {row['wt_num_tp']}/{row['wt_num_fp']}/{row['wt_num_fn']}"
                 if scores == "brats2023" else "")
        print(f"scores {case.label.shape} --metrics={scores}: {seconds:.2f} s per case (WT Dice "
              f"{row['wt_dice']:.3f}, HD95 {row['wt_hd95']:.2f} mm{extra})", flush=True)


def report_training(args, ctx, policies):
    """Print the training line of each policy."""
    from common import stack
    from common.stack import keras

    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        stack.set_random_seed(0)
        rate = time_training(ctx, args)
        print(f"training {policy}: {rate:.2f} patches/s ({args.model_name}, width {args.width_multiplier:g}, batch "
              f"{args.batch_size}, 38^3, "
              f"{rate * 12 ** 3:.0f} labelled voxels/s)", flush=True)


@errors.exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    ctx = npu_utils.setup_device(args) if {"training", "inference"} & set(args.parts) else None
    # --use_amp / --precision_mode: time float32 and the device's mixed policy side by side.
    policies = ["float32"] + ([ctx.precision.policy] if ctx and ctx.precision.policy != "float32" else [])
    if "training" in args.parts:
        report_training(args, ctx, policies)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_path or scratch
        if args.data_path is None:
            synthetic.write_dataset(scratch, args.pipeline_cases, args.shape, seed=0)
        if "pipeline" in args.parts:
            rate, cases = time_pipeline(data_dir, args.pipeline_batches, args.batch_size)
            print(f"pipeline: {rate:.1f} patches/s ({cases} cases, no training)", flush=True)
        case = load_case(discover_cases(data_dir)[0][0])
    if "scores" in args.parts:
        time_scores(case)
    if "inference" in args.parts:
        from common import stack  # TensorFlow, once the flags are good

        stack.set_random_seed(0)
        report_inference(args, case, policies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
