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
"""Case discovery, split, checks, loading, patch sampling, N4 and the synthetic generator."""

import hashlib
import os
import shutil

import nibabel as nib
import numpy as np
import pytest

from common.errors import UserError
from conftest import write_reoriented_case
from data_loading import cases, checks, n4_correction, nifti, patches, preprocessing, split, synthetic

# SHA-256 of the reference's case lists as shipped in ../shared/reference/densenet3d_split/.
REFERENCE_LIST_SHA256 = {
    "train.txt": "951954be82c38e3d4dc1d9f53c301721a99237f7e0f675cc70996d13303ce91f",
    "test.txt": "61b2099695ac0378a8fac74162fb89de4ebdb27226819b85c42f9ff513eda5d5",
    "val.txt": "abe9302f5d6102879fb7003477adb982021a644a826dcccf4260839f90c5c7e8",
}


def _copy_case(root, case_id, dest_root, new_id=None, suffix=".nii.gz"):
    """Copy one case, optionally renaming it (BraTS 2020 style) or writing uncompressed .nii."""
    new_id = new_id or case_id
    folder = os.path.join(dest_root, new_id)
    os.makedirs(folder)
    for kind in cases.FILE_KINDS:
        image = nib.load(os.path.join(root, case_id, f"{case_id}_{kind}.nii.gz"))
        nib.save(image, os.path.join(folder, f"{new_id}_{kind}{suffix}"))
    return folder


def test_discovery_by_suffix_for_later_releases_and_plain_nii(synthetic_root, tmp_path):
    _copy_case(synthetic_root, "Synth_001", tmp_path, "BraTS20_Training_001")
    _copy_case(synthetic_root, "Synth_002", tmp_path, "Other_case", suffix=".nii")
    (tmp_path / ".ipynb_checkpoints").mkdir()  # hidden: not case-like
    kept, found, left_out = cases.discover_cases(str(tmp_path))
    assert found.startswith("BraTS 2018-2021 naming (_flair/_t1/_t1ce/_t2/_seg; enhancing tumour = label 4)")
    assert [c.case_id for c in kept] == ["BraTS20_Training_001", "Other_case"] and left_out == []
    assert kept[1].path("t1").endswith("Other_case_t1.nii")
    assert kept[0].path("t1ce").endswith("_t1ce.nii.gz") and kept[0].path("t1").endswith("_t1.nii.gz")
    (tmp_path / "notes").mkdir()
    with pytest.raises(UserError, match="no case folders"):
        cases.discover_cases(str(tmp_path / "notes"))


def test_every_case_like_folder_left_out_is_named_with_its_reason(synthetic_root, tmp_path):
    """An empty folder, an emptied case (a half-finished unzip), a missing modality (named with the
    case's own extension) and, for training, a missing label: named, then a stop or, with
    --skip_bad_cases, left out before the split; never a silent drop."""
    for case_id in ("Synth_001", "Synth_002", "Synth_003"):
        _copy_case(synthetic_root, case_id, tmp_path)
    _copy_case(synthetic_root, "Synth_004", tmp_path, suffix=".nii")
    (tmp_path / "Synth_000").mkdir()
    for name in os.listdir(tmp_path / "Synth_002"):
        os.remove(tmp_path / "Synth_002" / name)
    os.remove(tmp_path / "Synth_003" / "Synth_003_seg.nii.gz")
    os.remove(tmp_path / "Synth_004" / "Synth_004_t1.nii")
    lines = []
    with pytest.raises(UserError, match=r"^4 of 5 case folders in .* are not complete cases .*--skip_bad_cases"):
        cases.discover_cases(str(tmp_path), log=lines.append)
    assert lines == [f"bad case Synth_000: {tmp_path}/Synth_000: no NIfTI file (.nii.gz or .nii) of any modality",
                     f"bad case Synth_002: {tmp_path}/Synth_002: no NIfTI file (.nii.gz or .nii) of any modality",
                     f"bad case Synth_003: {tmp_path}/Synth_003/Synth_003_seg.nii.gz: missing",
                     f"bad case Synth_004: {tmp_path}/Synth_004/Synth_004_t1.nii: missing"]
    lines.clear()
    kept, _, left_out = cases.discover_cases(str(tmp_path), skip_bad_cases=True, log=lines.append)
    assert [c.case_id for c in kept] == ["Synth_001"] and left_out == ["Synth_000", "Synth_002", "Synth_003",
                                                                       "Synth_004"]
    assert lines[-1] == "left out 4 case folder(s) (--skip_bad_cases): Synth_000, Synth_002, Synth_003, Synth_004"
    # Prediction needs no label: the case without one is a case.
    kept, _, left_out = cases.discover_cases(str(tmp_path), skip_bad_cases=True, need_label=False,
                                             log=lines.append)
    assert [c.case_id for c in kept] == ["Synth_001", "Synth_003"]


def test_the_2017_2021_and_2023_naming_schemes_are_told_apart_and_never_mixed(tmp_path):
    shape = (24, 24, 24)
    synthetic.write_dataset(str(tmp_path / "2017"), 0, shape, case_ids=["Brats17_TCIA_105_1"])
    synthetic.write_dataset(str(tmp_path / "2021"), 1, shape, scheme="2021")
    synthetic.write_dataset(str(tmp_path / "2023"), 1, shape, scheme="2023")
    found = {year: cases.discover_cases(str(tmp_path / year)) for year in ("2017", "2021", "2023")}
    assert found["2017"][1].startswith("BraTS 2017 naming")
    assert found["2021"][1].startswith("BraTS 2018-2021 naming") and found["2021"][0][0].case_id == "BraTS2021_00001"
    assert found["2023"][1] == ("BraTS 2023 naming (-t2f/-t1n/-t1c/-t2w/-seg; enhancing tumour = label 3), 1 cases")
    case = found["2023"][0][0]
    assert case.path("flair").endswith("BraTS-GLI-00001-000-t2f.nii.gz") and case.path("t1ce").endswith("-t1c.nii.gz")
    assert checks.check_case(case) == []
    on_disk = np.asanyarray(nib.load(case.path("seg")).dataobj)
    loaded = nifti.load_case(case)
    assert set(np.unique(on_disk)) == {0, 1, 2, 3} and set(np.unique(loaded.label)) == {0, 1, 2, 4}
    np.testing.assert_array_equal(cases.to_file_labels(loaded.label, case), on_disk)
    # A 4 in a 2023 label file is an error; one folder holds one release.
    _save_like(case.path("seg"), np.where(on_disk == 3, 4, on_disk).astype(np.uint8), case.path("seg"))
    assert "label values [4] outside {0, 1, 2, 3} (BraTS 2023)" in checks.check_case(case)[0]
    for other in ("2017", "2023"):
        shutil.copytree(tmp_path / other, tmp_path / "2021", dirs_exist_ok=True)
        with pytest.raises(UserError, match="mixes naming schemes"):
            cases.discover_cases(str(tmp_path / "2021"))
        shutil.rmtree(tmp_path / "2021" / found[other][0][0].case_id)


def test_case_lists_tolerate_blank_lines_and_missing_final_newline(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("case_a\n\n  case_b  \n# comment\ncase_c")
    assert split.read_case_list(str(path)) == ["case_a", "case_b", "case_c"]
    path.write_bytes(b"\xef\xbb\xbfcase_a\r\ncase_b\r\n")  # saved by a Windows editor
    assert split.read_case_list(str(path)) == ["case_a", "case_b"]


def test_split_from_lists_seeded_and_written(tmp_path):
    ids = [f"c{i:02d}" for i in range(10)]
    data_root, model_dir = tmp_path / "data", tmp_path / "model"
    data_root.mkdir()
    train, test, where = split.split_cases(ids, str(data_root), str(model_dir), seed=3)
    assert len(train) == 8 and len(test) == 2 and not set(train) & set(test)
    assert split.read_case_list(str(model_dir / "test.txt")) == test
    again = split.split_cases(ids, str(data_root), str(tmp_path / "other"), seed=3)
    assert again[:2] == (train, test)
    # A later run in the same model_dir reuses its lists; lists in the data folder win over both.
    assert split.split_cases(ids, str(data_root), str(model_dir), seed=99)[:2] == (train, test)
    (data_root / "test.txt").write_text("c01\nc02")
    train, test, where = split.split_cases(ids, str(data_root), str(model_dir), seed=3)
    assert test == ["c01", "c02"] and len(train) == 8 and "test.txt" in where
    (data_root / "test.txt").write_text("c01\nnot_a_case\n")
    with pytest.raises(UserError, match="test.txt.*not_a_case"):
        split.split_cases(ids, str(data_root), str(model_dir), seed=3)
    (data_root / "test.txt").write_text("c01\nc02\nc01\n")
    with pytest.raises(UserError, match="test.txt: case.s. listed twice: c01"):
        split.split_cases(ids, str(data_root), str(model_dir), seed=3)
    (data_root / "test.txt").write_text("c01\nc02\n")
    (data_root / "train.txt").write_text("c02\nc03\nc04\n")
    with pytest.raises(UserError, match="train.txt and .*test.txt share case.s.: c02"):
        split.split_cases(ids, str(data_root), str(model_dir), seed=3)


def test_reference_split_used_by_itself_on_a_folder_of_its_210_cases(tmp_path):
    from data_loading import run_data
    from runtime import flags

    train_ids, test_ids = split.reference_split()
    assert len(train_ids) == 168 and len(test_ids) == 42 and len(set(train_ids + test_ids)) == 210
    root, run = tmp_path / "HGG", tmp_path / "run"
    synthetic.write_dataset(str(root), 0, (24, 24, 24), case_ids=train_ids + test_ids)
    args = flags.parse_args(["-r", str(root), "--mode", "test", "--model_dir", str(run), "-nc", "False"])
    lines = []
    data = run_data.prepare_data(args, ctx=None, log=lines.append)
    assert [case.case_id for case in data.test_cases] == test_ids
    assert lines[0].endswith("HGG: BraTS 2017 naming (_flair/_t1/_t1ce/_t2/_seg; enhancing tumour = label 4), "
                             "210 cases"), lines
    assert lines[1].startswith("[data] 168 training and 42 test cases from the reference split ("), lines
    # The run folder records it; later runs there say it is still the reference split.
    assert split.read_case_list(str(run / "test.txt")) == test_ids
    assert split.split_cases(train_ids + test_ids, str(root), str(run), seed=0)[2].endswith(
        "(the reference split)")
    # 207 of its cases: the reference lists without the three missing, named, with what remains.
    missing = [train_ids[0], train_ids[100], test_ids[41]]
    present = [case_id for case_id in train_ids + test_ids if case_id not in missing]
    train, test, where = split.split_cases(present, str(root), str(tmp_path / "run2"), seed=0)
    assert train == train_ids[1:100] + train_ids[101:] and test == test_ids[:41]
    assert where == (f"the reference split ({split.REFERENCE_SPLIT_DIR}/train.txt, test.txt; without the 3 "
                     f"of its cases missing here: {', '.join(sorted(missing))}; 166 of its 168 training and 41 of "
                     "its 42 test cases remain)")
    assert split.split_cases(present, str(root), str(tmp_path / "run2"), seed=0)[2].endswith(
        "(the reference split without 3 of its cases)")
    # A folder with none of them (not BraTS 2017's HGG) gets the seeded split.
    assert split.split_cases(["a", "b"], str(root), str(tmp_path / "run3"), seed=0)[2].startswith(
        "a seeded 80% split")
    # The shipped lists are the reference's (../shared/reference/densenet3d_split/), byte for byte.
    for name, digest in REFERENCE_LIST_SHA256.items():
        with open(os.path.join(split.REFERENCE_SPLIT_DIR, name), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest, name


def _save_like(path, data, reference):
    nib.save(nib.Nifti1Image(data, nib.load(reference).affine), path)


def test_every_kind_of_bad_case_is_named_with_its_file(synthetic_root, tmp_path):
    make = {name: _copy_case(synthetic_root, "Synth_001", tmp_path / name, "Synth_001")
            for name in ("missing", "shape", "dims", "nan", "labels", "spacing", "origin", "constant", "good",
                         "flair_shape", "flair_origin")}
    os.remove(os.path.join(make["missing"], "Synth_001_t1ce.nii.gz"))
    t2 = os.path.join(make["shape"], "Synth_001_t2.nii.gz")
    _save_like(t2, np.arange(40 * 40 * 30, dtype=np.int16).reshape(40, 40, 30), t2)
    flair = os.path.join(make["dims"], "Synth_001_flair.nii.gz")
    _save_like(flair, np.zeros((40, 40, 36, 2), np.int16), flair)
    t1 = os.path.join(make["nan"], "Synth_001_t1.nii.gz")
    values = np.asanyarray(nib.load(t1).dataobj).astype(np.float32)
    values[3, 3, 3] = np.nan
    _save_like(t1, values, t1)
    seg = os.path.join(make["labels"], "Synth_001_seg.nii.gz")
    label = np.asanyarray(nib.load(seg).dataobj).copy()
    label[label == 4] = 3
    _save_like(seg, label, seg)
    seg = os.path.join(make["spacing"], "Synth_001_seg.nii.gz")
    image = nib.load(seg)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine @ np.diag([1.0, 1.0, 2.0, 1.0])), seg)
    t1 = os.path.join(make["origin"], "Synth_001_t1.nii.gz")
    image = nib.load(t1)
    moved = image.affine.copy()
    moved[:3, 3] += (0.0, 0.5, 0.0)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), moved), t1)
    # A bad FLAIR (the first file read) is named itself, not the four files that agree with each other.
    flair = os.path.join(make["flair_shape"], "Synth_001_flair.nii.gz")
    _save_like(flair, np.arange(40 * 40 * 30, dtype=np.int16).reshape(40, 40, 30), flair)
    flair = os.path.join(make["flair_origin"], "Synth_001_flair.nii.gz")
    nib.save(nib.Nifti1Image(np.asanyarray(nib.load(flair).dataobj), moved), flair)
    t1ce = os.path.join(make["constant"], "Synth_001_t1ce.nii.gz")
    _save_like(t1ce, np.zeros((40, 40, 36), np.int16), t1ce)
    expected = {"missing": ("Synth_001_t1ce.nii.gz", "missing"), "shape": ("Synth_001_t2.nii.gz", "differs"),
                "spacing": ("Synth_001_seg.nii.gz",
                            "spacing (1.0, 1.0, 2.0) differs from the flair, t1, t1ce, t2 volumes' (1.0, 1.0, 1.0)"),
                "origin": ("Synth_001_t1.nii.gz",
                           "origin (0.0, 239.5, 0.0) differs from the flair, t1ce, t2, seg volumes' (0.0, 239.0, 0.0)"),
                "flair_shape": ("Synth_001_flair.nii.gz",
                                "shape (40, 40, 30) differs from the t1, t1ce, t2, seg volumes' (40, 40, 36)"),
                "flair_origin": ("Synth_001_flair.nii.gz",
                                 "origin (0.0, 239.5, 0.0) differs from the t1, t1ce, t2, seg volumes'"),
                "constant": ("Synth_001_t1ce.nii.gz", "every voxel is 0: an empty or constant t1ce volume"),
                "dims": ("Synth_001_flair.nii.gz", "4-D"), "nan": ("Synth_001_t1.nii.gz", "NaN"),
                "labels": ("Synth_001_seg.nii.gz", "[3]")}
    for name, (filename, problem) in expected.items():
        problems = checks.check_case(cases.scan_case(make[name]))
        assert len(problems) == 1 and filename in problems[0] and problem in problems[0], (name, problems)
    scanned = [cases.scan_case(make[name]) for name in ("good", "labels")]
    lines = []
    with pytest.raises(UserError, match="--skip_bad_cases"):
        checks.check_cases(scanned, skip_bad_cases=False, log=lines.append)
    assert len(lines) == 1 and "Synth_001_seg.nii.gz" in lines[0]
    kept = checks.check_cases(scanned, skip_bad_cases=True, log=lines.append)
    assert kept == scanned[:1] and "skipped 1" in lines[-1]


# Axes permuted (y, x, z), the new second (the old first) and the third flipped: LPS becomes PRI.
PERMUTED_AND_FLIPPED = np.array([[1, -1], [0, 1], [2, -1]])


def test_a_case_stored_in_another_orientation_is_read_in_the_networks_voxel_order(synthetic_root, tmp_path):
    source = os.path.join(synthetic_root, "Synth_001")
    stretched = write_reoriented_case(source, str(tmp_path / "stretched" / "Synth_001"),
                                      np.array([[0, 1], [1, 1], [2, 1]]), scale=(1.0, 1.5, 2.0))
    moved = write_reoriented_case(source, str(tmp_path / "moved" / "Synth_001"), PERMUTED_AND_FLIPPED,
                                  scale=(1.0, 1.5, 2.0))
    assert nib.aff2axcodes(nib.load(os.path.join(moved, "Synth_001_flair.nii.gz")).affine) != nifti.NETWORK_AXCODES
    original, reoriented = (nifti.load_case(cases.scan_case(folder)) for folder in (stretched, moved))
    np.testing.assert_array_equal(reoriented.image, original.image)
    np.testing.assert_array_equal(reoriented.label, original.label)
    assert reoriented.spacing == original.spacing == (1.0, 1.5, 2.0)
    # Back in the file's own voxel order: the seg file as stored.
    stored = np.asanyarray(nib.load(os.path.join(moved, "Synth_001_seg.nii.gz")).dataobj)
    np.testing.assert_array_equal(nifti.to_file_order(reoriented.label, reoriented.orientation), stored)
    assert not checks.check_case(cases.scan_case(moved))


def test_a_case_whose_orientation_cannot_be_handled_is_one_line(synthetic_root, tmp_path):
    folder = _copy_case(synthetic_root, "Synth_001", tmp_path)
    for kind in cases.FILE_KINDS:
        path = os.path.join(folder, f"Synth_001_{kind}.nii.gz")
        image = nib.load(path)
        flat = image.affine.copy()
        flat[:3, 2] = 0.0  # no third axis: only an sform can say so (nibabel refuses such a qform)
        written = nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine)
        written.set_qform(None, code=0)
        written.set_sform(flat, code=1)
        nib.save(written, path)
    problems = checks.check_case(cases.scan_case(folder))
    assert len(problems) == 5 and all("its affine has no orientation" in p for p in problems), problems
    with pytest.raises(UserError, match="no orientation"):
        nifti.load_case(cases.scan_case(folder))


def test_a_4d_volume_with_a_last_axis_of_1_is_read_as_3d(synthetic_root, tmp_path):
    folder = _copy_case(synthetic_root, "Synth_003", tmp_path)
    for kind in ("flair", "seg"):
        path = os.path.join(folder, f"Synth_003_{kind}.nii.gz")
        image = nib.load(path)
        nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj)[..., None], image.affine), path)
    case = cases.scan_case(folder)
    assert checks.check_case(case) == []
    loaded = nifti.load_case(case)
    assert loaded.image.shape == (40, 40, 36, 4) and loaded.label.shape == (40, 40, 36)


def test_normalise_as_the_reference_and_with_a_zero_background():
    volume = np.zeros((6, 6, 6), np.int16)
    volume[1:5, 1:5, 1:5] = np.arange(64).reshape(4, 4, 4) + 10
    brain = volume != 0
    # The reference's formula: (image - mean) / std of the non-zero voxels, over the whole volume, in float64.
    values = volume[brain].astype(np.float64)
    expected = ((volume - values.mean()) / values.std()).astype(np.float32)
    out, background = preprocessing.normalise(volume)
    np.testing.assert_array_equal(out, expected)
    assert background == np.float32(-values.mean() / values.std()) and (out[~brain] == background).all()
    zero, background = preprocessing.normalise(volume, "zero_background")
    np.testing.assert_array_equal(zero[brain], expected[brain])
    assert background == 0.0 and (zero[~brain] == 0).all()
    np.testing.assert_array_equal(preprocessing.head_mask(np.stack([out, zero], -1), [out[0, 0, 0], 0.0]), brain)


def test_load_case_channel_order_and_geometry(synthetic_root, tmp_path):
    folder = _copy_case(synthetic_root, "Synth_002", tmp_path)
    reference = os.path.join(folder, "Synth_002_flair.nii.gz")
    # Give each modality a different constant inside a cube; after z-scoring
    # they would all look alike, so mark the channels by where the cube is.
    for offset, kind in enumerate(cases.IMAGE_KINDS):
        volume = np.zeros((40, 40, 36), np.float32)
        volume[offset:offset + 10, :10, :10] = np.linspace(1, 2, 1000).reshape(10, 10, 10)
        _save_like(os.path.join(folder, f"Synth_002_{kind}.nii.gz"), volume, reference)
    loaded = nifti.load_case(cases.scan_case(folder))
    assert loaded.image.shape == (40, 40, 36, 4) and loaded.image.dtype == np.float32
    firsts = [int(np.argwhere(loaded.image[..., c] != loaded.background[c])[:, 0].min()) for c in range(4)]
    order = [cases.IMAGE_KINDS[i] for i in firsts]
    assert order == ["flair", "t2", "t1", "t1ce"]
    np.testing.assert_array_equal(loaded.affine, synthetic.case_affine())
    assert loaded.spacing == (1.0, 1.0, 1.0) and set(np.unique(loaded.label)) <= {0, 1, 2, 4}


def test_patch_corners_stay_inside_and_hit_tumour():
    rng = np.random.default_rng(0)
    label = np.zeros((50, 50, 40), np.uint8)
    label[20:25, 22:26, 18:22] = 2
    brain = np.zeros_like(label, bool)
    brain[5:45, 2:48, 3:38] = True
    corners = patches.sample_patch_corners(label, brain, 20, 30, (38, 38, 38), rng)
    assert corners.shape == (50, 3)
    assert (corners >= 0).all() and (corners + 38 <= np.array(label.shape)).all()
    centre_hits = [label[x + 13:x + 25, y + 13:y + 25, z + 13:z + 25].any() for x, y, z in corners]
    assert sum(centre_hits) >= 20  # each tumour centre lies in its patch's labelled centre
    # Distinct centres, as the reference draws them: all 80 tumour voxels for 80 tumour centres.
    corners = patches.sample_patch_corners(label, brain, 80, 0, (12, 12, 12), rng)
    assert len({tuple(c) for c in corners}) == 80


def test_reference_batches_of_one_case_clamp_the_last():
    np.testing.assert_array_equal(patches.reference_batch_order(5, 2), [0, 1, 2, 3, 3, 4])
    np.testing.assert_array_equal(patches.reference_batch_order(4, 2), [0, 1, 2, 3])
    assert patches.steps_per_epoch(3, 5, 2, "reference") == 9 and patches.steps_per_epoch(3, 5, 2, "mixed") == 7


def test_patch_dataset_shapes_determinism_and_one_load_per_case_and_epoch(synthetic_root):
    found = cases.discover_cases(synthetic_root)[0][:3]
    loads = []

    def load_fn(index):
        loads.append(index)
        loaded = nifti.load_case(found[index])
        return loaded.image, loaded.label, loaded.background

    def epoch_batches(epoch, sampling="mixed"):
        dataset = patches.patch_dataset(load_fn, len(found), num_tumour=3, num_background=3,
                                        patch_size=(38, 38, 38), label_size=(12, 12, 12), batch_size=4,
                                        seed=5, epoch=epoch, sampling=sampling)
        return [(x.numpy(), y.numpy()) for x, y in dataset]

    first = epoch_batches(0)
    assert len(first) == 18 // 4 and sorted(loads) == [0, 1, 2]
    images, labels = first[0]
    assert images.shape == (4, 38, 38, 38, 4) and labels.shape == (4, 12, 12, 12)
    assert set(np.unique(np.concatenate([y for _, y in first]))) <= {0, 1, 2, 4}
    again = epoch_batches(0)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = epoch_batches(1)
    assert not np.array_equal(first[0][0], other[0][0])
    # A run continued at step 2 of the epoch (after a kill) gets the batches the first run would have.
    dataset = patches.patch_dataset(load_fn, len(found), num_tumour=3, num_background=3, patch_size=(38, 38, 38),
                                    label_size=(12, 12, 12), batch_size=4, seed=5, epoch=0, sampling="mixed").skip(2)
    for (x1, y1), (x2, y2) in zip(first[2:], dataset):
        np.testing.assert_array_equal(x1, x2.numpy())
        np.testing.assert_array_equal(y1, y2.numpy())


def test_reference_sampling_keeps_each_cases_patches_in_its_own_batches(synthetic_root):
    found = cases.discover_cases(synthetic_root)[0][:3]
    loaded = [nifti.load_case(case) for case in found]

    def load_fn(index):  # case i's values moved to around 1000 i, so that each patch tells its case
        case = loaded[index]
        return case.image + 1000.0 * index, case.label, case.background + 1000.0 * index

    dataset = patches.patch_dataset(load_fn, len(found), num_tumour=3, num_background=2, patch_size=(38, 38, 38),
                                    label_size=(12, 12, 12), batch_size=2, seed=5, epoch=0)
    batches = [x.numpy() for x, _ in dataset]
    # 5 patches a case: 3 batches each (the last repeats a patch), one case's in a row, 9 in the epoch.
    assert len(batches) == 9 == patches.steps_per_epoch(3, 5, 2, "reference")
    cases_of_batches = [sorted({int(round(patch.mean() / 1000)) for patch in batch}) for batch in batches]
    order = np.random.default_rng([5, 0]).permutation(3).tolist()
    assert cases_of_batches == [[index] for index in order for _ in range(3)]


def test_synthetic_case_format(synthetic_root):
    case = cases.scan_case(os.path.join(synthetic_root, "Synth_003"))
    assert checks.check_case(case) == []
    assert nib.load(case.path("t1")).get_data_dtype() == np.int16
    assert nib.load(case.path("seg")).get_data_dtype() == np.uint8
    label = np.asanyarray(nib.load(case.path("seg")).dataobj)
    assert set(np.unique(label)) == {0, 1, 2, 4}


def test_n4_reduces_a_known_bias_field():
    volumes, _, _ = synthetic.make_case((48, 48, 40), np.random.default_rng(0), with_bias=False)
    clean = volumes["t1"]
    biased = clean * synthetic.bias_field(clean.shape, np.random.default_rng(6))
    corrected = n4_correction.correct_array(biased)
    brain = clean > 0
    spread_before = np.log(biased[brain] / clean[brain]).std()
    spread_after = np.log(corrected[brain] / clean[brain]).std()
    assert spread_after < 0.6 * spread_before, (spread_before, spread_after)
    assert (corrected[~brain] == 0).all()


def test_n4_cache_beside_the_data_and_reused(synthetic_root, tmp_path):
    _copy_case(synthetic_root, "Synth_004", tmp_path)
    case = cases.scan_case(str(tmp_path / "Synth_004"))
    lines = []
    paths = n4_correction.correct_cases([case], str(tmp_path / "cache"), workers=1, log=lines.append)
    target = os.path.join(case.folder, "Synth_004_flair_corrected.nii.gz")
    assert paths["Synth_004"]["flair"] == target and os.path.exists(target)
    # The corrected files are not mistaken for modalities.
    assert cases.scan_case(case.folder).files["flair"] == [case.path("flair")]
    mtime = os.path.getmtime(target)
    lines.clear()
    n4_correction.correct_cases([case], str(tmp_path / "cache"), workers=1, log=lines.append)
    assert lines == [] and os.path.getmtime(target) == mtime
    # Another source under the same name (new data, same case ids) is corrected again, that modality only.
    os.utime(case.path("flair"), ns=(1, 1))
    n4_correction.correct_cases([case], str(tmp_path / "cache"), workers=1, log=lines.append)
    assert lines[-1] == "[n4] wrote 1 corrected volumes"


def test_n4_cache_default_is_a_per_user_folder_outside_every_run(tmp_path):
    from runtime import flags

    first = flags.default_n4_cache_dir(str(tmp_path / "HGG"), env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert first.startswith(str(tmp_path / "cache" / "densenet3d_n4" / "HGG-"))
    assert flags.default_n4_cache_dir(str(tmp_path / "HGG"), env={"XDG_CACHE_HOME": str(tmp_path / "cache")}) == first
    assert flags.default_n4_cache_dir(str(tmp_path / "other" / "HGG"), env={}) != first
    args = flags.parse_args(["-r", str(tmp_path / "HGG"), "--model_dir", str(tmp_path / "run")])
    assert not args.n4_cache_dir.startswith(str(tmp_path / "run"))


def test_n4_cache_folder_when_data_is_read_only(synthetic_root, tmp_path, monkeypatch):
    _copy_case(synthetic_root, "Synth_005", tmp_path)
    case = cases.scan_case(str(tmp_path / "Synth_005"))
    # Tests run as root, for whom every folder is writable: pretend this one is not.
    monkeypatch.setattr(n4_correction.os, "access", lambda path, mode: path != case.folder)
    path = n4_correction.corrected_path(case, "t2", str(tmp_path / "cache"))
    assert path == str(tmp_path / "cache" / "Synth_005" / "Synth_005_t2_corrected.nii.gz")


@pytest.mark.parametrize("content, message", [(None, "No such file or directory"), ("\n", "lists no case")])
def test_synthetic_names_list_that_cannot_be_read_is_one_line(tmp_path, capsys, content, message):
    names = tmp_path / "names.txt"
    if content is not None:
        names.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--out", str(tmp_path / "data"), "--names", str(names)])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: --names={names}" in last and last.endswith(message)  # prog is pytest's here
