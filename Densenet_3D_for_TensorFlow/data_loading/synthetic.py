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
"""Synthetic BraTS-format cases: for tests, the quickstart and benchmarks.

Each case folder ``<out>/<case>/`` holds ``<case>_{flair,t1,t1ce,t2,seg}.nii.gz``
(or the BraTS 2021 / 2023 names, :data:`SCHEMES` below) with a real affine (1 mm
voxels, BraTS-like orientation and origin). The "brain" is an ellipsoid;
the tumour is an oedema ellipsoid (label 2) around a core of necrosis (1)
inside an enhancing rim (4, or 3 in the 2023 scheme); the four contrasts
differ by sub-region as they do in MRI. Noise and a smooth multiplicative bias field
(a low-order polynomial, different per modality) are added, so N4 has
something to remove.

CLI:  python3 data_loading/synthetic.py --out DIR --cases 4 --shape 48 48 40 [--seed 0] [--dtype int16]
      [--scheme 2017|2021|2023] [--names LIST]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence

import nibabel as nib
import numpy as np

MODALITIES = ("flair", "t1", "t1ce", "t2")
# Mean intensity per tissue: background, brain, necrosis (1), oedema (2), enhancing (4).
# Oedema is bright on flair/t2, enhancement bright on t1ce, necrosis dark on t1.
CONTRASTS = {
    "flair": {"brain": 100.0, 1: 130.0, 2: 190.0, 4: 150.0},
    "t1": {"brain": 100.0, 1: 55.0, 2: 80.0, 4: 95.0},
    "t1ce": {"brain": 100.0, 1: 60.0, 2: 85.0, 4: 210.0},
    "t2": {"brain": 100.0, 1: 200.0, 2: 170.0, 4: 135.0},
}
NOISE_STD = 3.0


def bias_field(shape: Sequence[int], rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A smooth multiplicative field exp(p(x, y, z)), p a random quadratic with |p| <= strength.

    At the default strength the field varies by about +-20-30% inside the brain, as in real scans.
    """
    axes = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in shape], indexing="ij")
    terms = list(axes) + [a * b for i, a in enumerate(axes) for b in axes[i:]]
    poly = sum(rng.uniform(-1.0, 1.0) * term for term in terms)
    poly = poly / (np.abs(poly).max() + 1e-6) * strength
    return np.exp(poly).astype(np.float32)


def _ellipsoid(shape, centre, radii):
    grid = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def make_case(shape: Sequence[int], rng: np.random.Generator,
              with_bias: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """One synthetic case.

    Args:
      shape: (X, Y, Z) voxels, each at least 24.
      rng: numpy Generator.
      with_bias: multiply each modality by its own bias field.
    Returns:
      (volumes, label, fields): ``volumes`` maps modality -> float32 (X, Y, Z)
      (0 outside the brain), ``label`` uint8 (X, Y, Z) in {0, 1, 2, 4},
      ``fields`` maps modality -> the bias field applied (ones without bias).
    """
    shape = tuple(int(n) for n in shape)
    if min(shape) < 24:
        raise ValueError(f"synthetic shape must be at least 24 per axis, got {shape}")
    size = np.array(shape, np.float32)
    brain = _ellipsoid(shape, size / 2, size * 0.42)
    tumour_radius = size * rng.uniform(0.12, 0.2)
    centre = size / 2 + rng.uniform(-0.12, 0.12, 3) * size
    oedema = _ellipsoid(shape, centre, tumour_radius) & brain
    core = _ellipsoid(shape, centre, tumour_radius * 0.6) & brain
    necrosis = _ellipsoid(shape, centre, tumour_radius * 0.35) & brain
    label = np.zeros(shape, np.uint8)
    label[oedema] = 2
    label[core] = 4
    label[necrosis] = 1
    volumes, fields = {}, {}
    for modality in MODALITIES:
        contrast = CONTRASTS[modality]
        image = np.where(brain, contrast["brain"], 0.0).astype(np.float32)
        for value in (1, 2, 4):
            image[label == value] = contrast[value]
        image += brain * rng.normal(0.0, NOISE_STD, shape).astype(np.float32)
        field = bias_field(shape, rng) if with_bias else np.ones(shape, np.float32)
        volumes[modality] = np.where(brain, np.maximum(image * field, 1.0), 0.0).astype(np.float32)
        fields[modality] = field
    return volumes, label, fields


def case_affine() -> np.ndarray:
    """BraTS orientation: 1 mm voxels, x and y flipped, origin at the volume's far corner."""
    return np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1]])


# Each BraTS naming scheme: case names, file suffixes, the label of enhancing tumour.
SCHEMES = {
    "2017": ("{prefix}_{index:03d}", {kind: f"_{kind}" for kind in MODALITIES + ("seg",)}, 4),
    "2021": ("BraTS2021_{index:05d}", {kind: f"_{kind}" for kind in MODALITIES + ("seg",)}, 4),
    "2023": ("BraTS-GLI-{index:05d}-000", {"flair": "-t2f", "t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "seg": "-seg"},
             3),
}


def write_dataset(out_dir: str, num_cases: int, shape: Sequence[int], seed: int = 0, dtype: str = "int16",
                  prefix: str = "Synth", case_ids: Iterable[str] | None = None, scheme: str = "2017") -> list[str]:
    """Write ``num_cases`` case folders into ``out_dir``; returns the case ids.

    ``scheme`` chooses the BraTS naming: "2017" (``<prefix>_001/<prefix>_001_flair.nii.gz``,
    labels {0,1,2,4}), "2021" (``BraTS2021_00001/BraTS2021_00001_flair.nii.gz``) or
    "2023" (``BraTS-GLI-00001-000/BraTS-GLI-00001-000-t2f.nii.gz``, enhancing tumour = 3).
    ``case_ids`` names the cases instead (``num_cases`` is then ignored).
    Cases already present (all five files) are left as they are, so reruns are cheap.
    """
    rng = np.random.default_rng(seed)
    affine = case_affine()
    pattern, suffixes, enhancing = SCHEMES[scheme]
    case_ids = list(case_ids) if case_ids else [pattern.format(prefix=prefix, index=index + 1)
                                                for index in range(num_cases)]
    for case_id in case_ids:
        case_rng = np.random.default_rng(rng.integers(2**63))
        folder = os.path.join(out_dir, case_id)
        paths = {kind: os.path.join(folder, f"{case_id}{suffix}.nii.gz") for kind, suffix in suffixes.items()}
        if all(os.path.exists(p) for p in paths.values()):
            continue
        os.makedirs(folder, exist_ok=True)
        volumes, label, _ = make_case(shape, case_rng)
        for modality, volume in volumes.items():
            data = np.round(volume).astype(np.int16) if dtype == "int16" else volume.astype(np.float32)
            nib.save(nib.Nifti1Image(data, affine), paths[modality])
        nib.save(nib.Nifti1Image(np.where(label == 4, enhancing, label).astype(np.uint8), affine), paths["seg"])
    return case_ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic BraTS-format case folders.")
    parser.add_argument("--out", required=True, help="folder that receives one sub-folder per case")
    parser.add_argument("--cases", type=int, default=4, help="number of cases (default %(default)s)")
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 48, 40), metavar=("X", "Y", "Z"),
                        help="voxels per axis (default %(default)s; 240 240 155 is BraTS size)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--dtype", choices=("int16", "float32"), default="int16",
                        help="modality voxel type (default %(default)s)")
    parser.add_argument("--scheme", choices=sorted(SCHEMES), default="2017",
                        help="BraTS naming: 2017 (Synth_001_flair...), 2021 (BraTS2021_00001_flair...), "
                             "2023 (BraTS-GLI-00001-000-t2f..., enhancing tumour = 3) (default %(default)s)")
    parser.add_argument("--names", default=None,
                        help="a case list (one id a line) naming the cases instead of --cases, e.g. "
                             "data_loading/reference_split/train.txt and test.txt concatenated")
    args = parser.parse_args(argv)
    if args.cases < 1 or min(args.shape) < 24:
        parser.error("--cases must be at least 1 and every --shape value at least 24")
    names = None
    if args.names:
        try:
            with open(args.names, encoding="utf-8-sig") as handle:
                names = [line.strip() for line in handle if line.strip()]
        except OSError as error:
            parser.error(f"--names={args.names}: {error.strerror}")
        if not names:
            parser.error(f"--names={args.names} lists no case")
    ids = write_dataset(args.out, args.cases, args.shape, args.seed, args.dtype, case_ids=names, scheme=args.scheme)
    print(f"{len(ids)} synthetic cases of shape {tuple(args.shape)} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
