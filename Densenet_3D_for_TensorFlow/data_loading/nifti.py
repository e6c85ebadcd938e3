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
"""Reading NIfTI volumes: voxel arrays, their grid, and one case loaded and normalised into memory.

A loaded case's arrays are in one voxel order whatever the files' (:data:`NETWORK_AXCODES`, the order BraTS
stores its volumes in, so a BraTS case is read as stored); a case stored otherwise is flipped and permuted to
it, and :func:`to_file_order` brings a prediction back to the file's own voxel order, for its own affine.
A case's image is float32 (X, Y, Z, 4) with channels flair, t2, t1, t1ce (:data:`data_loading.cases.CHANNELS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import nibabel as nib
import numpy as np

from common.errors import UserError
from data_loading.cases import CHANNELS, IMAGE_KINDS, Case, to_internal_labels
from data_loading.preprocessing import normalise


def voxels(image: nib.spatialimages.SpatialImage) -> np.ndarray:
    """The voxel array of a nibabel image; a 4-D volume with a last axis of 1 is squeezed to (X, Y, Z)."""
    data = np.asanyarray(image.dataobj)
    return data[..., 0] if data.ndim == 4 and data.shape[-1] == 1 else data


# The voxel order the network sees: BraTS's on-disk one (nibabel axis codes; the first axis runs towards the
# patient's left, the second towards posterior, the third superior).
NETWORK_AXCODES = ("L", "P", "S")


def orientation_problem(affine: np.ndarray) -> str | None:
    """Why a 4x4 voxel-to-world ``affine`` has no voxel order to bring to :data:`NETWORK_AXCODES` (a zero or
    repeated axis), or None when it has one."""
    if np.isnan(nib.orientations.io_orientation(affine)).any():
        return f"its affine has no orientation (a zero or degenerate axis: {np.round(affine[:3, :3], 4).tolist()})"
    return None


def to_network_order(affine: np.ndarray) -> np.ndarray:
    """The nibabel orientation transform, (3, 2) rows of (new axis, flip) per file axis, from the voxel order
    of a file with ``affine`` to :data:`NETWORK_AXCODES`; raises UserError when it has none."""
    problem = orientation_problem(affine)
    if problem:
        raise UserError(problem)
    return nib.orientations.ornt_transform(nib.orientations.io_orientation(affine),
                                           nib.orientations.axcodes2ornt(NETWORK_AXCODES))


def to_file_order(volume: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """An (X, Y, Z, ...) array in the network's voxel order back in the file's: the inverse of ``transform``
    (:func:`to_network_order` of the file's affine)."""
    inverse = np.zeros_like(transform)
    for axis, (new_axis, flip) in enumerate(transform):
        inverse[int(new_axis)] = (axis, flip)
    return np.ascontiguousarray(nib.orientations.apply_orientation(volume, inverse))


def _read_in_network_order(path):
    """The (X, Y, Z) voxels of one file in the network's voxel order."""
    image = nib.load(path)
    return np.ascontiguousarray(nib.orientations.apply_orientation(voxels(image), to_network_order(image.affine)))


def geometry(affine: np.ndarray) -> dict[str, np.ndarray]:
    """``{"spacing", "origin", "direction"}`` of a 4x4 voxel-to-world affine: column norms (mm), the
    translation (mm) and the unit axis vectors."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return {"spacing": spacing, "origin": affine[:3, 3], "direction": affine[:3, :3] / spacing}


@dataclasses.dataclass
class LoadedCase:
    """A case in memory: ``image`` float32 (X, Y, Z, 4) normalised, ``label`` uint8 (X, Y, Z) or None, in the
    network's voxel order; ``affine`` and ``header`` are the flair file's own."""

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    affine: np.ndarray
    header: object
    spacing: tuple  # mm along the arrays' X, Y, Z
    orientation: np.ndarray  # to_network_order() of the flair file: to_file_order(labels, orientation)
    background: np.ndarray  # (4,) float32: each channel's value outside the head (what a 0 on disk became)


def load_case(case: Case, image_paths: Mapping[str, str] | None = None, with_label: bool = True,
              normalisation: str = "reference") -> LoadedCase:
    """Load and normalise one case.

    Args:
      case: a checked :class:`data_loading.cases.Case`.
      image_paths: modality -> file to read instead of the case's own (the
        N4-corrected files); None reads the originals.
      with_label: also read the seg file.
      normalisation: see :func:`data_loading.preprocessing.normalise` (--normalisation).
    Returns:
      :class:`LoadedCase`; affine, header and spacing come from the flair file.
    """
    image_paths = image_paths or {kind: case.path(kind) for kind in IMAGE_KINDS}
    flair = nib.load(case.path("flair"))
    orientation = to_network_order(flair.affine)
    channels, background = zip(*[normalise(_read_in_network_order(image_paths[kind]), normalisation)
                                 for kind in CHANNELS])
    label = None
    if with_label:
        label = to_internal_labels(_read_in_network_order(case.path("seg")).astype(np.uint8), case)
    zooms = flair.header.get_zooms()[:3]
    spacing = [0.0] * 3
    for axis, (new_axis, _) in enumerate(orientation):
        spacing[int(new_axis)] = float(zooms[axis])
    return LoadedCase(case_id=case.case_id, image=np.stack(channels, axis=-1), label=label,
                      affine=flair.affine, header=flair.header, spacing=tuple(spacing), orientation=orientation,
                      background=np.array(background, np.float32))
