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
"""Readers for the ISBI 2012 stacks and for a folder of images and masks, with the user-facing checks.

Both return :class:`SegmentationData`: lists of 8-bit grey images and
integer class maps of the same size. ISBI labels are 0 = membrane and
255 = cell interior; they become classes 0 and 1.
"""

from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.errors import UserError
from data_loading import tiff

ISBI_FILES = {"train_images": "train-volume.tif", "train_labels": "train-labels.tif",
              "test_images": "test-volume.tif"}
LABEL_THRESHOLD = 128  # ISBI labels are 0 / 255; anything >= 128 is cell
# Share of label pixels allowed to be neither 0 nor 255 (anti-aliased edges);
# more means the file is a grey image, not a two-valued mask.
MAX_GREY_LABEL_FRACTION = 0.01
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


@dataclasses.dataclass
class SegmentationData:
    """Decoded data of one dataset.

    Attributes:
      images: list of (H, W) uint8 arrays, the training slices (empty when
        only the test images were read, for prediction).
      labels: list of (H, W) int32 class maps (0..n_classes-1), same sizes.
      test_images: list of (H, W) uint8 arrays to predict (may be empty).
      test_names: a file name for each test image's mask.
      n_classes: number of classes.
      source: "isbi" or "folder".
    """

    images: list
    labels: list
    test_images: list
    test_names: list
    n_classes: int
    source: str


def _decode(path, what, modes=("L",)):
    """Pages of ``path`` as 2-D uint8 arrays, or a UserError naming the file.

    ``modes`` are the Pillow modes accepted: "L" (8-bit grey) and, for masks,
    "P" (palette), whose array holds the palette indices, not the colours.
    """
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found ({what})")
    try:
        file_format, pages = tiff.read_pages(path)
    except tiff.IncompleteTiff as error:
        raise UserError(f"{path}: {error}; the file is cut short or damaged (expected every page it promises)"
                        ) from None
    except (OSError, UnidentifiedImageError, ValueError, TypeError, SyntaxError, EOFError, struct.error,
            Image.DecompressionBombError) as error:
        # Pillow ends a truncated TIFF in any of these (TypeError "Missing dimensions" for a cut-off header;
        # DecompressionBombError for a damaged header that claims billions of pixels).
        raise UserError(f"{path}: cannot be decoded as an image ({str(error).strip() or type(error).__name__}); "
                        "the file may be truncated or damaged") from None
    for index, (mode, _) in enumerate(pages):
        if mode not in modes:
            expected = " or ".join({"L": "8-bit grey ('L')", "P": "palette indices ('P')"}[m] for m in modes)
            raise UserError(f"{path}: page {index} has Pillow mode {mode!r}; expected {expected}")
    return file_format, [array for _, array in pages]


def read_stack(path: str, what: str) -> np.ndarray:
    """Read a multi-page 8-bit grey TIFF into an (N, H, W) uint8 array.

    Raises:
      UserError: missing, not a TIFF, not 8-bit grey, or pages of different sizes.
    """
    file_format, pages = _decode(path, what)
    if file_format != "TIFF":
        raise UserError(f"{path}: is a {file_format} file; expected a multi-page TIFF ({what})")
    shapes = {page.shape for page in pages}
    if len(shapes) != 1:
        raise UserError(f"{path}: pages have different sizes {sorted(shapes)}")
    return np.stack(pages)


def binary_labels(stack: np.ndarray, path: str) -> np.ndarray:
    """ISBI labels (0 / 255) to classes 0 / 1, checking that they are two-valued.

    Raises:
      UserError: too many grey values, or only one class after thresholding.
    """
    grey = np.mean((stack != 0) & (stack != 255))
    if grey > MAX_GREY_LABEL_FRACTION:
        raise UserError(f"{path}: {grey:.1%} of the pixels are neither 0 nor 255; expected a "
                        "two-valued mask (0 = membrane, 255 = cell)")
    labels = (stack >= LABEL_THRESHOLD).astype(np.int32)
    if labels.min() == labels.max():
        raise UserError(f"{path}: every pixel is {'cell' if labels.min() else 'membrane'} after "
                        f"thresholding at {LABEL_THRESHOLD}; expected both classes")
    return labels


def read_isbi(data_dir: str, need_test: bool = True, need_train: bool = True) -> SegmentationData:
    """Read and check ``train-volume.tif``, ``train-labels.tif`` and ``test-volume.tif``.

    Args:
      data_dir: the folder holding the three stacks.
      need_test: read ``test-volume.tif`` (prediction).
      need_train: read the training stacks (all but prediction alone).
    Returns:
      :class:`SegmentationData` with 2 classes (0 = membrane, 1 = cell).
    Raises:
      UserError: one line naming the file and what was wrong.
    """
    paths = {key: os.path.join(data_dir, name) for key, name in ISBI_FILES.items()}
    test = read_stack(paths["test_images"], "the test slices") if need_test else np.zeros((0, 1, 1), np.uint8)
    if not need_train:
        return SegmentationData(images=[], labels=[], test_images=list(test), test_names=["test-masks.tif"],
                                n_classes=2, source="isbi")
    volume = read_stack(paths["train_images"], "the training slices")
    label_stack = read_stack(paths["train_labels"], "the training labels")
    if label_stack.shape != volume.shape:
        raise UserError(f"{paths['train_labels']}: {label_stack.shape[0]} slices of "
                        f"{label_stack.shape[1]}x{label_stack.shape[2]} but "
                        f"{paths['train_images']} has {volume.shape[0]} of "
                        f"{volume.shape[1]}x{volume.shape[2]}; expected the same")
    labels = binary_labels(label_stack, paths["train_labels"])
    return SegmentationData(images=list(volume), labels=list(labels), test_images=list(test),
                            test_names=["test-masks.tif"], n_classes=2, source="isbi")


def _image_files(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))


def read_folder(data_dir: str, n_classes: int, need_train: bool = True) -> SegmentationData:
    """Read ``images/`` and ``masks/`` (same file names; PNG or TIFF; masks hold class indices).

    Images are converted to nothing: they must already be 8-bit grey, like
    the ISBI slices the network was built for. Masks are 8-bit grey or
    palette images (mode "P", as many annotation tools write them); a
    palette mask's class is its palette index. An optional ``test/`` folder
    holds images to predict; without ``need_train`` (prediction alone) only it is read.

    Returns:
      :class:`SegmentationData` with ``n_classes`` classes.
    Raises:
      UserError: missing folders or files, unpaired names, bad modes, size
        mismatches, or a mask value outside 0..n_classes-1.
    """
    test_dir = os.path.join(data_dir, "test")
    test_names = _image_files(test_dir) if os.path.isdir(test_dir) else []
    test_images = [_decode(os.path.join(test_dir, name), "a test image")[1][0] for name in test_names]
    test_names = [os.path.splitext(n)[0] + ".png" for n in test_names]
    if not need_train:
        return SegmentationData(images=[], labels=[], test_images=test_images, test_names=test_names,
                                n_classes=n_classes, source="folder")
    image_dir, mask_dir = os.path.join(data_dir, "images"), os.path.join(data_dir, "masks")
    for folder in (image_dir, mask_dir):
        if not os.path.isdir(folder):
            raise UserError(f"{folder}: folder not found (own data needs images/ and masks/)")
    names = _image_files(image_dir)
    if not names:
        raise UserError(f"{image_dir}: no .png/.tif/.tiff files")
    missing = sorted(set(names) - set(_image_files(mask_dir)))
    if missing:
        raise UserError(f"{os.path.join(mask_dir, missing[0])}: file not found (every image needs "
                        f"a mask of the same name; {len(missing)} missing)")
    images, labels = [], []
    for name in names:
        image = _decode(os.path.join(image_dir, name), "an image")[1][0]
        mask_path = os.path.join(mask_dir, name)
        mask = _decode(mask_path, "a mask", modes=("L", "P"))[1][0]
        if mask.shape != image.shape:
            raise UserError(f"{mask_path}: {mask.shape[1]}x{mask.shape[0]} but the image is "
                            f"{image.shape[1]}x{image.shape[0]}; expected the same size")
        if mask.max() >= n_classes:
            raise UserError(f"{mask_path}: holds class {mask.max()} but --n_classes={n_classes}; "
                            f"expected class indices 0..{n_classes - 1}")
        images.append(image)
        labels.append(mask.astype(np.int32))
    return SegmentationData(images=images, labels=labels, test_images=test_images, test_names=test_names,
                            n_classes=n_classes, source="folder")


def read_dataset(data_dir: str, n_classes: int = 2, need_test: bool = True,
                 need_train: bool = True) -> SegmentationData:
    """An ``images/`` + ``masks/`` folder when ``images/`` exists (or, for prediction alone, ``test/``),
    else the ISBI stacks. Only what the run uses is read: ``need_train`` the training images and labels,
    ``need_test`` the test images.

    Raises:
      UserError: the folder is missing, or a check fails (a missing ISBI
        file is named).
    """
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_path={data_dir}: folder not found")
    own = [os.path.join(data_dir, name) for name in (("images",) if need_train else ("images", "test"))]
    if any(os.path.isdir(folder) for folder in own):
        return read_folder(data_dir, n_classes, need_train=need_train)
    if n_classes != 2:
        raise UserError(f"--n_classes={n_classes}: the ISBI stacks in --data_path={data_dir} have 2 "
                        "classes (own data with more classes goes in images/ and masks/)")
    return read_isbi(data_dir, need_test=need_test, need_train=need_train)


def check_min_size(data: SegmentationData, out_size: int) -> None:
    """Every image must cover at least one output tile (``out_size`` squared).

    Raises:
      UserError: naming the smallest image side and the flag to change.
    """
    smallest = min((min(image.shape) for image in data.images + data.test_images), default=out_size)
    if smallest < out_size:
        raise UserError(f"--data_path: an image is only {smallest} pixels on a side but --tile_size "
                        f"predicts {out_size}x{out_size} windows; use a smaller --tile_size")
