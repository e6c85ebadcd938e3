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
"""Checkpoints that move between the two stacks, and the checkpoint rules of every model's training.

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

:class:`RunCheckpoints` gives the three models one set of rules for the
checkpoints of a run folder: where they live, how many stay, resume / start
over / refuse, who saves under several workers, and no non-finite weights.
:class:`TrainingSteps` says once what every training loop repeats around its
model's own step: the step cap, the non-finite loss stop, the checkpoint
cadence, the end-of-run save and the scratch clean-up; :func:`broadcast_start`
gives every rank the same start.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from common import stack
from common.cli import CHECKPOINT_LIST, checkpoint_folder
from common.errors import TrainingDiverged, UserError

if TYPE_CHECKING:  # for the hints only
    from common.npu_utils import RunContext
    from common.stack import keras

PORTABLE_SUFFIX = ".weights.npz"
_META = ("__stack__", "__family__")


def portable_weights_path(prefix: str) -> str:
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


def save_portable_weights(model: keras.Model, path: str) -> None:
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


def load_portable_weights(model: keras.Model, path: str, partial: bool = False) -> str:
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


def save_checkpoint(manager: tf.train.CheckpointManager, model: keras.Model, step: int) -> str:
    """``manager.save(step)`` and the portable weights beside it; portable files whose checkpoint
    the manager has deleted (``max_to_keep``) go too. Returns the checkpoint's prefix."""
    prefix = manager.save(checkpoint_number=step)
    save_portable_weights(model, portable_weights_path(prefix))
    for path in glob.glob(os.path.join(glob.escape(manager.directory), "*" + PORTABLE_SUFFIX)):
        if not os.path.exists(path[:-len(PORTABLE_SUFFIX)] + ".index"):
            os.remove(path)
    return prefix


def restore_checkpoint(checkpoint: tf.train.Checkpoint, prefix: str, partial: bool = False,
                       model: keras.Model | None = None) -> str | None:
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


def latest_checkpoint(run_dir: str) -> str | None:
    """The prefix of the newest checkpoint of run folder ``run_dir``, or None when it has none.

    TensorFlow rewrites the checkpoint list (the file ``checkpoint``) only
    after a checkpoint's files, so a killed save leaves the previous one named.

    Raises:
      UserError: the list cannot be parsed, names no checkpoint, or names one
        whose ``.index`` file is gone.
    """
    folder = checkpoint_folder(run_dir)
    state_file = os.path.join(folder, CHECKPOINT_LIST)
    if not os.path.isfile(state_file):
        return None
    try:
        state = tf.train.get_checkpoint_state(folder)
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(f"{state_file}: the checkpoint list is unreadable ({str(error).splitlines()[0][:200]}); "
                        "delete it to start over, or use another run folder") from None
    prefix = state.model_checkpoint_path if state else ""  # TensorFlow joins a relative name to the folder
    if not prefix or not os.path.isfile(prefix + ".index"):
        named = f"names {prefix}, whose .index file is missing" if prefix else "names no checkpoint"
        raise UserError(f"{state_file}: the checkpoint list {named}; delete it to start over, or use another "
                        "run folder")
    return prefix


def _delete_checkpoints(folder):
    """Remove the checkpoints of ``folder`` (its checkpoint list and files ``ckpt-*``); returns how many files went."""
    # The list first: a reader in between then finds no checkpoint rather than one whose files are gone.
    doomed = glob.glob(os.path.join(glob.escape(folder), CHECKPOINT_LIST)) + \
        glob.glob(os.path.join(glob.escape(folder), "ckpt-*"))
    for path in doomed:
        os.remove(path)
    return len(doomed)


class RunCheckpoints:
    """The checkpoints of one training run folder, under the same rules in every model.

    They live in ``<run folder>/checkpoints`` as ``ckpt-<step>``, each with its
    portable weights (:func:`save_checkpoint`); the newest ``keep`` stay.
    Under ``MultiWorkerMirroredStrategy`` every worker saves, as TensorFlow's
    guide for it says (a save of distributed variables is a collective): the
    chief into the run folder, each other worker into a scratch folder of its
    own beside it (``.worker-<rank>``), which :meth:`close` removes.

    Args:
      checkpoint: the ``tf.train.Checkpoint`` (model, optimizer, step, ...).
      model: the Keras model, whose trainable weights must be finite to be saved.
      run_dir: the run folder (main.py's --model_dir).
      ctx: the RunContext (``is_chief``, ``ranks.rank_id``).
      keep: how many checkpoints stay (--keep_checkpoints).
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, model: keras.Model, run_dir: str, ctx: RunContext,
                 keep: int = 3) -> None:
        self.checkpoint, self.model, self.run_dir, self.keep = checkpoint, model, run_dir, keep
        self.is_chief = ctx.is_chief
        folder = checkpoint_folder(run_dir)
        self.directory = folder if self.is_chief else os.path.join(folder, f".worker-{ctx.ranks.rank_id}")
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)  # left by a killed run
        for partial in glob.glob(os.path.join(glob.escape(self.directory), ".weights-*.tmp")):
            os.remove(partial)  # portable weights half written when a run was killed
        self.manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=keep,
                                                  checkpoint_name="ckpt")

    @property
    def latest(self) -> str | None:
        """The run folder's newest checkpoint (what every worker resumes from), or None."""
        return latest_checkpoint(self.run_dir)

    def restore_or_start(self, resume: bool | None, log: Callable[[str], None] = print) -> str | None:
        """Continue the run, start it over, or refuse, as ``resume`` (the --resume flag) says.

        True restores the newest checkpoint (model, optimizer, step; a fresh
        start when there is none), False deletes the run folder's checkpoints
        (the chief does) and starts fresh, None refuses a folder that holds a
        checkpoint. Every worker restores from the run folder.

        Returns:
          The restored checkpoint's prefix, or None for a fresh start.

        Raises:
          UserError: a checkpoint is there and --resume is not given, or it
            cannot be restored into this model (its first line says why).
        """
        if resume is False:  # before the list is read: a damaged one, or one the chief is deleting, is no obstacle
            if self.is_chief and _delete_checkpoints(checkpoint_folder(self.run_dir)):
                log(f"[checkpoint] --resume=False: deleted the checkpoints in {checkpoint_folder(self.run_dir)}; "
                    "starting over")
            self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=self.keep,
                                                      checkpoint_name="ckpt")
            return None
        latest = self.latest
        if resume is None and latest:
            raise UserError(f"--model_dir={self.run_dir} already holds a checkpoint ({os.path.basename(latest)}): "
                            "--resume=True continues that run, --resume=False starts over (deleting its "
                            "checkpoints), or choose another --model_dir")
        if latest is None:
            if resume:
                log(f"[checkpoint] --resume=True: no checkpoint in {checkpoint_folder(self.run_dir)} yet; "
                    "starting fresh")
            return None
        error = restore_checkpoint(self.checkpoint, latest)
        if error:
            raise UserError(f"--resume: {latest} cannot be continued by this model: {error}; --resume=False "
                            "starts over, or choose another --model_dir")
        log(f"[checkpoint] resumed from {latest}")
        return latest

    def save(self, step: int) -> str:
        """Write checkpoint ``ckpt-<step>`` (every worker calls it at the same step); returns its prefix.

        Raises:
          TrainingDiverged: a trainable weight is not finite; nothing is written
            and the last good checkpoint stays the newest.
        """
        bad = [v.name for v in self.model.trainable_variables if not np.isfinite(v.numpy()).all()]
        if bad:
            raise TrainingDiverged(f"{len(bad)} weights are not finite at step {step} (first {bad[0]}); nothing "
                                   f"saved, the last good checkpoint is {self.manager.latest_checkpoint or 'none'}")
        return save_checkpoint(self.manager, self.model, step)

    def close(self) -> None:
        """Remove a non-chief worker's scratch folder (the chief's checkpoints stay)."""
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)


def step_cap(max_steps: int, train_epochs: int, steps_per_epoch: int) -> int:
    """The training's last step: the first of ``max_steps`` and ``train_epochs`` epochs it reaches (0: no cap).

    Raises:
      ValueError: both are 0 (the flags' checks refuse that before).
    """
    caps = [cap for cap in (max_steps, train_epochs * steps_per_epoch) if cap]
    if not caps:
        raise ValueError("a training needs a step cap: max_steps or train_epochs")
    return min(caps)


def broadcast_start(ctx: RunContext, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    extra: Iterable[keras.Variable | tf.Variable] = ()) -> None:
    """Every rank takes rank 0's weights, optimizer state and ``extra`` variables (the step, ...), whatever
    each one restored from its view of the run folder (``ctx``: the RunContext; one rank: nothing to do)."""
    ctx.broadcast_variables(list(model.weights) + stack.optimizer_variables(optimizer) + list(extra))


class TrainingSteps:
    """What every model's training loop does around its own step, in one place.

    The loop calls :meth:`end_step` after each step, :meth:`save` at an
    epoch's end and at the end of the run, and :meth:`close` however it ends
    (a non-chief worker's scratch folder goes). Checkpoints are written every
    ``checkpoint_every`` steps and at those saves, never twice for one step;
    a --benchmark run passes ``checkpoints=None`` and writes none.

    Args:
      checkpoints: the run folder's :class:`RunCheckpoints`, or None.
      checkpoint_every: steps between checkpoints (--checkpoint_every).
      first_step: the step the run starts from (a restored checkpoint's, else 0).
      last_step: the step cap (:func:`step_cap`).
    """

    def __init__(self, checkpoints: RunCheckpoints | None, checkpoint_every: int, first_step: int,
                 last_step: int) -> None:
        self.checkpoints, self.checkpoint_every = checkpoints, checkpoint_every
        self.first_step, self.last_step = first_step, last_step
        self._saved = first_step  # restored from disk, or step 0 (nothing to save)

    @property
    def latest(self) -> str | None:
        """This rank's newest checkpoint, or None (always in a --benchmark run)."""
        return self.checkpoints.manager.latest_checkpoint if self.checkpoints else None

    def check_loss(self, step: int, loss: float) -> None:
        """Stop the run when ``loss`` (a float) is NaN or infinite.

        Raises:
          TrainingDiverged: one message in every model; nothing is saved after it.
        """
        if not np.isfinite(loss):
            raise TrainingDiverged(f"non-finite loss {loss} at step {step}: training stopped without saving; "
                                   f"the last good checkpoint stays: {self.latest or 'none'}")

    def end_step(self, step: int, loss: float | None = None) -> None:
        """The bookkeeping of step ``step``: the non-finite check of ``loss`` (None when the loop did not
        read it on the host this step), then a checkpoint every ``checkpoint_every`` steps (every rank
        saves at the same steps)."""
        if loss is not None:
            self.check_loss(step, loss)
        if step % self.checkpoint_every == 0:
            self.save(step)

    def save(self, step: int) -> str | None:
        """A checkpoint of ``step`` (an epoch's end, the run's end) unless one was already written or restored
        at it; returns its prefix, or None."""
        if self.checkpoints is None or step == self._saved:
            return None
        prefix = self.checkpoints.save(step)
        self._saved = step
        return prefix

    def close(self) -> None:
        """Remove a non-chief worker's scratch folder; the loop calls it however it ends."""

        if self.checkpoints:
            self.checkpoints.close()
