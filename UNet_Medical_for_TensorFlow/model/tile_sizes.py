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
"""Which square tiles UNet's valid convolutions and 2x2 poolings can take, and the output size of each.

Plain arithmetic with no TensorFlow, so flag checks run before Keras loads.
The one place where the output size is worked out from the tile size
(572 -> 388).
"""

from __future__ import annotations

# Encoder widths as multiples of the first level's width (paper, Fig. 1):
# 64, 128, 256, 512 with the bottleneck at 1024 for base_filters=64.
LEVEL_MULTIPLIERS = (1, 2, 4, 8)
BOTTLENECK_MULTIPLIER = 16
CONVS_PER_LEVEL = 2  # two 3x3 valid convolutions, each removing 2 pixels per side


def _shrink(size):
    """Spatial size after one level's two valid 3x3 convolutions."""
    return size - 2 * CONVS_PER_LEVEL


def level_sizes(tile_size: int) -> dict[str, list[int] | int] | None:
    """Spatial sizes through the network for a square input of ``tile_size``.

    Returns:
      dict with ``skips`` (pre-pool encoder sizes, top level first),
      ``upsampled`` (decoder input sizes before concatenation, deepest first)
      and ``output`` (the logits' size), or None when the valid convolutions
      cannot take this size (a pooled size is odd, a size drops below 1, or a
      skip cannot be centre-cropped symmetrically).
    """
    size, skips = tile_size, []
    for _ in LEVEL_MULTIPLIERS:
        size = _shrink(size)
        if size < 2 or size % 2:
            return None
        skips.append(size)
        size //= 2
    size = _shrink(size)
    if size < 1:
        return None
    upsampled = []
    for skip in reversed(skips):
        size *= 2
        if size > skip or (skip - size) % 2:
            return None
        upsampled.append(size)
        size = _shrink(size)
        if size < 1:
            return None
    return {"skips": skips, "upsampled": upsampled, "output": size}


def nearest_valid_tile_sizes(tile_size: int, count: int = 2) -> list[int]:
    """The valid tile sizes closest to ``tile_size`` (one below, one above when they exist)."""
    below = next((s for s in range(tile_size - 1, 0, -1) if level_sizes(s)), None)
    above = next(s for s in range(tile_size + 1, tile_size + 10_000) if level_sizes(s))
    return [s for s in (below, above) if s is not None][:count]


def output_size(tile_size: int) -> int:
    """Size of the logits for an input tile of ``tile_size`` (572 -> 388).

    Raises:
      ValueError: the valid convolutions cannot take ``tile_size``; the message
        names the nearest valid sizes.
    """
    sizes = level_sizes(tile_size)
    if sizes is None:
        raise ValueError(f"tile size {tile_size} does not fit UNet's valid convolutions and 2x2 "
                         f"poolings; the nearest valid sizes are "
                         f"{' and '.join(map(str, nearest_valid_tile_sizes(tile_size)))}")
    return sizes["output"]
