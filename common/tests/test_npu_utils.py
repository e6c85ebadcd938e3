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
"""Tests of common/npu_utils.py: every branch, with no accelerator.

The Ascend branch runs against the stand-in ``npu_device`` of
``tests/npu_stand_in/`` (the TF 2.6.5 adapter's API, computing on the CPU,
recording what it is asked); it has not run on Ascend hardware here.
"""

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
from common import cli, cluster, errors, npu_utils  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.stack import set_random_seed  # noqa: E402
from common.tests import processes  # noqa: E402



def parse(argv=()):
    return npu_utils.add_device_flags(argparse.ArgumentParser()).parse_args(list(argv))


# ---------------------------------------------------------------- flags

def test_bool_flags_take_modelzoo_spellings():
    assert parse([]).use_amp is False
    assert parse(["--use_amp"]).use_amp is True
    assert parse(["--use_amp=True"]).use_amp is True
    assert parse(["--over_dump=False"]).over_dump is False
    assert parse(["--profiling=1"]).profiling is True


def test_bad_bool_and_bad_precision_mode_are_flag_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(["--use_amp=maybe"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        parse(["--precision_mode=fp8"])
    assert "--precision_mode" in capsys.readouterr().err


def test_the_mode_flag_takes_a_references_spellings_and_keeps_the_flag_as_typed():
    parser = cli.add_mode_flag(cli.FlagParser(), cli.MODES[:4], "what to run",
                                     reference_modes={"test": "evaluate", "train_test": "train_and_evaluate"},
                                     aliases=("--exec_mode",))
    assert vars(parser.parse_args([])) == {"mode": "train", "mode_flag": "--mode=train"}
    assert vars(parser.parse_args(["--mode=test"])) == {"mode": "evaluate", "mode_flag": "--mode=test"}
    assert vars(parser.parse_args(["--exec_mode", "train_test"])) == \
        {"mode": "train_and_evaluate", "mode_flag": "--exec_mode=train_test"}
    with pytest.raises(UserError, match=r"^--mode=export: expected one of train, evaluate, train_and_evaluate, "
                                        r"predict, test, train_test \(see --help\)$"):
        parser.parse_args(["--mode=export"])
    with pytest.raises(UserError, match=r"^--exec_mode=tst: expected one of "):  # the flag as typed
        parser.parse_args(["--exec_mode", "tst"])
    with pytest.raises(ValueError, match="in its order"):
        cli.add_mode_flag(cli.FlagParser(), ("evaluate", "train"), "")
    with pytest.raises(ValueError, match="run no mode"):
        cli.add_mode_flag(cli.FlagParser(), ("train",), "", reference_modes={"test": "evaluate"})


@pytest.mark.subprocess
def test_a_finished_multi_worker_process_leaves_without_tensorflows_teardown():
    script = textwrap.dedent(f"""
        import atexit, sys
        sys.path.insert(0, {REPO_ROOT!r})
        from common import errors
        atexit.register(lambda: print("teardown ran"))

        @errors.exit_on_user_error
        def main():
            print("trained", end="")
        main()
    """)
    for env, teardown in (({"TF_CONFIG": "{}", "RANK_SIZE": "2"}, False), ({"RANK_SIZE": "2"}, True)):
        result = processes.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                               env=dict({k: v for k, v in os.environ.items() if k != "TF_CONFIG"}, **env))
        assert result.returncode == 0 and result.stdout.startswith("trained")
        assert ("teardown ran" in result.stdout) == teardown


def test_exit_on_user_error_prints_one_line_and_exits_2(capsys):
    @errors.exit_on_user_error
    def main():
        raise UserError("--data_dir=/nowhere does not exist")

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --data_dir=/nowhere does not exist\n"


# ---------------------------------------------------------------- precision

@pytest.mark.parametrize("device, mode, amp, bf16, policy, npu_mode, scaling", [
    ("npu", None, False, False, "float32", None, False),  # the adapter's own default
    ("npu", "force_fp16", False, False, "float32", "force_fp16", True),
    ("npu", "must_keep_origin_dtype", False, False, "float32", "must_keep_origin_dtype", False),
    ("npu", None, True, False, "float32", "allow_mix_precision", True),
    ("gpu", None, False, False, "float32", None, False),
    ("gpu", "allow_fp32_to_fp16", False, False, "float32", None, False),
    ("gpu", "must_keep_origin_dtype", False, False, "float32", None, False),
    ("gpu", "allow_mix_precision", False, False, "mixed_float16", None, True),
    ("gpu", "force_fp16", False, False, "mixed_float16", None, True),
    ("gpu", None, True, False, "mixed_float16", None, True),
    ("cpu", None, False, True, "float32", None, False),
    ("cpu", "allow_fp32_to_fp16", False, True, "float32", None, False),
    ("cpu", "allow_mix_precision", False, True, "mixed_bfloat16", None, False),
    ("cpu", None, True, True, "mixed_bfloat16", None, False),
    ("cpu", "force_fp16", False, False, "float32", None, False),
    ("cpu", None, True, False, "float32", None, False),
])
def test_precision_mapping(device, mode, amp, bf16, policy, npu_mode, scaling):
    precision = npu_utils.choose_precision(device, mode, amp, bf16_capable=bf16)
    assert (precision.policy, precision.npu_precision_mode, precision.loss_scaling) == (policy, npu_mode, scaling)


def test_precision_notes_say_why_the_run_differs_from_the_request():
    assert "no bfloat16" in npu_utils.choose_precision("cpu", None, True, bf16_capable=False).note
    assert "mixed_float16" in npu_utils.choose_precision("gpu", "force_fp16").note
    assert npu_utils.choose_precision("cpu").note == ""


def test_bad_precision_requests():
    with pytest.raises(UserError, match="precision_mode='fp8'"):
        npu_utils.choose_precision("cpu", "fp8")
    with pytest.raises(UserError, match="--use_amp"):
        npu_utils.choose_precision("gpu", "must_keep_origin_dtype", use_amp=True)
    with pytest.raises(ValueError, match="tpu"):
        npu_utils.choose_precision("tpu")


def test_cpu_bf16_detection_reads_the_flags():
    assert npu_utils.cpu_has_bf16("flags : fpu avx2 avx512_bf16 sse")
    assert npu_utils.cpu_has_bf16("flags : fpu amx_bf16")
    assert not npu_utils.cpu_has_bf16("flags : fpu avx2 fma")


# ---------------------------------------------------------------- ranks

def test_ranks_default_to_one_process_on_device_0():
    assert cluster.read_ranks({}) == cluster.Ranks(1, 0, 0)


def test_ranks_read_every_variable():
    ranks = cluster.read_ranks({"RANK_SIZE": "8", "RANK_ID": "3", "ASCEND_DEVICE_ID": "5", "DEVICE_ID": "1"})
    assert ranks == cluster.Ranks(8, 3, 5) and not ranks.is_chief
    assert cluster.read_ranks({"DEVICE_ID": "2"}).device_id == 2


@pytest.mark.parametrize("env, message", [
    ({"RANK_SIZE": "two"}, "RANK_SIZE='two' is not an integer"),
    ({"RANK_SIZE": "0"}, "RANK_SIZE=0 must be at least 1"),
    ({"RANK_SIZE": "2", "RANK_ID": "2"}, "RANK_ID=2 must be smaller than RANK_SIZE=2"),
    ({"RANK_ID": "-1"}, "RANK_ID=-1 must be at least 0"),
    ({"ASCEND_DEVICE_ID": "x"}, "ASCEND_DEVICE_ID='x' is not an integer"),
])
def test_bad_rank_variables(env, message):
    with pytest.raises(UserError, match=message):
        cluster.read_ranks(env)


def test_tf_config_from_worker_hosts_and_from_tf_config():
    ranks = cluster.Ranks(2, 1, 1)
    assert cluster.worker_tf_config(cluster.Ranks(), {}) is None
    config = cluster.worker_tf_config(ranks, {"WORKER_HOSTS": "10.0.0.1:2222, 10.0.0.2:2222"})
    assert config == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
                      "task": {"type": "worker", "index": 1}}
    given = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    assert cluster.worker_tf_config(ranks, {"TF_CONFIG": json.dumps(given)}) == given


@pytest.mark.parametrize("env, message", [
    ({}, "needs TF_CONFIG or WORKER_HOSTS"),
    ({"WORKER_HOSTS": "a:1"}, "lists 1 hosts but RANK_SIZE=2"),
    ({"WORKER_HOSTS": "a:1,b"}, "'b' is not host:port"),
    ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not JSON"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})}, "TF_CONFIG lists 1 workers"),
])
def test_bad_worker_configuration(env, message):
    with pytest.raises(UserError, match=message):
        cluster.worker_tf_config(cluster.Ranks(2, 0, 0), env)


# ---------------------------------------------------------------- device set-up

@pytest.fixture
def one_process(monkeypatch):
    """An environment without rank variables, as setup_device reads it (os.environ)."""
    for name in ("RANK_SIZE", "RANK_ID", "TF_CONFIG", "WORKER_HOSTS", "ASCEND_DEVICE_ID", "DEVICE_ID"):
        monkeypatch.delenv(name, raising=False)


def test_cpu_setup_prints_one_line_and_warns_for_each_ascend_flag(capsys, one_process):
    from common.stack import keras
    import tensorflow as tf
    args = parse(["--over_dump", "--data_dump_flag", "--profiling", "--autotune",
                  "--mixlist_file=ops.json", "--fusion_switch_file=fusion.cfg"])
    try:
        ctx = npu_utils.setup_device(args)
        lines = capsys.readouterr().out.splitlines()
        assert ctx.device == "cpu" and ctx.npu is None and ctx.is_chief and not ctx.multi_worker
        assert ctx.strategy is tf.distribute.get_strategy()
        assert keras.mixed_precision.global_policy().name == "float32"
        warnings = [line for line in lines if "has no effect on CPU" in line]
        assert [w.split()[2] for w in warnings] == ["--over_dump", "--data_dump_flag", "--profiling",
                                                     "--autotune", "--mixlist_file", "--fusion_switch_file"]
        device_lines = [line for line in lines if line.startswith("[device] CPU")]
        assert device_lines == ["[device] CPU 0, precision float32, rank 0 of 1"]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_cpu_setup_with_amp_follows_the_cpu_flags(capsys, one_process):
    from common.stack import keras
    try:
        ctx = npu_utils.setup_device(parse(["--use_amp", "--use_xla"]))
        line = capsys.readouterr().out.strip().splitlines()[-1]
        from common.stack import CPU_BFLOAT16  # TF 2.6.5 has no bfloat16 convolutions on the CPU
        expected = "mixed_bfloat16" if CPU_BFLOAT16 and npu_utils.cpu_has_bf16() else "float32"
        assert ctx.precision.policy == expected
        assert keras.mixed_precision.global_policy().name == expected
        assert line.startswith(f"[device] CPU 0, precision {expected} (") and line.endswith(", XLA, rank 0 of 1")
        assert ctx.use_xla
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_step_function_counts_traces_and_fixed_shapes_trace_once():
    import numpy as np
    square = npu_utils.step_function(lambda x: x * x, "test_square")
    before = npu_utils.TRACES["test_square"]
    for _ in range(3):
        square(np.ones((2, 3), np.float32))
    assert npu_utils.TRACES["test_square"] - before == 1
    square(np.ones((4, 3), np.float32))
    assert npu_utils.TRACES["test_square"] - before == 2


def test_shard_gives_each_rank_its_own_items():
    ctx = npu_utils.RunContext("cpu", npu_utils.Precision("float32"), False, cluster.Ranks(3, 1, 1), None)
    assert ctx.shard(range(8)) == [1, 4, 7]


def test_single_process_train_step_learns():
    from common.stack import keras
    import numpy as np
    import tensorflow as tf
    set_random_seed(0)
    ctx = npu_utils.RunContext("cpu", npu_utils.Precision("float32"), True, cluster.Ranks(),
                               tf.distribute.get_strategy())
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = ctx.wrap_optimizer(keras.optimizers.SGD(0.1))
    step = npu_utils.make_train_step(ctx, model, optimizer,
                                     lambda x, y: tf.reduce_mean(tf.square(model(x, training=True) - y)))
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    losses = [float(step(x, y)) for _ in range(50)]
    assert losses[-1] < 0.01 * losses[0]


def test_loss_scaling_wraps_the_optimizer_only_for_float16():
    from common.stack import keras
    fp16 = npu_utils.RunContext("gpu", npu_utils.Precision("mixed_float16", loss_scaling=True), False,
                                cluster.Ranks(), None)
    fp32 = npu_utils.RunContext("gpu", npu_utils.Precision("float32"), False, cluster.Ranks(), None)
    from common import stack
    assert stack.is_loss_scaled(fp16.wrap_optimizer(keras.optimizers.Adam()))
    assert not stack.is_loss_scaled(fp32.wrap_optimizer(keras.optimizers.Adam()))


# ---------------------------------------------------------------- log format

@pytest.mark.subprocess
def test_restore_checkpoint_restores_or_returns_one_quiet_error(tmp_path):
    # A subprocess: the warnings this guards against come when objects are freed, at the latest at exit.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO_ROOT!r})
        import numpy as np, tensorflow as tf
        from common import checkpoints
        from common.stack import build_optimizer, keras

        def model(width):
            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(width), keras.layers.BatchNormalization()])

        saved = model(4)
        optimizer = keras.optimizers.Adam()
        build_optimizer(optimizer, saved.trainable_variables)
        prefix = tf.train.Checkpoint(model=saved, optimizer=optimizer).save({str(tmp_path / "ckpt")!r})
        same = model(4)
        assert checkpoints.restore_checkpoint(tf.train.Checkpoint(model=same), prefix, partial=True) is None
        np.testing.assert_array_equal(same.get_weights()[0], saved.get_weights()[0])
        print("ERROR", checkpoints.restore_checkpoint(tf.train.Checkpoint(model=model(5)), prefix, partial=True))
        """)
    result = processes.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr
    # Keras 3: "Received incompatible tensor with shape (4,) ...", Keras 2.6: "Shapes (5,) and (4,) are incompatible"
    assert re.search(r"^ERROR .*incompatible", result.stdout, re.M) and "(4,)" in result.stdout
    assert "WARNING:tensorflow" not in result.stderr


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.subprocess
def test_two_workers_train_to_identical_weights_equal_to_one_process(tmp_path):
    """MultiWorkerMirroredStrategy over 127.0.0.1: each worker takes half of a
    global batch of 4; both must end with the weights one process gets on the
    whole batch (so the gradients are averaged once, not summed)."""
    import numpy as np
    worker = os.path.join(os.path.dirname(__file__), "multiworker_worker.py")
    hosts = f"127.0.0.1:{_free_port()},127.0.0.1:{_free_port()}"
    base_env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "RANK_ID", "RANK_SIZE")}
    with contextlib.ExitStack() as stack:
        ranks = [stack.enter_context(processes.started(
            [sys.executable, worker, str(tmp_path / f"w{rank}.npy")], timeout=180,
            env=dict(base_env, RANK_SIZE="2", RANK_ID=str(rank), WORKER_HOSTS=hosts),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)) for rank in (0, 1)]
        outputs = [rank.communicate(timeout=180)[0] for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0], outputs
    single = processes.run([sys.executable, worker, str(tmp_path / "single.npy")], env=base_env,
                           capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stdout + single.stderr
    w0, w1, ws = (np.load(tmp_path / f"{n}.npy") for n in ("w0", "w1", "single"))
    assert np.array_equal(w0, w1)
    np.testing.assert_allclose(w0, ws, rtol=1e-5, atol=1e-6)
