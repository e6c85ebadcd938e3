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
"""A stand-in for Huawei's TF 2.6.5 adapter ``npu_device``, as strict as the real one, computing on the CPU.

What it checks as the adapter does (``tf_adapter_2.x/python/npu_device/``):

- **Options are validated** (``configs/option_base.py``): an unknown name
  raises ``ValueError("NpuConfig has no option X, all options [...]")``, a
  value outside an option's list raises ``ValueError("'V' not in optional
  list [...]")``; ``as_dict()`` gives what ``open()`` hands to the device.
  Setting an option after ``open()`` raises here (the adapter ignores it
  silently, which would hide a bug of ours).
- **Three generations**, chosen by ``NPU_STAND_IN_GENERATION``, as the
  adapter's branches have them: ``r1.8`` (``auto_tune_mode`` only),
  ``r1.10`` (``auto_tune_mode`` beside ``aoe_config.aoe_mode``), both with
  ``precision_mode`` default ``allow_fp32_to_fp16`` and a rank table required
  for several devices; ``current`` (the default; master, CANN 6.3/7.0 on:
  ``aoe_config.aoe_mode`` only, ``precision_mode`` default None = CANN's
  per-chip default, ``RANK_TABLE_FILE`` or ``CM_CHIEF_IP``).
- **``open()`` reads the environment itself**: ``ASCEND_DEVICE_ID``, and with
  ``RANK_SIZE`` > 1 ``RANK_ID`` and ``RANK_TABLE_FILE`` / ``CM_CHIEF_IP``,
  raising the adapter's ``RuntimeError`` when they are missing.
- **A broken install**: with ``NPU_STAND_IN_BROKEN=1`` importing it raises the
  ``ImportError`` of an adapter whose CANN libraries are not on the path.

``distribute.all_reduce`` / ``broadcast`` return values unchanged (each
process is its own rank here), ``npu_distributed_keras_optimizer_wrapper``
all-reduces gradients in ``apply_gradients``, and
``train.optimizer.NpuLossScaleOptimizer(inner, dynamic, initial_scale,
dynamic_growth_steps)`` is Keras' loss-scaling optimizer. Every call is
appended to ``calls`` and the options ``open()`` saw are in ``opened_options``.
Put the folder above this package first on ``PYTHONPATH`` to use it.
"""

import inspect
import os
import types

if os.environ.get("NPU_STAND_IN_BROKEN") == "1":
    raise ImportError("libge_runner.so: cannot open shared object file: No such file or directory")

import tensorflow as tf  # noqa: E402

GENERATION = os.environ.get("NPU_STAND_IN_GENERATION", "current")
if GENERATION not in ("r1.8", "r1.10", "current"):
    raise ValueError(f"NPU_STAND_IN_GENERATION={GENERATION!r}: r1.8, r1.10 or current")

calls = []
opened_options = {}
_opened_device = []


class _Option:
    """One option: its value, checked against ``allowed`` (None: anything), as the adapter's OptionValue."""

    def __init__(self, default, allowed=None):
        self.default, self.allowed, self._value = default, allowed, default

    @property
    def value(self):
        """The value as the adapter passes it on: None, "1"/"0" for booleans, else a string."""
        if self._value is None:
            return None
        if str(self._value) in ("True", "False"):
            return "1" if str(self._value) == "True" else "0"
        return str(self._value)

    def set(self, value):
        if self.allowed is not None and value not in self.allowed:
            raise ValueError(f"'{value}' not in optional list {self.allowed}")
        self._value = value


class _Config:
    """A group of options (``NpuConfig``, ``NpuDumpConfig``, ...): only its own names can be set."""

    def __init__(self, name, **fields):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, key):
        fields = self.__dict__["_fields"]
        if key in fields:
            return fields[key]
        raise AttributeError(key)

    def __setattr__(self, key, value):
        if _opened_device:
            raise RuntimeError(f"npu_device stand-in: global_options().{key} set after npu_device.open()")
        if key not in self._fields or isinstance(self._fields[key], _Config):
            raise ValueError(f"{self._name} has no option {key}, all options {list(self._fields)}")
        self._fields[key].set(value)

    def as_dict(self):
        options = {}
        for key, field in self._fields.items():
            if isinstance(field, _Config):
                options.update(field.as_dict())
            elif field.value is not None:
                options[key] = field.value
        return options


_BOOL = [True, False]
_PRECISION_MODES = ["force_fp32", "allow_fp32_to_fp16", "force_fp16", "must_keep_origin_dtype", "allow_mix_precision"]


def _npu_config():
    """The option set of the adapter generation in use."""
    fields = dict(
        graph_run_mode=_Option(1, [0, 1]), fusion_switch_file=_Option(None), modify_mixlist=_Option(None),
        op_compiler_cache_mode=_Option("disable", ["enable", "disable", "force"]), op_compiler_cache_dir=_Option(None),
        hcom_parallel=_Option(False, _BOOL), enable_exception_dump=_Option(0, [0, 1]), debug_dir=_Option(None),
        dump_config=_Config("NpuDumpConfig", enable_dump=_Option(False, _BOOL), dump_path=_Option(None),
                            dump_step=_Option(None), dump_mode=_Option("output", ["input", "output", "all"]),
                            enable_dump_debug=_Option(False, _BOOL), dump_debug_mode=_Option(None)),
        profiling_config=_Config("NpuProfilingConfig", enable_profiling=_Option(False, _BOOL),
                                 profiling_options=_Option('{"output":"./","training_trace":"on"}')))
    aoe_config = _Config("NpuAoeConfig", aoe_mode=_Option(None, ["1", "2", "4"]), work_path=_Option("./"))
    if GENERATION in ("r1.8", "r1.10"):
        fields.update(precision_mode=_Option("allow_fp32_to_fp16", _PRECISION_MODES), auto_tune_mode=_Option(None))
        if GENERATION == "r1.10":
            fields.update(aoe_config=aoe_config)
    else:
        fields.update(precision_mode=_Option(None, _PRECISION_MODES + [
                          "cube_fp16in_fp32out", "allow_mix_precision_fp16", "allow_mix_precision_bf16",
                          "allow_fp32_to_bf16"]), aoe_config=aoe_config)
    return _Config("NpuConfig", **fields)


_options = _npu_config()


def global_options():
    return _options


class _Device:
    def as_default(self):
        calls.append("as_default")
        return self


def _check_distribution_environment():
    """What the adapter's ``open()`` demands of the environment for several devices."""
    if int(os.getenv("RANK_SIZE", "1")) <= 1:
        return
    table, chief = os.getenv("RANK_TABLE_FILE"), os.getenv("CM_CHIEF_IP")
    if GENERATION != "current" and not table:
        raise RuntimeError("You must specify a rank table file by set env RANK_TABLE_FILE in distribution mode")
    if not table and not chief:
        raise RuntimeError("CM_CHIEF_IP and RANK_TABLE_FILE are all not be configured.")
    if not os.getenv("RANK_ID"):
        raise RuntimeError("You must specify rank id by set env RANK_ID in distribution mode")


def open(device_id=None):  # noqa: A001 - the adapter's name
    if device_id is None:
        device_id = int(os.getenv("ASCEND_DEVICE_ID", "0"))
    if _opened_device and _opened_device[0] != device_id:
        raise RuntimeError(f"Failed create npu instance on device {device_id} as existed instance on "
                           f"{_opened_device}")
    _check_distribution_environment()
    opened_options.update(_options.as_dict())
    calls.append(("open", device_id, int(os.getenv("RANK_SIZE", "1"))))
    _opened_device[:] = [device_id]
    return _Device()


def _all_reduce(values, reduction="mean", fusion=1, fusion_id=-1, group="hccl_world_group"):
    calls.append(("all_reduce", reduction))
    return [tf.identity(v) if v is not None else None for v in values]


def _broadcast(values, root_rank=0, fusion=2, fusion_id=0, group="hccl_world_group"):
    calls.append(("broadcast", root_rank, len(list(values))))


def _distributed_optimizer(optimizer, reduce_reduction="mean", fusion=1, fusion_id=-1, group="hccl_world_group"):
    """The adapter's wrapper: gradients are averaged over the NPUs before they are applied."""
    calls.append("npu_distributed_keras_optimizer_wrapper")
    apply = optimizer.apply_gradients

    def apply_gradients(grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        reduced = _all_reduce([g for g, _ in grads_and_vars], reduce_reduction)
        return apply(list(zip(reduced, [v for _, v in grads_and_vars])), *args, **kwargs)

    optimizer.apply_gradients = apply_gradients
    return optimizer


distribute = types.SimpleNamespace(all_reduce=_all_reduce, broadcast=_broadcast,
                                   npu_distributed_keras_optimizer_wrapper=_distributed_optimizer)

_LossScaleOptimizer = tf.keras.mixed_precision.LossScaleOptimizer
# Keras 2.6's class takes the adapter's arguments as they are; Keras 3's has no static scale, so a static
# one is a dynamic scale that never grows here (it may still shrink on an overflow).
_KERAS_26_SIGNATURE = "dynamic" in inspect.signature(_LossScaleOptimizer.__init__).parameters


class NpuLossScaleOptimizer(_LossScaleOptimizer):
    """The adapter's loss-scaling optimizer: ``dynamic``, ``initial_scale``, ``dynamic_growth_steps`` as Keras 2.6's."""

    def __init__(self, inner_optimizer, dynamic=True, initial_scale=None, dynamic_growth_steps=None):
        calls.append(("NpuLossScaleOptimizer", {"dynamic": dynamic, "initial_scale": initial_scale,
                                                "dynamic_growth_steps": dynamic_growth_steps}))
        if _KERAS_26_SIGNATURE:
            super().__init__(inner_optimizer, dynamic=dynamic, initial_scale=initial_scale,
                             dynamic_growth_steps=dynamic_growth_steps)
            return
        options = {} if initial_scale is None else {"initial_scale": initial_scale}
        if not dynamic:
            options["dynamic_growth_steps"] = 2 ** 31 - 1
        elif dynamic_growth_steps is not None:
            options["dynamic_growth_steps"] = dynamic_growth_steps
        super().__init__(inner_optimizer, **options)


train = types.SimpleNamespace(optimizer=types.SimpleNamespace(NpuLossScaleOptimizer=NpuLossScaleOptimizer))
