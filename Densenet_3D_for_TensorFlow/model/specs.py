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
"""The paper's four networks as data: pathway specs, model names, and the crop margin (no TensorFlow).

Chen, Wu, Cheng, Li, Tang, Zhou, "Hierarchical MRI tumor segmentation with
densely connected 3D CNN", SPIE Medical Imaging 2018 (arXiv 1802.02427).
The flags read these names without loading TensorFlow; :mod:`model.tf_models`
builds the Keras networks from them.
"""

from __future__ import annotations

import dataclasses

# Voxels cut from each side of the input: the radius of the largest receptive field (27).
CROP_MARGIN = 13
NUM_INPUT_CHANNELS = 4  # flair, t2, t1, t1ce
NUM_WT_CLASSES = 2  # background, whole tumour
NUM_LABEL_CLASSES = 5  # BraTS labels 0..4 (3 unused in BraTS 2017)


@dataclasses.dataclass(frozen=True)
class DenseSpec:
    """A densely connected pathway: 3^3 conv, dense block, transition, dense block, transition."""

    initial_filters: int
    growth_rates: tuple  # (block 1, block 2)
    units_per_block: int
    scale_filters: tuple  # 1^3 transition widths of the 15- and 27-voxel outputs


@dataclasses.dataclass(frozen=True)
class PlainSpec:
    """A plain pathway: conv+BN+ReLU layers, two of which are the scale outputs."""

    widths: tuple
    scale_layers: tuple  # 1-based indices of the 15- and 27-voxel outputs


# The paper's Section 2 and the reference code's layer list. Parameter counts
# (including BN moving statistics): dense24 793,406; dense48 1,957,742;
# no-dense 7,076,366 -- tests/test_models.py pins them.
MODEL_SPECS = {
    "dense24": DenseSpec(initial_filters=24, growth_rates=(12, 12), units_per_block=6,
                         scale_filters=(96, 168)),
    "dense48": DenseSpec(initial_filters=48, growth_rates=(12, 24), units_per_block=6,
                         scale_filters=(192, 336)),
    "no_dense": PlainSpec(widths=tuple(24 + 12 * i for i in range(13)), scale_layers=(7, 13)),
    # The dense24 graph; the name selects uncorrected data and its own checkpoint.
    "dense24_nocorrection": DenseSpec(initial_filters=24, growth_rates=(12, 12), units_per_block=6,
                                      scale_filters=(96, 168)),
}
MODEL_NAMES = ("dense24", "dense48", "no-dense", "dense24_nocorrection")


def canonical_model_name(name: str) -> str:
    """``no-dense`` and ``no_dense`` are the same model; raise ValueError for unknown names."""
    canonical = name.replace("-", "_")
    if canonical not in MODEL_SPECS:
        raise ValueError(f"model name must be one of {', '.join(MODEL_NAMES)}, got {name!r}")
    return canonical
