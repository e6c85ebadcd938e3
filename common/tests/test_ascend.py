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
"""The Ascend code path (common/ascend.py through npu_utils.setup_device) against the stand-in adapter
of ``tests/npu_stand_in/``, on each of its generations: r1.8 (``auto_tune_mode`` only), r1.10 (it and
``aoe_config.aoe_mode``), both with precision default ``allow_fp32_to_fp16`` and a rank table required,
and current (master: ``aoe_config.aoe_mode`` only, precision left to CANN, ``RANK_TABLE_FILE`` or
``CM_CHIEF_IP``). The stand-in validates options and reads the environment as Huawei's adapter does;
it has not run on Ascend hardware here."""

import argparse
import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
from common import ascend, npu_utils, stack  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.tests.stacks import NPU_STAND_IN  # noqa: E402

GENERATIONS = ("r1.8", "r1.10", "current")
LEGACY = ("r1.8", "r1.10")  # precision default allow_fp32_to_fp16, a rank table required


def parse(argv=()):
    return npu_utils.add_device_flags(argparse.ArgumentParser()).parse_args(list(argv))


@pytest.fixture(params=GENERATIONS)
def adapter(request, monkeypatch):
    """Import the stand-in npu_device of one generation, fresh, in a one-process environment; yields a
    function that runs ``setup_device`` and returns (ctx, the adapter module)."""
    from common.stack import keras
    monkeypatch.syspath_prepend(NPU_STAND_IN)
    monkeypatch.setenv("NPU_STAND_IN_GENERATION", request.param)
    for name in ("RANK_SIZE", "RANK_ID", "RANK_TABLE_FILE", "CM_CHIEF_IP", "ASCEND_DEVICE_ID", "DEVICE_ID",
                 "TF_CONFIG", "WORKER_HOSTS", "NPU_STAND_IN_BROKEN"):
        monkeypatch.delenv(name, raising=False)
    sys.modules.pop("npu_device", None)

    def setup(*flags):
        ctx = npu_utils.setup_device(parse(flags))
        return ctx, sys.modules["npu_device"]

    setup.generation = request.param
    yield setup
    sys.modules.pop("npu_device", None)
    keras.mixed_precision.set_global_policy("float32")


def test_every_debug_flag_reaches_the_adapters_options(adapter, tmp_path, capsys):
    (tmp_path / "mix.json").write_text("{}")
    (tmp_path / "fusion.cfg").write_text("")
    ctx, npu = adapter("--precision_mode=allow_mix_precision", "--data_dump_flag", "--data_dump_step=0|5|10",
                       f"--data_dump_path={tmp_path}/mine", "--profiling", f"--profiling_dump_path={tmp_path}/prof",
                       "--autotune", "--use_xla", f"--mixlist_file={tmp_path}/mix.json",
                       f"--fusion_switch_file={tmp_path}/fusion.cfg")
    options = npu.opened_options
    assert ctx.device == "npu" and not ctx.use_xla
    assert options["precision_mode"] == "allow_mix_precision"
    assert (options["enable_dump"], options["dump_step"], options["dump_mode"]) == ("1", "0|5|10", "all")
    assert options["dump_path"] == f"{tmp_path}/mine"
    assert options["enable_profiling"] == "1"
    assert json.loads(options["profiling_options"])["output"] == f"{tmp_path}/prof"
    assert options["modify_mixlist"] == f"{tmp_path}/mix.json"
    assert options["fusion_switch_file"] == f"{tmp_path}/fusion.cfg"
    # --autotune sets what this generation has: decided from its options, not a version string
    if adapter.generation == "r1.8":
        assert options["auto_tune_mode"] == "RL,GA" and "aoe_mode" not in options
    else:  # r1.10 has both options: the newer one
        assert options["aoe_mode"] == ascend.AOE_OPERATOR_TUNING and "auto_tune_mode" not in options
    assert npu.calls == [("open", 0, 1), "as_default"]
    out = capsys.readouterr().out
    assert "--use_xla has no effect on NPU" in out
    assert "[device] NPU 0, precision allow_mix_precision, rank 0 of 1" in out


def test_the_overflow_dump_goes_where_the_user_says(adapter, tmp_path):
    _, npu = adapter("--over_dump", f"--over_dump_path={tmp_path}/over")
    assert npu.opened_options["enable_dump_debug"] == "1"
    assert npu.opened_options["dump_path"] == f"{tmp_path}/over" and (tmp_path / "over").is_dir()


def test_no_precision_mode_leaves_the_adapters_default_and_names_it(adapter, capsys):
    ctx, npu = adapter()
    line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[device] NPU")][0]
    assert ctx.precision.npu_precision_mode is None and not ctx.precision.loss_scaling
    if adapter.generation in LEGACY:
        assert npu.opened_options["precision_mode"] == "allow_fp32_to_fp16"
        assert line == "[device] NPU 0, precision allow_fp32_to_fp16 (the adapter's default), rank 0 of 1"
    else:
        assert "precision_mode" not in npu.opened_options  # CANN chooses, per chip
        assert "precision CANN's default (allow_fp32_to_fp16 on the Atlas training series (910), " \
               "must_keep_origin_dtype on 910B/910C)" in line


def test_force_fp16_for_training_is_named_as_an_inference_mode(adapter, capsys):
    adapter("--precision_mode=force_fp16")
    assert "force_fp16 is for online inference" in capsys.readouterr().out


def test_the_adapter_refuses_unknown_options_and_values_as_huaweis_does(adapter):
    _, npu = adapter()
    sys.modules.pop("npu_device")
    fresh = __import__("npu_device")  # options not yet opened
    options = fresh.global_options()
    if adapter.generation != "r1.10":  # the option this generation lacks
        with pytest.raises(AttributeError):
            getattr(options, "auto_tune_mode" if adapter.generation == "current" else "aoe_config")
    with pytest.raises(ValueError, match="NpuConfig has no option no_such_option, all options"):
        options.no_such_option = 1
    with pytest.raises(ValueError, match="'fp8' not in optional list"):
        options.precision_mode = "fp8"
    with pytest.raises(ValueError, match="'sometimes' not in optional list"):
        options.dump_config.dump_mode = "sometimes"


def test_a_value_the_adapter_refuses_is_one_line_naming_the_flag():
    class Options:
        precision_mode = None

        def __setattr__(self, name, value):
            raise ValueError(f"'{value}' not in optional list ['force_fp32']")

    with pytest.raises(UserError, match=r"^--precision_mode: the Ascend adapter refuses precision_mode="):
        ascend._set(Options(), "precision_mode", "allow_mix_precision", "--precision_mode")
    with pytest.raises(UserError, match="neither aoe_config.aoe_mode nor auto_tune_mode"):
        ascend._set_autotune(object())


def test_options_after_open_are_refused_by_the_stand_in(adapter):
    _, npu = adapter()
    with pytest.raises(RuntimeError, match="after npu_device.open"):
        npu.global_options().precision_mode = "force_fp16"


def test_a_missing_mixlist_file_or_a_dump_folder_that_cannot_be_made_is_one_line(adapter, tmp_path):
    with pytest.raises(UserError, match=f"--mixlist_file={tmp_path}/none.json: no such file"):
        adapter(f"--mixlist_file={tmp_path}/none.json")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match=f"--profiling_dump_path={tmp_path}/a_file: cannot be made a folder"):
        adapter("--profiling", f"--profiling_dump_path={tmp_path}/a_file")


@pytest.mark.parametrize("loss_scale, expected", [
    (None, {"dynamic": True, "initial_scale": None}),
    (128, {"dynamic": False, "initial_scale": 128}),
    (0, None),
])
def test_loss_scale_reaches_the_npu_loss_scale_optimizer(adapter, loss_scale, expected):
    from common.stack import keras
    ctx, npu = adapter("--precision_mode=allow_mix_precision")
    optimizer = ctx.wrap_optimizer(keras.optimizers.SGD(0.1), initial_scale=loss_scale)
    made = [call[1] for call in npu.calls if call[0] == "NpuLossScaleOptimizer"]
    if expected is None:
        assert not made and not stack.is_loss_scaled(optimizer)
    else:
        assert made == [dict(expected, dynamic_growth_steps=None)] and stack.is_loss_scaled(optimizer)


def test_several_devices_need_a_rank_table_or_a_chief_ip_before_the_adapter_opens(adapter, monkeypatch, tmp_path):
    monkeypatch.setenv("RANK_SIZE", "2")
    monkeypatch.setenv("RANK_ID", "1")
    with pytest.raises(UserError, match="RANK_SIZE=2 on Ascend needs RANK_TABLE_FILE .* or CM_CHIEF_IP; "
                                        "neither is set"):
        adapter()
    assert not [call for call in sys.modules["npu_device"].calls if call[0] == "open"]  # stopped before open()
    monkeypatch.setenv("CM_CHIEF_IP", "192.168.1.1")
    if adapter.generation in LEGACY:  # up to r1.11 the adapter knows only the rank table
        with pytest.raises(UserError, match="could not open the NPU: You must specify a rank table file"):
            adapter()
        return
    ctx, npu = adapter()
    assert ctx.multi_worker and npu.calls[0] == ("open", 0, 2)


def test_a_broken_adapter_install_is_one_line_not_a_silent_cpu_run(adapter, monkeypatch):
    monkeypatch.setenv("NPU_STAND_IN_BROKEN", "1")
    with pytest.raises(UserError) as error:
        adapter()
    message = str(error.value)
    assert message.startswith("npu_device is installed but does not import (ImportError: libge_runner.so")
    assert "/usr/local/Ascend/ascend-toolkit/set_env.sh" in message and "tfplugin/set_env.sh" in message


def test_no_adapter_installed_means_no_npu(monkeypatch):
    monkeypatch.setitem(sys.modules, "npu_device", None)  # "import npu_device" -> ModuleNotFoundError for it
    assert ascend.import_adapter() is None


def test_several_npus_train_through_the_adapter_wrappers(adapter, monkeypatch, tmp_path):
    """Two NPUs, allow_mix_precision: the adapter's loss scaling and distributed optimizer wrap the
    optimizer, the step all-reduces through them, variables are broadcast, and the step learns."""
    import numpy as np
    import tensorflow as tf
    from common.stack import keras
    monkeypatch.setenv("RANK_SIZE", "2")
    monkeypatch.setenv("RANK_ID", "1")
    monkeypatch.setenv("ASCEND_DEVICE_ID", "1")
    monkeypatch.setenv("RANK_TABLE_FILE", str(tmp_path / "rank_table.json"))
    ctx, npu = adapter("--precision_mode=allow_mix_precision")
    assert npu.calls[0] == ("open", 1, 2)
    assert ctx.strategy is tf.distribute.get_strategy()  # no tf.distribute strategy on Ascend
    grads = [tf.constant(1.0)]
    assert ctx.average_gradients(grads) is grads  # the wrapped optimizer averages, not the step
    stack.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = ctx.wrap_optimizer(keras.optimizers.SGD(0.1))
    assert stack.is_loss_scaled(optimizer)
    assert [c if isinstance(c, str) else c[0] for c in npu.calls[-2:]] == [
        "NpuLossScaleOptimizer", "npu_distributed_keras_optimizer_wrapper"]
    step = npu_utils.make_train_step(ctx, model, optimizer,
                                     lambda x, y: tf.reduce_mean(tf.square(model(x, training=True) - y)))
    assert ("broadcast", 0, 2) in npu.calls
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    losses = [float(step(x, y)) for _ in range(50)]
    assert ("all_reduce", "mean") in npu.calls
    assert losses[-1] < 0.01 * losses[0]


@pytest.mark.parametrize("value", ["10", "0|5|10", "0|5-8|10", " 3 "])
def test_dump_steps_take_the_adapters_format(value):
    assert ascend.dump_steps(value) == value.strip()


@pytest.mark.parametrize("value", ["", "a", "0,5", "5-2", "0||5", "-1"])
def test_dump_steps_refuse_what_the_adapter_cannot_read(value):
    with pytest.raises(argparse.ArgumentTypeError, match="steps and ranges joined by"):
        ascend.dump_steps(value)


def _rank_table(path, ips=("10.0.0.1", "192.168.100.101", "192.168.101.101")):
    server, *devices = ips
    path.write_text(json.dumps({"server_count": "1", "status": "completed", "version": "1.0", "server_list": [
        {"server_id": server, "device": [{"device_id": str(i), "device_ip": ip, "rank_id": str(i)}
                                         for i, ip in enumerate(devices)]}]}))
    return str(path)


def test_a_filled_rank_table_passes_and_the_template_does_not(tmp_path):
    ascend.check_rank_table(_rank_table(tmp_path / "table.json"), 2)
    template = os.path.join(REPO_ROOT, "UNet_Medical_for_TensorFlow", "configs", "rank_table_8p.json")
    with pytest.raises(UserError, match="'SERVER_IP' is not an IP address: fill in the template"):
        ascend.check_rank_table(template, 8)
    with pytest.raises(UserError, match=r"lists no device for rank\(s\) \[2, 3\] of RANK_SIZE=4"):
        ascend.check_rank_table(_rank_table(tmp_path / "table.json"), 4)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not an HCCL rank table"):
        ascend.check_rank_table(str(tmp_path / "bad.json"), 2)
    with pytest.raises(UserError, match="cannot be read"):
        ascend.check_rank_table(str(tmp_path / "none.json"), 2)
