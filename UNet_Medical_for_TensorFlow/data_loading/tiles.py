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
"""The overlap-tile strategy (Ronneberger et al. 2015, Fig. 2) at native resolution.

A network with valid convolutions maps a ``tile`` x ``tile`` input to the
``out`` x ``out`` centre. Images are mirror-padded by ``(tile - out) / 2``
so that every pixel, borders included, lies in the centre of some tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # for the hints only: the two functions that need TensorFlow import it themselves
    import tensorflow as tf


def normalize(image: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """Grey values 0..255 (a float32 array or tensor) to [-1, 1] (NVIDIA: ``x / 127.5 - 1``)."""
    return image / 127.5 - 1.0


def mirror_pad(array: np.ndarray, margin: int) -> np.ndarray:
    """Mirror ``array`` (H, W[, C]) by ``margin`` pixels on each side of H and W.

    'reflect' does not repeat the edge pixel; NumPy keeps reflecting when
    ``margin`` exceeds the image, so small images work too.
    """
    pad = [(margin, margin), (margin, margin)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, mode="reflect")


def window_starts(length: int, out: int) -> list[int]:
    """Starts of the ``out``-long windows that cover ``range(length)``, evenly overlapping.

    The first window starts at 0 and the last ends at ``length``.
    """
    if length < out:
        raise ValueError(f"an image side of {length} is smaller than the output window {out}")
    count = math.ceil(length / out)
    if count == 1:
        return [0]
    return [round(i * (length - out) / (count - 1)) for i in range(count)]


def predict_tiled(predict_fn: Callable[[np.ndarray], np.ndarray | tf.Tensor], image: np.ndarray, tile: int,
                  out: int, batch_size: int = 1) -> np.ndarray:
    """Class probabilities of a whole image, tile by tile, stitched.

    Args:
      predict_fn: maps a float32 batch (N, tile, tile, C_in) to probabilities
        (N, out, out, n_classes) as a NumPy array or tensor.
      image: (H, W) or (H, W, C_in) float32, already normalized; H, W >= out.
      tile, out: the network's input and output sizes.
      batch_size: tiles per ``predict_fn`` call.
    Returns:
      (H, W, n_classes) float32; where windows overlap their probabilities
      are averaged.
    """
    image = image[..., None] if image.ndim == 2 else image
    height, width = image.shape[:2]
    padded = mirror_pad(image, (tile - out) // 2)
    origins = [(y, x) for y in window_starts(height, out) for x in window_starts(width, out)]
    total = count = None
    for first in range(0, len(origins), batch_size):
        chunk = origins[first:first + batch_size]
        tiles = np.stack([padded[y:y + tile, x:x + tile] for y, x in chunk])
        probabilities = np.asarray(predict_fn(tiles), np.float32)
        if total is None:
            total = np.zeros((height, width, probabilities.shape[-1]), np.float32)
            count = np.zeros((height, width, 1), np.float32)
        for (y, x), window in zip(chunk, probabilities):
            total[y:y + out, x:x + out] += window
            count[y:y + out, x:x + out] += 1
    return total / count


def resize_and_pad(image: np.ndarray, out: int, tile: int) -> np.ndarray:
    """NVIDIA's input path: a whole normalized image resized to ``out`` x ``out``, zero-padded to ``tile``.

    Args:
      image: (H, W) float32, already normalized to [-1, 1].
      out, tile: the network's output and input sizes (388 and 572).
    Returns:
      (tile, tile) float32; the image fills the centre ``out`` x ``out``
      (bilinear, as ``tf.image.resize``), 0.0 around it.
    """
    import tensorflow as tf

    resized = tf.image.resize(np.asarray(image, np.float32)[..., None], (out, out))
    return tf.image.resize_with_crop_or_pad(resized, tile, tile).numpy()[..., 0]


def resize_labels(labels: np.ndarray, n_classes: int, out: int) -> np.ndarray:
    """NVIDIA's labels: a class map resized to ``out`` x ``out`` (bilinear), then made hard again.

    Two classes: NVIDIA resizes the 0/1 map and thresholds at 0.5 (0.5 is
    class 1); more classes: the one-hot channels are resized and the largest
    wins, ties to the higher class, which is the same rule for two.

    Args:
      labels: (H, W) int class indices.
    Returns:
      (out, out) uint8 class indices.
    """
    import tensorflow as tf

    onehot = np.eye(n_classes, dtype=np.float32)[labels]
    resized = tf.image.resize(onehot, (out, out)).numpy()
    return (n_classes - 1 - resized[..., ::-1].argmax(-1)).astype(np.uint8)
