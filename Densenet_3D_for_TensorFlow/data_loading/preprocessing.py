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

import numpy as np


def normalise(volume):
    """(X, Y, Z) volume -> float32 z-score of its non-zero (brain) voxels with their own mean and std;
    background stays 0."""
    volume = volume.astype(np.float32)
    brain = volume != 0
    if not brain.any():
        return volume
    values = volume[brain]
    std = float(values.std())
    out = np.zeros_like(volume)
    out[brain] = (values - float(values.mean())) / (std if std > 0 else 1.0)
    return out


def pad_to_at_least(image, label, patch_size):
    """Zero-pad (X, Y, Z, C) image and (X, Y, Z) label at the far end to at least ``patch_size``."""
    extra = [max(0, p - s) for p, s in zip(patch_size, label.shape)]
    if not any(extra):
        return image, label
    widths = [(0, e) for e in extra]
    return np.pad(image, widths + [(0, 0)]), np.pad(label, widths)
