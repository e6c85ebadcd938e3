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
"""Finding and checking the user's image folders (no TensorFlow here).

Classification: ``<data_path>/train/<class>/`` and ``<data_path>/validation/<class>/``
(``eval/`` is accepted for the second); a class holds every image file
anywhere below its folder, sub-folders included, as Keras'
``image_dataset_from_directory`` finds them (its extensions, in any case;
symbolic links to folders not followed). Segmentation: ``<data_path>/{train,validation}/images/`` and
``.../masks/``, an image and its mask sharing the file name stem; masks are
single-channel PNGs of class indices (grey values or palette indices), 255 = ignore.

Every problem raises :class:`UserError` naming the folder or file. Image
files are not opened here: a file that does not decode is named by the input
pipeline when its batch fails (data_loading/pipeline), so a run does not
read every image before its first step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from common.errors import UserError

# Keras' image_dataset_from_directory's extensions (tf.io.decode_image reads them all; a GIF's first frame).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
VALIDATION_FOLDERS = ("validation", "eval")
IGNORE_LABEL = 255


@dataclasses.dataclass
class Split:
    """One split: parallel lists of image files and labels.

    For classification ``labels`` are class indices; for segmentation they
    are the mask files.
    """

    paths: list
    labels: list


@dataclasses.dataclass
class Dataset:
    """The checked file lists: both splits and the class names."""

    train: Split
    validation: Split
    class_names: list


def _image_files(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, name)))


def _image_files_below(folder):
    """The image files anywhere below ``folder`` in Keras' ``index_directory`` order: folders sorted by
    path, files by name; symbolic links to folders not followed (its ``follow_links=False``)."""
    return [os.path.join(root, name) for root, _, names in sorted(os.walk(folder), key=lambda walked: walked[0])
            for name in sorted(names) if name.lower().endswith(IMAGE_EXTENSIONS)]


def split_folders(data_path: str) -> tuple[str, str]:
    """``(train_dir, validation_dir)`` inside ``data_path``.

    Raises:
      UserError: ``data_path``, its ``train/`` or both ``validation/`` and ``eval/`` are missing.
    """
    if not os.path.isdir(data_path):
        raise UserError(f"--data_path={data_path} is not a folder")
    train_dir = os.path.join(data_path, "train")
    if not os.path.isdir(train_dir):
        raise UserError(f"missing folder {train_dir}: --data_path must hold train/ and validation/ (or eval/)")
    for name in VALIDATION_FOLDERS:
        if os.path.isdir(os.path.join(data_path, name)):
            return train_dir, os.path.join(data_path, name)
    raise UserError(f"missing folder {os.path.join(data_path, 'validation')} (or eval/) in --data_path={data_path}")


def scan_class_folder(root: str) -> tuple[list[str], dict[str, list[str]]]:
    """``(class_names, {class: [files]})`` of a folder of class sub-folders (files from every depth).

    Raises:
      UserError: ``root`` is missing, has no class folders, or a class folder has no images.
    """
    if not os.path.isdir(root):
        raise UserError(f"missing folder {root}: expected one sub-folder of images per class")
    class_names = sorted(name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name)))
    if not class_names:
        raise UserError(f"no class folders in {root}: expected {root}/<class name>/<images>")
    files = {}
    for name in class_names:
        files[name] = _image_files_below(os.path.join(root, name))
        if not files[name]:
            raise UserError(f"class folder {os.path.join(root, name)} has no images "
                            f"({', '.join(IMAGE_EXTENSIONS)} in any case, sub-folders included)")
    return class_names, files


def count_line(root: str, class_names: Sequence[str], files: Mapping[str, Sequence[str]]) -> str:
    """The one line that says what a split holds: images per class, and how many lie in sub-folders."""
    total = sum(len(files[name]) for name in class_names)
    nested = sum(os.path.dirname(path) != os.path.join(root, name) for name in class_names for path in files[name])
    counts = ", ".join(f"{name} {len(files[name])}" for name in class_names)
    below = f"; {nested} of them in sub-folders" if nested else ""
    return f"[data] {root}: {total} images in {len(class_names)} classes ({counts}){below}"


def load_class_split(root: str) -> tuple[Split, list[str]]:
    """One split of class folders: ``(Split, class_names)``; prints :func:`count_line`.

    Raises:
      UserError: see :func:`scan_class_folder`.
    """
    class_names, files = scan_class_folder(root)
    print(count_line(root, class_names, files), flush=True)
    paths, labels = [], []
    for index, name in enumerate(class_names):
        paths += files[name]
        labels += [index] * len(files[name])
    return Split(paths, labels), class_names


def match_classes(split: Split, split_names: Sequence[str], class_names: Sequence[str], root: str) -> Split:
    """``split`` (labels indexing ``split_names``) relabelled to index ``class_names``, matched by name.

    The split may hold only some of the classes (their per-class figures are
    then NaN); a class the model does not know is an error.

    Raises:
      UserError: ``root`` holds a class folder that is not in ``class_names``.
    """
    unknown = [name for name in split_names if name not in class_names]
    if unknown:
        raise UserError(f"{root} holds the class folders {unknown}, which the model does not have "
                        f"(its classes: {class_names})")
    missing = [name for name in class_names if name not in split_names]
    if missing:
        print(f"[data] {root} holds {len(split_names)} of the {len(class_names)} classes (matched by name); "
              f"none of {missing}", flush=True)
    index = {name: position for position, name in enumerate(class_names)}
    return Split(split.paths, [index[split_names[label]] for label in split.labels])


def load_classification(train_dir: str, validation_dir: str) -> Dataset:
    """Find and label the images of both splits.

    Args:
      train_dir, validation_dir: folders of class sub-folders; the second may
        hold only some of the first's classes.
    Returns:
      :class:`Dataset`; labels index the sorted class names of ``train_dir``.
    Raises:
      UserError: see :func:`scan_class_folder`, a single class, or a validation class not in training.
    """
    train, class_names = load_class_split(train_dir)
    if len(class_names) < 2:  # one class trains to loss 0 and top-1 1.0 whatever the images show
        raise UserError(f"{train_dir} has one class folder ({class_names[0]}): classification needs at least "
                        "two classes")
    validation, val_names = load_class_split(validation_dir)
    return Dataset(train, match_classes(validation, val_names, class_names, validation_dir), class_names)


def _pair_folder(split_dir):
    image_dir, mask_dir = os.path.join(split_dir, "images"), os.path.join(split_dir, "masks")
    for folder in (image_dir, mask_dir):
        if not os.path.isdir(folder):
            raise UserError(f"missing folder {folder}: segmentation data needs images/ and masks/ in {split_dir}")
    images = {os.path.splitext(os.path.basename(p))[0]: p for p in _image_files(image_dir)}
    masks = {os.path.splitext(os.path.basename(p))[0]: p for p in _image_files(mask_dir)}
    if not images:
        raise UserError(f"no images in {image_dir}")
    if images.keys() != masks.keys():
        no_mask = sorted(images.keys() - masks.keys())[:5]
        no_image = sorted(masks.keys() - images.keys())[:5]
        raise UserError(f"{image_dir} and {mask_dir} must hold the same file names: "
                        f"images without a mask {no_mask}, masks without an image {no_image}")
    paths, labels = [], []
    for stem in sorted(images):
        problem = check_mask(masks[stem], images[stem])
        if problem:
            raise UserError(problem)
        paths.append(images[stem])
        labels.append(masks[stem])
    return Split(paths, labels)


def read_mask(path: str) -> np.ndarray:
    """The class indices of a mask PNG as uint8 (h, w).

    A palette ("P") PNG gives its palette indices, as VOC-style datasets
    mean them; a grey ("L") PNG gives its values. The training pipeline reads
    masks with this function too, so it sees the values :func:`check_mask`
    checked (``tf.io.decode_png`` would turn a palette into grey levels).
    """
    with Image.open(path) as mask:
        return np.asarray(mask, dtype=np.uint8)


def _image_size(path):
    """(width, height) from the image's header, or None when it has none (decoding will name the file)."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return None


def check_mask(mask_path: str, image_path: str) -> str | None:
    """Why a mask does not fit its image (a sentence naming the files), or None.

    Only the two files' headers are read (format, mode, size); the mask's
    values are checked when the input pipeline decodes it (:func:`mask_values_problem`).
    """
    try:
        with Image.open(mask_path) as mask:
            if mask.format != "PNG" or mask.mode not in ("L", "P"):
                return f"mask {mask_path} must be a single-channel PNG of class indices (got {mask.format} {mask.mode})"
            mask_size = mask.size
    except OSError as error:
        return f"mask {mask_path} cannot be read ({error})"
    image_size = _image_size(image_path)
    if image_size is not None and mask_size != image_size:
        return (f"mask {mask_path} is {mask_size[0]}x{mask_size[1]} but its image {image_path} "
                f"is {image_size[0]}x{image_size[1]}")
    return None


def mask_values_problem(mask: np.ndarray, mask_path: str, num_classes: int) -> str | None:
    """Why the decoded ``mask`` (class indices) does not fit ``num_classes`` (a sentence), or None."""
    wrong = [int(v) for v in np.unique(mask) if v >= num_classes and v != IGNORE_LABEL]
    if wrong:
        return (f"mask {mask_path} has values {wrong[:5]} outside 0..{num_classes - 1} "
                f"(and {IGNORE_LABEL} = ignore); check --class_number")
    return None


def load_segmentation(train_dir: str | None, validation_dir: str, num_classes: int) -> Dataset:
    """Find and check image/mask pairs of both splits (``train_dir`` None: validation only).

    Returns:
      :class:`Dataset` with mask files as labels and class names "0".."C-1".
    Raises:
      UserError: a missing folder, unmatched names, a size mismatch, a mask
        that is not a single-channel PNG (its values are checked when it is
        decoded: data_loading/decoding.DecodeChecker).
    """
    if num_classes < 2:
        raise UserError(f"--class_number={num_classes}: segmentation needs at least 2 classes (background included)")
    train = Split([], []) if train_dir is None else _pair_folder(train_dir)
    validation = _pair_folder(validation_dir)
    return Dataset(train, validation, [str(i) for i in range(num_classes)])


def list_images(path: str) -> list[str]:
    """The image files to predict: ``path`` itself, or the images inside the folder ``path``.

    Raises:
      UserError: ``path`` does not exist, or the folder has no images.
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserError(f"--input={path} is neither an image file nor a folder")
    files = _image_files(path)
    if not files:
        raise UserError(f"--input={path} holds no images ({', '.join(IMAGE_EXTENSIONS)} in any case)")
    return files
