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
"""K-fold cross-validation splits that partition the slices.

NVIDIA's reference shifts its folds by ``int((1.0 - 0.8) * 30) = 5`` slices,
so its five validation sets of 6 overlap and four slices are never
validated; here the validation sets are disjoint and cover every slice.
"""

import numpy as np

from common.npu_utils import UserError

NUM_FOLDS = 5


def check_fold(fold, n_slices=None, source="--data_dir"):
    """The one check of ``--crossvalidation_idx``: in range, and (given ``n_slices``) enough slices.

    Args:
      fold: 0..NUM_FOLDS-1, or None (train on every slice).
      n_slices: slices or images of the data, when they are known.
      source: how to name the data in the message (``--data_dir=DIR``).
    Raises:
      UserError: one line naming the flag and the data.
    """
    if fold is None:
        return
    if not 0 <= fold < NUM_FOLDS:
        raise UserError(f"--crossvalidation_idx={fold} must be in 0..{NUM_FOLDS - 1}")
    if n_slices is not None and n_slices < NUM_FOLDS:
        raise UserError(f"--crossvalidation_idx={fold} needs at least {NUM_FOLDS} training slices/images "
                        f"({NUM_FOLDS} folds) but {source} holds {n_slices}; leave --crossvalidation_idx "
                        "out to train on all of them")


def fold_split(n_slices, fold, seed, source="--data_dir"):
    """Training and validation slice indices of one fold.

    Args:
      n_slices: slices in the training stack (30 for ISBI).
      fold: 0..NUM_FOLDS-1, or None to train on every slice.
      seed: seeds the permutation shared by all folds.
      source: how to name the data in an error.
    Returns:
      ``(train, validation)``: sorted lists of indices; validation is empty
      when ``fold`` is None. Over all folds the validation lists partition
      ``range(n_slices)`` with sizes differing by at most one.
    Raises:
      UserError: ``fold`` out of range or fewer slices than folds (:func:`check_fold`).
    """
    check_fold(fold, n_slices, source)
    if fold is None:
        return list(range(n_slices)), []
    order = np.random.default_rng(seed).permutation(n_slices)
    validation = np.array_split(order, NUM_FOLDS)[fold]
    train = np.setdiff1d(order, validation)
    return sorted(train.tolist()), sorted(validation.tolist())
