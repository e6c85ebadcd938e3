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
"""Device, precision and distribution, the train step and the log lines every model shares.

    ctx = npu_utils.setup_device(args, seed=args.seed)  # one line: device and precision; seeds; the strategy
    step = npu_utils.make_train_step(ctx, model, ctx.wrap_optimizer(optimizer), loss_fn)
    timer = npu_utils.StepTimer(images_per_step=batch * ctx.ranks.rank_size)
    print(timer.line(step_number, loss))    # TRAIN step=... images_per_sec=...; METRIC lines likewise

``common/launcher.py`` (behind every test/*.sh) parses those lines into the
ModelZoo summary. Importing this module loads no TensorFlow (``main.py --help``
answers at once): :func:`setup_device` imports it, and common/stack.py, when
the flags are good. The flags of this module (:func:`add_device_flags`) sit
beside the other shared flags of common/cli.py.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from common import ascend
from common.cli import add_bool_flag
from common.cluster import Ranks, read_ranks, worker_tf_config
from common.errors import UserError

if TYPE_CHECKING:  # for the hints only: importing this module loads no TensorFlow
    import tensorflow as tf

    from common.stack import keras

_Item = TypeVar("_Item")

PRECISION_MODES = ("allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype", "allow_mix_precision")
MIXED_MODES = ("allow_mix_precision", "force_fp16")  # 16-bit arithmetic wherever the device has it


def add_device_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the device and precision flags and the Ascend debugging flags (common/ascend.py)."""
    group = parser.add_argument_group("device and precision (common/npu_utils)")
    group.add_argument("--precision_mode", default=None, choices=PRECISION_MODES,
                       help="ModelZoo precision mode; on GPU and CPU it maps to a Keras dtype policy "
                            "(default: the device's float32; on Ascend the adapter's own default, which the "
                            "device line names: allow_fp32_to_fp16 on the 910, must_keep_origin_dtype on "
                            "910B/910C; force_fp16 is for inference, per Huawei's precision guide)")
    add_bool_flag(group, "--use_amp", "automatic mixed precision (= allow_mix_precision)")
    add_bool_flag(group, "--use_xla", "compile the training step with XLA (GPU and CPU)")
    ascend.add_flags(group, add_bool_flag)
    return parser


def cpu_has_bf16(cpuinfo_text: str | None = None) -> bool:
    """True when the CPU has bfloat16 arithmetic (AVX-512 BF16 or AMX); emulated bf16 is ~8x slower."""
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo_text = handle.read()
        except OSError:
            return False
    return bool(set(cpuinfo_text.split()) & {"avx512_bf16", "amx_bf16"})


@dataclasses.dataclass(frozen=True)
class Precision:
    """The Keras dtype ``policy``, the Ascend ``npu_precision_mode`` (None off Ascend),
    ``loss_scaling`` for float16, and a ``note`` when the run differs from the request."""

    policy: str
    npu_precision_mode: str | None = None
    loss_scaling: bool = False
    note: str = ""


def choose_precision(device: str, precision_mode: str | None = None, use_amp: bool = False,
                     bf16_capable: bool = False) -> Precision:
    """Map a ModelZoo precision request to what ``device`` ("npu", "gpu", "cpu") supports.

    On the NPU no request leaves ``npu_precision_mode`` None: the adapter's own
    default runs (it differs between chips; ``ascend.open_adapter`` names it).
    """
    if precision_mode is not None and precision_mode not in PRECISION_MODES:
        raise UserError(f"--precision_mode={precision_mode!r} is not one of {', '.join(PRECISION_MODES)}")
    if use_amp and precision_mode not in (None, "allow_mix_precision"):
        raise UserError(f"--use_amp asks for allow_mix_precision but --precision_mode={precision_mode}")
    requested = precision_mode or ("allow_mix_precision" if use_amp else None)
    mixed = requested in MIXED_MODES
    if device == "npu":  # the adapter computes in float16 for these; its loss scaling keeps gradients finite
        note = ("force_fp16 is for online inference (Huawei's TF 2.6.5 precision-tuning guide); training "
                "takes allow_mix_precision" if requested == "force_fp16" else "")
        return Precision("float32", npu_precision_mode=requested, loss_scaling=mixed, note=note)
    if device not in ("gpu", "cpu"):
        raise ValueError(f"device must be npu, gpu or cpu, got {device!r}")
    if not mixed:
        return Precision("float32")
    if device == "gpu":
        note = "force_fp16 runs as mixed_float16 (float32 variables)" if requested == "force_fp16" else ""
        return Precision("mixed_float16", loss_scaling=True, note=note)
    if bf16_capable:
        return Precision("mixed_bfloat16", note=f"{requested} runs as mixed_bfloat16 on this CPU")
    return Precision("float32", note=f"{requested} runs as float32: this CPU (or this TensorFlow's CPU kernels) "
                                     "has no bfloat16 arithmetic and emulating it is about 8x slower")


@dataclasses.dataclass
class RunContext:
    """Where a run computes: ``device`` ("npu"/"gpu"/"cpu"), ``precision`` (its policy is set
    globally), ``use_xla``, ``ranks``, the tf.distribute ``strategy`` and the adapter ``npu`` or None."""

    device: str
    precision: Precision
    use_xla: bool
    ranks: Ranks
    strategy: object
    npu: object = None

    @property
    def is_chief(self) -> bool:
        return self.ranks.is_chief

    @property
    def multi_worker(self) -> bool:
        return self.ranks.rank_size > 1

    def wrap_optimizer(self, optimizer: keras.optimizers.Optimizer,
                       initial_scale: float | None = None) -> keras.optimizers.Optimizer:
        """Add loss scaling for float16 and, on several NPUs, the adapter's gradient all-reduce. Every
        model's optimizer goes through it.

        ``initial_scale``: None is dynamic loss scaling from its default scale
        (Keras' 2 ** 15; on Ascend ``NpuLossScaleOptimizer``'s own), 0 none; a
        number X is a dynamic scale from X on GPU, and on Ascend the static
        scale ``NpuLossScaleOptimizer(dynamic=False, initial_scale=X)``, as
        ModelZoo's TF2 BERT builds it.
        """
        from common import stack
        if self.npu is not None:
            if self.precision.loss_scaling and initial_scale != 0:
                scale = {} if initial_scale is None else {"dynamic": False, "initial_scale": initial_scale}
                optimizer = self.npu.train.optimizer.NpuLossScaleOptimizer(optimizer, **scale)
            if self.multi_worker:
                optimizer = self.npu.distribute.npu_distributed_keras_optimizer_wrapper(optimizer)
            return optimizer
        if not self.precision.loss_scaling or initial_scale == 0:
            return optimizer
        return stack.loss_scale_optimizer(optimizer, initial_scale)

    def all_reduce_mean(self, values: list[tf.Tensor]) -> list[tf.Tensor]:
        """Average a list of tensors over all workers (replica context)."""
        if not self.multi_worker:
            return values
        if self.npu is not None:
            return self.npu.distribute.all_reduce(values, "mean")
        import tensorflow as tf
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, values)

    def average_gradients(self, grads: list[tf.Tensor | None]) -> list[tf.Tensor | None]:
        """Local gradients ready for ``apply_gradients`` (replica context). Under
        MultiWorkerMirroredStrategy the optimizer (Keras 2.6 and 3 alike) all-reduces
        with a SUM, so each share is divided by the replica count; on Ascend the
        optimizer from :meth:`wrap_optimizer` averages them."""
        if not self.multi_worker or self.npu is not None:
            return grads
        return [None if g is None else g / self.strategy.num_replicas_in_sync for g in grads]

    def broadcast_variables(self, variables: Iterable[keras.Variable | tf.Variable]) -> None:
        """Give every worker rank 0's values (after a restore only rank 0 may have made)."""
        if not self.multi_worker:
            return
        if self.npu is not None:
            self.npu.distribute.broadcast(variables, root_rank=0)
            return
        import tensorflow as tf
        variables, chief = list(variables), self.is_chief

        @tf.function
        def chief_values():
            def replica_fn():
                # A SUM to which only rank 0 contributes is rank 0's value (one
                # all-reduce per variable: a batched one needs a single dtype).
                context = tf.distribute.get_replica_context()
                return [context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(v) if chief else tf.zeros_like(v))
                        for v in variables]
            return self.strategy.experimental_local_results(self.strategy.run(replica_fn))[0]

        for variable, value in zip(variables, chief_values()):
            variable.assign(value)

    def shard(self, items: Iterable[_Item]) -> list[_Item]:
        """This rank's share of a list: every ``rank_size``-th item from ``rank_id``."""
        return list(items)[self.ranks.rank_id::self.ranks.rank_size]


def setup_device(args: argparse.Namespace, seed: int | None = None, visible_gpus: str | None = None) -> RunContext:
    """Choose device, precision and distribution from the :func:`add_device_flags` flags and the
    rank variables of the environment; set the Keras dtype policy; print one line saying what the run
    uses; then seed NumPy, Python and TensorFlow with ``seed`` (every model's main.py sets device and
    seed here). On Ascend the adapter is given its options and opened (``ascend.open_adapter``).

    ``visible_gpus``: CUDA_VISIBLE_DEVICES for this process (DenseNet-3D's reference ``-gpu``), set
    before TensorFlow loads; a note says when the run has no GPU for it.

    Raises:
      UserError: a bad rank variable, a broken adapter install, or an option the adapter refuses.
    """
    if visible_gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpus
    ranks = read_ranks()
    npu = ascend.import_adapter()
    tf_config = None if npu is not None else worker_tf_config(ranks)  # Ascend: the rank table
    import tensorflow as tf
    from common.stack import CPU_BFLOAT16, keras

    gpus = tf.config.list_physical_devices("GPU") if npu is None else []
    device = "npu" if npu is not None else "gpu" if gpus else "cpu"
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if gpus and ranks.rank_size > 1:  # one process per device, as on Ascend
        tf.config.set_visible_devices(gpus[ranks.device_id % len(gpus)], "GPU")
    precision = choose_precision(device, args.precision_mode, args.use_amp,
                                 bf16_capable=device == "cpu" and CPU_BFLOAT16 and cpu_has_bf16())
    if npu is not None:
        precision_words = ascend.open_adapter(npu, args, precision.npu_precision_mode, ranks.rank_size)
    else:
        ascend.warn_unused_flags(args, device)
        precision_words = precision.policy
    keras.mixed_precision.set_global_policy(precision.policy)
    use_xla = bool(args.use_xla) and npu is None
    if args.use_xla and npu is not None:
        print("[device] warning: --use_xla has no effect on NPU: the adapter compiles the graph itself", flush=True)
    strategy = tf.distribute.get_strategy()
    if tf_config is not None:
        os.environ["TF_CONFIG"] = json.dumps(tf_config)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    note = f" ({precision.note})" if precision.note else ""
    print(f"[device] {device.upper()} {ranks.device_id}, precision {precision_words}"
          f"{note}{', XLA' if use_xla else ''}, rank {ranks.rank_id} of {ranks.rank_size}", flush=True)
    if visible_gpus is not None and device != "gpu":
        print(f"[device] -gpu {visible_gpus} has no effect on {device.upper()}", flush=True)
    if seed is not None:
        from common.stack import set_random_seed
        set_random_seed(seed)
    return RunContext(device, precision, use_xla, ranks, strategy, npu)


# How often each step_function has been traced, by name: a second trace means a new input shape,
# which an NPU compiles again (the adapter wants fixed shapes); tests read it.
TRACES = collections.Counter()


def step_function(fn: Callable[..., Any], name: str, jit_compile: bool | None = None) -> Callable[..., Any]:
    """``tf.function(fn)`` that counts its traces in ``TRACES[name]``; feed it fixed shapes."""
    import tensorflow as tf

    def traced(*args):
        TRACES[name] += 1  # Python code in a tf.function runs once per trace
        return fn(*args)

    return tf.function(traced, jit_compile=jit_compile)


def make_train_step(ctx: RunContext, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                    loss_fn: Callable[[Any, Any], tf.Tensor],
                    name: str = "train_step") -> Callable[[Any, Any], tf.Tensor]:

    """One data-parallel training step: ``step(features, labels) -> loss`` averaged over workers.

    ``loss_fn(features, labels)`` calls ``model(features, training=True)`` and
    returns the scalar float32 mean over the local batch: reduce a loss
    *function* with ``tf.reduce_mean``, not a Keras ``Loss`` class, which
    divides by the replica count again under a strategy. The forward and
    backward pass are XLA-compiled with ``ctx.use_xla``. Its traces count in
    ``TRACES[name]``.
    """
    import tensorflow as tf
    from common import stack

    variables = model.trainable_variables

    @tf.function(jit_compile=ctx.use_xla)
    def gradients(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(features, labels)
            scaled_loss = stack.scale_loss(optimizer, loss)
        return loss, stack.unscale_gradients(optimizer, tape.gradient(scaled_loss, variables))

    def replica_step(features, labels):
        loss, grads = gradients(features, labels)
        optimizer.apply_gradients(zip(ctx.average_gradients(list(grads)), variables))
        return ctx.all_reduce_mean([loss])[0]

    def step(features, labels):
        return ctx.strategy.experimental_local_results(ctx.strategy.run(replica_step, args=(features, labels)))[0]

    step = step_function(step, name)

    if ctx.npu is not None and ctx.multi_worker:
        ctx.broadcast_variables(variables)
    return step


# Keys and values never carry units; NaN and inf print as "nan" and "inf". step_ms, the mean wall-clock
# time of the steps since the previous line (unrounded to the microsecond), is what the summary's
# ActualFPS and step-time percentiles are computed from; images_per_sec is for reading.
STEP_LINE_RE = re.compile(r"\bTRAIN step=(\d+) loss=(\S+) images_per_sec=(\S+) elapsed_sec=(\S+)(?: step_ms=(\S+))?")
METRIC_LINE_RE = re.compile(r"\bMETRIC (\w+)=(\S+)")


def format_step_line(step: int, loss: float, images_per_sec: float, elapsed_sec: float,
                     step_ms: float | None = None) -> str:
    """``TRAIN step=12 loss=0.412345 images_per_sec=3.21 elapsed_sec=40.12 step_ms=2492.215``
    (global images/s; ``step_ms`` left out when None, as on a line that reports a failed step)."""
    line = (f"TRAIN step={int(step)} loss={float(loss):.6f} "
            f"images_per_sec={float(images_per_sec):.2f} elapsed_sec={float(elapsed_sec):.2f}")
    return line if step_ms is None else f"{line} step_ms={float(step_ms):.3f}"


def format_metric_line(name: str, value: float) -> str:
    """``METRIC dice=0.891234``: one evaluation result, parsed by the summary."""
    if not re.fullmatch(r"\w+", name):
        raise ValueError(f"metric name must be a word, got {name!r}")
    return f"METRIC {name}={float(value):.6f}"


class StepTimer:
    """The one way every model counts training speed: wall-clock time between logged steps.

    Everything between two :meth:`line` calls counts (reading and augmenting
    the input, the step, logging), as NVIDIA's and ModelZoo's scripts count it;
    only what runs inside :meth:`paused` (a mid-run evaluation) is left out.

    Args:
      images_per_step: the global batch (per-device batch x rank_size).
      first_step: the step count the loop starts from (a resumed run's step).
      clock: seconds as a float; tests pass a fake one.
    """

    def __init__(self, images_per_step: int, first_step: int = 0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.images_per_step = images_per_step
        self._clock = clock
        self._start = self._mark = clock()
        self._step = first_step
        self._paused = 0.0
        self.last_rate = 0.0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        began = self._clock()
        try:
            yield
        finally:
            self._paused += self._clock() - began

    def elapsed(self) -> float:
        """Seconds since the timer started, pauses included."""
        return self._clock() - self._start

    def line(self, step: int, loss: float) -> str:

        """The TRAIN line of ``step``: images/s and the mean step time over the steps since the previous line."""
        now = self._clock()
        seconds = max(now - self._mark - self._paused, 1e-9)
        steps = max(step - self._step, 1)
        self.last_rate = steps * self.images_per_step / seconds
        self._mark, self._step, self._paused = now, step, 0.0
        return format_step_line(step, loss, self.last_rate, now - self._start, step_ms=1000.0 * seconds / steps)
