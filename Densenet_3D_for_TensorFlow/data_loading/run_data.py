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
"""The cases of a run: discovered, split, checked, and N4-corrected when -nc is on."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from common.errors import UserError
from common.npu_utils import RunContext
from data_loading import cases as case_folders
from data_loading import checks, n4_correction, split


@dataclasses.dataclass
class RunData:
    """The checked cases of a run and the files to read for each (N4-corrected or original)."""

    train_cases: list
    test_cases: list
    image_paths: dict  # case_id -> {modality: path} or None for the original files
    skipped_case_ids: list = dataclasses.field(default_factory=list)  # bad cases left out (--skip_bad_cases)
    val_cases: list = dataclasses.field(default_factory=list)  # --val_cases, taken out of the training list


def _validation_ids(args: argparse.Namespace, ctx: RunContext, train_ids: list, log: Callable[[str], object]) -> list:
    """The --val_cases ids a training takes out of ``train_ids`` (none for other modes and --benchmark).

    Raises:
      UserError: validation asked for under several ranks.
    """
    if args.mode not in ("train", "train_and_evaluate") or args.benchmark:
        return []
    val_ids = split.validation_subset(train_ids, args.val_cases, args.seed)
    if val_ids and ctx.ranks.rank_size > 1:
        raise UserError(f"--val_cases={args.val_cases}: validation runs on one rank only "
                        f"(RANK_SIZE={ctx.ranks.rank_size}); validate with --mode=evaluate instead")
    if val_ids:
        log(f"[data] {len(val_ids)} of them for validation (--val_cases={args.val_cases}): {', '.join(val_ids)}")
    return val_ids


def prepare_data(args: argparse.Namespace, ctx: RunContext, log: Callable[[str], object] = print) -> RunData:
    """Discover and check the cases, choose the split, and run N4 when ``-nc`` is on.

    In predict mode every case of ``--data_path`` is a test case and needs no label. Training takes the
    --val_cases out of the training list.
    """
    cases, schemes, skipped = case_folders.discover_cases(args.data_path, args.skip_bad_cases,
                                                          need_label=args.mode != "predict", log=log)
    log(f"[data] {args.data_path}: {schemes}")
    if args.mode == "predict":
        train_cases, test_cases = [], checks.check_cases(cases, args.skip_bad_cases, need_label=False,
                                                         workers=args.workers, log=log)
        skipped += [case.case_id for case in cases if case not in test_cases]
        val_cases = []
    else:
        by_id = {case.case_id: case for case in cases}
        train_ids, test_ids, where = split.split_cases(list(by_id), args.data_path, args.model_dir, args.seed)
        log(f"[data] {len(train_ids)} training and {len(test_ids)} test cases from {where}")
        val_ids = _validation_ids(args, ctx, train_ids, log)
        train_ids = [i for i in train_ids if i not in val_ids]
        if args.mode == "evaluate" and where.startswith("a seeded"):
            log("[data] warning: no train.txt/test.txt in --data_path or --model_dir, so the split is new; "
                "weights trained elsewhere may have seen some of these test cases")
        wanted = (train_ids + val_ids if args.mode in ("train", "train_and_evaluate") else []) + \
                 (test_ids if args.mode in ("evaluate", "train_and_evaluate") and not args.benchmark else [])
        good = {c.case_id for c in checks.check_cases([by_id[i] for i in wanted], args.skip_bad_cases,
                                                      workers=args.workers, log=log)}
        skipped += [i for i in wanted if i not in good]
        train_cases = [by_id[i] for i in train_ids if i in good and args.mode in ("train", "train_and_evaluate")]
        test_cases = [by_id[i] for i in test_ids if i in good and args.mode in ("evaluate", "train_and_evaluate")]
        val_cases = [by_id[i] for i in val_ids if i in good]
        if args.mode in ("train", "train_and_evaluate") and not train_cases:
            raise UserError(f"no training cases in {args.data_path} ({where})")
        if args.mode in ("evaluate", "train_and_evaluate") and not test_cases and not args.benchmark:
            raise UserError(f"no test cases in {args.data_path} ({where})")
    image_paths = {case.case_id: None for case in train_cases + test_cases + val_cases}
    if args.n4_correction:
        # Each rank corrects the cases it reads: its training share, and the chief the test cases.
        mine = ctx.shard(train_cases) + (test_cases + val_cases if ctx.is_chief else [])
        image_paths.update(n4_correction.correct_cases(mine, args.n4_cache_dir, args.workers, log=log))
    else:
        log("[data] N4 bias-field correction off: reading the original volumes")
    return RunData(train_cases=train_cases, test_cases=test_cases, image_paths=image_paths,
                   skipped_case_ids=skipped, val_cases=val_cases)
