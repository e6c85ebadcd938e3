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
"""Synthetic ISBI-like stacks: cells separated by thin membranes, blurred and noisy.

Written in the real format (three multi-page 8-bit TIFFs) so that every
code path that reads the ISBI files can be run without them. Cells are the
Voronoi regions of random seeds; pixels close to the border between two
regions are membrane (label 0, dark), the rest cell interior (label 255,
bright with a per-cell shade). Blur and noise make it a real, learnable task.

CLI (from the model directory):
    python -m data_loading.synthetic --data_dir DIR [--slices 30] [--size 512] [--seed 0] [--layout folder]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage, spatial

from data_loading import tiff

CELL_DIAMETER = 40.0  # pixels, a typical ISBI neurite cross-section at 512x512
MEMBRANE_WIDTH = 3.0  # pixels between two cells
CELL_GREY, MEMBRANE_GREY = 175.0, 70.0
CELL_SHADE_STD = 20.0  # cells differ in brightness
NOISE_STD = 18.0
BLUR_SIGMA = 1.0


def synthetic_slice(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One slice and its label.

    Args:
      rng: ``np.random.Generator``.
      size: height = width in pixels.
    Returns:
      ``(image, label)``: (size, size) uint8 each; label 255 = cell, 0 = membrane.
    """
    n_cells = max(4, int(size * size / CELL_DIAMETER ** 2))
    seeds = rng.uniform(0, size, (n_cells, 2))
    rows, cols = np.mgrid[0:size, 0:size]
    pixels = np.stack([rows.ravel(), cols.ravel()], axis=1)
    distances, nearest = spatial.cKDTree(seeds).query(pixels, k=2)
    membrane = (distances[:, 1] - distances[:, 0] < MEMBRANE_WIDTH).reshape(size, size)
    shade = rng.normal(CELL_GREY, CELL_SHADE_STD, n_cells)[nearest[:, 0]].reshape(size, size)
    image = np.where(membrane, MEMBRANE_GREY, shade)
    image = ndimage.gaussian_filter(image, BLUR_SIGMA) + rng.normal(0, NOISE_STD, image.shape)
    label = np.where(membrane, 0, 255).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8), label


def synthetic_stack(slices: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``, each (slices, size, size) uint8, from one seed."""
    rng = np.random.default_rng(seed)
    pairs = [synthetic_slice(rng, size) for _ in range(slices)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def write_isbi_stacks(data_dir: str, slices: int = 30, size: int = 512, seed: int = 0) -> list[str]:
    """Write ``train-volume.tif``, ``train-labels.tif`` and ``test-volume.tif`` into ``data_dir``.

    The test stack comes from a different seed than the training stack.
    Returns the three paths.
    """
    os.makedirs(data_dir, exist_ok=True)
    images, labels = synthetic_stack(slices, size, seed)
    test_images, _ = synthetic_stack(slices, size, seed + 1)
    paths = [os.path.join(data_dir, name) for name in
             ("train-volume.tif", "train-labels.tif", "test-volume.tif")]
    for path, stack in zip(paths, (images, labels, test_images)):
        tiff.write_stack(path, stack)
    return paths


def write_own_data_folder(data_dir: str, slices: int = 30, size: int = 512, seed: int = 0) -> list[str]:
    """Write the own-data layout: ``images/`` and ``masks/`` (class indices 0/1) and ``test/``, PNGs.

    Slice ``i`` is ``{i:03d}.png`` in each folder; every other slice is cut
    to three quarters of its width, so the images differ in size as own data
    may. Returns the three folders.
    """
    images, labels = synthetic_stack(slices, size, seed)
    test_images, _ = synthetic_stack(max(1, slices // 5), size, seed + 1)
    folders = [os.path.join(data_dir, name) for name in ("images", "masks", "test")]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    for index, (image, label) in enumerate(zip(images, labels)):
        width = size if index % 2 == 0 else max(8, size * 3 // 4)
        Image.fromarray(image[:, :width]).save(os.path.join(folders[0], f"{index:03d}.png"))
        Image.fromarray((label[:, :width] > 0).astype(np.uint8)).save(os.path.join(folders[1], f"{index:03d}.png"))
    for index, image in enumerate(test_images):
        Image.fromarray(image).save(os.path.join(folders[2], f"{index:03d}.png"))
    return folders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic ISBI 2012-format stacks.")
    parser.add_argument("--data_dir", required=True, help="output folder")
    parser.add_argument("--slices", type=int, default=30, help="slices per stack (default %(default)s)")
    parser.add_argument("--size", type=int, default=512, help="slice side in pixels (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--layout", choices=("isbi", "folder"), default="isbi",
                        help="isbi: the three multi-page TIFFs; folder: own-data images/, masks/, test/ PNGs "
                             "(default %(default)s)")
    args = parser.parse_args(argv)
    if args.slices < 1 or args.size < 8:
        parser.error("--slices must be at least 1 and --size at least 8")
    write = write_isbi_stacks if args.layout == "isbi" else write_own_data_folder
    for path in write(args.data_dir, args.slices, args.size, args.seed):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
