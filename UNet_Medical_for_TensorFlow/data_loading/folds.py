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
"""K-fold cross-validation splits: a partition of the slices, or NVIDIA's overlapping folds.

``partition`` (the default): the five validation sets are disjoint and
cover every slice. ``nvidia``: NVIDIA's TF2 UNet_Medical folds exactly
(data_loading/data_loader.py, ``Dataset._get_val_train_indices``): it shifts
its folds by ``int((1.0 - 0.8) * 30) = 5`` slices (the float product is
5.999...), so its five validation sets of 6 overlap and slices 2, 10, 13
and 28 are never validated; fold 0 validates ``[0, 3, 12, 15, 21, 25]``, in
NVIDIA's order ``[25, 3, 0, 21, 15, 12]``, which its evaluation batches follow.
"""

from __future__ import annotations

import numpy as np

from common.errors import UserError

NUM_FOLDS = 5
FOLD_SCHEMES = ("partition", "nvidia")
NVIDIA_TRAIN_RATIO = 0.8  # NVIDIA's ``ratio``: the first int(0.8 * n) slices of the rotated order train


def check_fold(fold: int | None, n_slices: int | None = None, source: str = "--data_path") -> None:
    """The one check of ``--crossvalidation_idx``: in range, and (given ``n_slices``) enough slices.

    Args:
      fold: 0..NUM_FOLDS-1, or None (train on every slice).
      n_slices: slices or images of the data, when they are known.
      source: how to name the data in the message (``--data_path=DIR``).
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


def fold_split(n_slices: int, fold: int | None, seed: int, source: str = "--data_path",
               scheme: str = "partition") -> tuple[list[int], list[int]]:
    """Training and validation slice indices of one fold.

    Args:
      n_slices: slices in the training stack (30 for ISBI).
      fold: 0..NUM_FOLDS-1, or None to train on every slice.
      seed: seeds the permutation shared by all folds.
      source: how to name the data in an error.
      scheme: "partition": over all folds the validation lists partition
        ``range(n_slices)`` with sizes differing by at most one; "nvidia":
        NVIDIA's overlapping folds (see the module's docstring).
    Returns:
      ``(train, validation)``: lists of indices, sorted but for "nvidia"'s
      validation list, which is in NVIDIA's evaluation order (its
      ``eval_dice_score`` averages batches of that order, so the order
      decides the figure when ``--batch_size`` does not divide the fold);
      validation is empty when ``fold`` is None.
    Raises:
      UserError: ``fold`` out of range or fewer slices than folds (:func:`check_fold`).
      ValueError: an unknown ``scheme``.
    """
    check_fold(fold, n_slices, source)
    if fold is None:
        return list(range(n_slices)), []
    if scheme == "nvidia":
        return _nvidia_fold(n_slices, fold, seed)
    if scheme != "partition":
        raise ValueError(f"fold scheme {scheme!r}: expected one of {FOLD_SCHEMES}")
    order = np.random.default_rng(seed).permutation(n_slices)
    validation = np.array_split(order, NUM_FOLDS)[fold]
    train = np.setdiff1d(order, validation)
    return sorted(train.tolist()), sorted(validation.tolist())


def _nvidia_fold(n_slices, fold, seed):
    """NVIDIA's fold: its seeded NumPy shuffle, rotated right by ``fold`` shifts, cut at 80 %."""
    order = np.arange(n_slices)
    np.random.RandomState(seed).shuffle(order)  # = NVIDIA's np.random.seed(seed); np.random.shuffle(...)
    # Its float arithmetic, kept: int((1.0 - 0.8) * 30) is 5, not 6.
    shift = int((1.0 - NVIDIA_TRAIN_RATIO) * n_slices)
    order = np.roll(order, fold * shift)  # = collections.deque.rotate
    cut = int(NVIDIA_TRAIN_RATIO * n_slices)
    return sorted(order[:cut].tolist()), order[cut:].tolist()
