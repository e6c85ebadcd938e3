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
"""Joint image-and-label augmentation in TensorFlow, stateless so a seed fixes every draw.

Two sets (``--augment_set``): ``nvidia``, NVIDIA UNet_Medical's exactly
(horizontal and vertical flips at p = 0.5, a crop trimming up to 30% per side
resized back on every example, a brightness shift up to 0.2 then clipped), and
``full``, which adds what the paper stresses: 90-degree rotations and elastic
deformation, with the crop at p = 0.5.

Geometric transforms act on one tensor holding the image channel(s) and the
one-hot label channels, so image and label move together; the labels are
made hard again with an argmax afterwards.
"""

from __future__ import annotations

import tensorflow as tf

FLIP_PROBABILITY = 0.5
CROP_PROBABILITY = {"nvidia": 1.0, "full": 0.5}  # NVIDIA crops every example
MAX_CROP_FRACTION = 0.3  # NVIDIA: trim up to 30% of each side, resize back
ELASTIC_PROBABILITY = 0.5
ELASTIC_GRID = 3  # paper: displacements on a coarse 3x3 grid...
ELASTIC_SIGMA = 10.0  # ...drawn from a Gaussian of 10 pixels standard deviation
MAX_BRIGHTNESS_DELTA = 0.2  # on the [-1, 1] scale, then clipped


def _coin(seed, probability):
    return tf.random.stateless_uniform([], seed) < probability


def _bilinear_sample(stack, rows, cols):
    """Sample ``stack`` (H, W, C) at float coordinates ``rows``, ``cols`` (H, W), clamped at borders."""
    height, width = tf.shape(stack)[0], tf.shape(stack)[1]
    rows = tf.clip_by_value(rows, 0.0, tf.cast(height - 1, tf.float32))
    cols = tf.clip_by_value(cols, 0.0, tf.cast(width - 1, tf.float32))
    row0, col0 = tf.floor(rows), tf.floor(cols)
    weight_row, weight_col = (rows - row0)[..., None], (cols - col0)[..., None]
    row0, col0 = tf.cast(row0, tf.int32), tf.cast(col0, tf.int32)
    row1, col1 = tf.minimum(row0 + 1, height - 1), tf.minimum(col0 + 1, width - 1)

    def at(r, c):
        return tf.gather_nd(stack, tf.stack([r, c], axis=-1))

    top = at(row0, col0) * (1 - weight_col) + at(row0, col1) * weight_col
    bottom = at(row1, col0) * (1 - weight_col) + at(row1, col1) * weight_col
    return top * (1 - weight_row) + bottom * weight_row


def _crop_and_elastic(stack, seeds, augment_set):
    """Random crop-and-resize and (``full``) elastic deformation as one resampling of ``stack`` (T, T, C)."""
    size = tf.shape(stack)[0]
    size_f = tf.cast(size, tf.float32)
    grid = tf.range(size_f)
    rows, cols = tf.meshgrid(grid, grid, indexing="ij")

    # Crop: trim up to 30% per side, then stretch the box back to the full tile.
    trims = tf.random.stateless_uniform([4], seeds[0], 0.0, MAX_CROP_FRACTION) * (size_f - 1)
    trims *= tf.cast(_coin(seeds[1], CROP_PROBABILITY[augment_set]), tf.float32)
    top, left, bottom, right = tf.unstack(trims)
    rows = top + rows * (size_f - 1 - top - bottom) / (size_f - 1)
    cols = left + cols * (size_f - 1 - left - right) / (size_f - 1)

    if augment_set == "nvidia":
        return _bilinear_sample(stack, rows, cols)
    # Elastic: a smooth displacement field, bicubic from a coarse Gaussian grid.
    coarse = tf.random.stateless_normal([ELASTIC_GRID, ELASTIC_GRID, 2], seeds[2], stddev=ELASTIC_SIGMA)
    field = tf.image.resize(coarse[None], [size, size], method="bicubic")[0]
    field *= tf.cast(_coin(seeds[3], ELASTIC_PROBABILITY), tf.float32)
    return _bilinear_sample(stack, rows + field[..., 0], cols + field[..., 1])


def augment(image: tf.Tensor, onehot: tf.Tensor, seed: tf.Tensor,
            augment_set: str = "nvidia") -> tuple[tf.Tensor, tf.Tensor]:
    """Augment one training example.

    Args:
      image: (T, T, C_in) float32 in [-1, 1].
      onehot: (T, T, n_classes) float32 one-hot labels over the same tile.
      seed: int64 [2], the stateless seed of this example.
      augment_set: ``nvidia`` or ``full`` (see the module docstring).
    Returns:
      ``(image, onehot)`` of the same shapes. ``nvidia``: horizontal and
      vertical flips (p = 0.5 each), crop-and-resize (always), a brightness
      shift (image only). ``full``: the flips, a 90-degree rotation (k uniform
      in 0..3), crop-and-resize (p = 0.5), elastic deformation (p = 0.5), the
      brightness shift.
    """
    if augment_set not in CROP_PROBABILITY:
        raise ValueError(f"augment_set must be one of {sorted(CROP_PROBABILITY)}, got {augment_set!r}")
    seeds = tf.random.experimental.stateless_split(seed, 8)
    channels = tf.shape(image)[-1]
    stack = tf.concat([image, onehot], axis=-1)
    stack = tf.cond(_coin(seeds[0], FLIP_PROBABILITY), lambda: tf.reverse(stack, [1]), lambda: stack)
    stack = tf.cond(_coin(seeds[1], FLIP_PROBABILITY), lambda: tf.reverse(stack, [0]), lambda: stack)
    if augment_set == "full":
        stack = tf.image.rot90(stack, tf.random.stateless_uniform([], seeds[2], 0, 4, dtype=tf.int32))
    stack = _crop_and_elastic(stack, seeds[3:7], augment_set)
    image, soft_labels = stack[..., :channels], stack[..., channels:]
    delta = tf.random.stateless_uniform([], seeds[7], -MAX_BRIGHTNESS_DELTA, MAX_BRIGHTNESS_DELTA)
    image = tf.clip_by_value(image + delta, -1.0, 1.0)
    onehot = tf.one_hot(tf.argmax(soft_labels, axis=-1), tf.shape(onehot)[-1], dtype=tf.float32)
    return image, onehot
