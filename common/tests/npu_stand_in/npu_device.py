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
"""A stand-in for the Ascend TF 2.6.5 adapter ``npu_device``, for machines without an NPU.

It has the adapter's API as the TF 2.6 migration guide documents it and
computes on the CPU, so a model runs its NPU code path end to end:

- options go on ``global_options()`` before ``open().as_default()``: setting
  one after ``open()`` raises, as the adapter ignores it then;
- ``distribute.all_reduce(values, "mean"|"sum"|...)`` and
  ``distribute.broadcast(variables, root_rank)``: one process holds every
  rank here, so values come back unchanged;
- ``distribute.npu_distributed_keras_optimizer_wrapper(optimizer)``: its
  ``apply_gradients`` all-reduces the gradients (mean) first;
- ``train.optimizer.NpuLossScaleOptimizer``: the Keras loss-scaling optimizer.

Every call is appended to ``calls`` so tests can check what the code asked.
Put this folder first on ``sys.path`` (or ``PYTHONPATH``) to use it.
"""

import types

import tensorflow as tf

calls = []
_opened = []


class _Options:
    """``global_options()``: attributes set before ``open()``; later ones raise."""

    def __init__(self):
        object.__setattr__(self, "dump_config", types.SimpleNamespace())
        object.__setattr__(self, "profiling_config", types.SimpleNamespace())

    def __setattr__(self, name, value):
        if _opened:
            raise RuntimeError(f"npu_device stand-in: global_options().{name} set after npu_device.open()")
        object.__setattr__(self, name, value)


_options = _Options()


def global_options():
    return _options


class _Device:
    def as_default(self):
        calls.append("as_default")
        return self


def open():  # noqa: A001 - the adapter's name
    calls.append("open")
    _opened.append(True)
    return _Device()


def _all_reduce(values, reduction="mean"):
    calls.append(("all_reduce", reduction))
    return [tf.identity(v) if v is not None else None for v in values]


def _broadcast(variables, root_rank=0):
    calls.append(("broadcast", root_rank, len(list(variables))))


def _distributed_optimizer(optimizer):
    """The adapter's wrapper: gradients are averaged over the NPUs before they are applied."""
    calls.append("npu_distributed_keras_optimizer_wrapper")
    apply = optimizer.apply_gradients

    def apply_gradients(grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        reduced = _all_reduce([g for g, _ in grads_and_vars], "mean")
        return apply(list(zip(reduced, [v for _, v in grads_and_vars])), *args, **kwargs)

    optimizer.apply_gradients = apply_gradients
    return optimizer


distribute = types.SimpleNamespace(all_reduce=_all_reduce, broadcast=_broadcast,
                                   npu_distributed_keras_optimizer_wrapper=_distributed_optimizer)


class NpuLossScaleOptimizer(tf.keras.mixed_precision.LossScaleOptimizer):
    """The adapter's loss-scaling optimizer (for ``allow_mix_precision``): Keras' dynamic loss scaling."""

    def __init__(self, inner_optimizer, *args, **kwargs):
        calls.append("NpuLossScaleOptimizer")
        super().__init__(inner_optimizer, *args, **kwargs)


train = types.SimpleNamespace(optimizer=types.SimpleNamespace(NpuLossScaleOptimizer=NpuLossScaleOptimizer))
