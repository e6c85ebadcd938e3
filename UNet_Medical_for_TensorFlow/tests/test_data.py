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
"""Data: reader checks, fold partition, overlap tiles, augmentation, pipeline, synthetic stacks."""

import collections
import io
import os
import shutil
import struct
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageSequence

from common.errors import UserError
from data_loading import augment, folds, pipeline, readers, synthetic, tiff, tiles
from model import unet


def test_synthetic_stacks_are_valid_isbi(isbi_dir):
    data = readers.read_isbi(isbi_dir)
    assert len(data.images) == len(data.test_images) == 10
    assert data.images[0].shape == (64, 64) and data.images[0].dtype == np.uint8
    cell = np.mean(data.labels)
    assert 0.5 < cell < 0.95  # both classes, mostly cell like ISBI
    # Learnable: membranes are darker than cells.
    images, labels = np.stack(data.images), np.stack(data.labels)
    assert images[labels == 0].mean() + 40 < images[labels == 1].mean()


def test_synthetic_cli(tmp_path):
    assert synthetic.main(["--data_dir", str(tmp_path), "--slices", "2", "--size", "32"]) == 0
    assert readers.read_stack(str(tmp_path / "test-volume.tif"), "test").shape == (2, 32, 32)


def _copy_isbi(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in readers.ISBI_FILES.values():
        with open(os.path.join(src, name), "rb") as f_in, open(os.path.join(dst, name), "wb") as f_out:
            f_out.write(f_in.read())
    return dst


def _break(directory, name, how):
    path = os.path.join(directory, name)
    if how == "missing":
        os.remove(path)
    elif how == "garbage":
        with open(path, "wb") as handle:
            handle.write(b"not an image at all")
    elif how == "rgb":
        pages = [Image.fromarray(np.zeros((64, 64, 3), np.uint8))] * 2
        pages[0].save(path, save_all=True, append_images=pages[1:])
    elif how == "fewer_slices":
        tiff.write_stack(path, readers.read_stack(path, "x")[:3])
    elif how == "grey_labels":
        tiff.write_stack(path, np.full((10, 64, 64), 100, np.uint8))
    elif how == "one_class":
        tiff.write_stack(path, np.full((10, 64, 64), 255, np.uint8))
    elif how == "png":
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(path, format="PNG")
    return path


@pytest.mark.parametrize("name,how,expected", [
    ("train-volume.tif", "missing", "file not found"),
    ("train-labels.tif", "missing", "file not found"),
    ("test-volume.tif", "missing", "file not found"),
    ("train-volume.tif", "garbage", "cannot be decoded"),
    ("train-labels.tif", "rgb", "expected 8-bit grey"),
    ("train-labels.tif", "fewer_slices", "expected the same"),
    ("train-labels.tif", "grey_labels", "neither 0 nor 255"),
    ("train-labels.tif", "one_class", "expected both classes"),
    ("test-volume.tif", "png", "expected a multi-page TIFF"),
])
def test_reader_errors_name_the_file(isbi_dir, tmp_path, name, how, expected):
    directory = _copy_isbi(isbi_dir, str(tmp_path / "data"))
    path = _break(directory, name, how)
    with pytest.raises(UserError) as error:
        readers.read_dataset(directory)
    message = str(error.value)
    assert path in message and expected in message and "\n" not in message


def test_read_dataset_rejects_missing_folder(tmp_path):
    with pytest.raises(UserError, match="folder not found"):
        readers.read_dataset(str(tmp_path / "nowhere"))


def test_prediction_alone_reads_only_the_test_images(isbi_dir, tmp_path):
    isbi = tmp_path / "isbi"
    isbi.mkdir()
    shutil.copy(os.path.join(isbi_dir, "test-volume.tif"), isbi)
    data = readers.read_dataset(str(isbi), need_train=False)
    assert (data.images, data.labels, len(data.test_images)) == ([], [], 10)
    with pytest.raises(UserError, match="train-volume.tif: file not found"):
        readers.read_dataset(str(isbi))
    own = tmp_path / "own"
    synthetic.write_own_data_folder(str(own), slices=5, size=32)
    shutil.rmtree(own / "images")
    shutil.rmtree(own / "masks")
    data = readers.read_dataset(str(own), need_train=False)
    assert (data.source, data.images, len(data.test_images), data.test_names[0]) == ("folder", [], 1, "000.png")


def test_folder_dataset(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for index in range(3):
        Image.fromarray(np.full((40, 48), 10 * index, np.uint8)).save(tmp_path / "images" / f"s{index}.png")
        Image.fromarray((np.arange(48)[None].repeat(40, 0) % 3).astype(np.uint8)).save(
            tmp_path / "masks" / f"s{index}.png")
    data = readers.read_dataset(str(tmp_path), n_classes=3)
    assert data.source == "folder" and len(data.images) == 3 and data.labels[0].max() == 2
    with pytest.raises(UserError, match="--n_classes=2"):
        readers.read_dataset(str(tmp_path), n_classes=2)
    os.remove(tmp_path / "masks" / "s1.png")
    with pytest.raises(UserError, match="s1.png: file not found"):
        readers.read_dataset(str(tmp_path), n_classes=3)


def test_folds_partition_the_30_slices():
    validations = []
    for fold in range(folds.NUM_FOLDS):
        train, validation = folds.fold_split(30, fold, seed=0)
        assert len(validation) == 6 and len(train) == 24
        assert not set(train) & set(validation)
        validations.extend(validation)
    assert sorted(validations) == list(range(30))
    assert folds.fold_split(30, None, seed=0) == (list(range(30)), [])
    assert folds.fold_split(30, 2, seed=1) != folds.fold_split(30, 2, seed=0)
    with pytest.raises(UserError, match="crossvalidation_idx=5 must be in 0..4"):
        folds.fold_split(30, 5, seed=0)


def nvidia_fold(length, fold, seed, ratio=0.8):
    """NVIDIA's TF2 UNet_Medical ``Dataset._get_val_train_indices`` as it is written there."""
    np.random.seed(seed)
    indices = np.arange(0, length, 1, dtype=int)
    np.random.shuffle(indices)
    indices = collections.deque(indices)
    indices.rotate(fold * int((1.0 - ratio) * length))
    indices = np.array(indices)
    return indices[:int(ratio * len(indices))], indices[int(ratio * len(indices)):]


@pytest.mark.parametrize("length,seed", [(30, 0), (30, 3), (10, 0), (17, 5)])
def test_nvidia_fold_scheme_is_nvidias_formula(length, seed):
    for fold in range(folds.NUM_FOLDS):
        train, validation = nvidia_fold(length, fold, seed)
        # Validation in NVIDIA's order: its evaluation batches follow it.
        assert folds.fold_split(length, fold, seed, scheme="nvidia") == (sorted(train), validation.tolist())
    assert folds.fold_split(length, None, seed, scheme="nvidia") == (list(range(length)), [])


def test_nvidia_folds_of_isbi_overlap_and_leave_four_slices_out():
    validations = [folds.fold_split(30, fold, seed=0, scheme="nvidia")[1] for fold in range(folds.NUM_FOLDS)]
    assert sorted(validations[0]) == [0, 3, 12, 15, 21, 25]
    assert all(len(v) == 6 for v in validations)
    assert sorted(set(range(30)) - set(sum(validations, []))) == [2, 10, 13, 28]


def test_window_starts_cover_and_overlap_evenly():
    assert tiles.window_starts(512, 388) == [0, 124]
    assert tiles.window_starts(388, 388) == [0]
    starts = tiles.window_starts(1000, 300)
    assert starts[0] == 0 and starts[-1] == 700 and len(starts) == 4


def test_tiled_prediction_with_known_answer():
    """A 'network' that returns its tile's centre reproduces the image exactly after stitching."""
    tile, out = 20, 8
    margin = (tile - out) // 2
    image = np.random.default_rng(0).normal(size=(29, 37)).astype(np.float32)

    def centre(batch):
        return batch[:, margin:margin + out, margin:margin + out, :]

    np.testing.assert_allclose(tiles.predict_tiled(centre, image, tile, out, batch_size=3)[..., 0], image,
                               rtol=1e-6)


def test_tiled_prediction_equals_one_pass_when_the_image_fits_one_tile():
    model = unet.build_unet(base_filters=2, tile_size=220)
    out = unet.output_size(220)
    image = tiles.normalize(np.random.default_rng(1).integers(0, 256, (out, out)).astype(np.float32))

    def probabilities(batch):
        return tf.nn.softmax(model(batch, training=False)).numpy()

    stitched = tiles.predict_tiled(probabilities, image, 220, out)
    padded = tiles.mirror_pad(image, (220 - out) // 2)[None, ..., None]
    np.testing.assert_allclose(stitched, probabilities(padded)[0], rtol=1e-5, atol=1e-6)


def test_augmentation_moves_image_and_label_together():
    rng = np.random.default_rng(0)
    labels = (rng.random((8, 8)) > 0.5).astype(np.int32).repeat(8, 0).repeat(8, 1)
    onehot = tf.one_hot(labels, 2)
    image = tf.cast(onehot[..., 1:] * 2 - 1, tf.float32)  # the image is the label
    changed = 0
    for stream in range(8):
        new_image, new_onehot = augment.augment(image, onehot, tf.constant([0, stream], tf.int64))
        agree = np.mean((new_image[..., 0].numpy() > 0) == (new_onehot[..., 1].numpy() > 0.5))
        assert agree > 0.97
        changed += not np.array_equal(new_onehot.numpy(), onehot.numpy())
    assert changed >= 6


def test_train_dataset_shapes_determinism_and_alignment(isbi_dir):
    data = readers.read_isbi(isbi_dir)
    tile, out = 220, 36

    def first_batch(seed, rank_id=0, use_augment=True):
        dataset = pipeline.train_dataset(data.images, data.labels, tile, out, 2, batch_size=2, seed=seed,
                                         augment=use_augment, rank_id=rank_id)
        return [t.numpy() for t in next(iter(dataset))]

    images, labels = first_batch(0)
    assert images.shape == (2, tile, tile, 1) and labels.shape == (2, out, out, 2)
    assert images.min() >= -1 and images.max() <= 1
    np.testing.assert_array_equal(labels.sum(-1), 1)
    again = first_batch(0)
    np.testing.assert_array_equal(images, again[0])
    assert not np.array_equal(images, first_batch(1)[0])
    assert not np.array_equal(images, first_batch(0, rank_id=1)[0])
    # Without augmentation the label window is exactly the centre of a slice's tile:
    # the dark membrane pixels of the image are the class-0 pixels of the label.
    images, labels = first_batch(3, use_augment=False)
    margin = (tile - out) // 2
    centre = images[:, margin:margin + out, margin:margin + out, 0]
    assert centre[labels[..., 0] == 1].mean() < centre[labels[..., 1] == 1].mean() - 0.3


def test_train_dataset_resumed_at_step_s_continues_the_stream(isbi_dir):
    """Batches of a stream started at batch S are batches S, S+1, ... of the stream started at 0."""
    data = readers.read_isbi(isbi_dir)
    start, count = 3, 2

    def batches(start_batch, take):
        dataset = pipeline.train_dataset(data.images, data.labels, 188, 4, 2, batch_size=2, seed=5, augment=True,
                                         start_batch=start_batch)
        return [[t.numpy() for t in batch] for batch in dataset.take(take)]

    fresh, resumed = batches(0, start + count), batches(start, count)
    for expected, actual in zip(fresh[start:], resumed):
        np.testing.assert_array_equal(expected[0], actual[0])
        np.testing.assert_array_equal(expected[1], actual[1])
    assert not np.array_equal(fresh[0][0], resumed[0][0])


def test_palette_masks_are_read_as_class_indices(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    indices = (np.arange(48)[None].repeat(40, 0) // 16).astype(np.uint8)  # classes 0, 1, 2
    Image.fromarray(np.full((40, 48), 128, np.uint8)).save(tmp_path / "images" / "a.png")
    mask = Image.fromarray(indices, mode="P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])  # black, red, green: colours unlike the indices
    mask.save(tmp_path / "masks" / "a.png")
    assert Image.open(tmp_path / "masks" / "a.png").mode == "P"
    data = readers.read_dataset(str(tmp_path), n_classes=3)
    np.testing.assert_array_equal(data.labels[0], indices)
    with pytest.raises(UserError, match="holds class 2 but --n_classes=2"):
        readers.read_dataset(str(tmp_path), n_classes=2)
    # Images stay 8-bit grey only.
    mask.save(tmp_path / "images" / "a.png")
    with pytest.raises(UserError, match=r"images/a.png: page 0 has Pillow mode 'P'; expected 8-bit grey \('L'\)$"):
        readers.read_dataset(str(tmp_path), n_classes=3)


def test_nvidia_resize_path_on_hand_made_arrays():
    padded = tiles.resize_and_pad(np.ones((4, 4), np.float32), out=2, tile=6)
    expected = np.zeros((6, 6), np.float32)
    expected[2:4, 2:4] = 1
    np.testing.assert_allclose(padded, expected)
    halves = np.array([[0, 0, 1, 1]] * 4)
    np.testing.assert_array_equal(tiles.resize_labels(halves, 2, 2), [[0, 1], [0, 1]])
    # NVIDIA thresholds the resized 0/1 labels at 0.5 with 0.5 itself cell (class 1).
    np.testing.assert_array_equal(tiles.resize_labels(np.array([[0, 1], [0, 1]]), 2, 1), [[1]])


def _flip_set(stack):
    return {stack.tobytes(), stack[::-1].tobytes(), stack[:, ::-1].tobytes(), stack[::-1, ::-1].tobytes()}


def test_default_augmentation_is_nvidia_set_without_rotations_or_elastic():
    """nvidia: the crop is always on and nothing rotates; full: rotations appear."""
    assert augment.CROP_PROBABILITY == {"nvidia": 1.0, "full": 0.5}
    assert flags_defaults()["augment_set"] == "nvidia"
    labels = np.zeros((16, 16), np.int32)
    labels[:, :4] = 1  # a band on the left: a rotation moves it to the top or bottom
    onehot = tf.one_hot(labels, 2)
    image = tf.zeros((16, 16, 1))
    rows_hit = {"nvidia": 0, "full": 0}
    for augment_set in rows_hit:
        for stream in range(12):
            _, out = augment.augment(image, onehot, tf.constant([0, stream], tf.int64), augment_set)
            band = out[..., 1].numpy() > 0.5
            rows_hit[augment_set] += bool(band.all(axis=1).any())  # a full row of band: rotated
    assert rows_hit["nvidia"] == 0 and rows_hit["full"] > 0


def flags_defaults():
    from runtime import flags
    return vars(flags.parse_args([]))


def test_truncated_tiff_is_one_line(isbi_dir, tmp_path):
    directory = _copy_isbi(isbi_dir, str(tmp_path / "data"))
    path = os.path.join(directory, "train-volume.tif")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
    with pytest.raises(UserError) as error:
        readers.read_dataset(directory)
    # Pillow's layout: each page's directory, then its pixels; the half cut falls just before page 6's directory.
    assert str(error.value) == (f"{path}: the directory of page 6 (bytes 21128-21130) lies beyond the end of the "
                                f"file, which has {len(data) // 2} bytes; the file is cut short or damaged "
                                "(expected every page it promises)")


def imagej_layout_tiff(stack):
    """An 8-bit (N, H, W) stack as a TIFF laid out as ImageJ writes the ISBI stacks: the pixels of every page
    first, all page directories after them (the layout whose cut Pillow reads as a shorter stack)."""
    pages, height, width = stack.shape
    pixels_at, first_directory = 8, 8 + stack.nbytes
    directory_size = 2 + 9 * 12 + 4
    header = struct.pack("<2sHI", b"II", 42, first_directory)
    directories = b""
    for page in range(pages):
        entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
                   (273, 4, pixels_at + page * height * width), (277, 3, 1), (278, 4, height),
                   (279, 4, height * width)]
        following = first_directory + (page + 1) * directory_size if page + 1 < pages else 0
        directories += struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries) + struct.pack("<I", following)
    return header + stack.tobytes() + directories, first_directory


def _pillow_page_count(path):
    """Pages Pillow's iterator yields without any check of ours; None when Pillow refuses the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Corrupt EXIF data" on most cuts
        try:
            with Image.open(path) as image:
                return sum(1 for _ in ImageSequence.Iterator(image))
        except (OSError, ValueError, SyntaxError, TypeError, struct.error):
            return None


def test_a_stack_cut_anywhere_in_its_page_directories_is_refused(tmp_path):
    """Pillow reads the ImageJ layout cut inside its trailing directories as fewer pages and no error."""
    stack = synthetic.synthetic_stack(30, 16, seed=0)[0]
    data, first_directory = imagej_layout_tiff(stack)
    path = str(tmp_path / "test-volume.tif")
    with open(path, "wb") as handle:
        handle.write(data)
    assert np.array_equal(readers.read_stack(path, "the test slices"), stack)
    silently_shorter = 0  # cuts that Pillow alone reads as a stack of fewer pages
    for cut in range(first_directory + 1, len(data)):
        with open(path, "wb") as handle:
            handle.write(data[:cut])
        with pytest.raises(tiff.IncompleteTiff, match="lies beyond the end of the file"):
            tiff.count_pages(path)
        silently_shorter += _pillow_page_count(path) in range(1, 30)
    print(f"Pillow alone: {silently_shorter} of {len(data) - first_directory - 1} cuts read as fewer pages")
    assert silently_shorter > 0  # what the check is there for (1160 of 3419 cuts with Pillow 13.0)
    with pytest.raises(UserError) as error:
        readers.read_stack(path, "the test slices")
    assert str(error.value).startswith(f"{path}: the directory of page 30 (bytes ") and "\n" not in str(error.value)


def test_a_pillow_stack_cut_inside_any_directory_is_refused(tmp_path):
    """The synthetic writer's layout (Pillow's: each directory before its page's pixels), cut inside each
    directory of three pages: always one line naming the file."""
    path = str(tmp_path / "train-labels.tif")
    tiff.write_stack(path, synthetic.synthetic_stack(30, 16, seed=0)[1])
    data = open(path, "rb").read()
    offsets, offset = [], struct.unpack_from("<I", data, 4)[0]
    while offset:
        offsets.append(offset)
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * struct.unpack_from("<H", data, offset)[0])[0]
    assert len(offsets) == 30
    for directory in (offsets[1], offsets[14], offsets[29]):
        for cut in range(directory, directory + 2 + 12 * 9 + 4):
            with open(path, "wb") as handle:
                handle.write(data[:cut])
            with pytest.raises(UserError) as error:
                readers.read_stack(path, "the training labels")
            assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def test_float_stacks_round_trip_and_bigtiff_counts(tmp_path):
    path = str(tmp_path / "probabilities.tif")
    stack = np.random.default_rng(0).uniform(0, 1, (3, 5, 7)).astype(np.float32)
    tiff.write_stack(path, stack)
    file_format, pages = tiff.read_pages(path)
    assert file_format == "TIFF" and [mode for mode, _ in pages] == ["F"] * 3
    assert np.array_equal(np.stack([page for _, page in pages]), stack) and pages[0][1].dtype == np.float32
    with pytest.raises(ValueError, match="uint8 or float32"):
        tiff.write_stack(path, stack.astype(np.float64))


def test_tiff_whose_damaged_header_claims_billions_of_pixels_is_one_line(tmp_path):
    """Pillow raises DecompressionBombError (no OSError) for such a header; found by damaging bytes at random."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format="TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(struct.unpack_from("<H", data, ifd)[0]):
        offset = ifd + 2 + 12 * entry
        if struct.unpack_from("<H", data, offset)[0] in (256, 257):  # ImageWidth, ImageLength (LONG)
            struct.pack_into("<I", data, offset + 8, 60000)
    path = tmp_path / "train-volume.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as error:
        readers.read_stack(str(path), "the training slices")
    assert str(error.value).startswith(f"{path}: cannot be decoded as an image (Image size (3600000000 pixels) "
                                       "exceeds limit")
