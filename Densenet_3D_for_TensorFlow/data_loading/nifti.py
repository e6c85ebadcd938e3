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

Arrays keep the NIfTI voxel order (X, Y, Z); a case's image is float32
(X, Y, Z, 4) with channels flair, t2, t1, t1ce (:data:`data_loading.cases.CHANNELS`).
"""

import dataclasses

import nibabel as nib
import numpy as np

from data_loading.cases import CHANNELS, IMAGE_KINDS, to_internal_labels
from data_loading.preprocessing import normalise


def voxels(image):
    """The voxel array of a nibabel image; a 4-D volume with a last axis of 1 is squeezed to (X, Y, Z)."""
    data = np.asanyarray(image.dataobj)
    return data[..., 0] if data.ndim == 4 and data.shape[-1] == 1 else data


def geometry(affine):
    """``{"spacing", "origin", "direction"}`` of a 4x4 voxel-to-world affine: column norms (mm), the
    translation (mm) and the unit axis vectors."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return {"spacing": spacing, "origin": affine[:3, 3], "direction": affine[:3, :3] / spacing}


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
      case: a checked :class:`data_loading.cases.Case`.
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
