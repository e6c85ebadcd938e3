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

NUM_FOLDS = 5


def fold_split(n_slices, fold, seed, num_folds=NUM_FOLDS):
    """Training and validation slice indices of one fold.

    Args:
      n_slices: slices in the training stack (30 for ISBI).
      fold: 0..num_folds-1, or None to train on every slice.
      seed: seeds the permutation shared by all folds.
    Returns:
      ``(train, validation)``: sorted lists of indices; validation is empty
      when ``fold`` is None. Over all folds the validation lists partition
      ``range(n_slices)`` with sizes differing by at most one.
    Raises:
      ValueError: ``fold`` out of range or fewer slices than folds.
    """
    if fold is None:
        return list(range(n_slices)), []
    if not 0 <= fold < num_folds:
        raise ValueError(f"--crossvalidation_idx must be in 0..{num_folds - 1}, got {fold}")
    if n_slices < num_folds:
        raise ValueError(f"{num_folds}-fold cross-validation needs at least {num_folds} slices, got {n_slices}")
    order = np.random.default_rng(seed).permutation(n_slices)
    validation = np.array_split(order, num_folds)[fold]
    train = np.setdiff1d(order, validation)
    return sorted(train.tolist()), sorted(validation.tolist())
