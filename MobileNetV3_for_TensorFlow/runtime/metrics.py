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
"""The training loss, evaluation metrics and their reports (the metrics in NumPy).

The names below are the ones printed as ``METRIC <name>=<value>`` lines and
the ones the best checkpoint is chosen by, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from common.stack import keras
from data_loading.folders import IGNORE_LABEL
from model.recipe import l2_loss

# Metric that picks the best checkpoint, per task (higher is better).
BEST_METRIC = {"classification": "top1", "segmentation": "miou"}
# chance_hint: validation top-1 within this of chance counts as "at chance", and a mean training loss under
# this fraction of ln(classes) (a uniform guess's cross-entropy) as "training has learnt".
CHANCE_MARGIN = 0.05
LEARNT_LOSS_FRACTION = 0.5
# The networks' last layer (model/mobilenet_v3.py, model/lraspp.py): the softmax over the logits.
PREDICTIONS_LAYER = "predictions"


def logits_model(model: keras.Model) -> keras.Model:
    """The model's scores before its final softmax (the input of its "predictions" layer), sharing its
    layers: NHWC images -> (batch, classes) or (batch, height, width, classes) logits."""
    return keras.Model(model.inputs, model.get_layer(PREDICTIONS_LAYER).input)


def make_loss(model: keras.Model, task: str, num_classes: int, label_smoothing: float,
              l2: float = 0.0) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """``loss_fn(images, labels) -> scalar``: the mean over the local batch, plus :func:`l2_loss` of
    the weights being trained with factor ``l2`` (--weight_decay under --weight_decay_mode=l2).

    Computed from the logits (``from_logits=True``): the same value as the
    cross-entropy of the softmax outputs, without the log of a probability
    that rounds to 0 (tests/test_recipe.py). Classification: categorical
    cross-entropy with label smoothing. Segmentation: pixel cross-entropy over
    pixels whose label is not 255.
    """
    scores = logits_model(model)
    if task == "segmentation":
        def loss_fn(images, masks):
            logits = tf.cast(scores(images, training=True), tf.float32)
            valid = tf.not_equal(masks, IGNORE_LABEL)
            pixel_loss = keras.losses.sparse_categorical_crossentropy(tf.where(valid, masks, 0), logits,
                                                                      from_logits=True)
            weight = tf.cast(valid, pixel_loss.dtype)
            mean = tf.reduce_sum(pixel_loss * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
            return mean + l2_loss(model, l2)
        return loss_fn
    # The loss function, not the Loss class: under a tf.distribute strategy the
    # class divides by the replica count, and make_train_step averages already.
    def loss_fn(images, labels):
        per_image = keras.losses.categorical_crossentropy(tf.one_hot(labels, num_classes),
                                                          tf.cast(scores(images, training=True), tf.float32),
                                                          from_logits=True, label_smoothing=label_smoothing)
        return tf.reduce_mean(per_image) + l2_loss(model, l2)
    return loss_fn


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = true class, columns = predicted.

    Entries of ``labels`` equal to 255 (ignore) are left out.
    """
    labels, predictions = np.ravel(labels), np.ravel(predictions)
    keep = labels != IGNORE_LABEL
    index = labels[keep].astype(np.int64) * num_classes + predictions[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float | np.ndarray]:
    """Top-1, top-5 (when more than 5 classes), per-class accuracy, confusion matrix.

    Args:
      probabilities: (N, C) class probabilities.
      labels: (N,) class indices.
    Returns:
      dict with "top1", optionally "top5", "per_class" ((C,) accuracy, NaN for
      a class without images) and "confusion" ((C, C) counts).
    """
    num_classes = probabilities.shape[1]
    predicted = np.argmax(probabilities, axis=1)
    confusion = confusion_matrix(labels, predicted, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    result = {"top1": float(np.mean(predicted == labels)), "per_class": per_class, "confusion": confusion}
    if num_classes > 5:
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        result["top5"] = float(np.mean(np.any(top5 == labels[:, None], axis=1)))
    return result


def chance_hint(result: Mapping[str, float | np.ndarray], train_loss: float) -> str | None:
    """The one-line hint for a classification validation that sits at chance while training has learnt, or None.

    At chance: top-1 at most :data:`CHANCE_MARGIN` above the share of the
    largest validation class (what always guessing it scores; at least 1/C).
    Learnt: the epoch's mean training loss (``train_loss``) below
    :data:`LEARNT_LOSS_FRACTION` of ln(C), the cross-entropy of a uniform guess
    (training accuracy is not computed; the loss stands for it).

    Args:
      result: :func:`classification_metrics` of the validation split.
      train_loss: the epoch's mean training loss.
    """
    confusion = result["confusion"]
    chance = confusion.sum(axis=1).max() / max(confusion.sum(), 1)
    uniform_loss = math.log(confusion.shape[0])
    if result["top1"] > chance + CHANCE_MARGIN or not train_loss < LEARNT_LOSS_FRACTION * uniform_loss:
        return None
    return (f"[train] hint: validation top1 {result['top1']:.3f} is at chance ({chance:.3f}) while the training "
            f"loss {train_loss:.3f} is far below a uniform guess's {uniform_loss:.3f}: on a short run BatchNorm's "
            "moving statistics (and a --ema_momentum average) lag the weights; try --bn_momentum=0.9, more steps, "
            "or --ema_momentum=0")


def segmentation_metrics(confusion: np.ndarray) -> dict[str, float | np.ndarray]:
    """mIoU, pixel accuracy and per-class IoU of a pixel confusion matrix.

    Classes absent from both the masks and the predictions are left out of the mean.
    """
    intersection = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = intersection / union
    return {"miou": float(np.nanmean(iou)), "pixel_accuracy": float(intersection.sum() / max(confusion.sum(), 1)),
            "per_class": iou, "confusion": confusion}


def confusion_text(confusion: np.ndarray, class_names: Sequence[str]) -> str:
    """The confusion matrix as aligned text, rows = true class."""
    width = max(4, len(str(confusion.max())) + 2)
    rows = [f"{index}:{name}" for index, name in enumerate(class_names)]
    first = max(len("true \\ predicted"), *(len(r) for r in rows)) + 2
    lines = ["true \\ predicted".ljust(first) + "".join(str(i).rjust(width) for i in range(len(class_names)))]
    for label, row in zip(rows, confusion):
        lines.append(label.ljust(first) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def confusion_png(confusion: np.ndarray, class_names: Sequence[str], path: str, cell: int = 28) -> None:

    """Write the confusion matrix as a heat map (row-normalised) with counts."""
    count = len(class_names)
    margin = cell * 2
    image = Image.new("RGB", (margin + cell * count, margin + cell * count), "white")
    draw = ImageDraw.Draw(image)
    totals = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    for row in range(count):
        draw.text((4, margin + row * cell + cell // 3), str(row), fill="black")
        draw.text((margin + row * cell + cell // 3, 4), str(row), fill="black")
        for col in range(count):
            shade = int(255 * (1 - confusion[row, col] / totals[row, 0]))
            box = (margin + col * cell, margin + row * cell,
                   margin + (col + 1) * cell - 1, margin + (row + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255))
            draw.text((box[0] + 3, box[1] + cell // 3), str(confusion[row, col]),
                      fill="white" if shade < 128 else "black")
    draw.text((margin, cell + 4), "predicted ->  (rows: true class)", fill="black")
    image.save(path)
