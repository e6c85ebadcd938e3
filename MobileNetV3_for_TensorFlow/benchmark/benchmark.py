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
"""Training speed of this MobileNetV3 against keras.applications, and of the data pipeline.

Both networks are trained the same way in the same process: the same
common/npu_utils.make_train_step, Adam, categorical cross-entropy, random
224x224 images, float32, with and without XLA. Then the tf.data training
pipeline (decode from cache, random resized crop, flip, rotation, colour
jitter, batch) is timed alone on synthetic JPEGs.

    python3 benchmark/benchmark.py [--steps 6] [--batch 32] [--networks small,large]
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This model's packages and the repository's common/ package.
sys.path[:0] = [MODEL_DIR, os.path.dirname(MODEL_DIR)]

from common import npu_utils  # noqa: E402


def time_training(ctx, model, batch, size, steps, warmup):
    """Images/s of ``steps`` training steps after ``warmup`` untimed ones."""
    import keras
    import tensorflow as tf
    optimizer = keras.optimizers.Adam(1e-3)
    cross_entropy = keras.losses.CategoricalCrossentropy()

    def loss_fn(images, labels):
        return cross_entropy(labels, model(images, training=True))

    step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
    images = tf.random.uniform((batch, size, size, 3), 0, 255, seed=1)
    labels = tf.one_hot(tf.range(batch) % 1000, 1000)
    for _ in range(warmup):
        float(step(images, labels))
    start = time.perf_counter()
    for _ in range(steps):
        float(step(images, labels))
    return batch * steps / (time.perf_counter() - start)


def time_pipeline(batch, size, batches):
    """Images/s of the training tf.data pipeline on synthetic JPEGs (after the cache is filled)."""
    from data_loading import folders, pipeline, synthetic
    with tempfile.TemporaryDirectory() as root:
        synthetic.write_classification(root, classes=4, train_per_class=64, validation_per_class=1,
                                       size=size + 32)
        dataset = folders.load_classification(os.path.join(root, "train"), os.path.join(root, "validation"))
        steps = len(dataset.train.paths) // batch
        data = pipeline.TrainData(dataset.train.paths, dataset.train.labels, "classification", size, size,
                                  batch, seed=0, steps_per_epoch=steps)
        for _ in data.epoch(0):
            pass
        start, count = time.perf_counter(), 0
        epoch = 1
        while count < batches:
            for _ in data.epoch(epoch):
                count += 1
            epoch += 1
        return batch * count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, XLA compile)")
    parser.add_argument("--networks", default="small,large")
    parser.add_argument("--pipeline_batches", type=int, default=24)
    npu_utils.add_device_flags(parser)
    args = parser.parse_args()
    ctx = npu_utils.setup_device(args)

    import keras
    from model.mobilenet_v3 import build_classifier
    reference = {"small": keras.applications.MobileNetV3Small, "large": keras.applications.MobileNetV3Large}
    rows = []
    for network in args.networks.split(","):
        for xla in (False, True):
            run_ctx = dataclasses.replace(ctx, use_xla=xla)
            for name in ("this", "keras.applications"):
                keras.utils.set_random_seed(0)
                with ctx.strategy.scope():
                    if name == "this":
                        model = build_classifier(network, 1.0, 1000, (args.size, args.size, 3))
                    else:
                        model = reference[network](input_shape=(args.size, args.size, 3), weights=None,
                                                   include_preprocessing=True)
                speed = time_training(run_ctx, model, args.batch, args.size, args.steps, args.warmup)
                rows.append((network, name, "XLA" if xla else "-", speed))
                print(f"{network:6s} {name:18s} xla={'on ' if xla else 'off'} {speed:7.2f} images/s", flush=True)
    pipeline_speed = time_pipeline(args.batch, args.size, args.pipeline_batches)
    print(f"data pipeline (decode cached, augment, batch {args.batch}, {args.size}x{args.size}): "
          f"{pipeline_speed:.1f} images/s", flush=True)
    print("\n| network | implementation | XLA | training images/s |\n|---|---|---|---|")
    for network, name, xla, speed in rows:
        print(f"| {network} | {name} | {xla} | {speed:.2f} |")


if __name__ == "__main__":
    main()
