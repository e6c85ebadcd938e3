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
"""Whole-volume prediction: the fast block method and the reference's 38^3 windows.

The network has no pooling or striding: an output voxel depends on the input
within 13 voxels of it (the 27-voxel receptive field). One pass over a large
block therefore gives, for every voxel at least 13 voxels inside the block,
the same logits that a 38^3 window centred there would give, while computing
far fewer voxels than 3,564 windows that each keep only 12^3 of 38^3. The
block method runs the 'valid'-padding twin of the network
(:func:`model.tf_models.inference_twin`), which skips the margin voxels that the
final crop would throw away, and only over the head's bounding box: outside
the skull-stripped head every modality is 0 and the label is background by
definition (:func:`predict_labels`).

Arrays are (X, Y, Z, 4) images and (X, Y, Z, 5) logits; labels are uint8 in
the BraTS values {0, 1, 2, 4}.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
import tensorflow as tf
from PIL import Image

from common import npu_utils
from data_loading.cases import to_file_labels
from data_loading.nifti import NETWORK_AXCODES, load_case, to_file_order
from data_loading.preprocessing import head_mask, pad_image
from model import tf_models
from model.specs import CROP_MARGIN
from model.weights import load_weights, read_best
from runtime import flags, metrics

if TYPE_CHECKING:  # for the hints only
    from common.stack import keras
    from data_loading.cases import Case
    from data_loading.run_data import RunData

# Class index -> BraTS label. Class 3 is unused in BraTS 2017, so it never wins the argmax.
BRATS_CLASSES = (0, 1, 2, 4)


def make_predict_fn(model: keras.Model, name: str = "predict") -> Callable[[np.ndarray], np.ndarray]:
    """A compiled ``predict(image (B, X, Y, Z, 4)) -> label logits (B, X-26, Y-26, Z-26, 5)``.

    Each input shape is traced (and on an NPU compiled) once, counted in
    ``npu_utils.TRACES[name]``: :func:`predict_blocks` and :func:`predict_windows`
    feed it one shape whatever the volume's size.
    """
    def predict(image):
        return model(image, training=False)["labels"]

    predict = npu_utils.step_function(predict, name)
    return lambda image: predict(tf.convert_to_tensor(image, tf.float32)).numpy()


def logits_to_labels(logits: np.ndarray) -> np.ndarray:
    """(..., 5) logits -> uint8 BraTS labels in {0, 1, 2, 4} (argmax over classes 0, 1, 2, 4)."""
    best = np.argmax(logits[..., list(BRATS_CLASSES)], axis=-1)
    return np.asarray(BRATS_CLASSES, np.uint8)[best]


def head_box(inside: np.ndarray) -> tuple[slice, ...]:
    """The smallest box (a tuple of 3 slices) holding every True voxel of the (X, Y, Z) mask ``inside``."""
    return tuple(slice(int(indices.min()), int(indices.max()) + 1) for indices in np.nonzero(inside))


def _background(image, background):
    """The (C,) background values of an (X, Y, Z, C) image: ``background``, or zeros when None."""
    return np.zeros(image.shape[-1], np.float32) if background is None else np.asarray(background, np.float32)


def predict_labels(predict_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, method: str,
                   block: int | Sequence[int] | None = None, window_batch: int | None = None,
                   background: np.ndarray | None = None) -> np.ndarray:
    """BraTS labels of a whole case; outside the head (all modalities at their background) they are 0.

    Training never centres a patch outside the head, so that region is
    background by definition (the reference meant to skip its all-zero windows).

    Args:
      predict_fn: see :func:`make_predict_fn`; for 'block' preferably of the
        :func:`model.tf_models.inference_twin` (same logits, less work).
      image: (X, Y, Z, 4) float32, normalised.
      method: 'block' (every head voxel, run over the head's bounding box only)
        or 'window' (the reference's 38^3 windows on its 3,564-window grid:
        every voxel at least 13 from the border; the border stays 0).
      block: the kept (X, Y, Z) of a block of 'block', or an int for a cube (see :func:`predict_blocks`;
        --block_size).
      window_batch: the windows per call of 'window' (see :func:`predict_windows`; --window_batch).
      background: (4,) each channel's value outside the head (``LoadedCase.background``); None: zeros.
    Returns:
      (X, Y, Z) uint8 labels in {0, 1, 2, 4}.
    Raises:
      ValueError: an unknown method, or the method's own size (block, window_batch) missing.
    """
    if method not in ("block", "window") or (block if method == "block" else window_batch) is None:
        raise ValueError(f"predict_labels: method {method!r} with block={block}, window_batch={window_batch}: "
                         "'block' needs block, 'window' needs window_batch")
    background = _background(image, background)
    inside = head_mask(image, background)
    labels = np.zeros(inside.shape, np.uint8)
    if not inside.any():
        return labels
    if method == "block":
        # Beyond the box the image is at its background values, as is the padding predict_blocks adds: the
        # same input.
        box = head_box(inside)
        labels[box] = logits_to_labels(predict_blocks(predict_fn, image[box], block, background))
    else:
        logits, _ = predict_windows(predict_fn, image, batch_size=window_batch, background=background)
        labels = logits_to_labels(logits)
    labels[~inside] = 0
    return labels


# "auto" blocks read at most this many voxels (kept voxels and 13-voxel margins): those of the former
# default, a 102^3 cube (128^3 read), which measured a peak resident memory of 8.8 GB (dense24, float32, CPU).
AUTO_BLOCK_VOXELS = 128 ** 3
# "auto" splits each axis of the largest head box into at most this many blocks (16 x 102 = 1,632 voxels).
AUTO_MAX_SPLITS = 16


def head_box_size(image: np.ndarray, background: np.ndarray | None = None) -> tuple[int, ...] | None:
    """(X, Y, Z) edges of the head's bounding box (:func:`head_box`) of an (X, Y, Z, 4) image; None without a
    head voxel."""
    inside = head_mask(image, _background(image, background))
    return tuple(box.stop - box.start for box in head_box(inside)) if inside.any() else None


def fit_block(box_sizes: Iterable[Sequence[int] | None], max_voxels: int = AUTO_BLOCK_VOXELS) -> tuple[int, ...]:
    """The one block shape (--block_size=auto) that labels head boxes of these sizes with the least work.

    A block's time grows with the product of its kept edges plus 13 (measured from 94^3 to 128^3 read, the
    README's sweep), so fewer, larger blocks cost less; ``max_voxels`` bounds what a block reads (memory).
    The candidates split each axis of the largest box into n = 1 .. 16 equal blocks; the one with the least
    summed work over the boxes wins, so one box gets the split of its own box.

    Args:
      box_sizes: (X, Y, Z) head-box edges of the run's cases (None for a case without head voxels: left out).
      max_voxels: the most input voxels of a block, (X + 26) (Y + 26) (Z + 26).
    Returns:
      The kept (X, Y, Z) of a block; (1, 1, 1) when no case has a head voxel (no block is run).
    Raises:
      ValueError: no block within ``max_voxels`` covers the largest box in 16 splits per axis.
    """
    sizes = [size for size in box_sizes if size is not None]
    if not sizes:
        return (1, 1, 1)
    largest = np.max(sizes, axis=0).tolist()
    best = None
    for counts in itertools.product(range(1, AUTO_MAX_SPLITS + 1), repeat=3):
        block = tuple(math.ceil(edge / n) for edge, n in zip(largest, counts))
        if math.prod(edge + 2 * CROP_MARGIN for edge in block) > max_voxels:
            continue
        work = sum(math.prod(math.ceil(edge / kept) * (kept + CROP_MARGIN) for edge, kept in zip(size, block))
                   for size in sizes)
        if best is None or work < best[0]:
            best = (work, block)
    if best is None:
        raise ValueError(f"no block of at most {max_voxels} input voxels covers a head box of {largest} in "
                         f"{AUTO_MAX_SPLITS} blocks per axis: give --block_size")
    return best[1]


def run_block(args: argparse.Namespace, cases: Sequence[Case],
              image_paths: Mapping[str, Mapping[str, str] | None]) -> tuple[int, ...] | None:
    """The block shape of a run's block inference, one for all its cases: --block_size, or for 'auto'
    :func:`fit_block` of the head boxes of ``cases`` (each read as the run reads it, ``image_paths`` as for
    ``load_case``, keyed by case id); None with --inference=window."""
    if args.inference != "block":
        return None
    if args.block_size != "auto":
        return args.block_size
    sizes = []
    for case in cases:
        loaded = load_case(case, image_paths[case.case_id], with_label=False, normalisation=args.normalisation)
        sizes.append(head_box_size(loaded.image, loaded.background))
    return fit_block(sizes)


def block_shape(block: int | Sequence[int]) -> tuple[int, ...]:
    """The kept (X, Y, Z) of a block: ``block`` itself, or (block, block, block) for an int (a cube)."""
    return (block,) * 3 if isinstance(block, int) else tuple(block)


def block_input_shape(block: int | Sequence[int]) -> tuple[int, ...]:
    """The one input shape (1, X + 26, Y + 26, Z + 26, 4) that :func:`predict_blocks` feeds ``predict_fn``."""
    return (1,) + tuple(size + 2 * CROP_MARGIN for size in block_shape(block)) + (4,)


def predict_blocks(predict_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, block: int | Sequence[int],
                   background: np.ndarray | None = None) -> np.ndarray:
    """Logits for every voxel of ``image`` by fully convolutional blocks of one fixed shape.

    Every block keeps ``block`` (X, Y, Z) voxels and reads them with a
    13-voxel margin, so ``predict_fn`` always sees :func:`block_input_shape`:
    one trace (one NPU compilation) serves every block of every volume. The
    volume is padded with each channel's background by 13 voxels plus what
    fills its last block on each axis; only each block's centre is kept, so
    every voxel, the border included, gets exactly one prediction, and the
    padding's logits are cut off.

    Args:
      predict_fn: see :func:`make_predict_fn`.
      image: (X, Y, Z, 4) float32.
      block: kept voxels per block, (X, Y, Z) or an int for a cube (memory grows with their product).
      background: (4,) each channel's value outside the head; None: zeros.
    Returns:
      (X, Y, Z, 5) float32 logits.
    """
    block = block_shape(block)
    shape = image.shape[:3]
    counts = [math.ceil(size / edge) for size, edge in zip(shape, block)]
    pad = [(CROP_MARGIN, CROP_MARGIN + n * edge - size) for n, edge, size in zip(counts, block, shape)]
    padded = pad_image(image, pad, _background(image, background))
    logits = np.zeros([n * edge for n, edge in zip(counts, block)] + [5], np.float32)
    for index in itertools.product(*[range(n) for n in counts]):
        start = [i * edge for i, edge in zip(index, block)]
        window = tuple(slice(s, s + edge + 2 * CROP_MARGIN) for s, edge in zip(start, block))
        kept = tuple(slice(s, s + edge) for s, edge in zip(start, block))
        logits[kept] = predict_fn(padded[window][None])[0]
    return logits[: shape[0], : shape[1], : shape[2]]


def axis_corners(size: int, window: int = 38, stride: int = 12) -> list[int]:
    """The reference's window corners on one axis: ``min(stride * i, size - window)`` for
    i = 0 .. ceil((size - window) / stride); the last is clamped, so its window overlaps the one before.

    240 voxels: 0, 12, ..., 192, 202 (18 corners); 155: 0, 12, ..., 108, 117 (11). None when size < window.
    """
    if size < window:
        return []
    return [min(stride * i, size - window) for i in range(math.ceil((size - window) / stride) + 1)]


def window_corners(shape: Sequence[int], window: int = 38, stride: int = 12) -> np.ndarray:
    """All corners of the reference's grid: 18 x 18 x 11 = 3,564 on 240x240x155, as (N, 3) int64."""
    axes = [axis_corners(size, window, stride) for size in shape]
    return np.array(list(itertools.product(*axes)), np.int64).reshape(-1, 3)


def nonzero_window_corners(image: np.ndarray, window: int = 38, stride: int = 12,
                           background: np.ndarray | None = None) -> np.ndarray:
    """The corners of the grid's windows with a head voxel (some channel off its ``background``, None: 0; a
    non-zero voxel on disk): the ones the reference meant to run."""
    corners = window_corners(image.shape[:3], window, stride)
    inside = head_mask(image, _background(image, background))
    keep = [inside[x:x + window, y:y + window, z:z + window].any() for x, y, z in corners]
    return corners[np.array(keep, bool)] if len(corners) else corners


def predict_windows(predict_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, *, batch_size: int,
                    window: int = 38, corners: np.ndarray | None = None,
                    background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reference method: 38^3 windows on the reference's grid, each adding its logits over its 12^3 centre.

    The grid (:func:`window_corners`) is the reference's, clamped last window
    included, so the windows' centres cover every voxel at least 13 from the
    border; where the last two windows of an axis overlap their logits add,
    as in the reference. Voxels within 13 of the border get no window.
    Window skipping differs from the reference in one way: the reference
    meant to skip windows whose input is all 0 but, by an operator-precedence
    slip, skips the windows with no zero voxel; this skips the windows
    without a head voxel (their centre is outside the head, background by definition)
    and runs every other one, so its logits equal the reference's wherever
    the reference runs a window.

    Args:
      predict_fn: see :func:`make_predict_fn`.
      image: (X, Y, Z, 4) float32.
      window: input window edge (the centre is window - 26 = the stride).
      batch_size: windows per network call; the last call is filled up with
        all-zero windows (whose logits are dropped), so ``predict_fn`` always
        sees (batch_size, window, window, window, 4).
      corners: optional subset of :func:`nonzero_window_corners` (for timing).
      background: (4,) the channels' values outside the head, for :func:`nonzero_window_corners`.
    Returns:
      ((X, Y, Z, 5) summed logits, (X, Y, Z) uint8 count of the windows that covered each voxel).
    """
    centre = window - 2 * CROP_MARGIN
    corners = nonzero_window_corners(image, window, centre, background) if corners is None else corners
    logits = np.zeros(image.shape[:3] + (5,), np.float32)
    counts = np.zeros(image.shape[:3], np.uint8)
    for first in range(0, len(corners), batch_size):
        chunk = corners[first:first + batch_size]
        batch = np.zeros((batch_size, window, window, window, image.shape[-1]), np.float32)
        for slot, (x, y, z) in enumerate(chunk):
            batch[slot] = image[x:x + window, y:y + window, z:z + window]
        outputs = predict_fn(batch)
        for (x, y, z), output in zip(chunk, outputs):
            kept = (slice(x + CROP_MARGIN, x + CROP_MARGIN + centre), slice(y + CROP_MARGIN, y + CROP_MARGIN + centre),
                    slice(z + CROP_MARGIN, z + CROP_MARGIN + centre))
            logits[kept] += output
            counts[kept] += 1
    return logits, counts


def save_prediction(path: str, labels: np.ndarray, affine: np.ndarray, header: nib.Nifti1Header) -> None:
    """Write uint8 BraTS labels as NIfTI with the case's own affine and header (no intensity scaling)."""
    header = header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    nib.save(nib.Nifti1Image(labels.astype(np.uint8), affine, header), path)


# Overlay colours of the BraTS labels: necrosis red, oedema green, enhancing yellow.
LABEL_COLOURS = {1: (230, 40, 40), 2: (40, 200, 60), 4: (250, 220, 30)}


def _to_grey(flair, background):
    brain = flair[flair != background]
    low, high = (np.percentile(brain, [1, 99]) if brain.size else (0.0, 1.0))
    scaled = np.clip((flair - low) / max(high - low, 1e-6), 0, 1) * 255
    scaled[flair == 0] = 0  # outside the head stays black
    return np.repeat(scaled[..., None], 3, axis=-1).astype(np.float32)


def _overlay(grey, label, alpha=0.45):
    out = grey.copy()
    for value, colour in LABEL_COLOURS.items():
        mask = label == value
        out[mask] = (1 - alpha) * out[mask] + alpha * np.array(colour, np.float32)
    return out


def save_png(path: str, flair: np.ndarray, prediction: np.ndarray, truth: np.ndarray | None = None,
             background: float = 0.0) -> None:
    """A PNG with rows axial, coronal, sagittal; columns FLAIR, prediction overlay, truth overlay.

    Slices pass through the centre of the true tumour (else the predicted one, else the volume). ``flair``,
    ``prediction`` and ``truth`` are (X, Y, Z); ``background`` is FLAIR's value outside the head (grey scale
    from the head's 1st to 99th percentile).
    """
    tumour = np.argwhere((truth if truth is not None and truth.any() else prediction) > 0)
    centre = tumour.mean(axis=0).astype(int) if len(tumour) else np.array(flair.shape) // 2
    grey = _to_grey(flair, background)
    rows = []
    for axis in (2, 1, 0):  # axial (fixed z), coronal (fixed y), sagittal (fixed x)
        take = lambda volume: np.rot90(np.take(volume, centre[axis], axis=axis))  # noqa: E731
        panels = [take(grey), _overlay(take(grey), take(prediction))]
        if truth is not None:
            panels.append(_overlay(take(grey), take(truth)))
        rows.append(panels)
    height = max(p.shape[0] for row in rows for p in row)
    width = max(p.shape[1] for row in rows for p in row)
    canvas = np.zeros((height * len(rows), width * len(rows[0]), 3), np.float32)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            canvas[r * height:r * height + panel.shape[0], c * width:c * width + panel.shape[1]] = panel
    Image.fromarray(canvas.astype(np.uint8)).save(path)


def restore_for_inference(args: argparse.Namespace, model: keras.Model, trained_here: bool) -> None:
    """Put the weights --test_weights asks for into ``model`` and say which they are: the run's best
    validation weights when it has them (not when -lp names a checkpoint), else its last checkpoint."""
    explicit = args.load_path and os.path.isfile(args.load_path + ".index")
    best = read_best(flags.weights_run_folder(args)) if args.test_weights == "best" and not explicit else None
    if best:
        load_weights(model, best[0], flag="--test_weights=best")
        print(f"[{args.mode}] weights: the best validation, {best[0]} (step {best[1]['step']}, mean Dice "
              f"{best[1]['mean_dice']:.4f}); --test_weights=last takes the last checkpoint")
    elif trained_here:
        print(f"[{args.mode}] weights: this training's last step")
    else:
        if args.load_path:
            log_path = load_weights(model, args.load_path)
        else:
            log_path = load_weights(model, args.model_dir, flag="--model_dir")
        print(f"[{args.mode}] weights: the last checkpoint, {log_path}")


def _stored_order(loaded):
    """", stored as RAS, read as LPS" for a case whose files are not in the network's voxel order, else ""."""
    stored = tuple(nib.aff2axcodes(loaded.affine))
    return "" if stored == NETWORK_AXCODES else f", stored as {''.join(stored)}, read as {''.join(NETWORK_AXCODES)}"


def run_inference(args: argparse.Namespace, model: keras.Model, cases: Sequence[Case], data: RunData,
                  with_truth: bool, log: Callable[[str], object]) -> list[dict[str, float | str]]:
    os.makedirs(args.save_path, exist_ok=True)
    if args.inference == "block":
        model = tf_models.inference_twin(model, args.model_name, args.width_multiplier)
    predict_fn = make_predict_fn(model, f"{args.inference}_predict")
    block = run_block(args, cases, data.image_paths)
    if args.inference == "block" and args.block_size == "auto":
        log(f"[{args.mode}] block inference: blocks of {'x'.join(map(str, block))} voxels kept, fitted to the "
            f"head boxes of the {len(cases)} case(s): one shape for the run")
    rows = []
    for case in cases:
        loaded = load_case(case, data.image_paths[case.case_id], with_label=with_truth,
                           normalisation=args.normalisation)
        started = time.time()
        labels = predict_labels(predict_fn, loaded.image, args.inference, block, args.window_batch,
                                loaded.background)
        seconds = time.time() - started
        save_prediction(os.path.join(args.save_path, f"{case.case_id}.nii.gz"),
                        to_file_labels(to_file_order(labels, loaded.orientation), case), loaded.affine, loaded.header)
        if args.save_png:
            save_png(os.path.join(args.save_path, f"{case.case_id}.png"), loaded.image[..., 0], labels,
                     loaded.label, loaded.background[0])
        message = f"[{args.mode}] {case.case_id}: {args.inference} inference {seconds:.1f} s{_stored_order(loaded)}"
        if with_truth:
            brain = head_mask(loaded.image, loaded.background)
            row = dict(metrics.case_metrics(labels, loaded.label, loaded.spacing, brain, scores=args.metrics),
                       case=case.case_id)
            rows.append(row)
            message += f", Dice WT {row['wt_dice']:.4f} TC {row['tc_dice']:.4f} ET {row['et_dice']:.4f}"
        log(message)
    return rows


def predict(args: argparse.Namespace, model: keras.Model, data: RunData, log: Callable[[str], object] = print) -> None:

    """Label every case of --data_path and save NIfTI (and PNG) into -sp."""
    restore_for_inference(args, model, trained_here=False)
    run_inference(args, model, data.test_cases, data, with_truth=False, log=log)
    log(f"[predict] {len(data.test_cases)} predictions in {args.save_path}")
