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
"""BraTS cases: discovery of the case folders, their naming scheme, and their label values.

A data folder holds one sub-folder per case with four modalities and a label
file, found by their suffix after the case name in one of the BraTS naming
schemes (:data:`SCHEMES`):

- BraTS 2017 (``Brats17_TCIA_105_1/Brats17_TCIA_105_1_flair.nii.gz``) and
  2018-2021 (``BraTS2021_00000/BraTS2021_00000_flair.nii.gz``): ``_flair``,
  ``_t1``, ``_t1ce``, ``_t2``, ``_seg``; labels {0, 1, 2, 4}. Other collections
  in this layout (e.g. the synthetic ``Synth_001``) read the same way.
- BraTS 2023 glioma (``BraTS-GLI-00000-000/BraTS-GLI-00000-000-t2f.nii.gz``):
  ``-t2f`` (FLAIR), ``-t1n`` (T1), ``-t1c`` (T1ce), ``-t2w`` (T2), ``-seg``;
  labels {0, 1, 2, 3} with 3 the enhancing tumour.

Arrays keep the NIfTI voxel order (X, Y, Z); images are float32 (X, Y, Z, 4)
with channels flair, t2, t1, t1ce (the order the two pathways expect) and
labels uint8 (X, Y, Z) in the 2017 values {0, 1, 2, 4} whatever the scheme
(:func:`to_file_labels` turns them back into the case's own).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

from common.errors import UserError

IMAGE_KINDS = ("flair", "t1", "t1ce", "t2")
FILE_KINDS = IMAGE_KINDS + ("seg",)
CHANNELS = ("flair", "t2", "t1", "t1ce")  # pathway A: flair, t2; pathway B: t1, t1ce
NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A BraTS naming scheme: each kind's file suffix after the case name, and its label of enhancing tumour."""

    name: str
    suffixes: dict  # kind -> suffix before .nii.gz / .nii
    enhancing_label: int  # 4 (internally always 4)


_UNDERSCORE = {kind: f"_{kind}" for kind in FILE_KINDS}
SCHEMES = {
    "2017": Scheme("BraTS 2017", _UNDERSCORE, 4),
    "2018-2021": Scheme("BraTS 2018-2021", _UNDERSCORE, 4),
    "2023": Scheme("BraTS 2023", {"flair": "-t2f", "t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "seg": "-seg"}, 3),
    # The 2017-2021 layout under other case names (synthetic data, other collections).
    "layout": Scheme("BraTS 2017-2021 layout", _UNDERSCORE, 4),
}
_CASE_NAMES = (("2017", re.compile(r"^Brats17_", re.I)), ("2018-2021", re.compile(r"^BraTS(20)?(18|19|20|21)_", re.I)))


@dataclasses.dataclass(frozen=True)
class Case:
    """One case folder: ``files`` maps a kind (flair, t1, t1ce, t2, seg) to the paths found for it;
    ``scheme`` is a key of :data:`SCHEMES` ("mixed" when its files follow more than one)."""

    case_id: str
    folder: str
    files: dict
    scheme: str = "layout"

    def path(self, kind: str) -> str:
        """The single file of ``kind`` (call after :func:`data_loading.checks.check_case` found no problem)."""
        return self.files[kind][0]


def _kind_of(filename):
    """(kind, True for the 2023 suffixes) of a file name, or None."""
    for dash, suffixes in ((False, _UNDERSCORE), (True, SCHEMES["2023"].suffixes)):
        for kind, suffix in suffixes.items():
            if any(filename.endswith(suffix + extension) for extension in NIFTI_SUFFIXES):
                return kind, dash
    return None


def _scheme_of(case_id, dash_flags):
    if len(dash_flags) > 1:
        return "mixed"
    if True in dash_flags:
        return "2023"
    return next((key for key, pattern in _CASE_NAMES if pattern.match(case_id)), "layout")


def scan_case(folder: str) -> Case | None:
    """A :class:`Case` for ``folder`` (files found by modality suffix), or None if it has no NIfTI of any kind."""
    files, dash_flags = {}, set()
    for filename in sorted(os.listdir(folder)):
        found = _kind_of(filename)
        if found is not None:
            files.setdefault(found[0], []).append(os.path.join(folder, filename))
            dash_flags.add(found[1])
    if not files:
        return None
    case_id = os.path.basename(os.path.normpath(folder))
    return Case(case_id=case_id, folder=folder, files=files, scheme=_scheme_of(case_id, dash_flags))


def _folder_problem(folder, need_label):
    """``(case, problem)`` of a case-like folder: its :class:`Case` (None when it has none) and why it is
    left out ("" when it is not): it cannot be listed, has no NIfTI, or lacks a modality."""
    try:
        case = scan_case(folder)
    except OSError as error:
        return None, f"{folder}: cannot be listed ({error.strerror or error})"
    if case is None:
        return None, f"{folder}: no NIfTI file ({' or '.join(NIFTI_SUFFIXES)}) of any modality"
    return case, "; ".join(file_list_problems(case, FILE_KINDS if need_label else IMAGE_KINDS))


def discover_cases(data_root: str, skip_bad_cases: bool = False, need_label: bool = True,
                   log: Callable[[str], object] = print) -> tuple[list[Case], str, list[str]]:
    """All case folders directly under ``data_root``, sorted by id, and the naming scheme they follow.

    Every sub-folder is case-like except hidden ones (``.name``). One that
    cannot be listed, holds no NIfTI file, or lacks a modality (the label
    too when ``need_label``) is named with its reason in one line each; then
    the run stops unless ``skip_bad_cases``, which leaves them out (named)
    before the split. Never a silent drop.

    Returns:
      (cases, description, left_out): description e.g. "BraTS 2023 naming
      (-t2f/-t1n/-t1c/-t2w/-seg; enhancing tumour = label 3), 4 cases";
      left_out the names of the folders left out.
    Raises:
      UserError: ``data_root`` is not a folder or holds no case folder; some
        folder is not a complete case and ``skip_bad_cases`` is False; the
        cases mix the BraTS 2017, 2018-2021 and 2023 schemes (a case's files too).
    """
    if not os.path.isdir(data_root):
        raise UserError(f"-r/--data_path {data_root!r} is not a folder")
    names = [name for name in sorted(os.listdir(data_root))
             if not name.startswith(".") and os.path.isdir(os.path.join(data_root, name))]
    found = [(name, *_folder_problem(os.path.join(data_root, name), need_label)) for name in names]
    bad = [(name, problem) for name, case, problem in found if problem]
    if len(bad) == len(found):
        raise UserError(f"-r/--data_path {data_root!r} holds no case folders with "
                        "<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz (BraTS 2017-2021) or "
                        "<case>/<case>-{t2f,t1n,t1c,t2w,seg}.nii.gz (BraTS 2023) files"
                        + (f" ({len(bad)} folder(s) without them, first {bad[0][1]})" if bad else ""))
    for name, problem in bad:
        log(f"bad case {name}: {problem}")
    if bad and not skip_bad_cases:
        raise UserError(f"{len(bad)} of {len(found)} case folders in {data_root} are not complete cases (listed "
                        "above); fix or remove them, or pass --skip_bad_cases (test/*.sh: --skip_bad_cases=True) "
                        "to run without them")
    if bad:
        log(f"left out {len(bad)} case folder(s) (--skip_bad_cases): {', '.join(name for name, _ in bad)}")
    cases = [case for _, case, problem in found if not problem]
    return cases, describe_schemes(cases, data_root), [name for name, _ in bad]


def describe_schemes(cases: Sequence[Case], data_root: str) -> str:
    """One line naming the scheme of ``cases`` (none "mixed": :func:`discover_cases` leaves those out);
    UserError when they mix schemes."""
    found = {}
    for case in cases:
        found.setdefault(case.scheme, []).append(case.case_id)
    named = sorted(set(found) - {"layout"})
    if len(named) > 1 or ("2023" in found and "layout" in found):
        examples = ", ".join(f"{found[key][0]} ({SCHEMES[key].name})" for key in sorted(found))
        raise UserError(f"-r/--data_path {data_root} mixes naming schemes: {examples}; one release per folder")
    scheme = SCHEMES[named[0] if named else "layout"]
    suffixes = "/".join(scheme.suffixes[kind] for kind in FILE_KINDS)
    return (f"{scheme.name} naming ({suffixes}; enhancing tumour = label {scheme.enhancing_label}), "
            f"{len(cases)} cases")


def to_internal_labels(label: np.ndarray, case: Case) -> np.ndarray:
    """A case's (X, Y, Z) label volume in this code's values {0, 1, 2, 4} (BraTS 2023's 3 becomes 4)."""
    if SCHEMES[case.scheme].enhancing_label == 4:
        return label
    return np.where(label == SCHEMES[case.scheme].enhancing_label, 4, label).astype(label.dtype)


def to_file_labels(label: np.ndarray, case: Case) -> np.ndarray:
    """Predicted (X, Y, Z) labels {0, 1, 2, 4} in the case's own convention (BraTS 2023: 4 becomes 3)."""
    if SCHEMES[case.scheme].enhancing_label == 4:
        return label
    return np.where(label == 4, SCHEMES[case.scheme].enhancing_label, label).astype(label.dtype)


def file_list_problems(case: Case, kinds: Sequence[str]) -> list[str]:
    """What is wrong with a case's list of files: a kind of ``kinds`` missing or there twice, or two
    naming schemes. A missing file is named with the extension the case's other files have."""
    extension = ".nii" if all(path.endswith(".nii") for paths in case.files.values() for path in paths) \
        else ".nii.gz"
    problems = []
    for kind in kinds:
        paths = case.files.get(kind, [])
        if not paths:
            suffix = SCHEMES[case.scheme if case.scheme in SCHEMES else "layout"].suffixes[kind]
            problems.append(f"{os.path.join(case.folder, case.case_id + suffix + extension)}: missing")
        elif len(paths) > 1:
            problems.append(f"{paths[0]}: more than one {kind} file ({', '.join(map(os.path.basename, paths))})")
    if not problems and case.scheme == "mixed":
        problems.append(f"{case.folder}: files of both the BraTS 2017-2021 (_flair, _seg, ...) and 2023 (-t2f, "
                        "-seg, ...) naming schemes")
    return problems
