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
"""Multi-page TIFF stacks as NumPy arrays: whole or refused, written atomically (Pillow and the standard library).

Pillow reads a stack whose page directories were cut off at the end of the
file as a shorter stack, without an error (a cut ImageJ stack, whose
directories follow the image data, loses its last pages). :func:`count_pages`
walks the directory chain itself, so a page that the file promises but does
not hold is an error. The checks of a user's file (modes, sizes, labels) live
in :mod:`data_loading.readers`; this module has no other dependency so that
the synthetic generator's CLI runs on its own.
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np
from PIL import Image, ImageSequence


# Bytes per value of each TIFF field type (TIFF 6.0 section 2, BigTIFF's 16-18).
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
INTEGER_CODES = {3: "H", 4: "I", 13: "I", 16: "Q"}  # the types that offsets and byte counts come in
# (offsets tag, byte counts tag) of the two ways a page stores its pixels: strips and tiles.
PIXEL_DATA_TAGS = ((273, 279), (324, 325))
# Classic TIFF (magic 42): 4-byte offsets, 2-byte entry count; BigTIFF (43): 8 and 8.
LAYOUTS = {42: {"offset": "I", "count": "H", "header": 8}, 43: {"offset": "Q", "count": "Q", "header": 16}}


class IncompleteTiff(ValueError):
    """A TIFF file that does not hold every page its directories promise (cut short or damaged)."""


def _need(data, start, length, what):
    """Raise IncompleteTiff unless ``data[start:start + length]`` lies inside the file."""
    if start + length > len(data):
        raise IncompleteTiff(f"{what} (bytes {start}-{start + length}) lies beyond the end of the file, "
                             f"which has {len(data)} bytes")


def _directory(data, order, layout, offset, page):
    """Entries ``{tag: (type, count, value offset)}`` of the directory at ``offset`` and the next one's offset."""
    what = f"the directory of page {page + 1}"
    count_size, offset_size = struct.calcsize(layout["count"]), struct.calcsize(layout["offset"])
    entry_size = 4 + 2 * offset_size  # tag, type, count, value (or its offset)
    _need(data, offset, count_size, what)
    (count,) = struct.unpack_from(order + layout["count"], data, offset)
    first = offset + count_size
    _need(data, offset, count_size + count * entry_size + offset_size, what)
    entries = {}
    for at in range(first, first + count * entry_size, entry_size):
        tag, kind, values = struct.unpack_from(order + "HH" + layout["offset"], data, at)
        value_at = at + 4 + offset_size
        size = TYPE_SIZES.get(kind, 1) * values
        if size > offset_size:  # too long to sit in the entry: the entry holds where it is
            (value_at,) = struct.unpack_from(order + layout["offset"], data, value_at)
            _need(data, value_at, size, f"tag {tag} of page {page + 1}")
        entries[tag] = (kind, values, value_at)
    (next_offset,) = struct.unpack_from(order + layout["offset"], data, first + count * entry_size)
    return entries, next_offset


def _integers(data, order, entry, what):
    """The values of an entry of offsets or byte counts (already checked to lie inside the file)."""
    kind, count, value_at = entry
    if kind not in INTEGER_CODES:
        raise IncompleteTiff(f"{what} has field type {kind}; expected an integer type")
    return struct.unpack_from(f"{order}{count}{INTEGER_CODES[kind]}", data, value_at)


def _check_pixel_data(data, order, entries, page):
    """Every strip or tile of the page must lie inside the file."""
    for offsets_tag, counts_tag in PIXEL_DATA_TAGS:
        if offsets_tag in entries and counts_tag in entries:
            starts = _integers(data, order, entries[offsets_tag], f"tag {offsets_tag} of page {page + 1}")
            lengths = _integers(data, order, entries[counts_tag], f"tag {counts_tag} of page {page + 1}")
            for start, length in zip(starts, lengths):
                _need(data, start, length, f"the image data of page {page + 1}")


def count_pages(path: str) -> int:
    """The pages of a TIFF file, once every page's directory and image data is found inside the file.

    Returns:
      the number of directories in the file's chain (one per page).
    Raises:
      IncompleteTiff: not a TIFF header, a directory or a page's image data
        beyond the end of the file (a cut file), or a chain that loops.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    _need(data, 0, 8, "the TIFF header")
    layout = LAYOUTS.get(struct.unpack_from(order + "H", data, 2)[0]) if order else None
    if layout is None:
        raise IncompleteTiff("no TIFF header (II*/MM* or BigTIFF)")
    _need(data, 0, layout["header"], "the TIFF header")
    (offset,) = struct.unpack_from(order + layout["offset"], data, layout["header"] - struct.calcsize(layout["offset"]))
    seen = set()
    while offset:
        if offset in seen:
            raise IncompleteTiff(f"the directory chain loops back to byte {offset} after {len(seen)} pages")
        seen.add(offset)
        entries, offset = _directory(data, order, layout, offset, len(seen) - 1)
        _check_pixel_data(data, order, entries, len(seen) - 1)
    return len(seen)


def read_pages(path: str) -> tuple[str, list[tuple[str, np.ndarray]]]:
    """Decode every page of an image file; a TIFF only when it holds every page its directories promise.

    Returns:
      ``(format, pages)``: Pillow's format name ("TIFF", "PNG"...) and a list
      of ``(mode, array)`` per page, ``array`` of shape (H, W) or (H, W, C).
    Raises:
      OSError / PIL.UnidentifiedImageError: the file cannot be decoded.
      IncompleteTiff: a TIFF cut short or damaged (:func:`count_pages`), or
        one of whose pages Pillow decodes fewer (or more) than its directories hold.
    """
    # A damaged file also draws Pillow warnings ("Corrupt EXIF data"); the
    # caller's one-line error says it better.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            expected = count_pages(path) if image.format == "TIFF" else None
            pages = [(page.mode, np.array(page)) for page in ImageSequence.Iterator(image)]
            if expected is not None and len(pages) != expected:
                raise IncompleteTiff(f"Pillow decoded {len(pages)} pages but the file's directories hold {expected}")
            return image.format, pages


# The dtypes a stack is written in; Pillow makes uint8 pages 8-bit grey ("L") and float32 ones 32-bit float ("F").
WRITE_DTYPES = (np.uint8, np.float32)


def write_stack(path: str, stack: np.ndarray) -> None:
    """Write ``stack`` (N, H, W) as an N-page TIFF, atomically: uint8 as 8-bit grey, float32 as 32-bit float.

    The pages go to ``path + '.part'`` first and are renamed into place, so an
    interrupted write never leaves a truncated stack under the real name.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.dtype not in WRITE_DTYPES:
        raise ValueError(f"expected an (N, H, W) uint8 or float32 stack, got {stack.shape} {stack.dtype}")
    pages = [Image.fromarray(page) for page in stack]
    partial = path + ".part"
    pages[0].save(partial, format="TIFF", save_all=True, append_images=pages[1:])
    os.replace(partial, path)
