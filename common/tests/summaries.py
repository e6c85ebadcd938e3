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
"""For the models' script tests: a summary's ActualFPS recomputed from its log, apart from the launcher."""

import re

TRAIN_LINE = re.compile(r"\bTRAIN step=(\d+) .*?images_per_sec=(\S+) .*?step_ms=(\S+)")


def images_over_time(log_text, images_per_step, warmup_steps):
    """``(images / seconds, mean of the lines' images/s)`` over the TRAIN lines after the warm-up.

    The warm-up counts from where the log's segment started, one logging
    interval before its first line; each line covers the steps since the
    line before it, each of them ``step_ms`` long.
    """
    rows = [(int(step), float(rate), float(ms)) for step, rate, ms in TRAIN_LINE.findall(log_text)]
    steps = [row[0] for row in rows]
    start = steps[0] - (steps[1] - steps[0] if len(steps) > 1 else 1)
    previous = [start] + steps[:-1]
    covered = [(step - before, rate, ms) for (step, rate, ms), before in zip(rows, previous)]
    # All warm-up (a very short run): every line but the first, as the launcher's timed_steps
    kept = [line for line, step in zip(covered, steps) if step > start + warmup_steps] or covered[1:] or covered
    images = images_per_step * sum(count for count, _, _ in kept)
    seconds = sum(count * ms for count, _, ms in kept) / 1000.0
    return images / seconds, sum(rate for _, rate, _ in kept) / len(kept)
