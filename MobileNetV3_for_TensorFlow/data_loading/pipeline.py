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
"""tf.data pipelines: decode, cache, augment, batch, prefetch.

Images come out NHWC float32 RGB in [0, 255] (the model rescales them);
classification labels are int32 class indices, segmentation labels int32
(batch, height, width) masks with 255 = ignore. Training order and every
augmentation are a function of (seed, epoch): stateless random ops take
per-element seeds from ``tf.data.Dataset.random``, so a resumed run sees the
same batches as an uninterrupted one.
"""

import math
import os

import tensorflow as tf

from data_loading.folders import IGNORE_LABEL, read_mask

AUTOTUNE = tf.data.AUTOTUNE
# Evaluation resizes so that the centre crop keeps 87.5% of the image (the
# usual ImageNet protocol); training caches images at the same size.
CENTRE_FRACTION = 0.875
# Cache decoded images in memory up to this many bytes per process.
CACHE_LIMIT_BYTES = 2 * 1024 ** 3
# Augmentation strengths (chosen for small datasets; see README).
CROP_AREA = (0.25, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
MAX_ROTATION_DEGREES = 10.0
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.2, 0.2, 0.2, 0.02


def cache_size(height, width):
    """(height, width) at which training images are cached before cropping."""
    return math.ceil(height / CENTRE_FRACTION), math.ceil(width / CENTRE_FRACTION)


def fits_in_cache(count, height, width, channels=3):
    """True when ``count`` uint8 images of this size fit :data:`CACHE_LIMIT_BYTES`."""
    cached_h, cached_w = cache_size(height, width)
    return count * cached_h * cached_w * channels <= CACHE_LIMIT_BYTES


def decode_image(path):
    """Read a JPEG or PNG (grey, RGB or RGBA) as uint8 RGB (h, w, 3)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def decode_mask(path):
    """Read a mask PNG's class indices as uint8 (h, w, 1): palette indices or grey values.

    Through PIL (:func:`folders.read_mask`), because ``tf.io.decode_png``
    converts a palette PNG to grey levels ({0, 1, 2} became {0, 76, 149}).
    """
    mask = tf.numpy_function(lambda name: read_mask(os.fsdecode(name))[..., None], [path], tf.uint8,
                             stateful=False)
    mask.set_shape([None, None, 1])
    return mask


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


def _load_cached(task, height, width):
    """Decode and resize one training element to the cache size (uint8)."""
    cached = cache_size(height, width)

    def load(path, label):
        image = tf.cast(tf.image.resize(decode_image(path), cached, antialias=True) + 0.5, tf.uint8)
        if task == "segmentation":
            label = tf.cast(tf.image.resize(decode_mask(label), cached, method="nearest"), tf.uint8)
        return image, label

    return load


class TrainData:
    """The training split: decoded once (cached when it fits), re-augmented every epoch.

    Args:
      paths, labels: this process's share of the training split (labels are
        class indices, or mask files for segmentation).
      task: "classification" or "segmentation".
      height, width: network input size.
      batch: per-process batch size.
      seed: drives the order and the augmentations.
      steps_per_epoch: batches per epoch (the same on every worker).
    """

    def __init__(self, paths, labels, task, height, width, batch, seed, steps_per_epoch):
        self.task, self.height, self.width = task, height, width
        self.batch, self.seed, self.steps_per_epoch = batch, seed, steps_per_epoch
        self.count = len(paths)
        label_dtype = tf.string if task == "segmentation" else tf.int32
        base = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(labels, label_dtype)))
        base = base.map(_load_cached(task, height, width), num_parallel_calls=AUTOTUNE)
        self.cached = fits_in_cache(self.count, height, width)
        self.base = base.cache() if self.cached else base

    def epoch(self, epoch, skip_batches=0):
        """The batches of ``epoch`` (0-based) after the first ``skip_batches``."""
        order = self.base.shuffle(self.count, seed=self.seed * 1009 + epoch).repeat()
        seeds = tf.data.Dataset.random(seed=self.seed * 7919 + epoch).batch(2)
        elements = tf.data.Dataset.zip(order, seeds).take(self.steps_per_epoch * self.batch)
        elements = elements.skip(skip_batches * self.batch)
        height, width, task = self.height, self.width, self.task

        def transform(element, seed):
            image, label = element
            if task == "segmentation":
                return augment(image, seed, height, width, mask=label)
            return augment(image, seed, height, width), label

        options = tf.data.Options()
        options.deterministic = True
        return (elements.map(transform, num_parallel_calls=AUTOTUNE)
                .batch(self.batch, drop_remainder=True).prefetch(AUTOTUNE).with_options(options))


def eval_dataset(paths, labels, task, height, width, batch):
    """Evaluation batches: resize + centre crop (classification) or resize (segmentation), cached.

    Segmentation images and masks are resized to (height, width), masks
    nearest-neighbour; the last batch may be smaller.
    """
    label_dtype = tf.string if task == "segmentation" else tf.int32

    def load(path, label):
        if task == "segmentation":
            image = tf.image.resize(decode_image(path), (height, width), antialias=True)
            mask = tf.image.resize(decode_mask(label), (height, width), method="nearest")
            return image, tf.cast(mask[..., 0], tf.int32)
        return resize_centre_crop(decode_image(path), height, width), label

    data = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(labels, label_dtype)))
    data = data.map(load, num_parallel_calls=AUTOTUNE)
    if fits_in_cache(len(paths), height, width, channels=4 * 3):
        data = data.cache()
    return data.batch(batch).prefetch(AUTOTUNE)


def predict_dataset(paths, height, width, task, batch):
    """Images to predict, resized like evaluation, with their original (h, w)."""

    def load(path):
        image = decode_image(path)
        size = tf.shape(image)[:2]
        if task == "segmentation":
            return tf.image.resize(image, (height, width), antialias=True), size
        return resize_centre_crop(image, height, width), size

    data = tf.data.Dataset.from_tensor_slices(tf.constant(paths))
    return data.map(load, num_parallel_calls=AUTOTUNE).batch(batch).prefetch(AUTOTUNE)
