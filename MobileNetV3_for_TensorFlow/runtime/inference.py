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
"""Evaluation, prediction and export of a trained network."""

import csv
import functools
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from common import npu_utils
from data_loading import pipeline
from runtime import metrics
from runtime.network import save_model


# The name under which npu_utils.TRACES counts the traces of the inference step.
INFERENCE_STEP = "inference_step"


@functools.lru_cache(maxsize=None)
def _compiled(model):
    """One inference step per model, traced once: it is only fed batches of one shape."""
    return npu_utils.step_function(lambda images: model(images, training=False), INFERENCE_STEP)


def _forward(model, batch):
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


def evaluate(model, data, task, num_classes, batch):
    """Run ``model`` over ``data`` (batches of at most ``batch`` images, labels) and compute the metrics.

    Returns:
      :func:`metrics.classification_metrics` or :func:`metrics.segmentation_metrics`.
    """
    forward = _forward(model, batch)
    if task == "segmentation":
        confusion = np.zeros((num_classes, num_classes), np.int64)
        for images, masks in data:
            predicted = np.argmax(forward(images).numpy(), axis=-1)
            confusion += metrics.confusion_matrix(masks.numpy(), predicted, num_classes)
        return metrics.segmentation_metrics(confusion)
    probabilities, labels = [], []
    for images, batch_labels in data:
        probabilities.append(forward(images).numpy())
        labels.append(batch_labels.numpy())
    return metrics.classification_metrics(np.concatenate(probabilities), np.concatenate(labels))


def scalar_metrics(result):
    """The scalar entries of a metrics dict, in the order they are printed."""
    return {name: value for name, value in result.items() if np.isscalar(value)}


def print_metric_lines(result):
    for name, value in scalar_metrics(result).items():
        print(npu_utils.format_metric_line(name, value), flush=True)


def report(result, class_names, task, folder):
    """Print METRIC lines, per-class figures and the confusion matrix; write them into ``folder``.

    Writes ``metrics.txt``, ``confusion_matrix.txt`` and ``confusion_matrix.png``.
    """
    os.makedirs(folder, exist_ok=True)
    print_metric_lines(result)
    per_class_name = "IoU" if task == "segmentation" else "accuracy"
    lines = [f"{name}={value:.6f}" for name, value in scalar_metrics(result).items()]
    lines += [f"class {i} {name}: {per_class_name} {value:.4f}"
              for i, (name, value) in enumerate(zip(class_names, result["per_class"]))]
    text = metrics.confusion_text(result["confusion"], class_names)
    print("\n".join(lines[len(scalar_metrics(result)):]))
    print(text)
    with open(os.path.join(folder, "metrics.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(folder, "confusion_matrix.txt"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    metrics.confusion_png(result["confusion"], class_names, os.path.join(folder, "confusion_matrix.png"))
    print(f"[evaluate] confusion matrix and metrics in {folder}", flush=True)


def predict(model, class_names, paths, task, height, width, batch, output, checker=None):
    """Predict every image of ``paths``.

    Classification writes ``output`` as a CSV of file, class, probability;
    segmentation writes one PNG mask of class indices per image, at the
    image's own size, into the folder ``output``. A file that does not
    decode stops the run (UserError naming it) or, when ``checker`` skips
    bad images, gets no row.
    """
    checker = checker or pipeline.DecodeChecker()
    data = pipeline.predict_dataset(paths, height, width, task, batch, checker)
    forward = _forward(model, batch)
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


def export(model, class_names, folder):
    """Write a TF SavedModel (``saved_model/``), the Keras model file, its portable weights and
    ``class_names.json``."""
    save_model(model, class_names, folder)
    npu_utils.export_saved_model(model, os.path.join(folder, "saved_model"))
    print(f"[export] SavedModel in {os.path.join(folder, 'saved_model')}, Keras model and class names in {folder}",
          flush=True)
