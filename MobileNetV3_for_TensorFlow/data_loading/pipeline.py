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
"""tf.data pipelines: a shuffled file list, read + decode + crop + augment in a parallel map, batch, prefetch.

Images come out NHWC float32 RGB in [0, 255] (the model rescales them);
classification labels are int32 class indices, segmentation labels int32
(batch, height, width) masks with 255 = ignore. Reading a file is
data_loading/decoding's job, what happens to a decoded image
data_loading/augment's; this module orders, batches and keeps.

Everything on the per-image path is a TensorFlow op in the tf.data map (no
Python there, so no global lock caps the decode at one core), except the PIL
read of segmentation masks, which TensorFlow's PNG decoder cannot read as
palette indices.

Only the file list (paths and labels) is held per image: every epoch
shuffles the list of indices (a full shuffle, cheap), and the map reads and
decodes each file. A training split whose decoded originals fit
``cache_bytes`` is decoded once and kept in memory instead (never by
accident: the budget is the --cache_budget_mb flag); the boxes are then cut
from the kept originals, which gives the same batches. Training order and
every augmentation are a function of (seed, epoch): stateless random ops
take per-element seeds from ``tf.data.Dataset.random``, so a resumed run sees
the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from common.errors import UserError
from data_loading import augment
from data_loading.decoding import DecodeChecker, checked, decode_random_box, decode_whole
from data_loading.folders import IGNORE_LABEL

AUTOTUNE = tf.data.AUTOTUNE
# Default memory budget for decoded images kept in memory, per process.
DEFAULT_CACHE_BYTES = 300 * 1024 ** 2


class _KeptOriginals:
    """Decoded originals of a split held in one flat uint8 buffer (images of any size, no padding).

    Args:
      images: uint8 (total,) every image's pixels (h, w, 3) one after the other.
      masks: uint8 (total / 3,) the masks' pixels (h, w, 1), or None.
      offsets: int64 (N,) where image i starts in ``images`` (its mask at offset / 3).
      shapes: int32 (N, 2) each image's (h, w).
      labels: (N,) class indices, or None (segmentation: the masks).
    """

    def __init__(self, images, masks, offsets, shapes, labels):
        self.images, self.masks = tf.constant(images), None if masks is None else tf.constant(masks)
        self.offsets, self.shapes = tf.constant(offsets), tf.constant(shapes)
        self.labels, self.count = labels, len(offsets)

    def get(self, index):
        """Graph: ``(image uint8 (h, w, 3), mask uint8 (h, w, 1) or None)`` of kept image ``index``."""
        shape = tf.gather(self.shapes, index)
        offset = tf.gather(self.offsets, index)
        pixels = shape[0] * shape[1]
        image = tf.reshape(tf.slice(self.images, [offset], [tf.cast(pixels * 3, tf.int64)]),
                           tf.concat([shape, [3]], 0))
        if self.masks is None:
            return image, None
        mask = tf.reshape(tf.slice(self.masks, [offset // 3], [tf.cast(pixels, tf.int64)]),
                          tf.concat([shape, [1]], 0))
        return image, mask


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
      cache_bytes: keep the decoded originals in memory when they need at
        most this many bytes (0: never).
      checker: the :class:`DecodeChecker` of the run (default: stop at a bad file).
      num_classes: segmentation: mask values must be below it or 255 (the default 255 checks nothing).
      parallel_calls: images decoded at once (``num_parallel_calls`` of the map).
      augmentation: :class:`augment.Augmentation` (rotation and colour).
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int] | Sequence[str], task: str, height: int, width: int,
                 batch: int, seed: int, steps_per_epoch: int, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 checker: DecodeChecker | None = None, num_classes: int = IGNORE_LABEL,
                 parallel_calls: int = AUTOTUNE, augmentation: augment.Augmentation = augment.Augmentation()) -> None:
        self.task, self.height, self.width, self.augmentation = task, height, width, augmentation
        self.batch, self.seed, self.steps_per_epoch = batch, seed, steps_per_epoch
        self.checker = checker or DecodeChecker()
        self.num_classes, self.parallel_calls = num_classes, parallel_calls
        self.paths, self.count = list(paths), len(paths)
        self.channels = 4 if task == "segmentation" else 3
        label_dtype = tf.string if task == "segmentation" else tf.int32
        self._paths = tf.constant(self.paths, tf.string)
        self._labels = tf.constant(labels, label_dtype)
        self._excluded = np.zeros(self.count, bool)  # files found bad (by index), left out of later epochs
        self._reasons = {}  # their index -> why
        # Originals are at least the input size as a rule: a lower bound that needs no file read.
        self.bytes_needed = self.count * height * width * self.channels
        self.kept = None
        if 0 < self.bytes_needed <= cache_bytes:
            self.kept = self._decode_all(cache_bytes)
        self.cached = self.kept is not None

    def _decode_all(self, cache_bytes):
        """The split's decoded originals as :class:`_KeptOriginals`, or None when they need more than ``cache_bytes``.

        Filled into one buffer of ``cache_bytes`` (its pages are only
        touched as far as they are written), so the peak is about twice the
        decoded split (the buffer and its tensor copy). Bad files are
        recorded and left out.
        """
        segmentation = self.task == "segmentation"
        indices = tf.data.Dataset.range(self.count)

        def load(index):
            image = decode_whole(tf.io.read_file(tf.gather(self._paths, index)))
            if segmentation:
                return index, image, self.checker.decode_mask(tf.gather(self._labels, index), self.num_classes)
            return index, image, tf.zeros([0, 0, 1], tf.uint8)

        def build(excluded, done):
            return (indices.filter(lambda index: tf.logical_not(excluded[index])).skip(done)
                    .map(load, num_parallel_calls=self.parallel_calls).prefetch(AUTOTUNE))

        def window(excluded, done):
            return [int(np.flatnonzero(~excluded)[done])]

        buffer = np.empty(cache_bytes, np.uint8)
        masks = np.empty(cache_bytes // 3, np.uint8) if segmentation else None
        offsets, shapes, kept, filled = [], [], [], 0
        for index, image, mask in checked(build, window, self.paths, self._excluded, self._reasons, self.checker):
            image = image.numpy()
            if filled + image.size > cache_bytes * 3 // self.channels:
                self.bytes_needed = int(filled / len(kept) * self.count * self.channels / 3)
                return None
            buffer[filled:filled + image.size] = image.ravel()
            if segmentation:
                masks[filled // 3:(filled + image.size) // 3] = mask.numpy().ravel()
            offsets.append(filled)
            shapes.append(image.shape[:2])
            kept.append(int(index))
            filled += image.size
        self.checker.raise_if_bad()
        if not kept:
            raise UserError("no training image could be decoded")
        self.bytes_needed = filled * self.channels // 3
        labels = None if segmentation else tf.gather(self._labels, kept)
        return _KeptOriginals(buffer[:filled], None if masks is None else masks[:filled // 3],
                              np.array(offsets, np.int64), np.array(shapes, np.int32).reshape(-1, 2), labels)

    def _element(self, index, seed):
        """Graph: ``(image, label)`` of list index ``index``, augmented with the stateless ``seed``."""
        seeds = tf.random.experimental.stateless_split(seed, 8)
        height, width = self.height, self.width
        if self.kept is not None:
            image, mask = self.kept.get(index)
            begin, size = augment.random_box(tf.shape(image), seeds[0], height, width)
            crop = tf.slice(image, begin, size)
            label = tf.gather(self.kept.labels, index) if mask is None else tf.slice(mask, begin, size)
        else:
            crop, begin, size = decode_random_box(tf.io.read_file(tf.gather(self._paths, index)), seeds[0],
                                                  height, width)
            label = tf.gather(self._labels, index)
            if self.task == "segmentation":
                label = tf.slice(self.checker.decode_mask(label, self.num_classes), begin, size)
        if self.task != "segmentation":
            return augment.augment(crop, seeds, height, width, self.augmentation), label
        return augment.augment(crop, seeds, height, width, self.augmentation, mask=label)

    def _elements(self, epoch, excluded):
        """``(index, seed)`` of every element of ``epoch`` (an int64 scalar, Python or tensor), the files of
        ``excluded`` left out; the shuffled list repeats, so an epoch without its bad files still fills.

        The seeds are drawn before the bad files are left out, so leaving one
        out does not change the augmentation of the others.
        """
        count = self.kept.count if self.kept is not None else self.count
        epoch = tf.cast(epoch, tf.int64)
        # Stateless draws keyed by (seed, epoch): Dataset.shuffle's and Dataset.random's seeds must be Python
        # values whenever the global seed is 0, and the epoch is a tensor of the run's one pipeline.
        order = tf.argsort(tf.random.stateless_uniform([count], tf.stack([tf.constant(self.seed, tf.int64), epoch])))
        elements = tf.data.Dataset.from_tensor_slices(tf.cast(order, tf.int64)).repeat().enumerate()
        elements = elements.map(lambda place, index: (index, tf.stack([self.seed * 7919 + epoch, place])))
        if self.kept is None:
            elements = elements.filter(lambda index, seed: tf.logical_not(excluded[index]))
        return elements.take(self.steps_per_epoch * self.batch)

    def _run_elements(self, first_batch, end_epoch, excluded):
        """``(index, seed)`` of the run's batches from ``first_batch`` (counted from the run's start) to the end
        of epoch ``end_epoch - 1``: the epochs one after the other in one stream."""
        first_epoch = first_batch // self.steps_per_epoch
        elements = tf.data.Dataset.range(first_epoch, end_epoch).flat_map(
            lambda epoch: self._elements(epoch, excluded))
        return elements.skip((first_batch - first_epoch * self.steps_per_epoch) * self.batch)

    def dataset(self, first_batch: int, end_epoch: int, excluded: tf.Tensor | None = None) -> tf.data.Dataset:
        """The tf.data batches from batch ``first_batch`` of the run to the end of epoch ``end_epoch - 1``,
        without error handling: one pipeline across the epochs, so no epoch starts from an empty buffer."""
        excluded = tf.constant(self._excluded) if excluded is None else excluded
        elements = self._run_elements(first_batch, end_epoch, excluded)
        data = elements.map(self._element, num_parallel_calls=self.parallel_calls, deterministic=True)
        return data.batch(self.batch, drop_remainder=True).prefetch(AUTOTUNE)

    def record_known_bad(self) -> None:
        """Record again the files found bad so far (each epoch lists the files it skipped, also the known ones)."""
        for index, reason in self._reasons.items():
            self.checker.record(self.paths[index], reason)

    def batches(self, first_batch: int, end_epoch: int) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
        """The run's batches from batch ``first_batch`` to the end of epoch ``end_epoch - 1`` (an iterator of
        (images, labels)); a batch and its augmentation depend on (seed, epoch, place) only, so a resumed
        run's batches are the uninterrupted run's.

        A batch that fails to decode is replaced: its bad files are recorded
        in the checker (and left out of the rest of the run), and the stream
        goes on without them.
        """
        def build(excluded, done):
            return self.dataset(first_batch + done, end_epoch, excluded)

        def window(excluded, done):
            elements = self._run_elements(first_batch + done, end_epoch, tf.constant(excluded)).take(self.batch)
            return [int(index) for index, _ in elements]

        yield from checked(build, window, self.paths, self._excluded, self._reasons, self.checker)

    def epoch(self, epoch: int, skip_batches: int = 0) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
        """The batches of ``epoch`` (0-based) after the first ``skip_batches``: :meth:`batches` of that epoch."""
        self.record_known_bad()
        return self.batches(epoch * self.steps_per_epoch + skip_batches, epoch + 1)


class CheckedBatches:
    """Batches of a file list in its order, re-iterable; bad files are found on the error path and left out.

    Args:
      build: ``excluded -> tf.data.Dataset`` of the batches of the files
        whose ``excluded`` (bool (files,)) entry is False, in list order.
      paths: the file list.
      batch: files per batch.
      checker: :class:`DecodeChecker` that records the bad files.
    """

    def __init__(self, build: Callable[[tf.Tensor], tf.data.Dataset], paths: Sequence[str], batch: int,
                 checker: DecodeChecker) -> None:
        self._build, self.paths, self.batch, self.checker = build, list(paths), batch, checker
        self._excluded = np.zeros(len(self.paths), bool)
        self._reasons = {}
        self._built_without = 0  # bad files the current dataset leaves out
        self.data = build(tf.constant(self._excluded))

    def __iter__(self) -> Iterator[tuple[tf.Tensor, ...]]:
        def build(excluded, done):
            if int(np.sum(self._excluded)) != self._built_without:
                self._built_without = int(np.sum(self._excluded))
                self.data = self._build(excluded)
            return self.data.skip(done)  # a kept (cached) split still fills completely

        def window(excluded, done):
            return list(np.flatnonzero(~excluded)[done * self.batch:(done + 1) * self.batch])

        yield from checked(build, window, self.paths, self._excluded, self._reasons, self.checker)


def _file_list(paths, excluded, *others):
    """``tf.data`` of (path, *others) slices without the files of ``excluded``."""
    data = tf.data.Dataset.from_tensor_slices((tf.constant(paths, tf.string),) + tuple(others) + (excluded,))
    return data.filter(_kept).map(_without_flag)


def _kept(*element):
    """Whether a (path, *others, excluded) slice stays (named functions: autograph cannot tell apart two
    lambdas on one line, and says so on every run)."""
    return tf.logical_not(element[-1])


def _without_flag(*element):
    return element[:-1]


def eval_dataset(paths: Sequence[str], labels: Sequence[int] | Sequence[str], task: str, height: int, width: int,
                 batch: int, cache_bytes: int = DEFAULT_CACHE_BYTES, checker: DecodeChecker | None = None,
                 num_classes: int = IGNORE_LABEL) -> CheckedBatches:
    """Evaluation batches (images, labels): resize + centre crop (classification) or resize (segmentation).

    Segmentation images and masks are resized to (height, width), masks
    nearest-neighbour; the last batch may be smaller. Kept in memory after
    the first pass when the float32 images fit ``cache_bytes``; bad files are
    left out and recorded by ``checker``, as are masks with values of
    ``num_classes`` or more (other than 255).

    Returns:
      :class:`CheckedBatches` of float32 (b, height, width, 3) images and
      int32 (b,) labels or (b, height, width) masks.
    """
    checker = checker or DecodeChecker()
    label_dtype = tf.string if task == "segmentation" else tf.int32
    labels = tf.constant(labels, label_dtype)
    cached = len(paths) * height * width * 4 * (4 if task == "segmentation" else 3) <= cache_bytes

    def load(path, label):
        image = decode_whole(tf.io.read_file(path))
        if task != "segmentation":
            return augment.resize_centre_crop(image, height, width), label
        image = augment.resize(image, height, width)
        mask = augment.resize_mask(checker.decode_mask(label, num_classes), height, width)
        return image, tf.cast(mask[..., 0], tf.int32)

    def build(excluded):
        data = _file_list(paths, excluded, labels).map(load, num_parallel_calls=AUTOTUNE)
        if cached:
            data = data.cache()
        return data.batch(batch).prefetch(AUTOTUNE)

    return CheckedBatches(build, paths, batch, checker)


def predict_dataset(paths: Sequence[str], height: int, width: int, task: str, batch: int,
                    checker: DecodeChecker) -> CheckedBatches:
    """Images to predict, resized like evaluation: ``(images, original (h, w), paths)`` batches.

    Files that do not decode are left out and recorded by ``checker``.

    Returns:
      :class:`CheckedBatches` of float32 (b, height, width, 3), int32 (b, 2), string (b,).
    """

    def load(path):
        image = decode_whole(tf.io.read_file(path))
        if task == "segmentation":
            resized = augment.resize(image, height, width)
        else:
            resized = augment.resize_centre_crop(image, height, width)
        return resized, tf.shape(image)[:2], path

    def build(excluded):
        return _file_list(paths, excluded).map(load, num_parallel_calls=AUTOTUNE).batch(batch).prefetch(AUTOTUNE)

    return CheckedBatches(build, paths, batch, checker)
