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
(batch, height, width) masks with 255 = ignore.

One geometry for training and evaluation, both from the decoded original:
training takes an Inception-style random box of the original image (area
8%-100%, aspect 3/4-4/3; the evaluation centre box when 10 draws fail),
resizes it to the input size and flips it left-right at random (optionally
also a small random rotation, in the same resampling); evaluation and
predict resize the shorter side so that the centre crop keeps 87.5% and
crop the centre. A JPEG is decoded with ``tf.io.decode_and_crop_jpeg``, so
only the box is decoded, at full resolution; other formats are decoded whole
and cropped. Everything on the per-image path is a TensorFlow op in the
tf.data map (no Python there, so no global lock caps the decode at one core),
except the PIL read of segmentation masks, which TensorFlow's PNG decoder
cannot read as palette indices.

Only the file list (paths and labels) is held per image: every epoch
shuffles the list of indices (a full shuffle, cheap), and the map reads and
decodes each file. A training split whose decoded originals fit
``cache_bytes`` is decoded once and kept in memory instead (never by
accident: the budget is the --cache_budget_mb flag); the boxes are then cut
from the kept originals, which gives the same batches. Training order and
every augmentation are a function of (seed, epoch): stateless random ops
take per-element seeds from ``tf.data.Dataset.random``, so a resumed run sees
the same batches as an uninterrupted one.

Bad files are found on the error path only: when a batch fails to decode,
:func:`_checked` decodes that batch's files one by one to name the bad ones
(with TensorFlow's decoder, which rejects a PNG with a bad CRC that Pillow
reads), records them in the run's :class:`DecodeChecker` and rebuilds the
stream without them from the same position. The training loop then stops with
one line naming the file, or with --skip_bad_images lists the skipped files
at the end of the epoch.
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
# usual ImageNet protocol); a training box that cannot be drawn falls back to that centre box.
CENTRE_FRACTION = 0.875
# Default memory budget for decoded images kept in memory, per process.
DEFAULT_CACHE_BYTES = 300 * 1024 ** 2
# Inception's random box (Szegedy et al. 2015; keras-cv's RandomCropAndResize defaults alike).
CROP_AREA = (0.08, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10
# Colour jitter strengths after the crop (chosen for small datasets; see README).
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.2, 0.2, 0.2, 0.02
# What TensorFlow raises for a file that does not read or decode.
DECODE_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, tf.errors.DataLossError)
JPEG_MAGIC = b"\xff\xd8\xff"
# Columns decoded beyond each side of a JPEG box (two chroma samples of 4:1:1, the widest subsampling).
JPEG_EDGE = 8


class DecodeChecker:
    """The files of a run that failed to decode (found on the pipelines' error path).

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

    def record(self, path, reason):
        """Remember that ``path`` (str) does not decode, for ``reason`` (a sentence)."""
        with self._lock:
            self._bad.setdefault(path, reason)

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


def decode_problem(path):
    """Why the image file ``path`` (str) does not read or decode (TensorFlow's message), or None.

    Eager and whole-image: only called on the error path, for the files of a batch that failed.
    """
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return None
    except DECODE_ERRORS as error:
        # "{{function_node ...}} Invalid PNG data, size 3172 [Op:DecodeImage] name: " -> the middle.
        return re.sub(r"\{\{.*?\}\}|\[Op:.*", "", str(error).strip().splitlines()[0]).strip()


def _checked(build, window, paths, excluded, reasons, checker):
    """The elements of ``build(excluded, done)``, rebuilt without the bad files whenever an element fails.

    Args:
      build: ``(excluded, done) -> tf.data.Dataset``: the stream without the
        files whose ``excluded`` entry is True, from its element ``done`` on.
      window: ``(excluded, done) -> [file index]``: the files element ``done``
        of that stream is made of (the ones to check when it fails).
      paths: the file of each index.
      excluded: numpy bool (files,): files known to be bad; updated in place.
      reasons: dict file index -> why it does not decode; updated in place.
      checker: :class:`DecodeChecker` that records each bad file found.
    Yields:
      the elements, in the order of a stream that never held the bad files.
    Raises:
      the pipeline's error when none of the failing element's files is bad
      (a problem that is not a file's).
    """
    done = 0
    while True:
        try:
            for element in build(tf.constant(excluded), done):
                yield element
                done += 1
            return
        except DECODE_ERRORS:
            found = False
            for index in window(excluded, done):
                reason = decode_problem(paths[index])
                if reason is not None:
                    reasons[index] = reason
                    checker.record(paths[index], reason)
                    excluded[index] = found = True
            if not found:
                raise


def _is_jpeg(contents):
    return tf.equal(tf.strings.substr(contents, 0, len(JPEG_MAGIC)), JPEG_MAGIC)


def decode_whole(contents):
    """uint8 (h, w, 3) RGB of an encoded JPEG, PNG, GIF or BMP (its first frame)."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def centre_box(shape, height, width):
    """``(begin, size)`` int32 (3,) of the evaluation's centre crop in an image of ``shape`` (h, w, c).

    The box :func:`resize_centre_crop` keeps, in the original's pixels.
    """
    original = tf.cast(shape[:2], tf.float32)
    scale = tf.maximum(height / original[0], width / original[1]) / CENTRE_FRACTION
    size = tf.cast(tf.round(tf.constant([height, width], tf.float32) / scale), tf.int32)
    size = tf.clip_by_value(size, 1, tf.cast(shape[:2], tf.int32))
    begin = (tf.cast(shape[:2], tf.int32) - size) // 2
    return tf.concat([begin, [0]], 0), tf.concat([size, [-1]], 0)


def random_box(shape, seed, height, width):
    """``(begin, size)`` int32 (3,) of a random training box in an image of ``shape`` (h, w, c).

    Inception-style: area CROP_AREA of the image, aspect CROP_ASPECT, and
    the evaluation's centre box when CROP_ATTEMPTS draws all fail (TensorFlow
    then returns the whole image).
    """
    shape = tf.cast(shape, tf.int32)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.zeros([1, 0, 4]), seed=seed, min_object_covered=0.0, aspect_ratio_range=CROP_ASPECT,
        area_range=CROP_AREA, max_attempts=CROP_ATTEMPTS, use_image_if_no_bounding_boxes=True)
    failed = tf.reduce_all(tf.equal(size[:2], shape[:2]))
    centre_begin, centre_size = centre_box(shape, height, width)
    return (tf.where(failed, centre_begin, begin),
            tf.where(failed, centre_size, tf.concat([size[:2], [-1]], 0)))


def decode_random_box(contents, seed, height, width):
    """A random training box of an encoded image, decoded: ``(uint8 (h', w', 3), begin, size)``.

    JPEG: the box is drawn on the header's shape and only it is decoded
    (``tf.io.decode_and_crop_jpeg``, full resolution). Other formats are
    decoded whole, then cropped. ``begin``/``size`` (int32 (3,)) locate the
    box in the original, for the mask.
    """

    def jpeg():
        shape = tf.image.extract_jpeg_shape(contents, tf.int32)
        begin, size = random_box(shape, seed, height, width)
        # libjpeg-turbo upsamples the chroma of a cropped decode's edge columns from the edge itself,
        # not from the neighbouring pixels: decode JPEG_EDGE more columns each side and cut them off,
        # so the box's pixels are the whole image's exactly (tested).
        left = tf.maximum(begin[1] - JPEG_EDGE, 0)
        right = tf.minimum(begin[1] + size[1] + JPEG_EDGE, shape[1])
        wide = tf.io.decode_and_crop_jpeg(contents, tf.stack([begin[0], left, size[0], right - left]), channels=3)
        return tf.slice(wide, tf.stack([0, begin[1] - left, 0]), size), begin, size

    def other():
        image = decode_whole(contents)
        begin, size = random_box(tf.shape(image), seed, height, width)
        return tf.slice(image, begin, size), begin, size

    crop, begin, size = tf.cond(_is_jpeg(contents), jpeg, other)
    crop.set_shape([None, None, 3])
    return crop, begin, size


def resize_centre_crop(image, height, width):
    """Resize keeping the aspect ratio so the crop is 87.5% of the image, then crop the centre."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(height / shape[0], width / shape[1]) / CENTRE_FRACTION
    size = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = tf.image.resize(image, size, antialias=True)
    return tf.image.resize_with_crop_or_pad(image, height, width)


def _crop_transform(seeds, crop_shape, height, width, max_rotation):
    """The projective transform from a (height, width) output to its crop: resize, flip and rotation in one.

    The output is the crop resized to (height, width) (bilinear, half-pixel
    centres, as ``tf.image.resize``), flipped left-right with probability 0.5
    and rotated about its centre by up to ``max_rotation`` degrees; one
    resampling of the crop instead of three. Returns float32 (1, 8): output
    pixel (x, y) samples the crop at (a0 x + a1 y + a2, b0 x + b1 y + b2).
    """
    angle = tf.random.stateless_uniform([], seeds[2], -1.0, 1.0) * max_rotation * math.pi / 180
    cos, sin = tf.cos(angle), tf.sin(angle)
    h, w = float(height - 1), float(width - 1)
    # Rotation about the output's centre: output (x, y) -> (cos x - sin y + x_offset, sin x + cos y + y_offset).
    x_offset = (w - (cos * w - sin * h)) / 2
    y_offset = (h - (sin * w + cos * h)) / 2
    # Flip: x -> (width - 1) - x, i.e. x -> sign x + shift.
    flip = _flip_drawn(seeds)
    sign, shift = tf.where(flip, -1.0, 1.0), tf.where(flip, w, 0.0)
    # Resize with half-pixel centres: output x -> (x + 0.5) * crop_width / width - 0.5.
    crop = tf.cast(crop_shape[:2], tf.float32)
    scale_y, scale_x = crop[0] / height, crop[1] / width
    return tf.stack([scale_x * sign * cos, -scale_x * sign * sin,
                     scale_x * (sign * x_offset + shift) + 0.5 * scale_x - 0.5,
                     scale_y * sin, scale_y * cos, scale_y * y_offset + 0.5 * scale_y - 0.5, 0.0, 0.0])[None]


def _transform(image, transform, height, width, interpolation, fill_mode, fill_value):
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.constant([height, width]),
        fill_value=fill_value, interpolation=interpolation, fill_mode=fill_mode)[0]


def _colour_jitter(image, seeds):
    """Brightness, contrast, saturation and hue jitter of a float image in [0, 255]."""
    image = image / 255.0
    image = tf.image.stateless_random_brightness(image, BRIGHTNESS, seeds[0])
    image = tf.image.stateless_random_contrast(image, 1 - CONTRAST, 1 + CONTRAST, seeds[1])
    image = tf.image.stateless_random_saturation(image, 1 - SATURATION, 1 + SATURATION, seeds[2])
    image = tf.image.stateless_random_hue(image, HUE, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0) * 255.0


def _flip_drawn(seeds):
    """Whether this element is flipped left-right (probability 0.5), drawn from ``seeds[1]``."""
    return tf.random.stateless_uniform([], seeds[1]) < 0.5


def _resize_and_flip(image, seeds, height, width, method):
    """``image`` (h, w, c) resized to (height, width) with ``method``, mirrored when :func:`_flip_drawn`."""
    image = tf.image.resize(image, (height, width), method=method)
    # tf.cond, not tf.where: tf.where computes the mirror image of every element and selects pixel by pixel.
    return tf.cond(_flip_drawn(seeds), lambda: tf.reverse(image, [1]), lambda: image)


def augment(crop, seeds, height, width, mask=None, max_rotation=0.0):
    """Resize a training box to the input size with a random horizontal flip (and rotation), then colour jitter.

    Args:
      crop: uint8 (h, w, 3), the random box of the original (:func:`decode_random_box`).
      seeds: int (8, 2) stateless seeds of this element (the first one drew the box).
      height, width: output size.
      mask: optional uint8 (h, w, 1), the same box of the mask; it gets the
        same resize, flip and rotation (nearest neighbour, 255 where the
        rotation leaves the box).
      max_rotation: rotate by a random angle of up to this many degrees
        (Python float; 0: none). The rotation resamples the box with a
        projective transform, which costs several times a plain resize.
    Returns:
      float32 (height, width, 3) image in [0, 255], and the int32
      (height, width) mask when one was given.
    """
    if max_rotation:
        transform = _crop_transform(seeds, tf.shape(crop), height, width, max_rotation)
        image = _transform(tf.cast(crop, tf.float32), transform, height, width, "BILINEAR", "REFLECT", 0.0)
        if mask is not None:
            mask = _transform(tf.cast(mask, tf.float32), transform, height, width, "NEAREST", "CONSTANT",
                              float(IGNORE_LABEL))
    else:
        image = _resize_and_flip(crop, seeds, height, width, "bilinear")
        if mask is not None:
            mask = _resize_and_flip(mask, seeds, height, width, "nearest")
    image = _colour_jitter(image, seeds[3:7])
    if mask is None:
        return image
    return image, tf.cast(mask[..., 0], tf.int32)


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
      max_rotation: random rotation of up to this many degrees (0: none; see :func:`augment`).
    """

    def __init__(self, paths, labels, task, height, width, batch, seed, steps_per_epoch,
                 cache_bytes=DEFAULT_CACHE_BYTES, checker=None, num_classes=IGNORE_LABEL, parallel_calls=AUTOTUNE,
                 max_rotation=0.0):
        self.task, self.height, self.width, self.max_rotation = task, height, width, float(max_rotation)
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
        for index, image, mask in _checked(build, window, self.paths, self._excluded, self._reasons, self.checker):
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
            begin, size = random_box(tf.shape(image), seeds[0], height, width)
            crop = tf.slice(image, begin, size)
            label = tf.gather(self.kept.labels, index) if mask is None else tf.slice(mask, begin, size)
        else:
            crop, begin, size = decode_random_box(tf.io.read_file(tf.gather(self._paths, index)), seeds[0],
                                                  height, width)
            label = tf.gather(self._labels, index)
            if self.task == "segmentation":
                label = tf.slice(self.checker.decode_mask(label, self.num_classes), begin, size)
        if self.task != "segmentation":
            return augment(crop, seeds, height, width, max_rotation=self.max_rotation), label
        return augment(crop, seeds, height, width, mask=label, max_rotation=self.max_rotation)

    def _elements(self, epoch, excluded):
        """``(index, seed)`` of every element of ``epoch``, the files of ``excluded`` left out.

        The seeds are drawn before the bad files are left out, so leaving one
        out does not change the augmentation of the others.
        """
        count = self.kept.count if self.kept is not None else self.count
        order = tf.data.Dataset.range(count).shuffle(count, seed=self.seed * 1009 + epoch).repeat()
        seeds = tf.data.Dataset.random(seed=self.seed * 7919 + epoch).batch(2)
        elements = tf.data.Dataset.zip((order, seeds))
        if self.kept is None:
            elements = elements.filter(lambda index, seed: tf.logical_not(excluded[index]))
        return elements

    def dataset(self, epoch, skip_batches=0, excluded=None):
        """The tf.data batches of ``epoch`` (0-based) after the first ``skip_batches``, without error handling.

        The shuffled list repeats, so an epoch whose bad files were left out
        still has ``steps_per_epoch`` full batches.
        """
        excluded = tf.constant(self._excluded) if excluded is None else excluded
        elements = self._elements(epoch, excluded).skip(skip_batches * self.batch)
        data = elements.map(self._element, num_parallel_calls=self.parallel_calls, deterministic=True)
        data = data.take((self.steps_per_epoch - skip_batches) * self.batch)
        return data.batch(self.batch, drop_remainder=True).prefetch(AUTOTUNE)

    def epoch(self, epoch, skip_batches=0):
        """The batches of ``epoch`` (0-based) after the first ``skip_batches`` (an iterator of (images, labels)).

        A batch that fails to decode is replaced: its bad files are recorded
        in the checker (and left out of later epochs, which record them
        again), and the stream goes on without them.
        """
        for index, reason in self._reasons.items():
            self.checker.record(self.paths[index], reason)

        def build(excluded, done):
            return self.dataset(epoch, skip_batches + done, excluded)

        def window(excluded, done):
            start = (skip_batches + done) * self.batch
            elements = self._elements(epoch, tf.constant(excluded)).skip(start).take(self.batch)
            return [int(index) for index, _ in elements]

        yield from _checked(build, window, self.paths, self._excluded, self._reasons, self.checker)


class CheckedBatches:
    """Batches of a file list in its order, re-iterable; bad files are found on the error path and left out.

    Args:
      build: ``excluded -> tf.data.Dataset`` of the batches of the files
        whose ``excluded`` (bool (files,)) entry is False, in list order.
      paths: the file list.
      batch: files per batch.
      checker: :class:`DecodeChecker` that records the bad files.
    """

    def __init__(self, build, paths, batch, checker):
        self._build, self.paths, self.batch, self.checker = build, list(paths), batch, checker
        self._excluded = np.zeros(len(self.paths), bool)
        self._reasons = {}
        self._built_without = 0  # bad files the current dataset leaves out
        self.data = build(tf.constant(self._excluded))

    def __iter__(self):
        def build(excluded, done):
            if int(np.sum(self._excluded)) != self._built_without:
                self._built_without = int(np.sum(self._excluded))
                self.data = self._build(excluded)
            return self.data.skip(done)  # a kept (cached) split still fills completely

        def window(excluded, done):
            return list(np.flatnonzero(~excluded)[done * self.batch:(done + 1) * self.batch])

        yield from _checked(build, window, self.paths, self._excluded, self._reasons, self.checker)


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


def eval_dataset(paths, labels, task, height, width, batch, cache_bytes=DEFAULT_CACHE_BYTES, checker=None,
                 num_classes=IGNORE_LABEL):
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
            return resize_centre_crop(image, height, width), label
        image = tf.image.resize(image, (height, width), antialias=True)
        mask = tf.image.resize(checker.decode_mask(label, num_classes), (height, width), method="nearest")
        return image, tf.cast(mask[..., 0], tf.int32)

    def build(excluded):
        data = _file_list(paths, excluded, labels).map(load, num_parallel_calls=AUTOTUNE)
        if cached:
            data = data.cache()
        return data.batch(batch).prefetch(AUTOTUNE)

    return CheckedBatches(build, paths, batch, checker)


def predict_dataset(paths, height, width, task, batch, checker):
    """Images to predict, resized like evaluation: ``(images, original (h, w), paths)`` batches.

    Files that do not decode are left out and recorded by ``checker``.

    Returns:
      :class:`CheckedBatches` of float32 (b, height, width, 3), int32 (b, 2), string (b,).
    """

    def load(path):
        image = decode_whole(tf.io.read_file(path))
        if task == "segmentation":
            resized = tf.image.resize(image, (height, width), antialias=True)
        else:
            resized = resize_centre_crop(image, height, width)
        return resized, tf.shape(image)[:2], path

    def build(excluded):
        return _file_list(paths, excluded).map(load, num_parallel_calls=AUTOTUNE).batch(batch).prefetch(AUTOTUNE)

    return CheckedBatches(build, paths, batch, checker)
