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
"""tf.data pipelines: a shuffled file list, decode + resize + augment in a parallel map, batch, prefetch.

Images come out NHWC float32 RGB in [0, 255] (the model rescales them);
classification labels are int32 class indices, segmentation labels int32
(batch, height, width) masks with 255 = ignore.

Only the file list (paths and labels) is held per image: every epoch
shuffles the list of indices (a full shuffle, cheap), and the map reads,
decodes, resizes and augments each file. A split whose decoded images fit
``cache_bytes`` is decoded once and kept in memory instead (never by
accident: the budget is the --cache_budget_mb flag). Both give the same
batches. Training order and every augmentation are a function of (seed,
epoch): stateless random ops take per-element seeds from
``tf.data.Dataset.random``, so a resumed run sees the same batches as an
uninterrupted one.

Files are checked when they are decoded, by the decoder that trains on them
(TensorFlow's: it rejects a PNG with a bad CRC that Pillow reads): a
:class:`DecodeChecker` records each file that fails, and the training loop
stops with one line naming it, or with --skip_bad_images lists the skipped
files at the end of the epoch.
"""

import math
import os
import re
import threading

import numpy as np
import tensorflow as tf

from common.npu_utils import UserError
from data_loading.folders import IGNORE_LABEL, mask_values_problem, read_mask

AUTOTUNE = tf.data.AUTOTUNE
# Evaluation resizes so that the centre crop keeps 87.5% of the image (the
# usual ImageNet protocol); training decodes images to the same size first.
CENTRE_FRACTION = 0.875
# Default memory budget for decoded images kept in memory, per process.
DEFAULT_CACHE_BYTES = 300 * 1024 ** 2
# Augmentation strengths (chosen for small datasets; see README).
CROP_AREA = (0.25, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
MAX_ROTATION_DEGREES = 10.0
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.2, 0.2, 0.2, 0.02


def cache_size(height, width):
    """(height, width) to which training images are decoded before cropping."""
    return math.ceil(height / CENTRE_FRACTION), math.ceil(width / CENTRE_FRACTION)


def cache_bytes_needed(count, height, width, channels=3):
    """Bytes of ``count`` decoded uint8 training images (and masks) at :func:`cache_size`."""
    cached_h, cached_w = cache_size(height, width)
    return count * cached_h * cached_w * channels


class DecodeChecker:
    """Decodes image files in the input pipeline and remembers the ones that fail.

    Args:
      skip_bad_images: False: :meth:`raise_if_bad` raises for the first bad
        file; True: bad files are dropped from the batches and
        :meth:`take_skipped` lists them.
    """

    def __init__(self, skip_bad_images=False):
        self.skip_bad_images = skip_bad_images
        self._bad = {}  # path -> reason, in the order they were found
        self._wrong_masks = {}  # mask path -> problem (never skipped)
        self._lock = threading.Lock()

    def _read(self, path):
        """Eager: (uint8 (h, w, 3), True), or (an empty image, False) for a file that does not decode."""
        try:
            return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False), True
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.DataLossError) as error:
            name = os.fsdecode(path.numpy())
            # "{{function_node ...}} Invalid PNG data, size 3172 [Op:DecodeImage] name: " -> the middle.
            reason = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", str(error).strip().splitlines()[0]).strip()
            with self._lock:
                self._bad.setdefault(name, reason)
            return tf.zeros([0, 0, 3], tf.uint8), False

    def decode(self, path):
        """Graph op: ``(image, ok)`` with image uint8 (h, w, 3); ``ok`` is False for a bad file."""
        image, ok = tf.py_function(self._read, [path], (tf.uint8, tf.bool))
        image.set_shape([None, None, 3])
        ok.set_shape([])
        return image, ok

    def decode_mask(self, path, num_classes):
        """Graph op: a mask PNG's class indices as uint8 (h, w, 1): palette indices or grey values.

        Through PIL (:func:`folders.read_mask`), because ``tf.io.decode_png``
        converts a palette PNG to grey levels ({0, 1, 2} became {0, 76, 149}).
        Values outside 0..num_classes-1 (255 = ignore) are recorded and stop
        the run at :meth:`raise_if_bad`, also with --skip_bad_images: they
        mean a wrong --class_number, not a broken file.
        """
        def read(name):
            name = os.fsdecode(name)
            mask = read_mask(name)
            problem = mask_values_problem(mask, name, num_classes)
            if problem:
                with self._lock:
                    self._wrong_masks.setdefault(name, problem)
            return mask[..., None]

        mask = tf.numpy_function(read, [path], tf.uint8)  # stateful (the default): it records problems
        mask.set_shape([None, None, 1])
        return mask

    def raise_if_bad(self):
        """Raises UserError for a mask of wrong values, or naming the first bad file unless they are skipped."""
        if self._wrong_masks:
            raise UserError(next(iter(self._wrong_masks.values())))
        if self._bad and not self.skip_bad_images:
            path, reason = next(iter(self._bad.items()))
            more = f" (and {len(self._bad) - 1} more)" if len(self._bad) > 1 else ""
            raise UserError(f"image {path} cannot be decoded ({reason}){more}; fix or remove it, or pass "
                            "--skip_bad_images to skip unreadable images and list them")

    def take_skipped(self):
        """``[(path, reason)]`` skipped since the last call (and forgets them)."""
        with self._lock:
            skipped, self._bad = list(self._bad.items()), {}
        return skipped

    def end_pass(self, what):
        """After a pass over the data (``what``: "epoch 3", "evaluation"): stop, or list the skipped files.

        Raises:
          UserError: a file did not decode and bad images are not skipped.
        """
        self.raise_if_bad()
        skipped = self.take_skipped()
        if skipped:
            print(f"[data] {what}: skipped {len(skipped)} images that do not decode:", flush=True)
            for path, reason in skipped:
                print(f"[data]   {path}: {reason}", flush=True)


def resize_centre_crop(image, height, width):
    """Resize keeping the aspect ratio so the crop is 87.5% of the image, then crop the centre."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(height / shape[0], width / shape[1]) / CENTRE_FRACTION
    size = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = tf.image.resize(image, size, antialias=True)
    return tf.image.resize_with_crop_or_pad(image, height, width)


def _rotation(seed, height, width):
    """A projective transform rotating (height, width) images about their centre."""
    angle = tf.random.stateless_uniform([], seed, -1.0, 1.0) * MAX_ROTATION_DEGREES * math.pi / 180
    cos, sin = tf.cos(angle), tf.sin(angle)
    h, w = float(height - 1), float(width - 1)
    x_offset = (w - (cos * w - sin * h)) / 2
    y_offset = (h - (sin * w + cos * h)) / 2
    return tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None]


def _rotate(image, transform, interpolation, fill_mode, fill_value):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=fill_value, interpolation=interpolation, fill_mode=fill_mode)[0]


def _colour_jitter(image, seeds):
    """Brightness, contrast, saturation and hue jitter of a float image in [0, 255]."""
    image = image / 255.0
    image = tf.image.stateless_random_brightness(image, BRIGHTNESS, seeds[0])
    image = tf.image.stateless_random_contrast(image, 1 - CONTRAST, 1 + CONTRAST, seeds[1])
    image = tf.image.stateless_random_saturation(image, 1 - SATURATION, 1 + SATURATION, seeds[2])
    image = tf.image.stateless_random_hue(image, HUE, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0) * 255.0


def augment(image, seed, height, width, mask=None):
    """Random resized crop, horizontal flip, small rotation, colour jitter.

    Args:
      image: uint8 (h, w, 3).
      seed: int (2,) stateless seed of this element.
      height, width: output size.
      mask: optional uint8 (h, w, 1); it gets the same crop, flip and
        rotation (nearest neighbour, 255 where the rotation leaves the image).
    Returns:
      float32 (height, width, 3) image in [0, 255], and the int32
      (height, width) mask when one was given.
    """
    seeds = tf.random.experimental.stateless_split(seed, 8)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([1, 0, 4]), seed=seeds[0], min_object_covered=0.0,
        aspect_ratio_range=CROP_ASPECT, area_range=CROP_AREA, max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    image = tf.image.resize(tf.slice(image, begin, size), (height, width))
    flip = tf.random.stateless_uniform([], seeds[1]) < 0.5
    transform = _rotation(seeds[2], height, width)
    image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
    image = _rotate(image, transform, "BILINEAR", "REFLECT", 0.0)
    image = _colour_jitter(image, seeds[3:7])
    if mask is None:
        return image
    mask = tf.image.resize(tf.slice(mask, begin, size), (height, width), method="nearest")
    mask = tf.cond(flip, lambda: tf.image.flip_left_right(mask), lambda: mask)
    mask = _rotate(tf.cast(mask, tf.float32), transform, "NEAREST", "CONSTANT", float(IGNORE_LABEL))
    return image, tf.cast(mask[..., 0], tf.int32)


def _decoder(checker, task, size, num_classes):
    """``load(path, label) -> (image, label, ok)``: decode and resize to ``size``, the mask too (uint8)."""

    def load(path, label):
        image, ok = checker.decode(path)
        image = tf.cond(ok, lambda: tf.cast(tf.image.resize(image, size, antialias=True) + 0.5, tf.uint8),
                        lambda: tf.zeros(size + (3,), tf.uint8))
        if task == "segmentation":
            label = tf.cond(ok, lambda: tf.image.resize(checker.decode_mask(label, num_classes), size,
                                                        method="nearest"),
                            lambda: tf.zeros(size + (1,), tf.uint8))
        return image, label, ok

    return load


def _good(image, label, ok):
    return ok


class TrainData:
    """The training split as a stream: the file list is shuffled every epoch, images are decoded as needed.

    Args:
      paths, labels: this process's share of the training split (labels are
        class indices, or mask files for segmentation).
      task: "classification" or "segmentation".
      height, width: network input size.
      batch: per-process batch size.
      seed: drives the order and the augmentations.
      steps_per_epoch: batches per epoch (the same on every worker).
      cache_bytes: keep the decoded split in memory when it needs at most
        this many bytes (0: never).
      checker: the :class:`DecodeChecker` of the run (default: stop at a bad file).
      num_classes: segmentation: mask values must be below it or 255 (the default 255 checks nothing).
    """

    def __init__(self, paths, labels, task, height, width, batch, seed, steps_per_epoch,
                 cache_bytes=DEFAULT_CACHE_BYTES, checker=None, num_classes=IGNORE_LABEL):
        self.task, self.height, self.width = task, height, width
        self.batch, self.seed, self.steps_per_epoch = batch, seed, steps_per_epoch
        self.checker = checker or DecodeChecker()
        self.count = len(paths)
        label_dtype = tf.string if task == "segmentation" else tf.int32
        self.paths = tf.constant(paths, tf.string)
        self.labels = tf.constant(labels, label_dtype)
        self.bytes_needed = cache_bytes_needed(self.count, height, width, 4 if task == "segmentation" else 3)
        self.cached = 0 < self.bytes_needed <= cache_bytes
        self.decode = _decoder(self.checker, task, cache_size(height, width), num_classes)
        if self.cached:
            self._images, self._labels = self._decode_all()

    def _decode_all(self):
        """Every image of the split decoded at the cache size: (N, h, w, 3) uint8 and the labels.

        Filled into one preallocated array, so the peak is about twice the
        decoded split (the array and its tensor copy), not three times.
        """
        data = tf.data.Dataset.from_tensor_slices((self.paths, self.labels))
        data = data.map(self.decode, num_parallel_calls=AUTOTUNE).filter(_good).batch(256)
        images, labels, count = None, [], 0
        for image, label, _ in data:
            if images is None:
                images = np.empty((self.count,) + tuple(image.shape[1:]), np.uint8)
            images[count:count + len(image)] = image.numpy()
            labels.append(label.numpy())
            count += len(image)
        self.checker.raise_if_bad()
        if not count:
            raise UserError("no training image could be decoded")
        return tf.constant(images[:count]), tf.constant(np.concatenate(labels))

    def _element(self, index):
        """``(image, label, ok)`` of list index ``index``: from memory, or read and decoded."""
        if self.cached:
            return tf.gather(self._images, index), tf.gather(self._labels, index), tf.constant(True)
        return self.decode(tf.gather(self.paths, index), tf.gather(self.labels, index))

    def epoch(self, epoch, skip_batches=0):
        """The batches of ``epoch`` (0-based) after the first ``skip_batches``.

        The shuffled list repeats, so an epoch whose bad files were skipped
        still has ``steps_per_epoch`` full batches.
        """
        count = int(self._images.shape[0]) if self.cached else self.count
        order = tf.data.Dataset.range(count).shuffle(count, seed=self.seed * 1009 + epoch).repeat()
        seeds = tf.data.Dataset.random(seed=self.seed * 7919 + epoch).batch(2)
        elements = tf.data.Dataset.zip((order, seeds)).skip(skip_batches * self.batch)
        height, width, task = self.height, self.width, self.task

        def load_and_augment(index, seed):
            image, label, ok = self._element(index)
            if task == "segmentation":
                image, label = augment(image, seed, height, width, mask=label)
            else:
                image = augment(image, seed, height, width)
            return image, label, ok

        data = elements.map(load_and_augment, num_parallel_calls=AUTOTUNE, deterministic=True).filter(_good)
        data = data.map(lambda image, label, ok: (image, label))
        data = data.take((self.steps_per_epoch - skip_batches) * self.batch)
        return data.batch(self.batch, drop_remainder=True).prefetch(AUTOTUNE)


def eval_dataset(paths, labels, task, height, width, batch, cache_bytes=DEFAULT_CACHE_BYTES, checker=None,
                 num_classes=IGNORE_LABEL):
    """Evaluation batches: resize + centre crop (classification) or resize (segmentation).

    Segmentation images and masks are resized to (height, width), masks
    nearest-neighbour; the last batch may be smaller. Kept in memory after
    the first pass when the float32 images fit ``cache_bytes``; bad files are
    left out and recorded by ``checker``, as are masks with values of
    ``num_classes`` or more (other than 255).
    """
    checker = checker or DecodeChecker()
    label_dtype = tf.string if task == "segmentation" else tf.int32

    def load(path, label):
        image, ok = checker.decode(path)
        if task == "segmentation":
            image = tf.cond(ok, lambda: tf.image.resize(image, (height, width), antialias=True),
                            lambda: tf.zeros((height, width, 3)))
            mask = tf.cond(ok, lambda: tf.image.resize(checker.decode_mask(label, num_classes), (height, width),
                                                       method="nearest"),
                           lambda: tf.zeros((height, width, 1), tf.uint8))
            return image, tf.cast(mask[..., 0], tf.int32), ok
        image = tf.cond(ok, lambda: resize_centre_crop(image, height, width), lambda: tf.zeros((height, width, 3)))
        return image, label, ok

    data = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(labels, label_dtype)))
    data = data.map(load, num_parallel_calls=AUTOTUNE).filter(_good).map(lambda image, label, ok: (image, label))
    if len(paths) * height * width * 4 * (4 if task == "segmentation" else 3) <= cache_bytes:
        data = data.cache()
    return data.batch(batch).prefetch(AUTOTUNE)


def predict_dataset(paths, height, width, task, batch, checker):
    """Images to predict, resized like evaluation: ``(images, original (h, w), paths)`` batches.

    Files that do not decode are left out and recorded by ``checker``.
    """

    def load(path):
        image, ok = checker.decode(path)
        size = tf.shape(image)[:2]
        if task == "segmentation":
            resized = tf.cond(ok, lambda: tf.image.resize(image, (height, width), antialias=True),
                              lambda: tf.zeros((height, width, 3)))
        else:
            resized = tf.cond(ok, lambda: resize_centre_crop(image, height, width), lambda: tf.zeros((height, width, 3)))
        return resized, size, path, ok

    data = tf.data.Dataset.from_tensor_slices(tf.constant(paths))
    data = data.map(load, num_parallel_calls=AUTOTUNE).filter(lambda image, size, path, ok: ok)
    return data.map(lambda image, size, path, ok: (image, size, path)).batch(batch).prefetch(AUTOTUNE)
