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
"""Intensity normalisation and padding of whole volumes, before patches are cut from them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalise(volume: np.ndarray, mode: str = "reference") -> tuple[np.ndarray, float]:
    """Z-score an (X, Y, Z) volume with the mean and (population) std of its non-zero voxels.

    ``reference`` applies it to every voxel, as the reference code does, so the
    background (the air outside the skull-stripped head, 0 on disk) becomes
    -mean/std; ``zero_background`` applies it to the non-zero voxels and keeps
    the background 0. Computed in float64 like the reference's NumPy code.

    Returns:
      (float32 (X, Y, Z) volume, float its background value: what a 0 on disk became).
    """
    volume = np.asarray(volume, np.float64)
    brain = volume != 0
    if not brain.any():
        return volume.astype(np.float32), 0.0
    values = volume[brain]
    mean, std = float(values.mean()), float(values.std())
    std = std if std > 0 else 1.0
    if mode == "reference":
        return ((volume - mean) / std).astype(np.float32), float(np.float32(-mean / std))
    out = np.zeros(volume.shape, np.float32)
    out[brain] = (values - mean) / std
    return out, 0.0


def head_mask(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(X, Y, Z) bool: the voxels of an (X, Y, Z, C) image where some channel differs from its ``background``
    ((C,)): the head, where some modality was non-zero on disk."""
    return (image != np.asarray(background, image.dtype)).any(axis=-1)


def pad_image(image: np.ndarray, widths: Sequence[tuple[int, int]], background: np.ndarray) -> np.ndarray:
    """Pad an (X, Y, Z, C) image by ``widths`` ((before, after) per spatial axis), each channel with its own
    ``background`` value ((C,); a channel's value outside the head)."""
    return np.stack([np.pad(image[..., c], widths, constant_values=background[c]) for c in range(image.shape[-1])],
                    axis=-1)


def pad_to_at_least(image: np.ndarray, label: np.ndarray, patch_size: Sequence[int],
                    background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad (X, Y, Z, C) image (with its channels' ``background``) and (X, Y, Z) label (with 0) at the far end to
    at least ``patch_size``."""
    extra = [max(0, p - s) for p, s in zip(patch_size, label.shape)]
    if not any(extra):
        return image, label
    widths = [(0, e) for e in extra]
    return pad_image(image, widths, background), np.pad(label, widths)
