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
"""The checks every case passes before a run: files readable, 3-D, on one grid, finite, labels in range.

A bad case is named with its file and what is wrong with it, one line per case;
the run stops unless --skip_bad_cases leaves the bad cases out.
"""

import concurrent.futures

import nibabel as nib
import numpy as np

from common.npu_utils import UserError
from data_loading.cases import FILE_KINDS, IMAGE_KINDS, SCHEMES, file_list_problems
from data_loading.nifti import geometry, voxels


# How far a case's files may disagree on their grid: BraTS volumes share one
# grid, but headers written by different tools differ in float rounding.
GEOMETRY_TOLERANCES = {"spacing": 1e-3, "origin": 1e-2, "direction": 1e-3}  # mm, mm, unit-vector components


def _rounded(values):
    return tuple(round(float(v), 4) for v in np.ravel(values))


def _file_problems(path, kind, reference, scheme):
    """Problems of one file; ``reference`` holds the case's first readable file (filled in by the first call)."""
    try:
        image = nib.load(path)
        data = voxels(image)
    except Exception as error:  # nibabel raises many types for a damaged file
        return [f"{path}: cannot be read as NIfTI ({error.__class__.__name__}: {error})"]
    if data.ndim != 3:
        return [f"{path}: is {data.ndim}-D with shape {data.shape}, expected a 3-D volume"]
    problems = []
    grid = dict(geometry(image.affine), shape=data.shape)
    if not reference:
        reference.update(grid, kind=kind)
    if data.shape != reference["shape"]:
        problems.append(f"{path}: shape {data.shape} differs from the {reference['kind']} volume's "
                        f"{reference['shape']}")
    for name, tolerance in GEOMETRY_TOLERANCES.items():
        if not np.allclose(grid[name], reference[name], rtol=0, atol=tolerance):
            problems.append(f"{path}: {name} {_rounded(grid[name])} differs from the {reference['kind']} "
                            f"volume's {_rounded(reference[name])}")
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        problems.append(f"{path}: has {int((~np.isfinite(data)).sum())} NaN or infinite voxels")
    elif kind in IMAGE_KINDS and data.min() == data.max():
        problems.append(f"{path}: every voxel is {data.min()}: an empty or constant {kind} volume")
    if kind == "seg":
        valid = (0, 1, 2, scheme.enhancing_label)
        bad = [v for v in np.unique(data).tolist() if v not in valid]
        if bad:
            problems.append(f"{path}: label values {bad[:6]} outside {{{', '.join(map(str, valid))}}} "
                            f"({scheme.name})")
    return problems


def check_case(case, need_label=True):
    """Everything wrong with one case, as ``"<file>: <problem>"`` strings (empty when it is fine).

    Checks: each file present once, readable, 3-D (a 4-D volume with a last
    axis of 1 counts as 3-D), the same shape, spacing, origin and direction as
    the case's first file (within :data:`GEOMETRY_TOLERANCES`), finite values,
    no all-zero or constant modality, labels within the scheme's ({0, 1, 2, 4};
    BraTS 2023 {0, 1, 2, 3}). Each message names the file and, for a mismatch,
    both values.
    """
    kinds = FILE_KINDS if need_label else IMAGE_KINDS
    problems = file_list_problems(case, kinds)
    if problems:
        return problems
    reference = {}
    for kind in kinds:
        problems += _file_problems(case.path(kind), kind, reference, SCHEMES[case.scheme])
    return problems


def check_cases(cases, skip_bad_cases, need_label=True, workers=2, log=print):
    """Check every case before a run; one line per bad case.

    Returns:
      the good cases, in order.
    Raises:
      UserError: some case is bad and ``skip_bad_cases`` is False.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda case: check_case(case, need_label), cases))
    bad = [(case, problems) for case, problems in zip(cases, results) if problems]
    for case, problems in bad:
        log(f"bad case {case.case_id}: {'; '.join(problems)}")
    if bad and not skip_bad_cases:
        raise UserError(f"{len(bad)} of {len(cases)} cases are bad (listed above); fix or remove them, "
                        "or pass --skip_bad_cases (test/*.sh: --skip_bad_cases=True) to run without them")
    if bad:
        log(f"skipped {len(bad)} bad case(s): {', '.join(case.case_id for case, _ in bad)}")
    return [case for case, problems in zip(cases, results) if not problems]
