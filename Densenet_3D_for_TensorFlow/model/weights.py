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
"""Trained weights: a checkpoint from a run folder or prefix, and the best validation weights' record.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from common import checkpoints
from common.errors import UserError

BEST_FOLDER = "best"  # <model_dir>/best: the best validation's weights, beside checkpoints/ (the last)
BEST_RECORD = "best.json"  # in BEST_FOLDER: its step, checkpoint name and Dice


def read_best(run_dir: str) -> tuple[str, dict[str, Any]] | None:
    """``(prefix, record)`` of the best validation weights of run folder ``run_dir``, or None without any.

    Raises:
      UserError: the record names a checkpoint whose files are gone.
    """
    folder = os.path.join(run_dir, BEST_FOLDER)
    path = os.path.join(folder, BEST_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    prefix = os.path.join(folder, record["checkpoint"])
    if not os.path.isfile(prefix + ".index"):
        raise UserError(f"{path} names {prefix}, whose .index file is missing; --test_weights=last takes the "
                        "last checkpoint")
    return prefix, record


def resolve_checkpoint(path: str) -> str | None:
    """A checkpoint prefix from a run folder (its newest), its checkpoints/ folder (likewise), or a prefix."""
    if os.path.exists(path + ".index"):
        return path
    folder = os.path.normpath(path)
    return checkpoints.latest_checkpoint(os.path.dirname(folder) if os.path.basename(folder) == "checkpoints"
                                         else folder)


def load_weights(model: tf.keras.Model, path: str, flag: str = "-lp") -> str:
    """Restore only the model's weights from a checkpoint (fine-tuning or test)."""
    prefix = resolve_checkpoint(path)
    if prefix is None:
        raise UserError(f"{flag} {path}: no checkpoint there (expected a run's model_dir, its checkpoints/ "
                        "folder or a checkpoint prefix such as .../ckpt-100)")
    error = checkpoints.restore_checkpoint(tf.train.Checkpoint(model=model), prefix, partial=True, model=model)
    if error:
        raise UserError(f"{flag} {prefix}: does not fit -mn {model.name} (--width_multiplier too?): {error}")
    return prefix
