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
"""Benchmark statistics: throughput and latency percentiles after the warm-up."""

import numpy as np

PERCENTILES = (90, 95, 99)


def benchmark_statistics(step_seconds, images_per_step, warmup_steps):
    """Throughput and latency of the steps after ``warmup_steps``.

    Args:
      step_seconds: wall time of each step, in order.
      images_per_step: global batch (batch size x ranks).
      warmup_steps: leading steps left out (tracing, compilation, caches).
    Returns:
      dict: ``throughput`` (images/s, mean over steps of images/step_time),
      ``latency_ms_mean`` and ``latency_ms_p90/p95/p99``.
    Raises:
      ValueError: no step left after the warm-up.
    """
    kept = np.asarray(step_seconds[warmup_steps:], np.float64)
    if kept.size == 0:
        raise ValueError(f"no step after the {warmup_steps} warm-up steps; raise --max_steps")
    stats = {"throughput": float(np.mean(images_per_step / kept)),
             "latency_ms_mean": float(kept.mean() * 1000)}
    stats.update({f"latency_ms_p{p}": float(np.percentile(kept, p) * 1000) for p in PERCENTILES})
    return stats
