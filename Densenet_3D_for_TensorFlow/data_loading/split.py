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
"""The train/test split: case-list files, the reference's 168/42 split, a seeded split, validation cases.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from common.errors import UserError


def read_case_list(path: str) -> list[str]:
    """Case ids in a list file, one a line; blank lines, '#' comments, a byte-order mark and a missing final
    newline are fine."""
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line.strip() for line in handle.read().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def write_case_list(path: str, case_ids: Iterable[str]) -> None:
    """Write one case id a line, atomically: ranks sharing a --ckpt_path folder never read half a list."""
    partial = f"{path}.partial{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.writelines(f"{case_id}\n" for case_id in case_ids)
    os.replace(partial, path)


def validation_subset(train_ids: Sequence[str], spec: str, seed: int) -> list[str]:
    """The validation cases taken out of the training list ``train_ids``, in its order.

    ``spec`` is --val_cases: a number N (N cases chosen with ``seed``, the
    same on every run of the list) or a file of case ids, one a line, all in the
    training list. "0" gives none.

    Raises:
      UserError: the file is missing or names a case outside the training
        list, or no training case would remain.
    """
    if spec.isdigit():
        count = min(int(spec), len(train_ids))
        chosen = set(np.random.default_rng(seed).choice(sorted(train_ids), count, replace=False).tolist())
    elif os.path.isfile(spec):
        chosen = set(read_case_list(spec))
        unknown = sorted(chosen - set(train_ids))
        if unknown:
            raise UserError(f"--val_cases={spec}: {len(unknown)} case(s) not in the training list "
                            f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})")
    else:
        raise UserError(f"--val_cases={spec}: expected a number of cases or a file of case ids, one a line")
    if chosen and len(chosen) >= len(train_ids):
        raise UserError(f"--val_cases={spec}: {len(chosen)} validation case(s) of {len(train_ids)} training cases "
                        "leave none to train on")
    return [case_id for case_id in train_ids if case_id in chosen]


# The reference's case lists (168 train, 42 test HGG cases of BraTS 2017), shipped with the model.
REFERENCE_SPLIT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_split")


def _read_lists(folder, case_ids, data_root):
    """(train_ids, test_ids, where) from ``folder``'s train.txt/test.txt, or None when it has neither.

    Either list alone means the other is the remaining cases.
    """
    known = set(case_ids)
    lists = {name: os.path.join(folder, f"{name}.txt") for name in ("train", "test")}
    present = {name: path for name, path in lists.items() if os.path.isfile(path)}
    if not present:
        return None
    chosen = {}
    for name, path in present.items():
        ids = read_case_list(path)
        unknown = [case_id for case_id in ids if case_id not in known]
        if unknown:
            raise UserError(f"{path}: case(s) not found in {data_root}: {', '.join(unknown[:5])}"
                            + (" ..." if len(unknown) > 5 else ""))
        twice = sorted({case_id for case_id in ids if ids.count(case_id) > 1})
        if twice:
            raise UserError(f"{path}: case(s) listed twice: {', '.join(twice[:5])}")
        chosen[name] = ids
    both = sorted(set(chosen.get("train", ())) & set(chosen.get("test", ())))
    if both:
        raise UserError(f"{present['train']} and {present['test']} share case(s): {', '.join(both[:5])}"
                        + (" ..." if len(both) > 5 else ""))
    if "train" not in chosen:
        chosen["train"] = [c for c in case_ids if c not in set(chosen["test"])]
    if "test" not in chosen:
        chosen["test"] = [c for c in case_ids if c not in set(chosen["train"])]
    return chosen["train"], chosen["test"], " and ".join(present.values())


def reference_split() -> tuple[list[str], list[str]]:
    """The reference's (train_ids, test_ids): 168 and 42 BraTS 2017 HGG cases."""
    return tuple(read_case_list(os.path.join(REFERENCE_SPLIT_DIR, f"{name}.txt")) for name in ("train", "test"))


def _reference_note(train_ids, test_ids):
    """" (the reference split)" for lists that are the reference's, with "without N of its cases" for
    the reference minus missing cases; "" for other lists."""
    reference_train, reference_test = map(set, reference_split())
    if not (train_ids and test_ids and set(train_ids) <= reference_train and set(test_ids) <= reference_test):
        return ""
    missing = len(reference_train) + len(reference_test) - len(train_ids) - len(test_ids)
    return f" (the reference split without {missing} of its cases)" if missing else " (the reference split)"


def _seeded_split(case_ids, seed, train_fraction):
    """(train_ids, test_ids), each sorted: a ``seed``-ed permutation, ``train_fraction`` of the cases to
    training (at least one to each side when there are two or more cases)."""
    order = np.random.default_rng(seed).permutation(len(case_ids))
    num_train = len(case_ids) if len(case_ids) < 2 else min(len(case_ids) - 1,
                                                            max(1, round(train_fraction * len(case_ids))))
    return sorted(case_ids[i] for i in order[:num_train]), sorted(case_ids[i] for i in order[num_train:])


def split_cases(case_ids: Sequence[str], data_root: str, model_dir: str, seed: int,
                train_fraction: float = 0.8) -> tuple[list[str], list[str], str]:
    """Choose the training and test cases.

    In order of precedence: ``train.txt`` / ``test.txt`` in ``data_root``; the
    lists an earlier run wrote to ``model_dir``; the reference split
    (``reference_split/``) when ``data_root`` holds any of its 210 BraTS 2017
    cases, without those missing (named, with how many of 168/42 remain);
    else a seeded ``train_fraction`` split. The last two are written to
    ``model_dir/train.txt`` and ``model_dir/test.txt``.

    Returns:
      (train_ids, test_ids, where) with ``where`` saying which source was
      used, and "(the reference split)" when lists read from a folder are the
      reference's ("(the reference split without N of its cases)" for a part).
    Raises:
      UserError: a list names a case that is not in ``data_root`` or names a
        case twice, or the two lists share a case (it would be tested on
        after being trained on).
    """
    for folder in (data_root, model_dir):
        chosen = _read_lists(folder, case_ids, data_root)
        if chosen:
            train_ids, test_ids, where = chosen
            return train_ids, test_ids, where + _reference_note(train_ids, test_ids)
    reference_train, reference_test = reference_split()
    present = set(case_ids)
    missing = sorted(set(reference_train + reference_test) - present)
    if len(missing) == len(reference_train) + len(reference_test):  # not BraTS 2017's HGG folder
        train_ids, test_ids = _seeded_split(case_ids, seed, train_fraction)
        where = f"a seeded {train_fraction:.0%} split (--seed) written to {model_dir}/train.txt, test.txt"
    else:
        train_ids = [case_id for case_id in reference_train if case_id in present]
        test_ids = [case_id for case_id in reference_test if case_id in present]
        where = f"the reference split ({REFERENCE_SPLIT_DIR}/train.txt, test.txt"
        if missing:
            where += (f"; without the {len(missing)} of its cases missing here: {', '.join(missing)}; "
                      f"{len(train_ids)} of its {len(reference_train)} training and {len(test_ids)} of its "
                      f"{len(reference_test)} test cases remain")
        unused = len(present - set(reference_train + reference_test))
        where += f"; {unused} other case(s) of {data_root} unused)" if unused else ")"
    os.makedirs(model_dir, exist_ok=True)
    write_case_list(os.path.join(model_dir, "train.txt"), train_ids)
    write_case_list(os.path.join(model_dir, "test.txt"), test_ids)
    return train_ids, test_ids, where
