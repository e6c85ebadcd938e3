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
"""BraTS cases: discovery, the train/test split, checks, loading and patch sampling.

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

import concurrent.futures
import dataclasses
import os
import re

import nibabel as nib
import numpy as np

from common.npu_utils import UserError

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

    def path(self, kind):
        """The single file of ``kind`` (call after :func:`check_case` found no problem)."""
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


def scan_case(folder):
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
    return case, "; ".join(_file_list_problems(case, FILE_KINDS if need_label else IMAGE_KINDS))


def discover_cases(data_root, skip_bad_cases=False, need_label=True, log=print):
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


def describe_schemes(cases, data_root):
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


def to_internal_labels(label, case):
    """A case's (X, Y, Z) label volume in this code's values {0, 1, 2, 4} (BraTS 2023's 3 becomes 4)."""
    if SCHEMES[case.scheme].enhancing_label == 4:
        return label
    return np.where(label == SCHEMES[case.scheme].enhancing_label, 4, label).astype(label.dtype)


def to_file_labels(label, case):
    """Predicted (X, Y, Z) labels {0, 1, 2, 4} in the case's own convention (BraTS 2023: 4 becomes 3)."""
    if SCHEMES[case.scheme].enhancing_label == 4:
        return label
    return np.where(label == 4, SCHEMES[case.scheme].enhancing_label, label).astype(label.dtype)


def read_case_list(path):
    """Case ids in a list file, one a line; blank lines, '#' comments, a byte-order mark and a missing final
    newline are fine."""
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line.strip() for line in handle.read().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def write_case_list(path, case_ids):
    """Write one case id a line, atomically: ranks sharing a --ckpt_path folder never read half a list."""
    partial = f"{path}.partial{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.writelines(f"{case_id}\n" for case_id in case_ids)
    os.replace(partial, path)


def validation_subset(train_ids, spec, seed):
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


def reference_split():
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


def split_cases(case_ids, data_root, model_dir, seed, train_fraction=0.8):
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


# How far a case's files may disagree on their grid: BraTS volumes share one
# grid, but headers written by different tools differ in float rounding.
GEOMETRY_TOLERANCES = {"spacing": 1e-3, "origin": 1e-2, "direction": 1e-3}  # mm, mm, unit-vector components


def voxels(image):
    """The voxel array of a nibabel image; a 4-D volume with a last axis of 1 is squeezed to (X, Y, Z)."""
    data = np.asanyarray(image.dataobj)
    return data[..., 0] if data.ndim == 4 and data.shape[-1] == 1 else data


def geometry(affine):
    """``{"spacing", "origin", "direction"}`` of a 4x4 voxel-to-world affine: column norms (mm), the
    translation (mm) and the unit axis vectors."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return {"spacing": spacing, "origin": affine[:3, 3], "direction": affine[:3, :3] / spacing}


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


def _file_list_problems(case, kinds):
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
    problems = _file_list_problems(case, kinds)
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


def normalise(volume):
    """(X, Y, Z) volume -> float32 z-score of its non-zero (brain) voxels with their own mean and std;
    background stays 0."""
    volume = volume.astype(np.float32)
    brain = volume != 0
    if not brain.any():
        return volume
    values = volume[brain]
    std = float(values.std())
    out = np.zeros_like(volume)
    out[brain] = (values - float(values.mean())) / (std if std > 0 else 1.0)
    return out


@dataclasses.dataclass
class LoadedCase:
    """A case in memory: ``image`` float32 (X, Y, Z, 4) normalised, ``label`` uint8 (X, Y, Z) or None."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    header: object
    spacing: tuple


def load_case(case, image_paths=None, with_label=True):
    """Load and normalise one case.

    Args:
      case: a checked :class:`Case`.
      image_paths: modality -> file to read instead of the case's own (the
        N4-corrected files); None reads the originals.
      with_label: also read the seg file.
    Returns:
      :class:`LoadedCase`; affine, header and spacing come from the flair file.
    """
    image_paths = image_paths or {kind: case.path(kind) for kind in IMAGE_KINDS}
    flair = nib.load(case.path("flair"))
    channels = [normalise(voxels(nib.load(image_paths[kind]))) for kind in CHANNELS]
    label = None
    if with_label:
        label = to_internal_labels(voxels(nib.load(case.path("seg"))).astype(np.uint8), case)
    return LoadedCase(case_id=case.case_id, image=np.stack(channels, axis=-1), label=label,
                      affine=flair.affine, header=flair.header,
                      spacing=tuple(float(s) for s in flair.header.get_zooms()[:3]))


def sample_patch_corners(label, brain, num_tumour, num_background, patch_size, rng):
    """Corners of training patches around tumour and brain-background centres.

    Args:
      label: (X, Y, Z) labels; tumour is label > 0.
      brain: (X, Y, Z) bool, the background candidates are brain & label == 0.
      num_tumour, num_background: centres of each kind; when a case has no voxel
        of a kind, the other kind (or any voxel) fills in, so every case gives
        the same number of patches.
      patch_size: (px, py, pz) input patch size.
      rng: numpy Generator.
    Returns:
      int32 (num_tumour + num_background, 3) patch corners, shuffled, clamped so
      the patch lies inside the volume; the patch's centre crop holds the chosen voxel.
    """
    tumour = np.argwhere(label > 0)
    background = np.argwhere(brain & (label == 0))
    fallback = background if len(background) else np.argwhere(np.ones_like(label, bool))
    pools = [(tumour if len(tumour) else fallback, num_tumour),
             (background if len(background) else (tumour if len(tumour) else fallback), num_background)]
    centres = np.concatenate([pool[rng.integers(0, len(pool), count)] for pool, count in pools if count > 0])
    size = np.array(patch_size)
    corners = np.clip(centres - size // 2, 0, np.array(label.shape) - size)
    return rng.permutation(corners).astype(np.int32)


def pad_to_at_least(image, label, patch_size):
    """Zero-pad (X, Y, Z, C) image and (X, Y, Z) label at the far end to at least ``patch_size``."""
    extra = [max(0, p - s) for p, s in zip(patch_size, label.shape)]
    if not any(extra):
        return image, label
    widths = [(0, e) for e in extra]
    return np.pad(image, widths + [(0, 0)]), np.pad(label, widths)



def patch_dataset(load_fn, num_cases, *, num_tumour, num_background, patch_size, label_size,
                  batch_size, seed, epoch, cycle_length=2, shuffle_buffer=64):
    """One epoch of training patches as a ``tf.data.Dataset``.

    Cases are visited in a seeded order; ``cycle_length`` cases are loaded in
    parallel (each once per epoch) and their patches interleaved, so one batch
    mixes patients; patches are cut from the loaded volume by a parallel map.

    Args:
      load_fn: ``load_fn(index) -> (image (X, Y, Z, 4) float32, label (X, Y, Z) uint8)``.
      num_cases: how many indices ``load_fn`` takes.
      num_tumour, num_background: centres per case and epoch.
      patch_size: (px, py, pz) input size (38^3); label_size: centre crop (12^3).
      batch_size: patches per batch (incomplete last batch dropped).
      seed, epoch: the order and centres are a function of both.
    Returns:
      dataset of (image (B, px, py, pz, 4) float32, label (B, lx, ly, lz) int32).
    """
    # Imported here, not at the top: the N4 worker processes import this module and need no TensorFlow.
    import tensorflow as tf

    offset = [(p - s) // 2 for p, s in zip(patch_size, label_size)]
    order = np.random.default_rng([seed, epoch]).permutation(num_cases).astype(np.int64)

    def load_and_sample(index):
        index = int(index)
        image, label = load_fn(index)
        image, label = pad_to_at_least(image, label, patch_size)
        rng = np.random.default_rng([seed, epoch, index])
        corners = sample_patch_corners(label, image[..., 0] != 0, num_tumour, num_background, patch_size, rng)
        return image.astype(np.float32), label.astype(np.int32), corners

    def case_patches(index):
        image, label, corners = tf.numpy_function(load_and_sample, [index], [tf.float32, tf.int32, tf.int32])
        image = tf.ensure_shape(image, [None, None, None, 4])
        label = tf.ensure_shape(label, [None, None, None])

        def cut(corner):
            patch = tf.slice(image, tf.concat([corner, [0]], 0), list(patch_size) + [4])
            centre = tf.slice(label, corner + offset, list(label_size))
            return tf.ensure_shape(patch, list(patch_size) + [4]), tf.ensure_shape(centre, list(label_size))

        return tf.data.Dataset.from_tensor_slices(corners).map(cut, num_parallel_calls=tf.data.AUTOTUNE)

    dataset = tf.data.Dataset.from_tensor_slices(order)
    dataset = dataset.interleave(case_patches, cycle_length=cycle_length, block_length=1,
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.shuffle(shuffle_buffer, seed=seed * 1000 + epoch)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
