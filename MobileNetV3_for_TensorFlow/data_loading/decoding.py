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
"""Reading image files: a decoded image or only its random training box, and the files that do not decode.

A JPEG's training box is decoded with ``tf.io.decode_and_crop_jpeg``, so
only the box is decoded, at full resolution; other formats are decoded whole
and cropped. Bad files are found on the error path only: when a batch fails
to decode, :func:`checked` decodes that batch's files one by one to name the
bad ones (with TensorFlow's decoder, which rejects a PNG with a bad CRC that
Pillow reads), records them in the run's :class:`DecodeChecker` and rebuilds
the stream without them from the same position. The training loop then stops
with one line naming the file, or with --skip_bad_images lists the skipped
files at the end of the epoch.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from common.errors import UserError
from data_loading.augment import random_box
from data_loading.folders import mask_values_problem, read_mask

if TYPE_CHECKING:  # for the hints only
    import numpy as np

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

    def __init__(self, skip_bad_images: bool = False) -> None:
        self.skip_bad_images = skip_bad_images
        self._bad = {}  # path -> reason, in the order they were found
        self._wrong_masks = {}  # mask path -> problem (never skipped)
        self._lock = threading.Lock()

    def record(self, path: str, reason: str) -> None:
        """Remember that ``path`` (str) does not decode, for ``reason`` (a sentence)."""
        with self._lock:
            self._bad.setdefault(path, reason)

    def decode_mask(self, path: tf.Tensor, num_classes: int) -> tf.Tensor:
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

    def raise_if_bad(self) -> None:
        """Raises UserError for a mask of wrong values, or naming the first bad file unless they are skipped."""
        if self._wrong_masks:
            raise UserError(next(iter(self._wrong_masks.values())))
        if self._bad and not self.skip_bad_images:
            path, reason = next(iter(self._bad.items()))
            more = f" (and {len(self._bad) - 1} more)" if len(self._bad) > 1 else ""
            raise UserError(f"image {path} cannot be decoded ({reason}){more}; fix or remove it, or pass "
                            "--skip_bad_images to skip unreadable images and list them")

    def take_skipped(self) -> list[tuple[str, str]]:
        """``[(path, reason)]`` skipped since the last call (and forgets them)."""
        with self._lock:
            skipped, self._bad = list(self._bad.items()), {}
        return skipped

    def end_pass(self, what: str) -> None:
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


def decode_problem(path: str) -> str | None:
    """Why the image file ``path`` (str) does not read or decode (TensorFlow's message), or None.

    Eager and whole-image: only called on the error path, for the files of a batch that failed.
    """
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return None
    except DECODE_ERRORS as error:
        # "{{function_node ...}} Invalid PNG data, size 3172 [Op:DecodeImage] name: " -> the middle.
        return re.sub(r"\{\{.*?\}\}|\[Op:.*", "", str(error).strip().splitlines()[0]).strip()


def checked(build: Callable[[tf.Tensor, int], tf.data.Dataset], window: Callable[[np.ndarray, int], Sequence[int]],
            paths: Sequence[str], excluded: np.ndarray, reasons: dict[int, str],
            checker: DecodeChecker) -> Iterator[Any]:
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


def decode_whole(contents: tf.Tensor) -> tf.Tensor:
    """uint8 (h, w, 3) RGB of an encoded JPEG, PNG, GIF or BMP (its first frame)."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def decode_random_box(contents: tf.Tensor, seed: tf.Tensor, height: int,
                      width: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
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
