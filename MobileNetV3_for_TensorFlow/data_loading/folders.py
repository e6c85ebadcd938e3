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
(``eval/`` is accepted for the second), JPEG or PNG files with any case of
the extension. Segmentation: ``<data_path>/{train,validation}/images/`` and
``.../masks/``, an image and its mask sharing the file name stem; masks are
single-channel PNGs of class indices (grey values or palette indices), 255 = ignore.

Every problem raises :class:`UserError` naming the folder or file.
"""

import concurrent.futures
import dataclasses
import os

import numpy as np
from PIL import Image

from common.npu_utils import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
VALIDATION_FOLDERS = ("validation", "eval")
IGNORE_LABEL = 255
# A JPEG is checked by decoding it at reduced scale: every byte is still read.
_CHECK_SIZE = (64, 64)


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
    """The checked dataset: both splits, the class names and skipped files."""

    train: Split
    validation: Split
    class_names: list
    skipped: list = dataclasses.field(default_factory=list)


def _image_files(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, name)))


def check_image(path):
    """Why ``path`` cannot be used as an image (a sentence), or None when it decodes."""
    try:
        with Image.open(path) as image:
            if image.format not in ("JPEG", "PNG"):
                return f"is {image.format}, not JPEG or PNG"
            image.draft("RGB", _CHECK_SIZE)
            image.load()
    except Exception as error:  # PIL raises many types for broken files.
        return f"cannot be decoded ({type(error).__name__}: {error})"
    return None


def _filter_readable(paths, skip_bad_images, workers=8):
    """The readable ``paths`` and the list of ``(path, reason)`` skipped.

    Raises:
      UserError: an unreadable image and ``skip_bad_images`` is False.
    """
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(check_image, paths))
    bad = [(path, reason) for path, reason in zip(paths, reasons) if reason]
    if bad and not skip_bad_images:
        path, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(f"image {path} {reason}{more}; fix or remove it, or pass "
                        "--skip_bad_images to skip unreadable images and list them")
    return [path for path, reason in zip(paths, reasons) if not reason], bad


def split_folders(data_path):
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


def scan_class_folder(root):
    """``(class_names, {class: [files]})`` of a folder of class sub-folders.

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
        files[name] = _image_files(os.path.join(root, name))
        if not files[name]:
            raise UserError(f"class folder {os.path.join(root, name)} has no images "
                            f"({', '.join(IMAGE_EXTENSIONS)} in any case)")
    return class_names, files


def load_class_split(root, skip_bad_images=False):
    """One split of class folders: ``(Split, class_names, skipped)``.

    Raises:
      UserError: see :func:`scan_class_folder`, or an unreadable image.
    """
    class_names, files = scan_class_folder(root)
    paths, labels, skipped = [], [], []
    for index, name in enumerate(class_names):
        good, bad = _filter_readable(files[name], skip_bad_images)
        skipped += bad
        if not good:
            raise UserError(f"class folder {os.path.join(root, name)} has no readable images")
        paths += good
        labels += [index] * len(good)
    return Split(paths, labels), class_names, skipped


def load_classification(train_dir, validation_dir, skip_bad_images=False):
    """Find, check and label the images of both splits.

    Args:
      train_dir, validation_dir: folders of class sub-folders.
      skip_bad_images: skip unreadable images (listed in ``skipped``) instead of failing.
    Returns:
      :class:`Dataset`; labels index the sorted class names.
    Raises:
      UserError: see :func:`scan_class_folder`, different class sets, an unreadable image.
    """
    class_names, _ = scan_class_folder(train_dir)
    val_names, _ = scan_class_folder(validation_dir)
    if val_names != class_names:
        only_train = sorted(set(class_names) - set(val_names))
        only_val = sorted(set(val_names) - set(class_names))
        raise UserError(f"{train_dir} and {validation_dir} have different classes: "
                        f"only in train {only_train}, only in validation {only_val}")
    train, _, skipped_train = load_class_split(train_dir, skip_bad_images)
    validation, _, skipped_val = load_class_split(validation_dir, skip_bad_images)
    return Dataset(train, validation, class_names, skipped_train + skipped_val)


def _pair_folder(split_dir, num_classes, skip_bad_images):
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
    stems = sorted(images)
    good_images, bad = _filter_readable([images[s] for s in stems], skip_bad_images)
    good = set(good_images)
    paths, labels = [], []
    for stem in stems:
        if images[stem] not in good:
            continue
        problem = check_mask(masks[stem], images[stem], num_classes)
        if problem:
            raise UserError(problem)
        paths.append(images[stem])
        labels.append(masks[stem])
    return Split(paths, labels), bad


def read_mask(path):
    """The class indices of a mask PNG as uint8 (h, w).

    A palette ("P") PNG gives its palette indices, as VOC-style datasets
    mean them; a grey ("L") PNG gives its values. The training pipeline reads
    masks with this function too, so it sees the values :func:`check_mask`
    checked (``tf.io.decode_png`` would turn a palette into grey levels).
    """
    with Image.open(path) as mask:
        return np.asarray(mask, dtype=np.uint8)


def check_mask(mask_path, image_path, num_classes):
    """Why a mask does not fit its image (a sentence naming the files), or None."""
    try:
        with Image.open(mask_path) as mask, Image.open(image_path) as image:
            if mask.format != "PNG" or mask.mode not in ("L", "P"):
                return f"mask {mask_path} must be a single-channel PNG of class indices (got {mask.format} {mask.mode})"
            if mask.size != image.size:
                return (f"mask {mask_path} is {mask.size[0]}x{mask.size[1]} but its image {image_path} "
                        f"is {image.size[0]}x{image.size[1]}")
        values = np.unique(read_mask(mask_path))
    except OSError as error:
        return f"mask {mask_path} cannot be read ({error})"
    wrong = [int(v) for v in values if v >= num_classes and v != IGNORE_LABEL]
    if wrong:
        return (f"mask {mask_path} has values {wrong[:5]} outside 0..{num_classes - 1} "
                f"(and {IGNORE_LABEL} = ignore); check --class_number")
    return None


def load_segmentation(train_dir, validation_dir, num_classes, skip_bad_images=False):
    """Find and check image/mask pairs of both splits (``train_dir`` None: validation only).

    Returns:
      :class:`Dataset` with mask files as labels and class names "0".."C-1".
    Raises:
      UserError: a missing folder, unmatched names, a size mismatch, a mask
        that is not a single-channel PNG or holds values >= ``num_classes``
        other than 255, an unreadable image.
    """
    if num_classes < 2:
        raise UserError(f"--class_number={num_classes}: segmentation needs at least 2 classes (background included)")
    train, bad_train = (Split([], []), []) if train_dir is None else _pair_folder(train_dir, num_classes,
                                                                                  skip_bad_images)
    validation, bad_val = _pair_folder(validation_dir, num_classes, skip_bad_images)
    return Dataset(train, validation, [str(i) for i in range(num_classes)], bad_train + bad_val)


def list_images(path, skip_bad_images=False):
    """The image files to predict: ``path`` itself, or the readable images inside the folder ``path``.

    Returns:
      ``(paths, skipped)`` with ``skipped`` a list of ``(path, reason)``.
    Raises:
      UserError: ``path`` does not exist, the folder has no images, or an
        image cannot be decoded (unless ``skip_bad_images``).
    """
    if os.path.isfile(path):
        return _filter_readable([path], skip_bad_images=False)
    if not os.path.isdir(path):
        raise UserError(f"--input={path} is neither an image file nor a folder")
    files = _image_files(path)
    if not files:
        raise UserError(f"--input={path} holds no images ({', '.join(IMAGE_EXTENSIONS)} in any case)")
    return _filter_readable(files, skip_bad_images)
