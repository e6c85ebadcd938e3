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
"""Test mode (every held-out case scored and saved) and the validation during training.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from common import checkpoints, npu_utils
from data_loading.nifti import load_case
from model import tf_models
from model.weights import BEST_FOLDER, BEST_RECORD, read_best
from runtime import inference, metrics

if TYPE_CHECKING:  # for the hints only
    from common.stack import keras
    from data_loading.cases import Case
    from data_loading.run_data import RunData

VALIDATION_EVENTS = os.path.join("tensorboard", "validation")  # in <model_dir>: the [val] figures for TensorBoard


class Validation:
    """Scores the --val_cases during training and keeps the weights of the best mean Dice.

    Call it with the step: it predicts every validation case (--inference),
    logs the mean Dice per region and over the regions (also as TensorBoard
    scalars ``val_dice_<region>`` and ``val_dice_mean`` in
    ``<model_dir>/tensorboard/validation``), and when that mean is
    the best so far saves the weights to ``<model_dir>/best`` (a checkpoint with
    its portable weights, one kept) and :data:`BEST_RECORD`. A continued run
    keeps its best (``runtime.training.restore_or_start`` removes an earlier run's on a fresh start).
    """

    def __init__(self, args: argparse.Namespace, model: keras.Model, cases: Sequence[Case],
                 image_paths: Mapping[str, Mapping[str, str] | None], log: Callable[[str], object] = print) -> None:
        self.args, self.model, self.cases, self.image_paths, self.log = args, model, cases, image_paths, log
        # One block shape and one predict function for every validation of the run (one trace), the block
        # shape fitted once to the cases; the block method's twin takes the current weights at each call.
        self.block = inference.run_block(args, cases, image_paths)
        self.twin = (tf_models.inference_twin(model, args.model_name, args.width_multiplier)
                     if args.inference == "block" else None)
        self.predict_fn = inference.make_predict_fn(model if self.twin is None else self.twin, "validate")
        self.folder = os.path.join(args.model_dir, BEST_FOLDER)
        best = read_best(args.model_dir)
        self.best_dice = best[1]["mean_dice"] if best else -1.0
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), self.folder, max_to_keep=1,
                                                  checkpoint_name="ckpt")
        self.writer = None  # opened at the first validation, so that a run that fails earlier leaves no folder

    def __call__(self, step: int) -> None:
        args, predict_fn = self.args, self.predict_fn
        if self.twin is not None:
            tf_models.copy_weights(self.model, self.twin)
        dice = []
        for case in self.cases:
            loaded = load_case(case, self.image_paths[case.case_id], normalisation=args.normalisation)
            labels = inference.predict_labels(predict_fn, loaded.image, args.inference, self.block,
                                              args.window_batch, loaded.background)
            dice.append([metrics.dice(select(labels), select(loaded.label)) for select in metrics.REGIONS.values()])
        per_region = dict(zip(metrics.REGIONS, np.mean(dice, axis=0).tolist()))
        mean = sum(per_region.values()) / len(per_region)
        self.writer = self.writer or tf.summary.create_file_writer(os.path.join(args.model_dir, VALIDATION_EVENTS))
        with self.writer.as_default():
            for name, value in [*per_region.items(), ("mean", mean)]:
                tf.summary.scalar(f"val_dice_{name}", value, step=step)
        self.writer.flush()
        line = (f"[val] step {step}: Dice " + " ".join(f"{r.upper()} {d:.4f}" for r, d in per_region.items()) +
                f", mean {mean:.4f} over {len(self.cases)} case(s)")
        if mean > self.best_dice:
            prefix = checkpoints.save_checkpoint(self.manager, self.model, step)
            record = dict(step=step, checkpoint=os.path.basename(prefix), mean_dice=mean,
                          **{f"{r}_dice": d for r, d in per_region.items()})
            partial = os.path.join(self.folder, BEST_RECORD + ".partial")
            with open(partial, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=1)
            os.replace(partial, os.path.join(self.folder, BEST_RECORD))
            self.best_dice = mean
            line += f"; the best so far: {prefix}"
        self.log(line)


def test(args: argparse.Namespace, model: keras.Model, data: RunData, trained_here: bool = False,
         log: Callable[[str], object] = print) -> list[dict[str, float | str]]:

    """Predict the test cases, save NIfTI/PNG, print the per-case table and METRIC lines, write metrics.csv."""
    inference.restore_for_inference(args, model, trained_here)
    rows = inference.run_inference(args, model, data.test_cases, data, with_truth=True, log=log)
    log(metrics.format_table(rows))
    csv_path = os.path.join(args.save_path, "metrics.csv")
    metrics.write_csv(csv_path, rows)
    log(f"[test] per-case metrics in {csv_path}")
    means = metrics.mean_metrics(rows)
    for name in metrics.metric_columns(rows) + metrics.count_columns():
        print(npu_utils.format_metric_line(name, means[name]))
    print(npu_utils.format_metric_line("test_cases", len(rows)), flush=True)
    return rows
