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
"""Synthetic datasets in the real file formats, for tests and the quickstart.

Classification: ``<out>/{train,validation}/class_<k>/`` JPEGs (a few PNGs, RGBA
and grey images and upper-case extensions mixed in) where each class has its
own shape, texture and colour on a noisy background. Segmentation:
``<out>/{train,validation}/{images,masks}/`` with shapes on a textured
background; the mask holds the shape's class (1..C-1), 0 for background and
255 (ignore) on a thin ring around each shape.

    python3 -m data_loading.synthetic --output DIR [--task segmentation] [--classes 4]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("disc", "square", "triangle", "cross", "ring", "bar")
PALETTE = ((220, 40, 40), (40, 170, 40), (40, 70, 220), (230, 200, 30), (200, 40, 200), (30, 200, 200))


def _draw_shape(draw, shape, box, fill):
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "disc":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == "cross":
        t = (x1 - x0) / 6
        draw.rectangle((cx - t, y0, cx + t, y1), fill=fill)
        draw.rectangle((x0, cy - t, x1, cy + t), fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(2, int((x1 - x0) / 5)))
    else:
        draw.rectangle((x0, cy - (y1 - y0) / 6, x1, cy + (y1 - y0) / 6), fill=fill)


def _background(rng, size, texture):
    """Noisy grey background; class textures add stripes or a checkerboard."""
    base = rng.uniform(90, 160) + rng.normal(0, 12, (size, size, 1))
    image = np.repeat(base, 3, axis=2)
    y, x = np.mgrid[:size, :size]
    if texture == 1:
        image += 30 * ((x // 4) % 2)[..., None]
    elif texture == 2:
        image += 30 * (((x // 6) + (y // 6)) % 2)[..., None]
    return image


def class_image(rng: np.random.Generator, label: int, size: int) -> Image.Image:
    """One RGB uint8 image of class ``label``: its shape, texture and colour."""
    image = _background(rng, size, label % 3)
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    extent = rng.uniform(0.45, 0.75) * size
    x0, y0 = rng.uniform(0, size - extent, 2)
    colour = tuple(int(np.clip(c + rng.normal(0, 15), 0, 255)) for c in PALETTE[label % len(PALETTE)])
    _draw_shape(draw, SHAPES[label % len(SHAPES)], (x0, y0, x0 + extent, y0 + extent), colour)
    return canvas


def _save_variant(image, path_stem, index):
    """Save mostly JPEG; every 7th as RGBA PNG, every 11th grey, every 5th upper-case extension."""
    if index % 7 == 3:
        image.convert("RGBA").save(path_stem + ".png")
    elif index % 11 == 5:
        image.convert("L").save(path_stem + ".jpeg", quality=92)
    else:
        image.save(path_stem + (".JPG" if index % 5 == 1 else ".jpg"), quality=92)


def write_classification(output: str, classes: int = 4, train_per_class: int = 40, validation_per_class: int = 10,
                         size: int = 64, seed: int = 0) -> list[str]:
    """Write ``output/{train,validation}/class_<k>/`` images; skip when ``output/train`` exists.

    Returns:
      The class folder names.
    """
    names = [f"class_{k}" for k in range(classes)]
    if os.path.isdir(os.path.join(output, "train")):
        return names
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("validation", validation_per_class)):
        for label, name in enumerate(names):
            folder = os.path.join(output, split, name)
            os.makedirs(folder, exist_ok=True)
            for index in range(count):
                _save_variant(class_image(rng, label, size), os.path.join(folder, f"{split}_{index:04d}"), index)
    return names


def segmentation_pair(rng: np.random.Generator, classes: int, size: int) -> tuple[Image.Image, Image.Image]:
    """An RGB image and its uint8 mask: 1-3 shapes of classes 1..classes-1."""
    image = Image.fromarray(np.clip(_background(rng, size, 2), 0, 255).astype(np.uint8))
    mask = Image.new("L", (size, size), 0)
    draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(rng.integers(1, 4)):
        label = int(rng.integers(1, classes))
        extent = rng.uniform(0.25, 0.5) * size
        x0, y0 = rng.uniform(0, size - extent, 2)
        box = (x0, y0, x0 + extent, y0 + extent)
        shape = SHAPES[(label - 1) % len(SHAPES)]
        # A 255 outline marks the uncertain boundary as ignored, then the shape on top.
        draw_mask.rectangle((x0 - 1, y0 - 1, x0 + extent + 1, y0 + extent + 1), outline=255)
        _draw_shape(draw_image, shape, box, PALETTE[(label - 1) % len(PALETTE)])
        _draw_shape(draw_mask, shape, box, label)
    return image, mask


def write_segmentation(output: str, classes: int = 3, train_count: int = 48, validation_count: int = 12,
                       size: int = 64, seed: int = 0) -> None:
    """Write ``output/{train,validation}/{images,masks}/``; skip when ``output/train`` exists."""
    if os.path.isdir(os.path.join(output, "train")):
        return
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_count), ("validation", validation_count)):
        os.makedirs(os.path.join(output, split, "images"), exist_ok=True)
        os.makedirs(os.path.join(output, split, "masks"), exist_ok=True)
        for index in range(count):
            image, mask = segmentation_pair(rng, classes, size)
            image.save(os.path.join(output, split, "images", f"{index:04d}.jpg"), quality=95)
            mask.save(os.path.join(output, split, "masks", f"{index:04d}.png"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="folder to write train/ and validation/ into")
    parser.add_argument("--task", choices=("classification", "segmentation"), default="classification")
    parser.add_argument("--classes", type=int, default=4,
                        help="classes (segmentation: including background 0) (default %(default)s)")
    parser.add_argument("--train_per_class", type=int, default=40,
                        help="training images per class; segmentation writes this x classes pairs "
                             "(default %(default)s)")
    parser.add_argument("--validation_per_class", type=int, default=10,
                        help="the same for validation (default %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.task == "classification":
        write_classification(args.output, args.classes, args.train_per_class,
                             args.validation_per_class, args.size, args.seed)
    else:
        write_segmentation(args.output, args.classes, args.train_per_class * args.classes,
                           args.validation_per_class * args.classes, args.size, args.seed)
    print(f"synthetic {args.task} data in {args.output}")


if __name__ == "__main__":
    main()
