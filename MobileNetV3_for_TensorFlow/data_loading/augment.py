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
"""What happens to one decoded image: the training box, resize, flip, rotation and colour; evaluation's centre crop.

One geometry for training and evaluation, both from the decoded original:
training takes an Inception-style random box of the original image (area
8%-100%, aspect 3/4-4/3; the evaluation centre box when 10 draws fail),
resizes it to the input size and flips it left-right at random (optionally
then rotates it by a small random angle), then distorts its colours;
evaluation and predict resize the shorter side so that the centre crop keeps
87.5% and crop the centre.

One resampling filter for every image (:func:`resize`): bilinear with
antialiasing, so a box shrunk 10x for training is filtered as evaluation's
resize is (see README, "One resampling filter", for the choice and its cost).
Masks are resized nearest-neighbour, the only filter that keeps class indices.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from data_loading.folders import IGNORE_LABEL

# Evaluation resizes so that the centre crop keeps 87.5% of the image (the
# usual ImageNet protocol); a training box that cannot be drawn falls back to that centre box.
CENTRE_FRACTION = 0.875
# Inception's random box (Szegedy et al. 2015; keras-cv's RandomCropAndResize defaults alike).
CROP_AREA = (0.08, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10
# The colour distortions at --color_jitter=1. "jitter": this project's, for small datasets (brightness
# +-0.2, contrast and saturation x[0.8, 1.2], hue +-0.02). "inception": TF-slim inception_preprocessing's
# distort_color in its fast mode (its default): brightness +-32/255 and saturation x[0.5, 1.5].
COLOUR_RANGES = {"jitter": {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.02},
                 "inception": {"brightness": 32 / 255, "saturation": 0.5}}
# TF-slim draws one of 4 orderings; in fast mode ordering 0 is brightness then saturation, 1-3 the reverse.
INCEPTION_ORDERINGS = 4


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The training augmentation after the random box (main.py's flags of the same names).

    Attributes:
      max_rotation: rotate by a random angle of up to this many degrees (0: none).
      color_distortion: "jitter" or "inception" (:data:`COLOUR_RANGES`).
      color_jitter: multiplies the colour ranges, in [0, 2] (0: no colour distortion).
    """

    max_rotation: float = 0.0
    color_distortion: str = "jitter"
    color_jitter: float = 1.0


def resize(image: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """``image`` (h, w, c) resized to float32 (height, width, c) with the one filter of every image:
    bilinear, antialiased (when shrinking, ``tf.image.resize``'s triangle filter widens with the scale
    factor, as PIL's does; when enlarging it is plain bilinear)."""
    return tf.image.resize(image, (height, width), method="bilinear", antialias=True)


def resize_mask(mask: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """A mask (h, w, 1) of class indices resized nearest-neighbour to (height, width, 1), its dtype kept."""
    return tf.image.resize(mask, (height, width), method="nearest")


def centre_box(shape: tf.Tensor, height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``(begin, size)`` int32 (3,) of the evaluation's centre crop in an image of ``shape`` (h, w, c).

    The box :func:`resize_centre_crop` keeps, in the original's pixels.
    """
    original = tf.cast(shape[:2], tf.float32)
    scale = tf.maximum(height / original[0], width / original[1]) / CENTRE_FRACTION
    size = tf.cast(tf.round(tf.constant([height, width], tf.float32) / scale), tf.int32)
    size = tf.clip_by_value(size, 1, tf.cast(shape[:2], tf.int32))
    begin = (tf.cast(shape[:2], tf.int32) - size) // 2
    return tf.concat([begin, [0]], 0), tf.concat([size, [-1]], 0)


def random_box(shape: tf.Tensor, seed: tf.Tensor, height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
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


def resize_centre_crop(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Resize keeping the aspect ratio so the crop is 87.5% of the image, then crop the centre: float32
    (height, width, 3)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(height / shape[0], width / shape[1]) / CENTRE_FRACTION
    size = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = resize(image, size[0], size[1])
    return tf.image.resize_with_crop_or_pad(image, height, width)


def _rotate(image, angle, interpolation, fill_mode, fill_value):
    """``image`` (h, w, c) float32 rotated by ``angle`` (radians) about its centre, same size.

    Output pixel (x, y) samples the input at the rotation of (x, y) about
    ((w - 1) / 2, (h - 1) / 2); ``fill_mode``/``fill_value`` say what lies outside.
    """
    height, width = image.shape[0], image.shape[1]
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_centre, y_centre = (width - 1) / 2, (height - 1) / 2
    transform = tf.stack([cos, -sin, x_centre - cos * x_centre + sin * y_centre,
                          sin, cos, y_centre - sin * x_centre - cos * y_centre, 0.0, 0.0])[None]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.constant([height, width]),
        fill_value=fill_value, interpolation=interpolation, fill_mode=fill_mode)[0]


def _inception_colour(image, seeds, brightness, saturation):
    """TF-slim's fast-mode ``distort_color`` of an image in [0, 1]: brightness and saturation, brightness
    first in one of :data:`INCEPTION_ORDERINGS` draws (its ordering 0), saturation first otherwise."""
    def bright(x):
        return tf.image.stateless_random_brightness(x, brightness, seeds[1])

    def saturate(x):
        return tf.image.stateless_random_saturation(x, 1 - saturation, 1 + saturation, seeds[2])

    ordering = tf.random.stateless_uniform([], seeds[0], 0, INCEPTION_ORDERINGS, tf.int32)
    return tf.cond(tf.equal(ordering, 0), lambda: saturate(bright(image)), lambda: bright(saturate(image)))


def colour(image: tf.Tensor, seeds: tf.Tensor, kind: str, strength: float) -> tf.Tensor:
    """``kind``'s colour distortion (:data:`COLOUR_RANGES`) of a float image in [0, 255], its ranges
    times ``strength`` (a Python float; 0 returns ``image``), clipped to [0, 255] as TF-slim clips.

    ``seeds``: int (4, 2) stateless seeds of this element's colour draws.
    """
    if not strength:
        return image
    ranges = {name: value * strength for name, value in COLOUR_RANGES[kind].items()}
    image = image / 255.0
    if kind == "inception":
        image = _inception_colour(image, seeds, ranges["brightness"], ranges["saturation"])
    else:
        image = tf.image.stateless_random_brightness(image, ranges["brightness"], seeds[0])
        image = tf.image.stateless_random_contrast(image, 1 - ranges["contrast"], 1 + ranges["contrast"], seeds[1])
        image = tf.image.stateless_random_saturation(image, 1 - ranges["saturation"], 1 + ranges["saturation"],
                                                     seeds[2])
        image = tf.image.stateless_random_hue(image, ranges["hue"], seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0) * 255.0


def _flip_drawn(seeds):
    """Whether this element is flipped left-right (probability 0.5), drawn from ``seeds[1]``."""
    return tf.random.stateless_uniform([], seeds[1]) < 0.5


def flip(image: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """``image`` (h, w, c) mirrored left-right when :func:`_flip_drawn`."""
    # tf.cond, not tf.where: tf.where computes the mirror image of every element and selects pixel by pixel.
    return tf.cond(_flip_drawn(seeds), lambda: tf.reverse(image, [1]), lambda: image)


def augment(crop: tf.Tensor, seeds: tf.Tensor, height: int, width: int, augmentation: Augmentation,
            mask: tf.Tensor | None = None) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
    """Resize a training box to the input size, flip it at random, rotate it (optional), distort its colours.

    Args:
      crop: uint8 (h, w, 3), the random box of the original (decoding.decode_random_box).
      seeds: int (8, 2) stateless seeds of this element (the first one drew the box).
      height, width: output size.
      augmentation: :class:`Augmentation`.
      mask: optional uint8 (h, w, 1), the same box of the mask; it gets the
        same resize, flip and rotation (nearest neighbour, 255 where the
        rotation leaves the box).
    Returns:
      float32 (height, width, 3) image in [0, 255], and the int32
      (height, width) mask when one was given.
    """
    image = flip(resize(crop, height, width), seeds)
    if mask is not None:
        mask = flip(tf.cast(resize_mask(mask, height, width), tf.float32), seeds)
    if augmentation.max_rotation:
        # After the resize, so the box is resampled by the one filter; the rotation resamples again at scale 1.
        angle = tf.random.stateless_uniform([], seeds[2], -1.0, 1.0) * augmentation.max_rotation * math.pi / 180
        image = _rotate(image, angle, "BILINEAR", "REFLECT", 0.0)
        if mask is not None:
            mask = _rotate(mask, angle, "NEAREST", "CONSTANT", float(IGNORE_LABEL))
    image = colour(image, seeds[3:7], augmentation.color_distortion, augmentation.color_jitter)
    if mask is None:
        return image
    return image, tf.cast(mask[..., 0], tf.int32)
