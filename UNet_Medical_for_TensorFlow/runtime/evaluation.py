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
"""Evaluation of the validation fold: NVIDIA's figures and the native-resolution metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from data_loading import tiles
from runtime import inference, metrics

if TYPE_CHECKING:  # for the hints only
    import numpy as np

    from runtime.training import TrainState


def evaluate(state: TrainState, probability_fn: Callable[[np.ndarray], np.ndarray], step: int) -> dict[str, float]:

    """Metrics of the validation slices, printed as METRIC lines; returns them.

    ``eval_dice_score``, ``eval_ce_loss``, ``eval_dice_loss`` and
    ``eval_total_loss`` are NVIDIA's figures (:func:`runtime.metrics.nvidia_eval_losses`)
    at the network's output on the run's input path: exactly NVIDIA's with
    ``--input_mode=resize`` (slices and labels resized to the output size),
    the same formula on the stitched native-size probabilities with
    overlap tiles. ``dice``, ``dice_soft``, ``iou`` and ``pixel_error`` are at
    native resolution. Images of different sizes are scored one by one. With
    two classes, ``v_rand`` and ``v_info`` are the ISBI 2012 challenge's
    scores of the native-resolution cell probabilities, each with the threshold
    that gave it (:func:`runtime.metrics.isbi_challenge_scores`). The slices
    are taken in the fold's order (NVIDIA's under ``--fold_scheme=nvidia``),
    which groups NVIDIA's batches.
    """
    args, data = state.args, state.data
    images = [data.images[i] for i in state.validation_indices]
    labels = [data.labels[i] for i in state.validation_indices]
    if args.input_mode == "resize":
        at_output = inference.resized_probabilities(state, probability_fn, images)
        output_labels = [tiles.resize_labels(label, data.n_classes, state.out) for label in labels]
        native = inference.to_native_size(at_output, images)
    else:
        native = inference.predict_images(state, probability_fn, images)
        at_output, output_labels = native, labels
    figures = {**metrics.nvidia_eval_losses(at_output, output_labels, data.n_classes, args.batch_size),
               **metrics.segmentation_metrics(native, labels, data.n_classes)}
    if data.n_classes == 2:  # the challenge scores cell against membrane
        figures.update(metrics.isbi_challenge_scores([p[..., 1] for p in native], labels))
    metrics.report(state.log, figures, step)
    return figures
