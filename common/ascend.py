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
"""The Ascend TF2 adapter (``npu_device``): finding it, its ModelZoo debugging flags, its options, opening it.

The one table of the ModelZoo/Ascend debugging flags (:data:`SWITCHES`,
:data:`FILES`, ``--data_dump_step``): ``main.py``'s parser declares them
through :func:`add_flags`, so every ``test/*.sh`` takes them as main.py
flags (common/script_flags.py, which puts a switched-on dump under the
script's output folder unless the user names one). Used by
``npu_utils.setup_device`` and ``common/launcher.py``; model code does not
import it. Nothing here imports TensorFlow.

The adapter's rules followed here (``tf_adapter_2.x/python/npu_device/``):
options are set on ``npu_device.global_options()`` before
``npu_device.open()``, and validated (an unknown name or value is a
``ValueError``); ``auto_tune_mode`` (up to r1.10) gave way to
``aoe_config.aoe_mode`` (beside it in r1.10, alone from r1.11); ``open()`` reads ``ASCEND_DEVICE_ID``,
``RANK_SIZE``, ``RANK_ID`` and ``RANK_TABLE_FILE`` / ``CM_CHIEF_IP`` from the
environment.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from types import ModuleType

from common.errors import UserError

# A switch flag, what it does, and for a dump its folder flag and the folder's name (main.py's default
# output/<name>; a script's <output root>/<name>).
Switch = collections.namedtuple("Switch", "flag what path_flag folder")
SWITCHES = (Switch("over_dump", "overflow detection dump", "over_dump_path", "overflow_dump"),
            Switch("data_dump_flag", "operator data dump", "data_dump_path", "data_dump"),
            Switch("profiling", "Ascend profiling", "profiling_dump_path", "profiling"),
            Switch("autotune", "operator auto-tuning (AOE operator tuning; auto_tune_mode RL,GA without AOE)",
                   None, None))
FILES = {"mixlist_file": "the mixed-precision op list (modify_mixlist)",
         "fusion_switch_file": "the fusion switch file"}
DUMP_STEP_RE = re.compile(r"\d+(-\d+)?(\|\d+(-\d+)?)*")
AOE_OPERATOR_TUNING = "2"  # aoe_config.aoe_mode: 1 subgraph, 2 operator, 4 gradient split tuning
# What common/ascend_env.sh (every test/env.sh) sources where it exists, under ASCEND_INSTALL_PATH.
CANN_SET_ENV = ("ascend-toolkit/set_env.sh", "tfplugin/set_env.sh")
# With no --precision_mode the adapter's own default runs: allow_fp32_to_fp16 on adapters up to r1.11;
# None on master, which leaves it to CANN, per chip (Huawei's TF 2.6.5 precision-tuning guide).
CANN_DEFAULT_PRECISION = "allow_fp32_to_fp16 on the Atlas training series (910), must_keep_origin_dtype on 910B/910C"


def dump_steps(value: str) -> str:
    """argparse type of ``--data_dump_step``: the adapter's ``dump_step``, steps and ranges joined by ``|``
    (``10``, ``0|5|10``, ``0|5-8|10``)."""
    text = str(value).strip()
    ranges = [part.split("-") for part in text.split("|")] if DUMP_STEP_RE.fullmatch(text) else None
    if not ranges or any(len(r) == 2 and int(r[0]) > int(r[1]) for r in ranges):
        raise argparse.ArgumentTypeError(f"expected steps and ranges joined by '|' (10, 0|5|10, 0|5-8|10), "
                                         f"got {value!r}")
    return text


def add_flags(group: argparse.ArgumentParser, add_bool_flag: Callable[..., object]) -> None:
    """Add the Ascend debugging flags to an argparse parser or one of its argument groups (``add_bool_flag``
    from common/cli.py)."""
    for switch in SWITCHES:
        add_bool_flag(group, f"--{switch.flag}", f"{switch.what} (Ascend only)")
        if switch.path_flag:
            group.add_argument(f"--{switch.path_flag}", default=os.path.join("output", switch.folder),
                               help="where it goes (default %(default)s; a test/*.sh script's: its output folder)")
    group.add_argument("--data_dump_step", type=dump_steps, default="10",
                       help="steps to dump with --data_dump_flag: 10, 0|5|10 or 0|5-8|10 (default %(default)s)")
    for flag, what in FILES.items():
        group.add_argument(f"--{flag}", default=None, help=f"{what} (Ascend only)")


def warn_unused_flags(args: argparse.Namespace, device: str) -> None:
    """One line per Ascend-only flag that was set on a device where it does nothing."""
    for flag, what in [(s.flag, s.what) for s in SWITCHES] + list(FILES.items()):
        if getattr(args, flag, None):
            print(f"[device] warning: --{flag} has no effect on {device.upper()}: "
                  f"{what} needs the Ascend adapter npu_device", flush=True)


def import_adapter() -> ModuleType | None:
    """The adapter module, or None when it is not installed (the only case that means "no NPU").

    Raises:
      UserError: it is installed but does not import (CANN's libraries not on the path, mostly).
    """
    try:
        return importlib.import_module("npu_device")
    except ModuleNotFoundError as error:
        if error.name == "npu_device":
            return None
        broken = error
    except ImportError as error:
        broken = error
    install = os.environ.get("ASCEND_INSTALL_PATH", "/usr/local/Ascend")
    raise UserError(f"npu_device is installed but does not import ({type(broken).__name__}: {broken}): source "
                    f"{os.path.join(install, CANN_SET_ENV[0])} and {os.path.join(install, CANN_SET_ENV[1])} "
                    "first (test/env.sh sources them where they exist)")


def check_distribution_environment(rank_size: int, env: Mapping[str, str] | None = None) -> None:
    """What the adapter's ``open()`` needs to find the other devices: one line before anything starts."""
    env = os.environ if env is None else env
    if rank_size <= 1:
        return
    table, chief = env.get("RANK_TABLE_FILE"), env.get("CM_CHIEF_IP")
    if not table and not chief:
        raise UserError(f"RANK_SIZE={rank_size} on Ascend needs RANK_TABLE_FILE (the HCCL rank table; "
                        "train_full_8p.sh --rank_table_file) or CM_CHIEF_IP; neither is set")
    if table and chief:
        raise UserError("RANK_TABLE_FILE and CM_CHIEF_IP are both set: the Ascend adapter takes one of them")


def check_rank_table(path: str, rank_size: int) -> None:
    """Check an HCCL rank table (``configs/rank_table_8p.json``) lists ``rank_size`` devices with real IPs.

    Raises:
      UserError: it is missing, not JSON, still the template, or lists too few devices.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            table = json.load(handle)
        servers = table["server_list"]
        devices = [(server["server_id"], device["device_ip"], int(device["rank_id"]))
                   for server in servers for device in server["device"]]
    except OSError as error:
        raise UserError(f"RANK_TABLE_FILE={path}: cannot be read ({error.strerror})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"RANK_TABLE_FILE={path}: not an HCCL rank table (server_list[].device[] with "
                        f"device_ip and rank_id; {type(error).__name__}: {error})") from None
    for server_ip, device_ip, _ in devices:
        for address in (server_ip, device_ip):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise UserError(f"RANK_TABLE_FILE={path}: {address!r} is not an IP address: fill in the "
                                "template with this server's and its devices' addresses (README, several "
                                "devices)") from None
    missing = sorted(set(range(rank_size)) - {rank for _, _, rank in devices})
    if missing:
        raise UserError(f"RANK_TABLE_FILE={path} lists no device for rank(s) {missing} of RANK_SIZE={rank_size}")


def _set(config, name, value, flag):
    """``config.name = value`` as the adapter validates it; its refusal is one line naming the flag."""
    try:
        setattr(config, name, value)
    except ValueError as error:
        raise UserError(f"{flag}: the Ascend adapter refuses {name}={value!r} ({error})") from None


def _set_autotune(options):
    """Operator auto-tuning by what this adapter has: ``aoe_config.aoe_mode`` (r1.10 on, where it stands
    beside the older option), else ``auto_tune_mode``. Decided from its options, never from a version string."""
    if hasattr(options, "aoe_config"):
        _set(options.aoe_config, "aoe_mode", AOE_OPERATOR_TUNING, "--autotune")
    elif hasattr(options, "auto_tune_mode"):
        _set(options, "auto_tune_mode", "RL,GA", "--autotune")
    else:
        raise UserError("--autotune: this Ascend adapter has neither aoe_config.aoe_mode nor auto_tune_mode")


def _make_folder(path, flag):
    """Make a dump folder; one that cannot be made (a file there, no permission) is one line naming the flag."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag}={path}: cannot be made a folder ({error.strerror})") from None


def _set_dumps(options, args):
    """The overflow and data dumps and profiling, each into its own folder (made here)."""
    if args.over_dump:
        _make_folder(args.over_dump_path, "--over_dump_path")
        _set(options.dump_config, "enable_dump_debug", True, "--over_dump")
        _set(options.dump_config, "dump_path", os.path.abspath(args.over_dump_path), "--over_dump_path")
        _set(options.dump_config, "dump_debug_mode", "all", "--over_dump")
    if args.data_dump_flag:
        if args.over_dump:  # the adapter has one dump_path for both kinds of dump
            print(f"[device] --over_dump and --data_dump_flag both write to {args.data_dump_path}", flush=True)
        _make_folder(args.data_dump_path, "--data_dump_path")
        _set(options.dump_config, "enable_dump", True, "--data_dump_flag")
        _set(options.dump_config, "dump_path", os.path.abspath(args.data_dump_path), "--data_dump_path")
        _set(options.dump_config, "dump_step", args.data_dump_step, "--data_dump_step")
        _set(options.dump_config, "dump_mode", "all", "--data_dump_flag")
    if args.profiling:
        _make_folder(args.profiling_dump_path, "--profiling_dump_path")
        _set(options.profiling_config, "enable_profiling", True, "--profiling")
        _set(options.profiling_config, "profiling_options", json.dumps({
            "output": os.path.abspath(args.profiling_dump_path), "training_trace": "on",
            "task_trace": "on", "aicpu": "on", "fp_point": "", "bp_point": ""}), "--profiling")


def _default_precision(options):
    """What runs with no --precision_mode: the adapter's default, or CANN's per chip when it has none."""
    value = getattr(options.precision_mode, "value", options.precision_mode)
    return f"{value} (the adapter's default)" if value else f"CANN's default ({CANN_DEFAULT_PRECISION})"


def open_adapter(npu: ModuleType, args: argparse.Namespace, precision_mode: str | None, rank_size: int) -> str:
    """Give the adapter module ``npu`` the run's flags, then open it as the default device.

    Returns the precision in words for the device line. Raises UserError (one
    line) for an option the adapter refuses, a missing file, or an environment
    its ``open()`` cannot work with.
    """
    options = npu.global_options()
    if precision_mode:
        _set(options, "precision_mode", precision_mode, "--precision_mode")
        precision = precision_mode
    else:
        precision = _default_precision(options)
    _set_dumps(options, args)
    for flag, option in (("mixlist_file", "modify_mixlist"), ("fusion_switch_file", "fusion_switch_file")):
        path = getattr(args, flag)
        if path:
            if not os.path.isfile(path):
                raise UserError(f"--{flag}={path}: no such file")
            _set(options, option, os.path.abspath(path), f"--{flag}")
    if args.autotune:
        _set_autotune(options)
    check_distribution_environment(rank_size)
    try:
        npu.open().as_default()
    except RuntimeError as error:
        raise UserError(f"the Ascend adapter could not open the NPU: {error}") from None
    return precision
