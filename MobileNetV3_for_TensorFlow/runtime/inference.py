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
"""A finished run's model (for evaluate, predict and export), the inference step, prediction and export."""

from __future__ import annotations

import argparse
import csv
import functools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from PIL import Image

from common import npu_utils, stack
from data_loading import decoding, folders, pipeline
from model import network

if TYPE_CHECKING:  # for the hints only
    from common.stack import keras


# The name under which npu_utils.TRACES counts the traces of the inference step.
INFERENCE_STEP = "inference_step"


@functools.lru_cache(maxsize=None)
def _compiled(model):
    """One inference step per model, traced once: it is only fed batches of one shape."""
    return npu_utils.step_function(lambda images: model(images, training=False), INFERENCE_STEP)


def forward_fn(model: keras.Model, batch: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """``forward(images) -> outputs`` through the step of ``model`` at a fixed batch of ``batch`` images.

    A smaller batch (the last one of a split) is padded with zeros and its
    outputs cut back, so the step is not traced again for its shape: an NPU
    compiles each new shape anew, and the adapter wants fixed shapes.
    """
    step = _compiled(model)

    def forward(images):
        count = int(images.shape[0])
        if count < batch:
            images = tf.concat([images, tf.zeros([batch - count, *images.shape[1:]], images.dtype)], axis=0)
        return step(images)[:count]

    return forward


def load_run(args: argparse.Namespace) -> tuple[keras.Model, list[str]]:
    """The model of the finished run ``--model_dir`` for evaluate, predict and export.

    The network settings (:data:`flags.RUN_KEYS`) came from the run's
    config.json (flags.parse_args); the task, input size and class count
    are checked here against the saved model. --weights is only where
    training starts and is not used here.

    Returns:
      ``(model, class_names)``.
    """
    if args.weights:
        print(f"[model] weights={args.weights} is only where training starts; {args.mode_flag} uses "
              f"the model of --model_dir={args.model_dir}", flush=True)
    model, names = network.load_saved(args.model_dir)
    _fit_args_to_model(args, model, names)
    return model, names


def _fit_args_to_model(args, model, names):
    """Take the task, the input size and the class count from a saved model rather than from the flags.

    A run folder without config.json (an older run, or a copied .keras model)
    still evaluates right. A classifier is saved with a fixed (height, width);
    an LR-ASPP model takes any size and outputs a map (N, H, W, classes).
    ``names`` are the model's class names (its class_names.json).
    """
    task = "segmentation" if len(model.output_shape) == 4 else "classification"
    if task != args.task:
        print(f"[model] the saved model does {task}: using --task={task}", flush=True)
        args.task = task
    height, width = model.input_shape[1:3]
    if height and (height, width) != (args.height, args.width):
        print(f"[model] the saved model takes {height}x{width} images: using --height={height} "
              f"--width={width}", flush=True)
        args.height, args.width = height, width
    if args.class_number != len(names):
        print(f"[model] the saved model has {len(names)} classes: using --class_number={len(names)}", flush=True)
        args.class_number = len(names)


def predict(model: keras.Model, class_names: Sequence[str], paths: Sequence[str], task: str, height: int, width: int,
            batch: int, output: str, checker: decoding.DecodeChecker | None = None) -> None:
    """Predict every image of ``paths``.

    Classification writes ``output`` as a CSV of file, class, probability;
    segmentation writes one PNG mask of class indices per image, at the
    image's own size, into the folder ``output``. A file that does not
    decode stops the run (UserError naming it) or, when ``checker`` skips
    bad images, gets no row.
    """
    checker = checker or decoding.DecodeChecker()
    data = pipeline.predict_dataset(paths, height, width, task, batch, checker)
    forward = forward_fn(model, batch)
    written = 0
    if task == "segmentation":
        os.makedirs(output, exist_ok=True)
        for images, sizes, names in data:
            checker.raise_if_bad()
            labels = tf.argmax(forward(images), axis=-1, output_type=tf.int32)[..., None]
            for mask, size, name in zip(labels, sizes.numpy(), names.numpy()):
                mask = tf.image.resize(mask, size, method="nearest").numpy()[..., 0].astype(np.uint8)
                stem = os.path.splitext(os.path.basename(os.fsdecode(name)))[0]
                Image.fromarray(mask).save(os.path.join(output, stem + ".png"))
                written += 1
        print(f"[predict] {written} masks in {output}", flush=True)
        return
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class", "probability"])
        for images, _, names in data:
            checker.raise_if_bad()
            for row, name in zip(forward(images).numpy(), names.numpy()):
                best = int(np.argmax(row))
                writer.writerow([os.fsdecode(name), class_names[best], f"{row[best]:.6f}"])
                written += 1
    print(f"[predict] {written} predictions in {output}", flush=True)


def export(model: keras.Model, class_names: Sequence[str], folder: str) -> None:
    """Write a TF SavedModel (``saved_model/``), the Keras model file, its portable weights and
    ``class_names.json``."""
    network.save_model(model, class_names, folder)
    stack.export_saved_model(model, os.path.join(folder, "saved_model"))
    print(f"[export] SavedModel in {os.path.join(folder, 'saved_model')}, Keras model and class names in {folder}",
          flush=True)


def predict_run(args: argparse.Namespace, model: keras.Model, names: Sequence[str]) -> None:

    """Predict every image of --input into --output (CSV, or a folder of PNG masks)."""
    checker = decoding.DecodeChecker(args.skip_bad_images)
    default = "predictions" if args.task == "segmentation" else "predictions.csv"
    predict(model, names, folders.list_images(args.input), args.task, args.height, args.width,
            args.batch_size, args.output or os.path.join(args.model_dir, default), checker)
    checker.end_pass("prediction")
