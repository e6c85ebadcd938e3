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
"""Inference: the probability function, whole-image prediction on either input path, predict, the
inference benchmark; the file name of the exported model."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from PIL import Image

from common import npu_utils, stack
from common.errors import UserError
from data_loading import tiff, tiles
from runtime import metrics

if TYPE_CHECKING:  # for the hints only
    from common.stack import keras
    from data_loading.readers import SegmentationData
    from runtime.training import TrainState

# keras.models.load_model reads it without this repository's code: unet.keras (Keras 3) or unet.h5 (Keras 2.6).
EXPORT_FILE = "unet" + stack.MODEL_FILE_SUFFIX
OVERLAY_SLICES = 3  # PNG overlays written next to the predicted masks
PROBABILITY_FILE = "test-probabilities.tif"  # --save_probabilities of the ISBI test stack


def make_probability_fn(model: keras.Model, use_xla: bool, batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``batch (N, T, T, 1) -> softmax probabilities (N, O, O, C)`` as a NumPy array, N <= ``batch_size``.

    The step always sees ``(batch_size, T, T, 1)``: a smaller batch (the last
    tiles of an image, the last slices) is zero-padded and the padding's
    outputs dropped, so it is traced once (``npu_utils.TRACES["inference"]``)
    whatever the image sizes: an NPU compiles each new shape again.
    """
    probabilities = npu_utils.step_function(lambda batch: tf.nn.softmax(model(batch, training=False)), "inference",
                                            jit_compile=use_xla)

    def probability_fn(batch):
        batch = np.asarray(batch, np.float32)
        if not 0 < len(batch) <= batch_size:
            raise ValueError(f"expected 1 to {batch_size} tiles, got {len(batch)}")
        padding = np.zeros((batch_size - len(batch), *batch.shape[1:]), np.float32)
        return probabilities(tf.constant(np.concatenate([batch, padding]))).numpy()[:len(batch)]

    return probability_fn


def predict_images(state: TrainState, probability_fn: Callable[[np.ndarray], np.ndarray],
                   images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(H, W, C) probabilities of each uint8 (H, W) image at its native size, by ``--input_mode``.

    overlap_tile: tile by tile, stitched. resize (NVIDIA): the image resized
    to the output size and zero-padded, one pass, the probabilities resized back.
    """
    args, out = state.args, state.out
    if args.input_mode == "overlap_tile":
        return [tiles.predict_tiled(probability_fn, tiles.normalize(image.astype(np.float32)), args.tile_size, out,
                                    batch_size=args.batch_size) for image in images]
    return to_native_size(resized_probabilities(state, probability_fn, images), images)


def to_native_size(probabilities: Sequence[np.ndarray], images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each (out, out, C) map of NVIDIA's path resized (bilinear) back to its image's (H, W)."""
    return [tf.image.resize(p, image.shape).numpy() for p, image in zip(probabilities, images)]


def resized_probabilities(state: TrainState, probability_fn: Callable[[np.ndarray], np.ndarray],
                          images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """NVIDIA's path: (out, out, C) probabilities of each image resized to the output size and zero-padded."""
    args = state.args
    batch = [tiles.resize_and_pad(tiles.normalize(image.astype(np.float32)), state.out, args.tile_size)
             for image in images]
    return [p for first in range(0, len(batch), args.batch_size)
            for p in probability_fn(np.stack(batch[first:first + args.batch_size])[..., None])]


def predict(state: TrainState, probability_fn: Callable[[np.ndarray], np.ndarray]) -> None:
    """Masks of the test images in ``--model_dir/predictions``, with PNG overlays; says how many it read and wrote.

    ISBI: ``test-masks.tif``, (N, 512, 512) uint8, 255 = cell, 0 = membrane,
    like the labels. Own data: one PNG of class indices per test image.
    ``--save_probabilities`` adds the cell probabilities (:func:`write_probabilities`).
    """
    args, data = state.args, state.data
    if not data.test_images:
        raise UserError(f"--data_path={args.data_path}: no test images to predict "
                        "(test-volume.tif, or a test/ folder for own data)")
    folder = os.path.join(args.model_dir, "predictions")
    os.makedirs(folder, exist_ok=True)
    probabilities = predict_images(state, probability_fn, data.test_images)
    classes = [p.argmax(-1).astype(np.uint8) for p in probabilities]
    if data.source == "isbi":
        written = [os.path.join(folder, data.test_names[0])]
        tiff.write_stack(written[0], np.stack(classes) * 255)
    else:
        written = [os.path.join(folder, name) for name in data.test_names]
        for path, mask in zip(written, classes):
            Image.fromarray(mask).save(path)
    if args.save_probabilities:
        written += write_probabilities(folder, data, probabilities)
    for index, (image, mask) in enumerate(list(zip(data.test_images, classes))[:OVERLAY_SLICES]):
        overlay = np.repeat(image[..., None], 3, axis=-1)
        overlay[mask == 0] = (0.5 * overlay[mask == 0] + [127, 0, 0]).astype(np.uint8)  # class 0 in red
        written.append(os.path.join(folder, f"overlay_{index:03d}.png"))
        Image.fromarray(overlay).save(written[-1])
    maps = f" and {_count(len(classes), 'probability map')}" if args.save_probabilities else ""
    read = _count(len(data.test_images), "test slice" if data.source == "isbi" else "test image")
    print(f"[predict] read {read}, wrote {_count(len(classes), 'mask')}{maps}: {', '.join(written)}", flush=True)


def _count(number, noun):
    """``30 masks``, ``1 mask``: a count with its noun in the right number."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def write_probabilities(folder: str, data: SegmentationData, probabilities: Sequence[np.ndarray]) -> list[str]:
    """Each pixel's cell probability as 32-bit float TIFF in [0, 1]: the ISBI 2012 challenge's submission format.

    The challenge takes one float page per slice, 0 = membrane and 1 = cell
    interior (as the labels' 0 and 255). ISBI: ``test-probabilities.tif``,
    (N, H, W); own data: ``<name>-probabilities.tif`` per test image.

    Args:
      folder: the predictions folder.
      data: readers.SegmentationData with two classes.
      probabilities: list of (H, W, 2) softmax maps, one per test image.
    Returns:
      the paths written.
    """
    # Resizing and stitching average probabilities, which may overshoot [0, 1] by a rounding step.
    cell = [np.clip(p[..., 1], 0.0, 1.0).astype(np.float32) for p in probabilities]
    if data.source == "isbi":
        paths = [os.path.join(folder, PROBABILITY_FILE)]
        tiff.write_stack(paths[0], np.stack(cell))
        return paths
    paths = [os.path.join(folder, os.path.splitext(name)[0] + "-probabilities.tif") for name in data.test_names]
    for path, page in zip(paths, cell):
        tiff.write_stack(path, page[None])
    return paths


def benchmark_inference(state: TrainState, probability_fn: Callable[[np.ndarray], np.ndarray]) -> None:

    """Time ``--warmup_steps + --max_steps`` batches of random tiles through the network."""
    args = state.args
    rng = np.random.default_rng(args.seed)
    batch = rng.uniform(-1, 1, (args.batch_size, args.tile_size, args.tile_size, 1)).astype(np.float32)
    step_seconds = []
    for _ in range(args.warmup_steps + args.max_steps):
        start = time.perf_counter()
        probability_fn(batch)
        step_seconds.append(time.perf_counter() - start)
    metrics.report(state.log, metrics.benchmark_statistics(step_seconds, args.batch_size, args.warmup_steps), 0)
