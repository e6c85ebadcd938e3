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
"""Every bad input of the data module and the flags gives one clear error."""

import os
import re
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common.errors import UserError
from common.stack import keras
from common.tests import processes
from data_loading import augment, decoding, folders, pipeline, synthetic

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Pillow's format per extension; a PNG named .txt and a TIFF are not images to Keras' directory reader.
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF", ".txt": "PNG",
                ".tif": "TIFF"}


@pytest.fixture()
def class_data(tmp_path, synthetic_root):
    root = tmp_path / "cls"
    shutil.copytree(synthetic_root / "cls", root)
    return root


def test_synthetic_folders_load_with_every_format(synthetic_root):
    dataset = folders.load_classification(str(synthetic_root / "cls" / "train"),
                                          str(synthetic_root / "cls" / "validation"))
    assert dataset.class_names == ["class_0", "class_1", "class_2", "class_3"]
    extensions = {os.path.splitext(p)[1] for p in dataset.train.paths}
    assert {".jpg", ".JPG", ".png", ".jpeg"} <= extensions
    modes = {Image.open(p).mode for p in dataset.train.paths}
    assert {"RGB", "RGBA", "L"} <= modes
    batch = next(iter(pipeline.eval_dataset(dataset.train.paths[:8], dataset.train.labels[:8],
                                            "classification", 48, 40, 8)))
    assert batch[0].shape == (8, 48, 40, 3)


def test_eval_folder_name_is_accepted(class_data):
    os.rename(class_data / "validation", class_data / "eval")
    assert folders.split_folders(str(class_data))[1].endswith("eval")


@pytest.mark.parametrize("damage,message", [
    (lambda root: shutil.rmtree(root / "train"), "missing folder"),
    (lambda root: shutil.rmtree(root / "validation"), r"missing folder .*validation"),
])
def test_missing_folders(class_data, damage, message):
    damage(class_data)
    with pytest.raises(UserError, match=message):
        folders.split_folders(str(class_data))


def test_no_classes_empty_class_and_different_classes(class_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no class folders"):
        folders.scan_class_folder(str(empty))
    for split in ("train", "validation"):
        (empty / split / "a").mkdir(parents=True)
        shutil.copy(class_data / "train" / "class_0" / "train_0003.png", empty / split / "a")
    with pytest.raises(UserError) as error:
        folders.load_classification(str(empty / "train"), str(empty / "validation"))
    assert str(error.value) == f"{empty / 'train'} has one class folder (a): classification needs at least two classes"
    (class_data / "train" / "class_9").mkdir()
    with pytest.raises(UserError, match="class_9 has no images"):
        folders.load_classification(str(class_data / "train"), str(class_data / "validation"))
    (class_data / "train" / "class_9" / "a.png").write_bytes(
        (class_data / "train" / "class_0" / "train_0003.png").read_bytes())
    # A validation folder with some of the classes is matched by name; one with a class training lacks is refused.
    dataset = folders.load_classification(str(class_data / "train"), str(class_data / "validation"))
    assert dataset.class_names[-1] == "class_9" and 4 not in dataset.validation.labels
    shutil.move(str(class_data / "train" / "class_9"), str(class_data / "validation" / "class_9"))
    with pytest.raises(UserError) as error:
        folders.load_classification(str(class_data / "train"), str(class_data / "validation"))
    assert str(error.value) == (f"{class_data / 'validation'} holds the class folders ['class_9'], which the model "
                                "does not have (its classes: ['class_0', 'class_1', 'class_2', 'class_3'])")


def test_class_folders_hold_every_image_below_them_as_keras_finds_them(tmp_path, capsys):
    root = tmp_path / "train"
    image = Image.new("RGB", (8, 8), "red")
    for relative in ("cat/a.png", "cat/B.JPG", "cat/2019/c.jpeg", "cat/2019/deep/d.bmp", "cat/2020/e.gif",
                     "dog/x.png", "dog/sub/y.PNG", "dog/sub/notes.txt", "dog/z.tif"):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format=SAVE_FORMATS[path.suffix.lower()])
    (root / "dog" / "linked").symlink_to(root / "cat" / "2019", target_is_directory=True)  # not followed
    split, names = folders.load_class_split(str(root))
    assert capsys.readouterr().out == (f"[data] {root}: 7 images in 2 classes (cat 5, dog 2); "
                                       "4 of them in sub-folders\n")
    keras_files = keras.utils.image_dataset_from_directory(str(root), shuffle=False, image_size=(8, 8)).file_paths
    assert names == ["cat", "dog"] and split.paths == keras_files and split.labels == [0] * 5 + [1] * 2


def _bad_files(folder):
    """A PNG with a bad IDAT CRC (Pillow reads it, TensorFlow does not), a truncated JPEG, a text file."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    image.save(folder / "bad_crc.png")
    png = bytearray((folder / "bad_crc.png").read_bytes())
    at = png.index(b"IDAT")
    png[at + 4 + int.from_bytes(png[at - 4:at], "big") + 3] ^= 0xFF  # last byte of the chunk's CRC
    (folder / "bad_crc.png").write_bytes(bytes(png))
    Image.open(folder / "bad_crc.png").load()  # the check this replaces passed it
    image.save(folder / "truncated.jpg")
    jpeg = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    (folder / "not_an_image.jpg").write_bytes(b"not an image at all")
    return [str(folder / name) for name in ("bad_crc.png", "truncated.jpg", "not_an_image.jpg")]


def test_bad_images_found_at_decode_time(class_data, tmp_path, capsys):
    bad = _bad_files(class_data / "train" / "class_1")
    # Listing the folders reads no image: the bad files are in the list.
    dataset = folders.load_classification(str(class_data / "train"), str(class_data / "validation"))
    assert set(bad) <= set(dataset.train.paths)
    paths = dataset.train.paths[:5] + bad
    stop = decoding.DecodeChecker()
    data = pipeline.TrainData(paths, list(range(len(paths))), "classification", 32, 32, 4, seed=0,
                              steps_per_epoch=2, cache_bytes=0, checker=stop)
    assert len([batch for batch in data.epoch(0)]) == 2  # the bad ones are left out of the batches
    with pytest.raises(UserError, match=r"^image .*(bad_crc.png|truncated.jpg|not_an_image.jpg) cannot be "
                                        r"decoded \(.+\) \(and 2 more\); .* --skip_bad_images"):
        stop.raise_if_bad()
    skip = decoding.DecodeChecker(skip_bad_images=True)
    data = pipeline.TrainData(paths, list(range(len(paths))), "classification", 32, 32, 4, seed=0,
                              steps_per_epoch=2, cache_bytes=10 ** 9, checker=skip)
    assert data.cached and len([batch for batch in data.epoch(0)]) == 2
    skip.raise_if_bad()
    skipped = dict(skip.take_skipped())
    assert sorted(skipped) == sorted(bad)
    # TensorFlow's message without its op name: "Invalid PNG data, size 3172", not "... [Op:DecodeImage] name:".
    assert re.fullmatch(r"Invalid PNG data, size \d+", skipped[bad[0]])
    assert skipped[bad[1]].endswith("Invalid JPEG data or crop window.")
    # Streamed, they are found again every epoch; what training prints at its end (training._end_epoch):
    data = pipeline.TrainData(paths, list(range(len(paths))), "classification", 32, 32, 4, seed=0,
                              steps_per_epoch=2, cache_bytes=0, checker=skip)
    list(data.epoch(1))
    skip.end_pass("epoch 2")
    out = capsys.readouterr().out
    assert "[data] epoch 2: skipped 3 images that do not decode:" in out
    assert all(f"[data]   {path}: " in out for path in bad)


def test_bad_image_stops_training_with_one_line(class_data, tmp_path, capsys):
    import main
    _bad_files(class_data / "train" / "class_2")
    run = ["--mode=train", f"--data_path={class_data}", "--class_number=0", "--height=32", "--width=32",
           "--alpha=0.5", "--batch_size=8", "--max_steps=1", "--epochs=1", f"--model_dir={tmp_path / 'run'}"]
    with pytest.raises(SystemExit) as stop:
        main.main(run)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: image {class_data / 'train' / 'class_2'}/") and "cannot be decoded" in err[-1]
    assert "Traceback" not in "".join(err)


def test_full_shuffle_visits_every_image_once_per_epoch(synthetic_root):
    dataset = folders.load_classification(str(synthetic_root / "cls" / "train"),
                                          str(synthetic_root / "cls" / "validation"))
    paths = dataset.train.paths[:24]
    streamed = pipeline.TrainData(paths, list(range(24)), "classification", 32, 32, 8, seed=2,
                                  steps_per_epoch=3, cache_bytes=0)
    cached = pipeline.TrainData(paths, list(range(24)), "classification", 32, 32, 8, seed=2,
                                steps_per_epoch=3)
    assert cached.cached and not streamed.cached
    orders = []
    for epoch in (0, 1):
        batches = list(streamed.epoch(epoch))
        order = np.concatenate([labels.numpy() for _, labels in batches])
        assert sorted(order) == list(range(24))
        orders.append(list(order))
        # Kept in memory or read from the files: the same batches.
        for (image, label), (cached_image, cached_label) in zip(batches, cached.epoch(epoch)):
            np.testing.assert_array_equal(label.numpy(), cached_label.numpy())
            np.testing.assert_allclose(image.numpy(), cached_image.numpy(), atol=1e-3)
    assert orders[0] != orders[1]


def test_training_boxes_of_a_200x100_image_come_from_the_full_resolution_decode(tmp_path):
    # Noise: every box is a different patch, so a box cut from a smaller or squashed copy would not match.
    pixels = np.random.default_rng(0).integers(0, 255, (100, 200, 3), dtype=np.uint8)
    for name in ("wide.jpg", "wide.png"):
        Image.fromarray(pixels).save(tmp_path / name, quality=95)
        contents = tf.io.read_file(str(tmp_path / name))
        whole = tf.io.decode_image(contents, channels=3).numpy()
        aspects = []
        for seed in range(12):
            crop, begin, size = decoding.decode_random_box(contents, tf.constant([seed, 7]), 64, 64)
            (top, left, _), (height, width, _) = begin.numpy(), size.numpy()
            np.testing.assert_array_equal(crop.numpy(), whole[top:top + height, left:left + width])
            # The range of the drawn box (TensorFlow rounds its sides to whole pixels).
            assert 3 / 4 - 1 / height <= width / height <= 4 / 3 + 1 / height
            assert 0.08 <= height * width / (100 * 200) <= 1.0
            aspects.append(width / height)
        assert max(aspects) - min(aspects) > 0.2  # the aspect is drawn, not the image's 2:1 squashed
    # No box of aspect 3/4-4/3 covers 8% of a 10x1000 strip: the evaluation's centre box instead.
    begin, size = augment.random_box(tf.constant([10, 1000, 3]), tf.constant([0, 1]), 64, 64)
    centre_begin, centre_size = augment.centre_box(tf.constant([10, 1000, 3]), 64, 64)
    np.testing.assert_array_equal(begin, centre_begin)
    np.testing.assert_array_equal(size, centre_size)
    assert size.numpy()[:2].tolist() == [9, 9] and begin.numpy()[:2].tolist() == [0, 495]


def _graph_ops(dataset):
    """The op types of a tf.data pipeline's graph, its map functions' bodies included."""
    graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def test_no_python_on_the_image_path(synthetic_root):
    dataset = folders.load_classification(str(synthetic_root / "cls" / "train"),
                                          str(synthetic_root / "cls" / "validation"))
    python_ops = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
    streamed = pipeline.TrainData(dataset.train.paths, dataset.train.labels, "classification", 32, 32, 4,
                                  seed=0, steps_per_epoch=2, cache_bytes=0)
    ops = _graph_ops(streamed.dataset(0, 1))
    assert {"DecodeAndCropJpeg", "ExtractJpegShape", "DecodeImage"} <= ops and not ops & python_ops
    cached = pipeline.TrainData(dataset.train.paths, dataset.train.labels, "classification", 32, 32, 4,
                                seed=0, steps_per_epoch=2)
    assert cached.cached and not _graph_ops(cached.dataset(0, 1)) & python_ops
    evaluation = pipeline.eval_dataset(dataset.validation.paths, dataset.validation.labels, "classification",
                                       32, 32, 4)
    assert "DecodeImage" in _graph_ops(evaluation.data) and not _graph_ops(evaluation.data) & python_ops


def test_segmentation_errors(tmp_path, synthetic_root):
    root = tmp_path / "seg"
    shutil.copytree(synthetic_root / "seg", root)
    train, val = str(root / "train"), str(root / "validation")
    dataset = folders.load_segmentation(train, val, 3)
    assert len(dataset.train.paths) == 24
    # Mask values are checked when the pipeline decodes the masks (with or without --skip_bad_images).
    checker = decoding.DecodeChecker(skip_bad_images=True)
    list(pipeline.eval_dataset(dataset.validation.paths[:2], dataset.validation.labels[:2], "segmentation",
                               32, 32, 2, checker=checker, num_classes=2))
    with pytest.raises(UserError, match=r"^mask .*validation/masks/000[01].png has values \[2\] outside 0..1 "
                                        r"\(and 255 = ignore\); check --class_number$"):
        checker.raise_if_bad()
    Image.new("L", (10, 10)).save(root / "train" / "masks" / "0000.png")
    with pytest.raises(UserError, match="is 10x10 but its image"):
        folders.load_segmentation(train, val, 3)
    Image.new("RGB", (64, 64)).save(root / "train" / "masks" / "0000.png")
    with pytest.raises(UserError, match="single-channel PNG"):
        folders.load_segmentation(train, val, 3)
    os.remove(root / "train" / "masks" / "0000.png")
    with pytest.raises(UserError, match=r"images without a mask \['0000'\]"):
        folders.load_segmentation(train, val, 3)
    shutil.rmtree(root / "validation" / "masks")
    with pytest.raises(UserError, match="missing folder .*masks"):
        folders.load_segmentation(None, val, 3)


def test_training_box_is_resized_and_mirrored_at_random_without_rotation():
    # Noise, so a shifted or resampled-twice image would not match.
    crop = tf.constant(np.random.default_rng(1).integers(0, 255, (90, 70, 3), dtype=np.uint8))
    resized = tf.image.resize(crop, (32, 32), antialias=True).numpy()
    mirrored = []
    for seed in range(8):
        seeds = tf.random.experimental.stateless_split(tf.constant([seed, 5]), 8)
        image = augment.augment(crop, seeds, 32, 32, augment.Augmentation(color_jitter=0.0)).numpy()
        mirrored.append(np.array_equal(image, resized[:, ::-1]))
        assert mirrored[-1] or np.array_equal(image, resized)
    assert 0 < sum(mirrored) < len(mirrored)


def test_training_and_evaluation_resample_with_one_filter():
    # 1-pixel black and white stripes shrunk 25x: an antialiased filter gives even grey in both; plain
    # bilinear (training's filter before) gave neighbouring pixels 255 grey levels apart.
    stripes = tf.constant(np.tile(np.array([0, 255], np.uint8)[None, :, None], (800, 400, 3)))
    seeds = tf.random.experimental.stateless_split(tf.constant([0, 5]), 8)
    trained = augment.augment(stripes, seeds, 32, 32, augment.Augmentation(color_jitter=0.0)).numpy()
    evaluated = augment.resize_centre_crop(stripes, 32, 32).numpy()
    for image in (trained, evaluated):
        assert np.abs(np.diff(image, axis=1)).max() < 2 and abs(image.mean() - 127.5) < 1


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_inception_colour_distortion_has_tf_slims_ranges(strength):
    # A grey image: saturation leaves it alone, so each image moves by its brightness delta, at most
    # 32/255 x strength (TF-slim's max_delta=32/255), both ways.
    grey = tf.fill([8, 8, 3], 100.0)
    shifts = []
    for seed in range(40):
        seeds = tf.random.experimental.stateless_split(tf.constant([seed, 1]), 4)
        image = augment.colour(grey, seeds, "inception", strength).numpy()
        assert np.ptp(image) < 1e-3
        shifts.append(float(image[0, 0, 0]) - 100.0)
    assert max(np.abs(shifts)) <= 32 * strength + 1e-3 and min(shifts) < -8 * strength < 8 * strength < max(shifts)
    # Saturation x[0.5, 1.5] of a coloured pixel: its spread around grey changes by at most that factor.
    pixel = tf.constant([[[120.0, 100.0, 80.0]]])
    for seed in range(20):
        seeds = tf.random.experimental.stateless_split(tf.constant([seed, 2]), 4)
        spread = np.ptp(augment.colour(pixel, seeds, "inception", strength).numpy())
        assert (1 - 0.5 * strength) * 40 - 1e-3 <= spread <= (1 + 0.5 * strength) * 40 + 1e-3
    assert augment.colour(pixel, seeds, "inception", 0.0) is pixel


@pytest.mark.parametrize("max_rotation", [0.0, 10.0])
def test_segmentation_augmentation_keeps_image_and_mask_aligned(synthetic_root, max_rotation):
    dataset = folders.load_segmentation(str(synthetic_root / "seg" / "train"),
                                        str(synthetic_root / "seg" / "validation"), 3)
    data = pipeline.TrainData(dataset.train.paths[:4], dataset.train.labels[:4], "segmentation",
                              64, 64, 4, seed=3, steps_per_epoch=1,
                              augmentation=augment.Augmentation(max_rotation=max_rotation))
    images, masks = next(iter(data.epoch(0)))
    assert images.shape == (4, 64, 64, 3) and masks.shape == (4, 64, 64)
    masks = masks.numpy()
    assert set(np.unique(masks)) <= {0, 1, 2, 255}
    # Shapes are saturated colours on grey: coloured pixels must be labelled as shapes.
    saturation = images.numpy().max(-1) - images.numpy().min(-1)
    labelled = masks[saturation > 120]
    assert np.mean((labelled > 0)) > 0.9
    again, _ = next(iter(data.epoch(0)))
    np.testing.assert_array_equal(images.numpy(), again.numpy())


def _palette_pairs(root, count=2, size=32):
    """``root/{train,validation}/{images,masks}`` with palette ("P") masks of indices 0, 1, 2 and 255."""
    indices = np.zeros((size, size), np.uint8)
    indices[:, size // 3:] = 1
    indices[:, 2 * size // 3:] = 2
    indices[0] = 255
    # VOC-like colours: a grey decoder would read index 1 as 76 and 2 as 149.
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0, 0, 0] * 252 + [255, 255, 255]
    for split in ("train", "validation"):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (size, size), (90, 120, 150)).save(root / split / "images" / f"{index}.png")
            mask = Image.new("P", (size, size))
            mask.putpalette(palette)
            mask.putdata(indices.ravel().tolist())
            mask.save(root / split / "masks" / f"{index}.png")
    return root


def test_palette_masks_give_their_indices(tmp_path):
    root = _palette_pairs(tmp_path)
    mask_file = root / "validation" / "masks" / "0.png"
    assert Image.open(mask_file).mode == "P"
    assert set(np.unique(tf.io.decode_png(mask_file.read_bytes(), channels=1))) == {0, 76, 149, 255}
    dataset = folders.load_segmentation(str(root / "train"), str(root / "validation"), 3)
    _, masks = next(iter(pipeline.eval_dataset(dataset.validation.paths, dataset.validation.labels,
                                               "segmentation", 32, 32, 2)))
    assert masks.shape == (2, 32, 32) and set(np.unique(masks)) == {0, 1, 2, 255}
    data = pipeline.TrainData(dataset.train.paths, dataset.train.labels, "segmentation", 32, 32, 2,
                              seed=0, steps_per_epoch=1)
    # A random box may miss a stripe: the values of a few epochs' boxes.
    values = set()
    for epoch in range(4):
        _, masks = next(iter(data.epoch(epoch)))
        assert masks.shape == (2, 32, 32)
        values |= set(np.unique(masks))
    assert {1, 2} <= values <= {0, 1, 2, 255}


def _main(args, env):
    return processes.run([sys.executable, "main.py", *args], cwd=MODEL_DIR, env=env,
                         capture_output=True, text=True, timeout=300)


@pytest.mark.subprocess
def test_cli_user_errors_are_one_line(tmp_path, synthetic_root, python_env):
    result = _main([f"--data_path={synthetic_root / 'cls'}", "--class_number=7", "--mode=train",
                    f"--modeldir={tmp_path}"], python_env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: class_number=7 but ")
    assert "Traceback" not in result.stderr
    result = _main(["--max_rotation=-5"], python_env)
    assert (result.returncode, result.stderr) == (2, "error: --max_rotation=-5.0 must be in [0, 180] degrees\n")
    result = _main(["--color_jitter=3"], python_env)
    assert (result.returncode, result.stderr) == (
        2, "error: --color_jitter=3.0 must be in [0, 2] (0 = no colour distortion)\n")
    result = _main(["--height=abc"], python_env)
    assert (result.returncode, result.stderr) == (2, "error: argument --height: invalid int value: 'abc' (see --help)\n")


@pytest.mark.subprocess
def test_synthetic_cli(tmp_path, python_env):
    processes.run([sys.executable, "-m", "data_loading.synthetic", f"--output={tmp_path}",
                   "--task=segmentation", "--classes=3", "--train_per_class=1", "--validation_per_class=1"],
                  cwd=MODEL_DIR, env=python_env, check=True, capture_output=True, timeout=300)
    assert len(os.listdir(tmp_path / "train" / "masks")) == 3
    assert synthetic.write_classification(str(tmp_path / "c"), classes=2, train_per_class=2,
                                          validation_per_class=1) == ["class_0", "class_1"]


def test_resumed_epoch_sees_the_same_batches(synthetic_root):
    dataset = folders.load_classification(str(synthetic_root / "cls" / "train"),
                                          str(synthetic_root / "cls" / "validation"))
    data = pipeline.TrainData(dataset.train.paths, dataset.train.labels, "classification", 48, 48, 8,
                              seed=1, steps_per_epoch=4)
    full = [(x.numpy(), y.numpy()) for x, y in data.epoch(2)]
    resumed = [(x.numpy(), y.numpy()) for x, y in data.epoch(2, skip_batches=2)]
    assert len(full) == 4 and len(resumed) == 2
    for (x, y), (rx, ry) in zip(full[2:], resumed):
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
    other = next(iter(data.epoch(3)))[1].numpy()
    assert not np.array_equal(other, full[0][1])


def test_one_pipeline_for_the_run_gives_each_epochs_batches(synthetic_root):
    # The run's stream from batch 2 (a resumed run) to the end of epoch 2: epoch 0 from its third batch, then
    # epochs 1 and 2 whole, each as its own epoch's pipeline gives it (order and augmentation).
    dataset = folders.load_classification(str(synthetic_root / "cls" / "train"),
                                          str(synthetic_root / "cls" / "validation"))
    data = pipeline.TrainData(dataset.train.paths[::8], dataset.train.labels[::8], "classification", 32, 32, 4,
                              seed=2, steps_per_epoch=3, cache_bytes=0)
    run = [(x.numpy(), y.numpy()) for x, y in data.batches(2, 3)]
    epochs = [(x.numpy(), y.numpy()) for epoch in range(3) for x, y in data.epoch(epoch)]
    assert len(run) == 7 and len(epochs) == 9
    for (x, y), (ex, ey) in zip(run, epochs[2:]):
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
