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
"""Multi-page TIFF stacks as NumPy arrays (Pillow only, no checks beyond decoding).

The checks a user's file must pass live in :mod:`data_loading.readers`; this
module has no other dependency so that the synthetic generator's CLI runs on
its own.
"""

import os
import warnings

import numpy as np
from PIL import Image, ImageSequence


def read_pages(path):
    """Decode every page of a TIFF file.

    Returns:
      ``(format, pages)``: Pillow's format name ("TIFF", "PNG"...) and a list
      of ``(mode, array)`` per page, ``array`` of shape (H, W) or (H, W, C).
    Raises:
      OSError / PIL.UnidentifiedImageError: the file cannot be decoded.
    """
    # A damaged file also draws Pillow warnings ("Corrupt EXIF data"); the
    # caller's one-line error says it better.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            pages = [(page.mode, np.array(page)) for page in ImageSequence.Iterator(image)]
            return image.format, pages


def write_stack(path, stack):
    """Write ``stack`` (N, H, W) uint8 as an N-page 8-bit grey TIFF, atomically.

    The pages go to ``path + '.part'`` first and are renamed into place, so an
    interrupted write never leaves a truncated stack under the real name.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.dtype != np.uint8:
        raise ValueError(f"expected an (N, H, W) uint8 stack, got {stack.shape} {stack.dtype}")
    pages = [Image.fromarray(page, mode="L") for page in stack]
    partial = path + ".part"
    pages[0].save(partial, format="TIFF", save_all=True, append_images=pages[1:])
    os.replace(partial, path)
