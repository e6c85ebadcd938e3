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
"""Checkpoints that move between the two stacks (behind ``common.npu_utils``).

TensorFlow's object-based checkpoints do not carry over between Keras 2.6 and
Keras 3: the same model's variables sit under other object paths. So every
checkpoint ``ckpt-N`` gets a portable file ``ckpt-N.weights.npz`` beside it:
each weight keyed ``<layer path>/<index>`` (layer names joined through nested
models; the index in the layer's ``weights``, whose order both stacks share
for built-in layers), plus the stack and checkpoint family that wrote it.

A restore on the stack that wrote the checkpoint reads the checkpoint itself
(model, optimizer, step). On the other stack the weights come from the
portable file, which serves evaluation, prediction and fine-tuning; resuming
the optimizer state there is refused in one line.
"""

import glob
import os
import tempfile

import numpy as np
import tensorflow as tf

from common import stack
from common.errors import UserError

PORTABLE_SUFFIX = ".weights.npz"
_META = ("__stack__", "__family__")


def portable_weights_path(prefix):
    """The portable weights file that belongs to checkpoint ``prefix``."""
    return prefix + PORTABLE_SUFFIX


def _weight_layers(layer, path=""):
    """``(path, layer)`` for each layer that holds weights itself, walking nested models in order."""
    for sub in layer.layers:
        sub_path = f"{path}{sub.name}"
        if hasattr(sub, "layers"):
            yield from _weight_layers(sub, sub_path + "/")
        elif sub.weights:
            yield sub_path, sub


def save_portable_weights(model, path):
    """Write ``model``'s weights to ``path`` (.npz) by layer path, atomically."""
    arrays = {f"{name}/{i}": np.asarray(w.numpy()) for name, layer in _weight_layers(model)
              for i, w in enumerate(layer.weights)}
    arrays.update(__stack__=np.array(stack.STACK), __family__=np.array(stack.CHECKPOINT_FAMILY))
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".weights-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read_portable(path):
    """All arrays of a portable weights file; UserError naming it when it is missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except Exception as error:  # OSError, ValueError, zipfile.BadZipFile, EOFError: all mean unreadable
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UserError(f"{path}: cannot be read as a weights file ({reason})") from None


def load_portable_weights(model, path, partial=False):
    """Set ``model``'s weights from a file of :func:`save_portable_weights`; returns the stack that wrote it.

    ``partial``: the file may hold layers the model lacks (a classifier's
    weights for a segmentation backbone). A model layer missing from the file,
    or a shape that differs, is a UserError naming it.
    """
    data = _read_portable(path)
    used = set()
    for name, layer in _weight_layers(model):
        values = []
        for i, weight in enumerate(layer.weights):
            key = f"{name}/{i}"
            if key not in data:
                raise UserError(f"{path} has no weight {key} of this model (another architecture or width?)")
            if tuple(data[key].shape) != tuple(weight.shape):
                raise UserError(f"{path}: {key} has shape {tuple(data[key].shape)}, "
                                f"this model's has {tuple(weight.shape)}")
            values.append(data[key])
            used.add(key)
        layer.set_weights(values)
    extra = sorted(set(data) - used - set(_META))
    if extra and not partial:
        raise UserError(f"{path} holds {len(extra)} weights this model lacks (first {extra[0]})")
    return str(data.get("__stack__", "an unknown stack"))


def _family(prefix):
    """The checkpoint family recorded beside ``prefix``, or None without a readable portable file."""
    path = portable_weights_path(prefix)
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["__family__"]), str(data["__stack__"])
    except Exception:  # a damaged file: the checkpoint's own restore decides
        return None


def save_checkpoint(manager, model, step):
    """``manager.save(step)`` and the portable weights beside it; portable files whose checkpoint
    the manager has deleted (``max_to_keep``) go too. Returns the checkpoint's prefix."""
    prefix = manager.save(checkpoint_number=step)
    save_portable_weights(model, portable_weights_path(prefix))
    for path in glob.glob(os.path.join(glob.escape(manager.directory), "*" + PORTABLE_SUFFIX)):
        if not os.path.exists(path[:-len(PORTABLE_SUFFIX)] + ".index"):
            os.remove(path)
    return prefix


def restore_checkpoint(checkpoint, prefix, partial=False, model=None):
    """Restore a ``tf.train.Checkpoint`` from ``prefix``: None, or the error's first line when it does not fit.

    ``partial``: the checkpoint may hold more than ``checkpoint`` tracks.
    ``model``: a weights-only restore of this model; a checkpoint written on
    the other stack then loads from its portable weights. Without it such a
    checkpoint (whose optimizer state cannot cross) is refused.
    A failed restore leaves bookkeeping that logs a warning per value when
    freed (hundreds of lines that would bury the caller's one-line error), so
    TensorFlow's logger stays at ERROR after a failure.
    """
    origin = _family(prefix)
    if origin is not None and origin[0] != stack.CHECKPOINT_FAMILY:
        if model is None:
            return (f"written on {origin[1]}, this is {stack.STACK}: TensorFlow's checkpoints do not cross "
                    "between Keras 2 and Keras 3, so its optimizer state cannot be resumed here; evaluate, "
                    "predict or fine-tune from it (its weights are portable), or resume on the stack that wrote it")
        try:
            load_portable_weights(model, portable_weights_path(prefix), partial=partial)
        except UserError as error:
            return str(error)
        print(f"[checkpoint] weights of {prefix} (written on {origin[1]}) read by layer name", flush=True)
        return None
    try:
        status = checkpoint.restore(prefix)
        if partial:
            status.expect_partial()
        status.assert_existing_objects_matched()
        return None
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        tf.get_logger().setLevel("ERROR")
        return str(error).splitlines()[0][:200]
