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
"""Device, precision, distribution and the shared log format of every model.

The only code the three model directories share. A model's ``main.py``:

    parser = argparse.ArgumentParser()
    npu_utils.add_device_flags(parser)          # --precision_mode, --use_amp, dumps...
    args = parser.parse_args()
    ctx = npu_utils.setup_device(args)          # prints one line: device and precision
    optimizer = ctx.wrap_optimizer(keras.optimizers.Adam(1e-4))
    train_step = npu_utils.make_train_step(ctx, model, optimizer, loss_fn)
    ...
    print(npu_utils.format_step_line(step, loss, images_per_sec, elapsed_sec))
    print(npu_utils.format_metric_line("dice", 0.89))

and its ``test/*.sh`` scripts run ``python3 common/npu_utils.py launch ...``,
which starts one process per rank, waits, and writes the ModelZoo summary
(``Final Performance images/sec``, ``${CaseName}.log``...) from those lines.

TensorFlow is imported lazily, so the launcher and the log parser start in
milliseconds and work without TensorFlow installed.
"""

import argparse
import dataclasses
import functools
import importlib
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time

PRECISION_MODES = (
    "allow_fp32_to_fp16",
    "force_fp16",
    "must_keep_origin_dtype",
    "allow_mix_precision",
)
# The modes that ask for 16-bit arithmetic wherever the device can do it.
MIXED_MODES = ("allow_mix_precision", "force_fp16")
# What the Ascend adapter runs with when the user asks for nothing.
NPU_DEFAULT_PRECISION_MODE = "allow_fp32_to_fp16"


class UserError(Exception):
    """A user's mistake (a flag, an environment variable, an input file).

    ``main`` functions wrapped by :func:`exit_on_user_error` turn it into one
    line on stderr and exit status 2, never a traceback.
    """


def exit_on_user_error(main):
    """Decorate a CLI entry point: a :class:`UserError` becomes one line and exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper


def str2bool(value):
    """argparse type for ModelZoo booleans: ``--flag=True|False|1|0|yes|no``."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def add_bool_flag(parser, name, help_text, default=False):
    """Add ``--name`` (True), ``--name=True`` and ``--name=False`` to ``parser``."""
    parser.add_argument(name, type=str2bool, nargs="?", const=True, default=default,
                        metavar="True|False", help=f"{help_text} (default {default})")


def add_device_flags(parser):
    """Add the device, precision and Ascend debugging flags every model takes."""
    group = parser.add_argument_group("device and precision (common/npu_utils)")
    group.add_argument("--precision_mode", default=None, choices=PRECISION_MODES,
                       help="ModelZoo precision mode; on GPU and CPU it maps to a Keras "
                            "dtype policy (default: the device's float32, "
                            f"{NPU_DEFAULT_PRECISION_MODE} on Ascend)")
    add_bool_flag(group, "--use_amp", "automatic mixed precision (= allow_mix_precision)")
    add_bool_flag(group, "--use_xla", "compile the training step with XLA (GPU and CPU)")
    add_bool_flag(group, "--over_dump", "Ascend overflow detection dump")
    group.add_argument("--over_dump_path", default="output/overflow_dump",
                       help="where the overflow dump goes (default %(default)s)")
    add_bool_flag(group, "--data_dump_flag", "Ascend operator data dump")
    group.add_argument("--data_dump_step", default="10",
                       help="steps to dump, e.g. 10 or 0|5|10 (default %(default)s)")
    group.add_argument("--data_dump_path", default="output/data_dump",
                       help="where the data dump goes (default %(default)s)")
    add_bool_flag(group, "--profiling", "Ascend profiling")
    group.add_argument("--profiling_dump_path", default="output/profiling",
                       help="where profiling results go (default %(default)s)")
    add_bool_flag(group, "--autotune", "Ascend operator auto-tuning (RL,GA)")
    group.add_argument("--mixlist_file", default=None,
                       help="Ascend mixed-precision op list (modify_mixlist)")
    group.add_argument("--fusion_switch_file", default=None,
                       help="Ascend fusion switch configuration file")
    return parser


# --------------------------------------------------------------------------
# Ranks
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Ranks:
    """Where this process stands among ``rank_size`` data-parallel workers."""

    rank_size: int = 1
    rank_id: int = 0
    device_id: int = 0

    @property
    def is_chief(self):
        """Only rank 0 writes checkpoints, summaries and predictions."""
        return self.rank_id == 0


def _env_int(env, name, default, minimum):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise UserError(f"environment variable {name}={value} must be at least {minimum}")
    return value


def read_ranks(env=None):
    """Read and validate ``RANK_SIZE``, ``RANK_ID``, ``ASCEND_DEVICE_ID``/``DEVICE_ID``.

    Args:
      env: a mapping like ``os.environ`` (the default).
    Returns:
      :class:`Ranks`. Unset variables mean one process on device 0.
    Raises:
      UserError: a value is not an integer, is negative, or RANK_ID >= RANK_SIZE.
    """
    env = os.environ if env is None else env
    rank_size = _env_int(env, "RANK_SIZE", 1, minimum=1)
    rank_id = _env_int(env, "RANK_ID", 0, minimum=0)
    if rank_id >= rank_size:
        raise UserError(f"RANK_ID={rank_id} must be smaller than RANK_SIZE={rank_size}")
    device_id = _env_int(env, "DEVICE_ID", 0, minimum=0)
    device_id = _env_int(env, "ASCEND_DEVICE_ID", device_id, minimum=0)
    return Ranks(rank_size=rank_size, rank_id=rank_id, device_id=device_id)


def worker_tf_config(ranks, env=None):
    """The ``TF_CONFIG`` for multi-worker training, or None for one process.

    An existing ``TF_CONFIG`` is used as it is (after checking its worker
    count); otherwise ``WORKER_HOSTS=host:port,host:port,...`` (one entry per
    rank, in rank order) and ``RANK_ID`` build it.
    """
    env = os.environ if env is None else env
    if ranks.rank_size == 1:
        return None
    if env.get("TF_CONFIG"):
        try:
            config = json.loads(env["TF_CONFIG"])
            workers = config["cluster"]["worker"]
        except (ValueError, KeyError, TypeError):
            raise UserError("TF_CONFIG is not JSON with cluster.worker") from None
        if len(workers) != ranks.rank_size:
            raise UserError(f"TF_CONFIG lists {len(workers)} workers but RANK_SIZE={ranks.rank_size}")
        return config
    hosts = [h.strip() for h in env.get("WORKER_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        raise UserError(f"RANK_SIZE={ranks.rank_size} needs TF_CONFIG or "
                        "WORKER_HOSTS=host:port,... to find the other workers")
    if len(hosts) != ranks.rank_size:
        raise UserError(f"WORKER_HOSTS lists {len(hosts)} hosts but RANK_SIZE={ranks.rank_size}")
    for host in hosts:
        if not re.fullmatch(r"[^\s:]+:\d+", host):
            raise UserError(f"WORKER_HOSTS entry {host!r} is not host:port")
    return {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": ranks.rank_id}}


# --------------------------------------------------------------------------
# Precision
# --------------------------------------------------------------------------

def cpu_has_bf16(cpuinfo_text=None):
    """True when the CPU has bfloat16 arithmetic (AVX-512 BF16 or AMX).

    Without it, ``mixed_bfloat16`` is emulated and about 8x slower than float32.
    """
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo_text = handle.read()
        except OSError:
            return False
    flags = set(cpuinfo_text.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


@dataclasses.dataclass(frozen=True)
class Precision:
    """What a run computes with.

    ``policy`` is the Keras dtype policy name; ``npu_precision_mode`` is the
    Ascend adapter's option (None off Ascend); ``loss_scaling`` wraps the
    optimizer in a ``LossScaleOptimizer``; ``note`` says why, when the run
    differs from what was asked.
    """

    policy: str
    npu_precision_mode: str = None
    loss_scaling: bool = False
    note: str = ""


def choose_precision(device, precision_mode=None, use_amp=False, bf16_capable=False):
    """Map a ModelZoo precision request to what ``device`` supports.

    Args:
      device: "npu", "gpu" or "cpu".
      precision_mode: one of PRECISION_MODES or None (the device's default).
      use_amp: the ``--use_amp`` switch, the same as ``allow_mix_precision``.
      bf16_capable: the CPU has bfloat16 arithmetic (see :func:`cpu_has_bf16`).
    Returns:
      :class:`Precision`.
    Raises:
      UserError: unknown mode, or ``--use_amp`` with a mode that forbids it.
    """
    if precision_mode is not None and precision_mode not in PRECISION_MODES:
        raise UserError(f"--precision_mode={precision_mode!r} is not one of {', '.join(PRECISION_MODES)}")
    if use_amp and precision_mode not in (None, "allow_mix_precision"):
        raise UserError(f"--use_amp asks for allow_mix_precision but --precision_mode={precision_mode}")
    requested = precision_mode or ("allow_mix_precision" if use_amp else None)
    mixed = requested in MIXED_MODES

    if device == "npu":
        return Precision("float32", npu_precision_mode=requested or NPU_DEFAULT_PRECISION_MODE)
    if device == "gpu":
        if not mixed:
            return Precision("float32")
        note = "force_fp16 runs as mixed_float16 (float32 variables)" if requested == "force_fp16" else ""
        return Precision("mixed_float16", loss_scaling=True, note=note)
    if device == "cpu":
        if not mixed:
            return Precision("float32")
        if bf16_capable:
            return Precision("mixed_bfloat16", note=f"{requested} runs as mixed_bfloat16 on this CPU")
        return Precision("float32", note=f"{requested} runs as float32: this CPU has no bfloat16 "
                                         "arithmetic and emulating it is about 8x slower")
    raise ValueError(f"device must be npu, gpu or cpu, got {device!r}")


# --------------------------------------------------------------------------
# Device set-up and distribution
# --------------------------------------------------------------------------

def _import_npu_device():
    """The Ascend TF2 adapter module, or None where it is not installed."""
    try:
        return importlib.import_module("npu_device")
    except ImportError:
        return None


def _set_npu_options(npu, args, precision):
    """Copy the run's precision, dump, profiling and tuning flags to the adapter."""
    options = npu.global_options()
    options.precision_mode = precision.npu_precision_mode
    if args.over_dump:
        os.makedirs(args.over_dump_path, exist_ok=True)
        options.dump_config.enable_dump_debug = True
        options.dump_config.dump_path = os.path.abspath(args.over_dump_path)
        options.dump_config.dump_debug_mode = "all"
    if args.data_dump_flag:
        if args.over_dump:
            # The adapter has one dump_path for both kinds of dump.
            print(f"[device] --over_dump and --data_dump_flag both write to {args.data_dump_path}", flush=True)
        os.makedirs(args.data_dump_path, exist_ok=True)
        options.dump_config.enable_dump = True
        options.dump_config.dump_path = os.path.abspath(args.data_dump_path)
        options.dump_config.dump_step = str(args.data_dump_step)
        options.dump_config.dump_mode = "all"
    if args.profiling:
        os.makedirs(args.profiling_dump_path, exist_ok=True)
        options.profiling_config.enable_profiling = True
        options.profiling_config.profiling_options = json.dumps({
            "output": os.path.abspath(args.profiling_dump_path),
            "training_trace": "on", "task_trace": "on", "aicpu": "on",
            "fp_point": "", "bp_point": ""})
    if args.mixlist_file:
        options.modify_mixlist = os.path.abspath(args.mixlist_file)
    if args.fusion_switch_file:
        options.fusion_switch_file = os.path.abspath(args.fusion_switch_file)
    if args.autotune:
        options.auto_tune_mode = "RL,GA"
    npu.open().as_default()


def _warn_ascend_only_flags(args, device):
    """One line per Ascend-only flag that was set on a device where it does nothing."""
    ascend_only = [("over_dump", "overflow detection"), ("data_dump_flag", "operator data dump"),
                   ("profiling", "Ascend profiling"), ("autotune", "operator auto-tuning"),
                   ("mixlist_file", "the mixed-precision op list"),
                   ("fusion_switch_file", "the fusion switch file")]
    for flag, what in ascend_only:
        if getattr(args, flag, None):
            print(f"[device] warning: --{flag} has no effect on {device.upper()}: "
                  f"{what} needs the Ascend adapter npu_device", flush=True)


@dataclasses.dataclass
class RunContext:
    """Everything a training loop needs to know about where it runs.

    Attributes:
      device: "npu", "gpu" or "cpu".
      precision: the :class:`Precision` in force (its policy is set globally).
      use_xla: compile the training step with XLA.
      ranks: this process's :class:`Ranks`.
      strategy: a ``tf.distribute`` strategy; ``strategy.run`` the step.
      npu: the Ascend adapter module, or None.
    """

    device: str
    precision: Precision
    use_xla: bool
    ranks: Ranks
    strategy: object
    npu: object = None

    @property
    def is_chief(self):
        return self.ranks.is_chief

    @property
    def multi_worker(self):
        return self.ranks.rank_size > 1

    def wrap_optimizer(self, optimizer):
        """Add dynamic loss scaling when the policy is float16."""
        if not self.precision.loss_scaling:
            return optimizer
        import keras
        return keras.optimizers.LossScaleOptimizer(optimizer)

    def all_reduce_mean(self, values):
        """Average a list of tensors over all workers (call in the replica context)."""
        if not self.multi_worker:
            return values
        if self.npu is not None:
            return self.npu.distribute.all_reduce(values, "mean")
        import tensorflow as tf
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, values)

    def average_gradients(self, grads):
        """Prepare local gradients for ``optimizer.apply_gradients`` (replica context).

        On Ascend the adapter averages them. Under ``MultiWorkerMirroredStrategy``
        the Keras 3 optimizer itself all-reduces gradients with a SUM, so each
        replica's share is divided by the replica count to give the mean.
        """
        if not self.multi_worker:
            return grads
        if self.npu is not None:
            return self.npu.distribute.all_reduce(grads, "mean")
        replicas = self.strategy.num_replicas_in_sync
        return [None if g is None else g / replicas for g in grads]

    def broadcast_variables(self, variables):
        """Give every worker rank 0's values of ``variables``.

        Call it after restoring a checkpoint (which only rank 0 may have) so
        that every worker continues from the same weights, optimizer state
        and step. ``MultiWorkerMirroredStrategy`` syncs initial values itself,
        but not values restored later.
        """
        if not self.multi_worker:
            return
        if self.npu is not None:
            self.npu.distribute.broadcast(variables, root_rank=0)
            return
        import tensorflow as tf
        chief = self.is_chief

        variables = list(variables)

        @tf.function
        def chief_values():
            def replica_fn():
                # A SUM to which only rank 0 contributes is rank 0's value; one
                # all-reduce per variable, as a batched one needs a single dtype.
                context = tf.distribute.get_replica_context()
                return [context.all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(v) if chief else tf.zeros_like(v))
                        for v in variables]
            return self.strategy.experimental_local_results(self.strategy.run(replica_fn))[0]

        for variable, value in zip(variables, chief_values()):
            variable.assign(value)

    def shard(self, items):
        """This rank's share of a list: every ``rank_size``-th item from ``rank_id``."""
        return list(items)[self.ranks.rank_id::self.ranks.rank_size]


def _detect_device(npu):
    if npu is not None:
        return "npu"
    import tensorflow as tf
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def setup_device(args, env=None):
    """Choose the device, precision and distribution for this run.

    Reads the flags of :func:`add_device_flags` from ``args`` and the rank
    variables from ``env``; opens the Ascend adapter when it imports, else
    uses a GPU (memory growth on) or the CPU; sets the global Keras dtype
    policy; prints one line saying what the run uses.

    Returns:
      :class:`RunContext`.
    """
    env = os.environ if env is None else env
    ranks = read_ranks(env)
    npu = _import_npu_device()
    # On Ascend the rank table (RANK_TABLE_FILE) wires the devices together.
    tf_config = None if npu is not None else worker_tf_config(ranks, env)

    import keras
    import tensorflow as tf

    device = _detect_device(npu)
    if device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        if ranks.rank_size > 1:
            # One process per device, as on Ascend: rank i uses GPU i.
            tf.config.set_visible_devices(gpus[ranks.device_id % len(gpus)], "GPU")
    precision = choose_precision(device, args.precision_mode, args.use_amp,
                                 bf16_capable=device == "cpu" and cpu_has_bf16())
    if device == "npu":
        _set_npu_options(npu, args, precision)
    else:
        _warn_ascend_only_flags(args, device)
    keras.mixed_precision.set_global_policy(precision.policy)

    use_xla = bool(args.use_xla)
    if use_xla and device == "npu":
        print("[device] warning: --use_xla has no effect on NPU: the adapter compiles the graph itself", flush=True)
        use_xla = False

    if tf_config is not None:
        os.environ["TF_CONFIG"] = json.dumps(tf_config)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()

    mode = precision.npu_precision_mode or precision.policy
    note = f" ({precision.note})" if precision.note else ""
    xla = ", XLA" if use_xla else ""
    print(f"[device] {device.upper()} {ranks.device_id}, precision {mode}{note}{xla}, "
          f"rank {ranks.rank_id} of {ranks.rank_size}", flush=True)
    return RunContext(device=device, precision=precision, use_xla=use_xla, ranks=ranks,
                      strategy=strategy, npu=npu)


def make_train_step(ctx, model, optimizer, loss_fn):
    """Build one data-parallel training step.

    Args:
      ctx: the :class:`RunContext`.
      model: a built Keras model; its trainable variables are updated.
      optimizer: from ``ctx.wrap_optimizer`` (loss scaling when needed).
      loss_fn: ``loss_fn(features, labels) -> scalar float32 loss`` that calls
        ``model(features, training=True)``; the mean over the local batch.
        Reduce with ``tf.reduce_mean`` of a loss *function* such as
        ``keras.losses.sparse_categorical_crossentropy``: a Keras ``Loss``
        *class* divides by the replica count under a strategy, and the
        gradients here are averaged over workers already (the gradients would
        be divided twice).
    Returns:
      ``step(features, labels) -> loss``, the loss averaged over all workers.
      The forward and backward pass are XLA-compiled with ``ctx.use_xla``;
      the gradients are averaged over workers before the update.
    """
    import keras
    import tensorflow as tf

    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    variables = model.trainable_variables

    @tf.function(jit_compile=ctx.use_xla)
    def gradients(features, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(features, labels)
            scaled_loss = optimizer.scale_loss(loss) if scaled else loss
        return loss, tape.gradient(scaled_loss, variables)

    def replica_step(features, labels):
        loss, grads = gradients(features, labels)
        grads = ctx.average_gradients(list(grads))
        optimizer.apply_gradients(zip(grads, variables))
        return ctx.all_reduce_mean([loss])[0]

    @tf.function
    def step(features, labels):
        loss = ctx.strategy.run(replica_step, args=(features, labels))
        return ctx.strategy.experimental_local_results(loss)[0]

    if ctx.npu is not None and ctx.multi_worker:
        ctx.broadcast_variables(variables)
    return step


def restore_checkpoint(checkpoint, prefix, partial=False):
    """Restore ``checkpoint`` from ``prefix``; the first line of the error if it does not fit, else None.

    Callers stop with their own one-line error when it does not fit. A failed
    restore (another width or class count) leaves TensorFlow's restore
    bookkeeping on the checkpoint and model objects, and when they are freed it
    logs a warning for every value not restored: hundreds of lines that would
    bury that error. So after a failure TensorFlow's logger stays at ERROR.

    Args:
      checkpoint: a ``tf.train.Checkpoint``.
      prefix: a checkpoint prefix such as ``.../ckpt-100``.
      partial: True when the checkpoint may hold more than ``checkpoint``
        tracks (weights only out of a training checkpoint with optimizer state).
    Returns:
      None on success, else the error's first line (at most 200 characters).
    """
    import tensorflow as tf

    try:
        status = checkpoint.restore(prefix)
        if partial:
            status.expect_partial()
        status.assert_existing_objects_matched()
        return None
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        tf.get_logger().setLevel("ERROR")
        return str(error).splitlines()[0][:200]


# --------------------------------------------------------------------------
# The shared log format
# --------------------------------------------------------------------------

# One line per logged training step. images_per_sec is the global throughput
# (all workers). Keys and values never carry units, so parsing needs no
# special cases; NaN and inf print as "nan" and "inf" and parse back.
_STEP_RE = re.compile(r"\bTRAIN step=(\d+) loss=(\S+) images_per_sec=(\S+) elapsed_sec=(\S+)")
_METRIC_RE = re.compile(r"\bMETRIC (\w+)=(\S+)")


def format_step_line(step, loss, images_per_sec, elapsed_sec):
    """``TRAIN step=12 loss=0.412345 images_per_sec=3.21 elapsed_sec=40.12``."""
    return (f"TRAIN step={int(step)} loss={float(loss):.6f} "
            f"images_per_sec={float(images_per_sec):.2f} elapsed_sec={float(elapsed_sec):.2f}")


def parse_step_line(line):
    """The ``(step, loss, images_per_sec, elapsed_sec)`` of a step line, or None."""
    match = _STEP_RE.search(line)
    if not match:
        return None
    step, loss, ips, elapsed = match.groups()
    try:
        return int(step), float(loss), float(ips), float(elapsed)
    except ValueError:
        return None


def format_metric_line(name, value):
    """``METRIC dice=0.891234``: one evaluation result, parsed by the summary."""
    if not re.fullmatch(r"\w+", name):
        raise ValueError(f"metric name must be a word, got {name!r}")
    return f"METRIC {name}={float(value):.6f}"


def parse_metric_lines(text):
    """All ``METRIC`` results in a log as ``{name: value}``; the last one wins."""
    metrics = {}
    for name, value in _METRIC_RE.findall(text):
        try:
            metrics[name] = float(value)
        except ValueError:
            continue
    return metrics


def throughput(steps, warmup_steps):
    """Mean images/sec over step lines after ``warmup_steps``.

    When every logged step is a warm-up step (a very short run), the first
    line (graph tracing and compilation) is still left out if there are others.
    """
    kept = [s for s in steps if s[0] > warmup_steps]
    if not kept:
        kept = steps[1:] or steps
    return sum(s[2] for s in kept) / len(kept)


@dataclasses.dataclass
class Summary:
    """The ModelZoo summary of one run: the lines the dashboards parse."""

    network: str
    rank_size: int
    batch_size: int
    case_name: str
    fps: float
    e2e_sec: int
    losses: list
    accuracy: float = None
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def training_time_ms(self):
        return self.batch_size * self.rank_size * 1000 / self.fps if self.fps > 0 else float("inf")

    def result_lines(self):
        lines = ["------------------ Final result ------------------",
                 f"Final Performance images/sec : {self.fps:.2f}"]
        if self.accuracy is not None:
            lines.append(f"Final Train Accuracy : {self.accuracy:.4f}")
        lines.append(f"E2E Training Duration sec : {self.e2e_sec}")
        return lines

    def log_lines(self):
        """The ``${CaseName}.log`` lines, one ``key = value`` each."""
        pairs = [("Network", self.network), ("RankSize", self.rank_size),
                 ("BatchSize", self.batch_size), ("DeviceType", platform.machine()),
                 ("CaseName", self.case_name), ("ActualFPS", f"{self.fps:.2f}"),
                 ("TrainingTime", f"{self.training_time_ms:.2f}")]
        if self.accuracy is not None:
            pairs.append(("TrainAccuracy", f"{self.accuracy:.4f}"))
        pairs.append(("ActualLoss", f"{self.losses[-1]:.6f}"))
        pairs.append(("E2ETrainingTime", self.e2e_sec))
        pairs.extend((key, f"{value:.4f}") for key, value in self.extra.items())
        return [f"{key} = {value}" for key, value in pairs]


def summarize(log_text, *, network, batch_size, rank_size, case_name, e2e_sec,
              warmup_steps=0, accuracy_key=None, extra_keys=()):
    """Build the :class:`Summary` of a training log.

    Raises:
      UserError: no step lines, or a requested metric is missing.
    """
    steps = [s for s in map(parse_step_line, log_text.splitlines()) if s is not None]
    if not steps:
        raise UserError("the training log has no 'TRAIN step=...' lines")
    metrics = parse_metric_lines(log_text)
    missing = [k for k in ([accuracy_key] if accuracy_key else []) + list(extra_keys) if k not in metrics]
    if missing:
        raise UserError(f"the training log has no METRIC line for {', '.join(missing)}")
    return Summary(network=network, rank_size=rank_size, batch_size=batch_size,
                   case_name=case_name, fps=throughput(steps, warmup_steps), e2e_sec=int(e2e_sec),
                   losses=[s[1] for s in steps],
                   accuracy=metrics[accuracy_key] if accuracy_key else None,
                   extra={k: metrics[k] for k in extra_keys})


def write_summary(summary, output_dir):
    """Write ``train_${CaseName}_loss.txt`` and ``${CaseName}.log`` into ``output_dir``."""
    with open(os.path.join(output_dir, f"train_{summary.case_name}_loss.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{loss:.6f}\n" for loss in summary.losses)
    with open(os.path.join(output_dir, f"{summary.case_name}.log"), "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in summary.log_lines())


# --------------------------------------------------------------------------
# The launcher behind every test/*.sh script
# --------------------------------------------------------------------------

def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _launch_parser():
    parser = argparse.ArgumentParser(
        prog="npu_utils.py launch",
        description="Run one training process per rank and write the ModelZoo summary. "
                    "In the command after '--', {output_dir} stands for the rank's output folder.")
    parser.add_argument("--network", required=True)
    parser.add_argument("--batch_size", type=int, required=True, help="per device")
    parser.add_argument("--case_kind", choices=("acc", "perf"), required=True)
    parser.add_argument("--output_root", required=True, help="the script's output/ folder")
    parser.add_argument("--accuracy_key", default=None, help="METRIC reported as TrainAccuracy")
    parser.add_argument("--extra_keys", default="", help="comma-separated METRICs added to the .log")
    parser.add_argument("--warmup_steps", type=int, default=0,
                        help="TRAIN lines up to this step number are left out of the FPS average "
                             "(pass the logging period to drop the first, tracing, interval)")
    parser.add_argument("--precision_mode", default="", help="passed on when set")
    for flag in ("over_dump", "data_dump_flag", "profiling", "autotune"):
        parser.add_argument(f"--{flag}", type=str2bool, default=False)
    parser.add_argument("--data_dump_step", default="10")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def _device_flags_for(args, output_root):
    """The main.py flags for the script's debug parameters, creating the dump folders."""
    flags = [f"--precision_mode={args.precision_mode}"] if args.precision_mode else []
    for flag, folder, path_flag in (("over_dump", "overflow_dump", "over_dump_path"),
                                    ("data_dump_flag", "data_dump", "data_dump_path"),
                                    ("profiling", "profiling", "profiling_dump_path")):
        if getattr(args, flag):
            path = os.path.join(output_root, folder)
            os.makedirs(path, exist_ok=True)
            flags += [f"--{flag}=True", f"--{path_flag}={path}"]
    if args.data_dump_flag:
        flags.append(f"--data_dump_step={args.data_dump_step}")
    if args.autotune:
        flags.append("--autotune=True")
    return flags


def _tail(path, lines=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def launch(argv):
    """Entry point of ``npu_utils.py launch``; returns the exit status."""
    args = _launch_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UserError("launch needs the training command after '--'")
    ranks = read_ranks()
    job_id = os.environ.get("JOB_ID", "10087")
    rank_id_start = _env_int(os.environ, "RANK_ID_START", 0, minimum=0)
    case_name = f"{args.network}_bs{args.batch_size}_{ranks.rank_size}p_{args.case_kind}"
    os.makedirs(args.output_root, exist_ok=True)
    device_flags = _device_flags_for(args, args.output_root)

    env = dict(os.environ, RANK_SIZE=str(ranks.rank_size), JOB_ID=job_id)
    if ranks.rank_size > 1 and not env.get("TF_CONFIG") and not env.get("WORKER_HOSTS"):
        env["WORKER_HOSTS"] = ",".join(f"127.0.0.1:{p}" for p in _free_ports(ranks.rank_size))

    start = time.time()
    processes = []
    for rank_id in range(rank_id_start, rank_id_start + ranks.rank_size):
        device_id = ranks.device_id if ranks.rank_size == 1 else rank_id
        rank_dir = os.path.join(args.output_root, str(device_id))
        shutil.rmtree(rank_dir, ignore_errors=True)
        os.makedirs(os.path.join(rank_dir, "ckpt"))
        log_path = os.path.join(rank_dir, f"train_{device_id}.log")
        rank_env = dict(env, RANK_ID=str(rank_id - rank_id_start),
                        ASCEND_DEVICE_ID=str(device_id), DEVICE_ID=str(device_id))
        rank_command = [part.replace("{output_dir}", rank_dir) for part in command] + device_flags
        with open(log_path, "w", encoding="utf-8") as log:
            log.write("command: " + " ".join(rank_command) + "\n")
            log.flush()
            processes.append((subprocess.Popen(rank_command, stdout=log, stderr=subprocess.STDOUT,
                                               env=rank_env), rank_dir, log_path))
    statuses = [process.wait() for process, _, _ in processes]
    e2e_sec = time.time() - start

    for status, (_, _, log_path) in zip(statuses, processes):
        if status != 0:
            print(_tail(log_path), end="", file=sys.stderr)
            print(f"[Error] training failed with exit status {status}; log: {log_path}", file=sys.stderr)
            return status if status > 0 else 1

    _, chief_dir, chief_log = processes[0]
    with open(chief_log, encoding="utf-8", errors="replace") as handle:
        log_text = handle.read()
    try:
        summary = summarize(log_text, network=args.network, batch_size=args.batch_size,
                            rank_size=ranks.rank_size, case_name=case_name, e2e_sec=e2e_sec,
                            warmup_steps=args.warmup_steps, accuracy_key=args.accuracy_key,
                            extra_keys=[k for k in args.extra_keys.split(",") if k])
    except UserError as error:
        print(f"[Error] {error}; log: {chief_log}", file=sys.stderr)
        return 1
    write_summary(summary, chief_dir)
    print("\n".join(summary.result_lines()))
    print(f"Summary: {os.path.join(chief_dir, case_name + '.log')}")
    if not math.isfinite(summary.losses[-1]):
        print(f"[Error] the last logged loss is {summary.losses[-1]}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "launch":
        print("usage: npu_utils.py launch --network NAME --batch_size N --case_kind acc|perf "
              "--output_root DIR [options] -- COMMAND...", file=sys.stderr)
        return 2
    try:
        return launch(argv[1:])
    except UserError as error:
        print(f"[Error] {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
