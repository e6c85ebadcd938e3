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
"""A damaged checkpoint is one line naming the file: truncated data, corrupt index.

(A damaged or dangling ``checkpoint`` list is common/checkpoints.latest_checkpoint's, tested in common/tests.)"""

import pytest
import tensorflow as tf

from common.errors import UserError
from runtime import training


def _saved(folder):
    checkpoint = tf.train.Checkpoint(weights=tf.Variable(tf.range(4096, dtype=tf.float32)))
    manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1)
    return manager.save(checkpoint_number=7)


def _cut(path, keep, tail=b""):
    data = open(path, "rb").read()
    open(path, "wb").write(data[:keep(len(data))] + tail)


def test_a_good_checkpoint_is_read(tmp_path):
    training._check_readable(_saved(tmp_path))


def test_truncated_data_file(tmp_path):
    prefix = _saved(tmp_path)
    _cut(f"{prefix}.data-00000-of-00001", lambda n: n // 2)
    with pytest.raises(UserError) as error:
        training._check_readable(prefix)
    assert str(error.value).startswith(f"{prefix}: the checkpoint is unreadable (")
    assert str(error.value).endswith("); delete it (and the 'checkpoint' file naming it) or use another --model_dir")


def test_corrupt_index_file(tmp_path):
    prefix = _saved(tmp_path)
    _cut(f"{prefix}.index", lambda n: n // 2, b"xx")
    with pytest.raises(UserError, match=rf"^{prefix}: the checkpoint is unreadable \(.*sstable"):
        training._check_readable(prefix)
