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
"""Training patches: centres in the tumour and in brain background, cut into a tf.data pipeline.

Each 38^3 x 4 input patch comes with the labels of its centre 12^3 (the voxels the network predicts). By
default (--sampling=reference) as the reference code samples: per case and epoch up to ``num_tumour``
distinct tumour voxels and ``num_background`` distinct brain-background voxels, shuffled, one case's patches
in a run of batches. --sampling=mixed interleaves two cases and shuffles across them. The README's
"Normalisation and sampling against the reference" lists what still differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from data_loading.preprocessing import pad_to_at_least


def _draw(pool, count, rng):
    """``count`` rows of ``pool`` (N, 3): distinct ones in random order (the reference's permutation and cut),
    topped up by draws with replacement only when the pool has fewer than ``count``."""
    chosen = pool[rng.permutation(len(pool))[:count]]
    if len(chosen) < count:
        chosen = np.concatenate([chosen, pool[rng.integers(0, len(pool), count - len(chosen))]])
    return chosen


def sample_patch_corners(label: np.ndarray, brain: np.ndarray, num_tumour: int, num_background: int,
                         patch_size: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Corners of training patches around tumour and brain-background centres.

    Args:
      label: (X, Y, Z) labels; tumour is label > 0.
      brain: (X, Y, Z) bool, the background candidates are brain & label == 0
        (the reference: FLAIR > 0 on disk).
      num_tumour, num_background: centres of each kind, distinct voxels as in
        the reference; a case with fewer voxels of a kind repeats some, and
        one with none of a kind fills in with the other (or any voxel), so
        every case gives the same number of patches.
      patch_size: (px, py, pz) input patch size.
      rng: numpy Generator.
    Returns:
      int32 (num_tumour + num_background, 3) patch corners, shuffled, clamped so
      the patch lies inside the volume; the patch's centre crop holds the chosen voxel.
    """
    tumour = np.argwhere(label > 0)
    background = np.argwhere(brain & (label == 0))
    fallback = background if len(background) else np.argwhere(np.ones_like(label, bool))
    pools = [(tumour if len(tumour) else fallback, num_tumour),
             (background if len(background) else (tumour if len(tumour) else fallback), num_background)]
    centres = np.concatenate([_draw(pool, count, rng) for pool, count in pools if count > 0])
    size = np.array(patch_size)
    corners = np.clip(centres - size // 2, 0, np.array(label.shape) - size)
    return rng.permutation(corners).astype(np.int32)


def reference_batch_order(count: int, batch_size: int) -> np.ndarray:
    """Indices of ``count`` patches in the reference's batches of one case: ceil(count / batch_size)
    batches, the last one moved back to end at the last patch (it repeats some of the one before)."""
    if count < batch_size:
        return np.resize(np.arange(count), batch_size)
    starts = [min(i * batch_size, count - batch_size) for i in range(math.ceil(count / batch_size))]
    return np.concatenate([np.arange(start, start + batch_size) for start in starts])


def steps_per_epoch(num_cases: int, num_patches: int, batch_size: int, sampling: str) -> int:
    """Batches an epoch of ``num_cases`` cases of ``num_patches`` patches gives: ``reference``, each case its
    :func:`reference_batch_order` batches; ``mixed``, all patches in full batches."""
    if sampling == "reference":
        return num_cases * (len(reference_batch_order(num_patches, batch_size)) // batch_size)
    return num_cases * num_patches // batch_size


def _case_sampler(load_fn, num_tumour, num_background, patch_size, batch_size, seed, epoch, sampling):
    """``load_and_sample(index) -> (image float32, label int32, patch corners (N, 3) int32)`` of one case:
    loaded, padded to at least one patch, and its epoch's centres drawn (see :func:`patch_dataset`)."""

    def load_and_sample(index):
        index = int(index)
        image, label, background = load_fn(index)
        image, label = pad_to_at_least(image, label, patch_size, background)
        rng = np.random.default_rng([seed, epoch, index])
        brain = image[..., 0] > background[0]  # the reference's FLAIR > 0 on disk
        corners = sample_patch_corners(label, brain, num_tumour, num_background, patch_size, rng)
        if sampling == "reference":
            corners = corners[reference_batch_order(len(corners), batch_size)]
        return image.astype(np.float32), label.astype(np.int32), corners

    return load_and_sample


def patch_dataset(load_fn: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]], num_cases: int, *,
                  num_tumour: int, num_background: int, patch_size: Sequence[int], label_size: Sequence[int],
                  batch_size: int, seed: int, epoch: int, sampling: str = "reference",
                  shuffle_buffer: int = 64) -> tf.data.Dataset:
    """One epoch of training patches as a ``tf.data.Dataset``.

    Cases are visited in a seeded order, two loaded in parallel (each once per
    epoch); patches are cut from the loaded volume by a parallel map.
    ``reference``: one case's patches make a run of batches
    (:func:`reference_batch_order`), as in the reference; ``mixed``: the two
    cases' patches are interleaved and shuffled (``shuffle_buffer``), so a
    batch mixes patients, and an incomplete last batch is dropped.

    Args:
      load_fn: ``load_fn(index) -> (image (X, Y, Z, 4) float32, label (X, Y, Z) uint8, background (4,))``,
        background being each channel's value outside the head.
      num_cases: how many indices ``load_fn`` takes.
      num_tumour, num_background: centres per case and epoch.
      patch_size: (px, py, pz) input size (38^3); label_size: centre crop (12^3).
      batch_size: patches per batch.
      seed, epoch: the order and centres are a function of both.
      sampling: ``reference`` or ``mixed`` (--sampling).
    Returns:
      dataset of (image (B, px, py, pz, 4) float32, label (B, lx, ly, lz) int32), :func:`steps_per_epoch` long.
    """
    order = np.random.default_rng([seed, epoch]).permutation(num_cases).astype(np.int64)
    per_case = steps_per_epoch(1, num_tumour + num_background, batch_size, "reference")
    load_and_sample = _case_sampler(load_fn, num_tumour, num_background, patch_size, batch_size, seed, epoch,
                                    sampling)

    def case_patches(index):
        patches = _cut_patches(tf.numpy_function(load_and_sample, [index], [tf.float32, tf.int32, tf.int32]),
                               patch_size, label_size)
        return patches.batch(batch_size, drop_remainder=True) if sampling == "reference" else patches

    dataset = tf.data.Dataset.from_tensor_slices(order)
    if sampling == "reference":
        # Each case gives exactly per_case batches: taking them in blocks keeps a case's batches together
        # while the next case loads.
        dataset = dataset.interleave(case_patches, cycle_length=2, block_length=per_case,
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return dataset.prefetch(tf.data.AUTOTUNE)
    dataset = dataset.interleave(case_patches, cycle_length=2, block_length=1,
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.shuffle(shuffle_buffer, seed=seed * 1000 + epoch)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _cut_patches(loaded, patch_size, label_size):
    """A dataset of (patch (px, py, pz, 4), centre labels (lx, ly, lz)) from one case's (image, label,
    corners (N, 3)) tensors."""
    image, label, corners = loaded
    image = tf.ensure_shape(image, [None, None, None, 4])
    label = tf.ensure_shape(label, [None, None, None])
    offset = [(p - s) // 2 for p, s in zip(patch_size, label_size)]

    def cut(corner):
        patch = tf.slice(image, tf.concat([corner, [0]], 0), list(patch_size) + [4])
        centre = tf.slice(label, corner + offset, list(label_size))
        return tf.ensure_shape(patch, list(patch_size) + [4]), tf.ensure_shape(centre, list(label_size))

    return tf.data.Dataset.from_tensor_slices(corners).map(cut, num_parallel_calls=tf.data.AUTOTUNE)
