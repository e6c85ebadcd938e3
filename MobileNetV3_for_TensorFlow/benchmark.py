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
"""Speed and memory of this MobileNetV3: training, the input pipeline, and growth with the folder size.

Parts (``--parts``, comma-separated):

- ``training``: this network against keras.applications of the same
  configuration, trained the same way in the same process (the same
  common/npu_utils.make_train_step, Adam, categorical cross-entropy, random
  images, float32), with and without XLA.
- ``amp``: this network in float32 beside ``--use_amp`` (the precision main.py
  chooses: mixed_bfloat16 on a CPU with bf16, else float32 and a note).
- ``pipeline``: the training tf.data pipeline alone (read, decode the random
  box, resize, augment, batch; streamed from the files) on a folder of
  500x375 JPEGs, with one and with two images decoded at once
  (``num_parallel_calls`` 1 and 2).
- ``with_pipeline``: Small (``--networks``' first) trained main.py's way
  (common/npu_utils.make_train_step, Adam, float32) on batches of that
  pipeline streaming the folder, beside the same network and keras.applications
  on in-memory batches; the three alternate ``--rounds`` times in one process
  and each reports its median. Both pipeline parts take main.py's
  ``--max_rotation`` (default 0, main.py's default).
- ``resampling``: CPU milliseconds per image of resizing a training box to
  ``--size`` with the pipeline's filter (bilinear, antialiased:
  data_loading/augment.resize) against plain bilinear (the training filter
  before), for the mean Inception box of a 500x375 image (318x318) and of a
  4000x3000 photo (2540x2540), one image at a time in a tf.data map.
- ``epochs``: ``main.py --mode=train`` for 4 epochs of 10 steps streamed
  from synthetic 64x64 PNG class folders (Small alpha 0.5, batch 16,
  ``--cache_budget_mb=0``): for each epoch after the first, its first TRAIN
  line's ``step_ms`` against the median of its other steps (an epoch
  boundary that stalls the input shows as a ratio well above 1).
- ``scaling``: ``main.py --mode=train`` on ``--small_count`` and
  ``--large_count`` ImageNet-like 500x375 JPEGs: peak RSS of the process and
  the time from its start to its first TRAIN line.

The JPEG folders are written under ``--jpeg_root`` (default /tmp/mnv3_benchmark),
never inside the repository, and reused when they exist.

    python3 benchmark.py [--parts training,amp,pipeline,with_pipeline] [--networks small,large] [--steps 6]
                                   [--xla off,on] [--rounds 5] [--max_rotation 0]
    python3 benchmark.py --parts scaling [--small_count 600 --large_count 12600]
    python3 benchmark.py --parts resampling [--size 224]
    python3 benchmark.py --parts epochs
"""

import argparse
import concurrent.futures
import dataclasses
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

MODEL_DIR = os.path.dirname(os.path.abspath(__file__))
# This model's packages and the repository's common/ package.
sys.path[:0] = [MODEL_DIR, os.path.dirname(MODEL_DIR)]

import tensorflow as tf  # noqa: E402

from common import npu_utils, stack  # noqa: E402
from common.stack import keras  # noqa: E402
from data_loading import augment, folders, pipeline, synthetic  # noqa: E402
from model.mobilenet_v3 import build_classifier  # noqa: E402

JPEG_SIZE = (500, 375)  # width, height: a typical ImageNet photo
CLASSES = 4
VALIDATION_PER_CLASS = 25  # the same 100 validation images in every folder


def train_step(ctx, model):
    """main.py's compiled step (common/npu_utils.make_train_step) with Adam and cross-entropy on class indices."""
    optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(1e-3))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()

    def loss_fn(images, labels):
        return cross_entropy(labels, model(images, training=True))

    return npu_utils.make_train_step(ctx, model, optimizer, loss_fn)


def in_memory_batches(batch, size):
    """The same random batch forever: float32 (batch, size, size, 3) in [0, 255] and int32 (batch,) labels."""
    images = tf.random.uniform((batch, size, size, 3), 0, 255, seed=1)
    labels = tf.range(batch) % 1000
    while True:
        yield images, labels


def time_steps(step, batches, batch, steps):
    """Images/s of ``steps`` calls of ``step`` on the next ``steps`` of ``batches``."""
    start = time.perf_counter()
    for _ in range(steps):
        float(step(*next(batches)))
    return batch * steps / (time.perf_counter() - start)


def time_training(ctx, model, batch, size, steps, warmup):
    """Images/s of ``steps`` training steps on in-memory batches after ``warmup`` untimed ones."""
    step, batches = train_step(ctx, model), in_memory_batches(batch, size)
    time_steps(step, batches, batch, warmup)
    return time_steps(step, batches, batch, steps)


def training_rows(ctx, args):
    """(network, implementation, XLA, precision, images/s) of this network and keras.applications."""
    reference = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}
    rows = []
    for network in args.networks.split(","):
        for xla in [{"off": False, "on": True}[choice] for choice in args.xla.split(",")]:
            run_ctx = dataclasses.replace(ctx, use_xla=xla)
            for name in ("this", "keras.applications"):
                stack.set_random_seed(0)
                with ctx.strategy.scope():
                    if name == "this":
                        model = build_classifier(network, 1.0, 1000, (args.size, args.size, 3))
                    else:
                        model = reference[network](input_shape=(args.size, args.size, 3), weights=None,
                                                   include_preprocessing=True)
                speed = time_training(run_ctx, model, args.batch, args.size, args.steps, args.warmup)
                rows.append((network, name, "XLA" if xla else "-", "float32", speed))
                print(f"{network:6s} {name:18s} xla={'on ' if xla else 'off'} {speed:7.2f} images/s", flush=True)
    return rows


def amp_rows(ctx, args):
    """This network in float32 and with --use_amp, paired per network."""
    # As main.py chooses (common/npu_utils.setup_device): TF 2.6.5 has no bfloat16 CPU convolutions.
    amp = npu_utils.choose_precision("cpu", use_amp=True,
                                     bf16_capable=stack.CPU_BFLOAT16 and npu_utils.cpu_has_bf16())
    rows = []
    for network in args.networks.split(","):
        for policy in ("float32", amp.policy):
            keras.mixed_precision.set_global_policy(policy)
            stack.set_random_seed(0)
            with ctx.strategy.scope():
                model = build_classifier(network, 1.0, 1000, (args.size, args.size, 3))
            speed = time_training(ctx, model, args.batch, args.size, args.steps, args.warmup)
            rows.append((network, "this", "-", policy, speed))
            note = amp.note if policy != "float32" else ""
            print(f"{network:6s} {policy:16s} {speed:7.2f} images/s {note}", flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return rows


def _write_jpeg(job):
    """One ImageNet-like photo: smooth colour fields, shapes and a little noise, 500x375, quality 90."""
    path, seed = job
    rng = np.random.default_rng(seed)
    width, height = JPEG_SIZE
    y, x = np.mgrid[:height, :width] / max(width, height)
    channels = [np.sin(x * rng.uniform(2, 9) + y * rng.uniform(2, 9) + rng.uniform(0, 6)) for _ in range(3)]
    image = (np.stack(channels, -1) * 80 + 128 + rng.normal(0, 12, (height, width, 3))).clip(0, 255)
    Image.fromarray(image.astype(np.uint8)).save(path, quality=90)


def jpeg_folder(root, train_count):
    """``root/jpeg_<train_count>/{train,validation}/class_k/`` with ``train_count`` training JPEGs (written once)."""
    folder = os.path.join(root, f"jpeg_{train_count}")
    done = os.path.join(folder, "complete")
    if os.path.isfile(done):
        return folder
    jobs = []
    for split, count in (("train", train_count), ("validation", VALIDATION_PER_CLASS * CLASSES)):
        for index in range(count):
            class_dir = os.path.join(folder, split, f"class_{index % CLASSES}")
            os.makedirs(class_dir, exist_ok=True)
            jobs.append((os.path.join(class_dir, f"{split}_{index:06d}.jpg"), index + (split == "train") * 10 ** 7))
    with concurrent.futures.ProcessPoolExecutor() as pool:
        list(pool.map(_write_jpeg, jobs, chunksize=64))
    open(done, "w").close()
    return folder


def streamed_batches(folder, batch, size, parallel_calls=pipeline.AUTOTUNE, max_rotation=0.0):
    """main.py's training batches of ``folder``'s training split (too large for the default cache: streamed)."""
    dataset = folders.load_classification(os.path.join(folder, "train"), os.path.join(folder, "validation"))
    data = pipeline.TrainData(dataset.train.paths, dataset.train.labels, "classification", size, size, batch,
                              seed=0, steps_per_epoch=len(dataset.train.paths) // batch,
                              parallel_calls=parallel_calls, augmentation=augment.Augmentation(max_rotation))
    if data.cached:
        raise SystemExit(f"{folder}'s training images fit the default cache: the pipeline would not stream")
    iterator = iter(data.epoch(0))
    next(iterator)  # tracing and the first reads
    return iterator


def time_pipeline(folder, batch, size, batches, parallel_calls, max_rotation):
    """The training pipeline alone streaming ``folder``'s JPEGs (decode, resize, augment, batch): images/s and
    the process's CPU milliseconds per image (which other processes' load does not change much)."""
    iterator = streamed_batches(folder, batch, size, parallel_calls, max_rotation)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    return batch * batches / (time.perf_counter() - start), (time.process_time() - cpu_start) * 1000 / (batch * batches)


def with_pipeline_rows(ctx, args, folder):
    """Median images/s of keras.applications and this network on in-memory batches and this network on the
    streamed pipeline, alternating ``args.rounds`` times (so a change of the machine's load hits all three)."""
    network = args.networks.split(",")[0]
    reference = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}
    shape = (args.size, args.size, 3)
    with ctx.strategy.scope():
        stack.set_random_seed(0)
        models = {"keras.applications, in-memory batches": reference[network](
                      input_shape=shape, weights=None, include_preprocessing=True),
                  "this, in-memory batches": build_classifier(network, 1.0, 1000, shape),
                  "this, streamed JPEG pipeline": build_classifier(network, 1.0, 1000, shape)}
    runs = {}
    for name, model in models.items():
        batches = (streamed_batches(folder, args.batch, args.size, max_rotation=args.max_rotation)
                   if "pipeline" in name else in_memory_batches(args.batch, args.size))
        runs[name] = (train_step(ctx, model), batches)
        time_steps(*runs[name], args.batch, args.warmup)
    speeds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (step, batches) in runs.items():
            speeds[name].append(time_steps(step, batches, args.batch, args.steps))
    rows = [(network, name, float(np.median(values)), min(values), max(values)) for name, values in speeds.items()]
    for row in rows:
        print(f"{row[0]:6s} {row[1]:38s} median {row[2]:7.2f} images/s (range {row[3]:.2f}-{row[4]:.2f})",
              flush=True)
    return rows


# Sides of the mean Inception box (54% of the area) of a 500x375 image and of a 4000x3000 photo.
RESAMPLING_BOXES = (318, 2540)


def resampling_rows(size, images=96):
    """Print the CPU ms per image of plain and antialiased bilinear: a random uint8 box resized to ``size`` x
    ``size``, ``images`` times, one image at a time in a one-call tf.data map (as the pipeline's)."""
    for side in RESAMPLING_BOXES:
        box = tf.constant(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8))
        costs = []
        for antialias in (False, True):
            data = tf.data.Dataset.from_tensors(box).repeat(images).map(
                lambda image, antialias=antialias: tf.image.resize(image, (size, size), antialias=antialias),
                num_parallel_calls=1).batch(8)
            for _ in data.take(1):  # tracing
                pass
            start = time.process_time()
            for _ in data:
                pass
            costs.append((time.process_time() - start) * 1000 / images)
        print(f"box {side}x{side} -> {size}x{size}: bilinear {costs[0]:.2f}, antialiased {costs[1]:.2f} CPU ms "
              f"per image (load average {os.getloadavg()[0]:.1f})", flush=True)


# The epochs part: epochs of 10 steps (160 training images, batch 16).
BOUNDARY_EPOCHS = 4


def epoch_boundaries(jpeg_root):
    """Print, for each epoch after the first of a streamed main.py run, its first step's step_ms against the
    median of its other steps (the part ``epochs``)."""
    folder = os.path.join(jpeg_root, "shapes")
    if not os.path.isdir(folder):
        synthetic.write_classification(folder, classes=4, train_per_class=40, validation_per_class=10, size=64)
    command = [sys.executable, os.path.join(MODEL_DIR, "main.py"), "--mode=train", f"--data_path={folder}",
               "--class_number=0", "--alpha=0.5", "--height=64", "--width=64", f"--train_epochs={BOUNDARY_EPOCHS}",
               "--batch_size=16", "--cache_budget_mb=0", f"--model_dir={os.path.join(jpeg_root, 'epochs_run')}",
               "--resume=False"]
    result = subprocess.run(command, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2"))
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed (status {result.returncode})")
    step_ms = [float(match.group(5)) for match in map(npu_utils.STEP_LINE_RE.search, result.stdout.splitlines())
               if match]
    per_epoch = len(step_ms) // BOUNDARY_EPOCHS
    for epoch in range(1, BOUNDARY_EPOCHS):
        steps = step_ms[epoch * per_epoch:(epoch + 1) * per_epoch]
        median = float(np.median(steps[1:]))
        print(f"epoch {epoch + 1}: first step {steps[0]:.1f} ms, median of its other {len(steps) - 1} steps "
              f"{median:.1f} ms, ratio {steps[0] / median:.2f} (load average {os.getloadavg()[0]:.1f})", flush=True)


def first_step_and_peak_rss(folder, args, run_dir):
    """``main.py --mode=train`` on ``folder``: (seconds from start to the first TRAIN line, peak RSS in MB)."""
    command = [sys.executable, os.path.join(MODEL_DIR, "main.py"), "--mode=train", f"--data_path={folder}",
               "--class_number=0", f"--batch_size={args.batch}", f"--height={args.size}", f"--width={args.size}",
               "--epochs=1", f"--max_steps={args.scaling_steps}", f"--model_dir={run_dir}", "--resume=False"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first_step = None
    for line in process.stdout:
        if first_step is None and line.startswith("TRAIN step="):
            first_step = time.perf_counter() - start
    _, status, usage = os.wait4(process.pid, 0)
    if status or first_step is None:
        raise SystemExit(f"{' '.join(command)} failed (status {status})")
    return first_step, usage.ru_maxrss / 1024


def scaling_rows(args):
    """First-step time and peak RSS of main.py on the small and the large JPEG folder."""
    rows = []
    for train_count in (args.small_count - VALIDATION_PER_CLASS * CLASSES,
                        args.large_count - VALIDATION_PER_CLASS * CLASSES):
        folder = jpeg_folder(args.jpeg_root, train_count)
        seconds, megabytes = first_step_and_peak_rss(folder, args, os.path.join(args.jpeg_root, "run"))
        total = train_count + VALIDATION_PER_CLASS * CLASSES
        rows.append((total, seconds, megabytes))
        print(f"{total} JPEGs: first TRAIN line after {seconds:.1f} s, peak RSS {megabytes:.0f} MB", flush=True)
    return rows


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="training,amp,pipeline",
                        help="training, amp, pipeline, with_pipeline, resampling, epochs, scaling")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, XLA compile)")
    parser.add_argument("--networks", default="small,large")
    parser.add_argument("--xla", default="off,on", help="training part: rows without (off) and with (on) XLA")
    parser.add_argument("--pipeline_batches", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5, help="with_pipeline: alternating rounds of --steps steps")
    parser.add_argument("--max_rotation", type=float, default=0.0,
                        help="pipeline, with_pipeline: main.py's --max_rotation (degrees) of the pipeline")
    parser.add_argument("--jpeg_root", default="/tmp/mnv3_benchmark", help="where the JPEG folders are written")
    parser.add_argument("--small_count", type=int, default=600, help="JPEGs of the small folder (train + 100 val)")
    parser.add_argument("--large_count", type=int, default=12600, help="JPEGs of the large folder")
    parser.add_argument("--scaling_steps", type=int, default=3, help="training steps of each scaling run")
    npu_utils.add_device_flags(parser)
    return parser


def report_training(ctx, args, parts):
    """The training and amp parts: one table of training speeds."""
    rows = (training_rows(ctx, args) if "training" in parts else []) + (amp_rows(ctx, args) if "amp" in parts else [])
    if rows:
        print("\n| network | implementation | XLA | precision | training images/s |\n|---|---|---|---|---|")
        for network, name, xla, policy, speed in rows:
            print(f"| {network} | {name} | {xla} | {policy} | {speed:.2f} |")


def report_pipeline(args):
    """The pipeline part: the input pipeline alone with 1 and 2 parallel calls."""
    folder = jpeg_folder(args.jpeg_root, args.large_count - VALIDATION_PER_CLASS * CLASSES)
    (one, one_cpu), (two, two_cpu) = [
        time_pipeline(folder, args.batch, args.size, args.pipeline_batches, calls, args.max_rotation)
        for calls in (1, 2)]
    print(f"\ninput pipeline alone ({JPEG_SIZE[0]}x{JPEG_SIZE[1]} JPEGs streamed, decode the random box, "
          f"resize, augment (--max_rotation={args.max_rotation:g}), batch {args.batch} at "
          f"{args.size}x{args.size}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}): num_parallel_calls=1 {one:.1f} images/s "
          f"({one_cpu:.2f} CPU ms per image), 2 {two:.1f} images/s ({two_cpu:.2f} CPU ms per image), "
          f"ratio {two / one:.2f}")


def report_with_pipeline(ctx, args):
    """The with_pipeline part: training fed by the streamed pipeline against in-memory batches."""
    folder = jpeg_folder(args.jpeg_root, args.large_count - VALIDATION_PER_CLASS * CLASSES)
    rows = with_pipeline_rows(ctx, args, folder)
    print("\n| network | implementation, input | median training images/s | range |\n|---|---|---|---|")
    for network, name, median, low, high in rows:
        print(f"| {network} | {name} | {median:.2f} | {low:.2f}-{high:.2f} |")
    print(f"streamed pipeline / keras.applications in-memory: {rows[2][2] / rows[0][2]:.2f}x")


def report_scaling(args):
    """The scaling part: first-step time and peak memory on a small and a 21x larger folder."""
    (small, small_s, small_mb), (large, large_s, large_mb) = scaling_rows(args)
    print(f"\n| JPEGs | time to the first TRAIN line (s) | peak RSS (MB) |\n|---|---|---|\n"
          f"| {small} | {small_s:.1f} | {small_mb:.0f} |\n| {large} | {large_s:.1f} | {large_mb:.0f} |\n"
          f"| ratio | {large_s / small_s:.2f} | {large_mb / small_mb:.2f} |")


def main():
    parser = _parser()
    args = parser.parse_args()
    if not set(args.xla.split(",")) <= {"off", "on"}:
        parser.error(f"--xla={args.xla}: expected off, on or off,on")
    parts = args.parts.split(",")
    ctx = npu_utils.setup_device(args)
    report_training(ctx, args, parts)
    if "pipeline" in parts:
        report_pipeline(args)
    if "with_pipeline" in parts:
        report_with_pipeline(ctx, args)
    if "resampling" in parts:
        resampling_rows(args.size)
    if "epochs" in parts:
        epoch_boundaries(args.jpeg_root)
    if "scaling" in parts:
        report_scaling(args)

if __name__ == "__main__":
    main()
