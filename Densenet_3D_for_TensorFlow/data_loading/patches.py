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

Each 38^3 x 4 input patch comes with the labels of its centre 12^3 (the
voxels the network predicts). How this sampling differs from the reference's: the README's
"Normalisation and sampling against the reference".
"""

import numpy as np
import tensorflow as tf

from data_loading.preprocessing import pad_to_at_least


def sample_patch_corners(label, brain, num_tumour, num_background, patch_size, rng):
    """Corners of training patches around tumour and brain-background centres.

    Args:
      label: (X, Y, Z) labels; tumour is label > 0.
      brain: (X, Y, Z) bool, the background candidates are brain & label == 0.
      num_tumour, num_background: centres of each kind; when a case has no voxel
        of a kind, the other kind (or any voxel) fills in, so every case gives
        the same number of patches.
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
    centres = np.concatenate([pool[rng.integers(0, len(pool), count)] for pool, count in pools if count > 0])
    size = np.array(patch_size)
    corners = np.clip(centres - size // 2, 0, np.array(label.shape) - size)
    return rng.permutation(corners).astype(np.int32)


def patch_dataset(load_fn, num_cases, *, num_tumour, num_background, patch_size, label_size,
                  batch_size, seed, epoch, cycle_length=2, shuffle_buffer=64):
    """One epoch of training patches as a ``tf.data.Dataset``.

    Cases are visited in a seeded order; ``cycle_length`` cases are loaded in
    parallel (each once per epoch) and their patches interleaved, so one batch
    mixes patients; patches are cut from the loaded volume by a parallel map.

    Args:
      load_fn: ``load_fn(index) -> (image (X, Y, Z, 4) float32, label (X, Y, Z) uint8)``.
      num_cases: how many indices ``load_fn`` takes.
      num_tumour, num_background: centres per case and epoch.
      patch_size: (px, py, pz) input size (38^3); label_size: centre crop (12^3).
      batch_size: patches per batch (incomplete last batch dropped).
      seed, epoch: the order and centres are a function of both.
    Returns:
      dataset of (image (B, px, py, pz, 4) float32, label (B, lx, ly, lz) int32).
    """
    offset = [(p - s) // 2 for p, s in zip(patch_size, label_size)]
    order = np.random.default_rng([seed, epoch]).permutation(num_cases).astype(np.int64)

    def load_and_sample(index):
        index = int(index)
        image, label = load_fn(index)
        image, label = pad_to_at_least(image, label, patch_size)
        rng = np.random.default_rng([seed, epoch, index])
        corners = sample_patch_corners(label, image[..., 0] != 0, num_tumour, num_background, patch_size, rng)
        return image.astype(np.float32), label.astype(np.int32), corners

    def case_patches(index):
        image, label, corners = tf.numpy_function(load_and_sample, [index], [tf.float32, tf.int32, tf.int32])
        image = tf.ensure_shape(image, [None, None, None, 4])
        label = tf.ensure_shape(label, [None, None, None])

        def cut(corner):
            patch = tf.slice(image, tf.concat([corner, [0]], 0), list(patch_size) + [4])
            centre = tf.slice(label, corner + offset, list(label_size))
            return tf.ensure_shape(patch, list(patch_size) + [4]), tf.ensure_shape(centre, list(label_size))

        return tf.data.Dataset.from_tensor_slices(corners).map(cut, num_parallel_calls=tf.data.AUTOTUNE)

    dataset = tf.data.Dataset.from_tensor_slices(order)
    dataset = dataset.interleave(case_patches, cycle_length=cycle_length, block_length=1,
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.shuffle(shuffle_buffer, seed=seed * 1000 + epoch)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
