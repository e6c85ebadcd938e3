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
"""Evaluation: the run's checked file lists, the pass over the validation split, its metrics and report."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from common import npu_utils
from common.errors import UserError
from data_loading import decoding, folders, pipeline
from runtime import flags, inference, metrics

if TYPE_CHECKING:  # for the hints only
    import tensorflow as tf

    from common.stack import keras


def load_data(args: argparse.Namespace, need_train: bool) -> folders.Dataset:
    """The checked file lists of the run (see data_loading.folders).

    Training checks --class_number against the class folders (0 takes it from
    them, and ``args.class_number`` is set to the folder count); evaluation
    compares the folders with the saved model's class names instead.

    Returns:
      :class:`folders.Dataset` (the training split is empty when not ``need_train``).
    """
    if not args.eval_dir or (need_train and not args.train_dir):
        raise UserError("no data: pass --data_path (holding train/ and validation/) "
                        "or set train_dir and eval_dir")
    train_dir = args.train_dir if need_train else None
    if args.task == "segmentation":
        dataset = folders.load_segmentation(train_dir, args.eval_dir, args.class_number)
    elif need_train:
        dataset = folders.load_classification(train_dir, args.eval_dir)
    else:
        split, names = folders.load_class_split(args.eval_dir)
        dataset = folders.Dataset(folders.Split([], []), split, names)
    if need_train and args.task == "classification":
        if args.class_number not in (0, len(dataset.class_names)):
            raise UserError(
                f"class_number={args.class_number} but {args.train_dir} has {len(dataset.class_names)} class "
                f"folders; pass --class_number={len(dataset.class_names)} (or 0 to take it from the folders)")
        args.class_number = len(dataset.class_names)
    return dataset


def evaluate(model: keras.Model, data: Iterable[tuple[tf.Tensor, tf.Tensor]], task: str, num_classes: int,
             batch: int) -> dict[str, float | np.ndarray]:
    """Run ``model`` over ``data`` (batches of at most ``batch`` images, labels) and compute the metrics.

    Returns:
      :func:`metrics.classification_metrics` or :func:`metrics.segmentation_metrics`.
    """
    forward = inference.forward_fn(model, batch)
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


def scalar_metrics(result: Mapping[str, float | np.ndarray]) -> dict[str, float]:
    """The scalar entries of a metrics dict, in the order they are printed."""
    return {name: value for name, value in result.items() if np.isscalar(value)}


def print_metric_lines(result: Mapping[str, float | np.ndarray]) -> None:
    for name, value in scalar_metrics(result).items():
        print(npu_utils.format_metric_line(name, value), flush=True)


def report(result: Mapping[str, float | np.ndarray], class_names: Sequence[str], task: str, folder: str) -> None:
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


def evaluate_run(args: argparse.Namespace, model: keras.Model, names: Sequence[str], dataset: folders.Dataset) -> None:

    """Evaluate on the validation split and write the report into ``<model_dir>/eval``.

    A classification folder may hold some of the model's classes, matched
    by name (the others' per-class accuracy is NaN).

    Raises:
      UserError: the validation folders hold a class the model does not have.
    """
    validation = dataset.validation
    if args.task == "classification":
        validation = folders.match_classes(validation, dataset.class_names, names, args.eval_dir)
    checker = decoding.DecodeChecker(args.skip_bad_images)
    data = pipeline.eval_dataset(validation.paths, validation.labels, args.task,
                                 args.height, args.width, args.batch_size, flags.cache_bytes(args), checker,
                                 len(names))
    result = evaluate(model, data, args.task, len(names), args.batch_size)
    checker.end_pass("evaluation")
    report(result, names, args.task, os.path.join(args.model_dir, "eval"))
