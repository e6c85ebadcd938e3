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

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence

import nibabel as nib
import numpy as np

from common.errors import UserError
from data_loading.cases import FILE_KINDS, IMAGE_KINDS, SCHEMES, Case, file_list_problems
from data_loading.nifti import geometry, orientation_problem, voxels


# How far a case's files may disagree on their grid: BraTS volumes share one
# grid, but headers written by different tools differ in float rounding.
GEOMETRY_TOLERANCES = {"spacing": 1e-3, "origin": 1e-2, "direction": 1e-3}  # mm, mm, unit-vector components


def _rounded(values):
    return tuple(round(float(v), 4) for v in np.ravel(values))


def _file_problems(path, kind, scheme):
    """``(grid, problems)`` of one file: its grid (``shape`` and :func:`data_loading.nifti.geometry`; None
    when it cannot be read or is not 3-D) and what is wrong with its values."""
    try:
        image = nib.load(path)
        data = voxels(image)
    except Exception as error:  # nibabel raises many types for a damaged file
        return None, [f"{path}: cannot be read as NIfTI ({error.__class__.__name__}: {error})"]
    if data.ndim != 3:
        return None, [f"{path}: is {data.ndim}-D with shape {data.shape}, expected a 3-D volume"]
    problems = []
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
    orientation = orientation_problem(image.affine)
    if orientation:  # no grid to compare: its axes are what is wrong
        return None, problems + [f"{path}: {orientation}"]
    return dict(geometry(image.affine), shape=data.shape), problems


def _differences(grid, reference):
    """The names of the grid entries (shape, spacing, origin, direction) where two grids disagree."""
    names = [name for name, tolerance in GEOMETRY_TOLERANCES.items()
             if not np.allclose(grid[name], reference[name], rtol=0, atol=tolerance)]
    return (["shape"] if grid["shape"] != reference["shape"] else []) + names


def _grid_problems(grids):
    """One problem per file off the case's grid: the grid most of its files share (on a tie, the first
    file's), so that one bad file, FLAIR too, is the one named. ``grids``: ``[(path, kind, grid)]``."""
    agreeing = [[other for other in grids if not _differences(grid, other[2])] for _, _, grid in grids]
    majority = max(range(len(grids)), key=lambda index: (len(agreeing[index]), -index))
    reference, kinds = grids[majority][2], ", ".join(kind for _, kind, _ in agreeing[majority])
    problems = []
    for path, _, grid in grids:
        for name in _differences(grid, reference):
            value, expected = ((grid[name], reference[name]) if name == "shape"
                               else (_rounded(grid[name]), _rounded(reference[name])))
            problems.append(f"{path}: {name} {value} differs from the {kinds} volumes' {expected}")
    return problems


def check_case(case: Case, need_label: bool = True) -> list[str]:
    """Everything wrong with one case, as ``"<file>: <problem>"`` strings (empty when it is fine).

    Checks: each file present once, readable, 3-D (a 4-D volume with a last
    axis of 1 counts as 3-D), an affine with an orientation, the same shape, spacing, origin and direction as
    the case's other files (within :data:`GEOMETRY_TOLERANCES`; a file is named
    when it is off the grid most files share), finite values, no all-zero or
    constant modality, labels within the scheme's ({0, 1, 2, 4}; BraTS 2023
    {0, 1, 2, 3}). Each message names the file and, for a mismatch, both values.
    """
    kinds = FILE_KINDS if need_label else IMAGE_KINDS
    problems = file_list_problems(case, kinds)
    if problems:
        return problems
    grids = []
    for kind in kinds:
        grid, file_problems = _file_problems(case.path(kind), kind, SCHEMES[case.scheme])
        problems += file_problems
        if grid is not None:
            grids.append((case.path(kind), kind, grid))
    return problems + (_grid_problems(grids) if grids else [])


def check_cases(cases: Sequence[Case], skip_bad_cases: bool, need_label: bool = True, workers: int = 2,
                log: Callable[[str], object] = print) -> list[Case]:
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
