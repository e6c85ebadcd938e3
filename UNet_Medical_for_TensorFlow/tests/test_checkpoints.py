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
"""A damaged checkpoint is one line naming the file: truncated data, corrupt index, dangling or garbage state."""

import os

import pytest
import tensorflow as tf

from common.npu_utils import UserError
from runtime import session


def _saved(folder):
    checkpoint = tf.train.Checkpoint(weights=tf.Variable(tf.range(4096, dtype=tf.float32)))
    manager = tf.train.CheckpointManager(checkpoint, str(folder), max_to_keep=1)
    return manager.save(checkpoint_number=7)


def _cut(path, keep, tail=b""):
    data = open(path, "rb").read()
    open(path, "wb").write(data[:keep(len(data))] + tail)


def test_a_good_checkpoint_is_found_and_read(tmp_path, monkeypatch):
    prefix = _saved(tmp_path)
    assert session.latest_checkpoint(str(tmp_path)) == prefix
    session.check_readable(prefix)
    assert session.latest_checkpoint(str(tmp_path / "empty")) is None
    monkeypatch.chdir(tmp_path.parent)  # a relative --model_dir, as in the README's commands
    assert session.latest_checkpoint(tmp_path.name) == os.path.join(tmp_path.name, "ckpt-7")


def test_truncated_data_file(tmp_path):
    prefix = _saved(tmp_path)
    _cut(f"{prefix}.data-00000-of-00001", lambda n: n // 2)
    with pytest.raises(UserError) as error:
        session.check_readable(prefix)
    assert str(error.value).startswith(f"{prefix}: the checkpoint is unreadable (")
    assert str(error.value).endswith("); delete it (and the 'checkpoint' file naming it) or use another --model_dir")


def test_corrupt_index_file(tmp_path):
    prefix = _saved(tmp_path)
    _cut(f"{prefix}.index", lambda n: n // 2, b"xx")
    with pytest.raises(UserError, match=rf"^{prefix}: the checkpoint is unreadable \(.*sstable"):
        session.check_readable(prefix)


def test_dangling_and_garbage_state_files(tmp_path):
    prefix = _saved(tmp_path)
    for name in os.listdir(tmp_path):
        if name.startswith("ckpt-"):
            os.remove(tmp_path / name)
    with pytest.raises(UserError) as error:
        session.latest_checkpoint(str(tmp_path))
    assert str(error.value) == (f"{tmp_path}/checkpoint: the checkpoint is unreadable (it names {prefix}, "
                                "whose .index file is missing)")
    (tmp_path / "checkpoint").write_text("garbage {{{ not a proto")
    with pytest.raises(UserError) as error:
        session.latest_checkpoint(str(tmp_path))
    assert str(error.value) == f"{tmp_path}/checkpoint: the checkpoint is unreadable (it names no checkpoint)"
