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
"""N4 bias-field correction (``-nc``) with SimpleITK, cached per case and modality.

The reference ran ANTs' N4BiasFieldCorrection with shrink factor 3, four
levels of 50/50/30/20 iterations and a B-spline distance of 300 mm (at BraTS
size that is SimpleITK's default mesh of one span per axis). Here the field is
fitted on the shrunk image and applied at full resolution. BraTS volumes are
skull-stripped with zeros outside the head, so the fit uses the non-zero
voxels and the zeros stay zero.

Corrected volumes go beside the originals as ``<case>_<mod>_corrected.nii.gz``,
or, when the case folder is read-only, into ``<cache_dir>/<case>/``. Each
corrected file records its source's size and modification time in the NIfTI
header's description; it is reused while they still match (so another data
folder with the same case ids never reuses a stale cache). Cases are corrected
in parallel processes.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from data_loading.cases import IMAGE_KINDS, Case

SHRINK_FACTOR = 3
ITERATIONS = (50, 50, 30, 20)  # per fitting level, coarse to fine


def correct_image(image: sitk.Image, shrink_factor: int = SHRINK_FACTOR,
                  iterations: Sequence[int] = ITERATIONS) -> sitk.Image:
    """N4-correct one SimpleITK image; returns float32 image / field, zero where the input is zero."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    mask = sitk.Cast(image != 0, sitk.sitkUInt8)
    shrink = [shrink_factor] * image.GetDimension()
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations(list(iterations))
    corrector.Execute(sitk.Shrink(image, shrink), sitk.Shrink(mask, shrink))
    # The field fitted on the shrunk image, evaluated on the full-resolution grid.
    log_field = corrector.GetLogBiasFieldAsImage(image)
    corrected = image / sitk.Exp(log_field)
    return sitk.Mask(corrected, mask)


def correct_array(volume: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0), **kwargs: Any) -> np.ndarray:
    """N4 on an (X, Y, Z) numpy volume; returns the corrected float32 volume."""
    # SimpleITK orders a numpy array's axes (z, y, x): transpose in and out.
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(volume, (2, 1, 0)).astype(np.float32)))
    image.SetSpacing(tuple(float(s) for s in spacing))
    return np.transpose(sitk.GetArrayFromImage(correct_image(image, **kwargs)), (2, 1, 0))


def corrected_path(case: Case, kind: str, cache_dir: str) -> str:
    """Where the corrected ``kind`` volume of ``case`` lives: beside the data if writable, else in cache_dir."""
    name = f"{case.case_id}_{kind}_corrected.nii.gz"
    if os.access(case.folder, os.W_OK):
        return os.path.join(case.folder, name)
    return os.path.join(cache_dir, case.case_id, name)


def _source_note(source):
    """The NIfTI description (at most 80 characters) that ties a corrected file to its source."""
    stat = os.stat(source)
    return f"N4 of {stat.st_size} bytes, mtime {stat.st_mtime_ns}"


def _up_to_date(target, source):
    if not os.path.exists(target):
        return False
    try:
        note = nib.load(target).header["descrip"].item().decode("ascii", "replace")
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError):
        return False  # an unreadable cache file is simply written again
    return note == _source_note(source)


def _correct_case(case, cache_dir, threads):
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    written = 0
    for kind in IMAGE_KINDS:
        source, target = case.path(kind), corrected_path(case, kind, cache_dir)
        if _up_to_date(target, source):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Write under a temporary name and rename: a killed run never leaves a half file.
        partial = target.replace("_corrected.nii.gz", f"_corrected.partial{os.getpid()}.nii.gz")
        corrected = correct_image(sitk.ReadImage(source))
        corrected.SetMetaData("ITK_FileNotes", _source_note(source))  # written as the NIfTI description
        sitk.WriteImage(corrected, partial)
        os.replace(partial, target)
        written += 1
    return written


def correct_cases(cases: Sequence[Case], cache_dir: str, workers: int | None = None,
                  log: Callable[[str], object] = print) -> dict[str, dict[str, str]]:
    """Make sure every case has up-to-date corrected volumes; returns {case_id: {kind: path}}.

    Args:
      cases: checked :class:`data_loading.cases.Case` objects.
      cache_dir: the folder used for cases whose folder is read-only.
      workers: parallel processes (default: the CPU count, at most the case count).
    """
    workers = max(1, min(workers or os.cpu_count() or 1, len(cases)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    stale = [case for case in cases
             if not all(_up_to_date(corrected_path(case, k, cache_dir), case.path(k)) for k in IMAGE_KINDS)]
    if stale:
        log(f"[n4] correcting {len(stale)} of {len(cases)} cases with {workers} process(es)")
        # spawn, not fork: the caller has usually started TensorFlow's threads already.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            written = sum(pool.map(_correct_case, stale, [cache_dir] * len(stale), [threads] * len(stale)))
        log(f"[n4] wrote {written} corrected volumes")
    return {case.case_id: {kind: corrected_path(case, kind, cache_dir) for kind in IMAGE_KINDS}
            for case in cases}
