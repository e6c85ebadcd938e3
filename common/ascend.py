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
"""The Ascend TF2 adapter's debugging options: their flags, setting them, and the warning elsewhere.

Used by ``npu_utils.add_device_flags`` and ``npu_utils.setup_device``; model
code does not import it. The adapter (``npu_device``) exists only on Ascend
machines; its options are set on ``npu_device.global_options()`` before
``npu_device.open()``.
"""

import json
import os

# switch flag -> (what it does, its folder flag and default folder, or None)
SWITCHES = {
    "over_dump": ("overflow detection", ("over_dump_path", "output/overflow_dump")),
    "data_dump_flag": ("operator data dump", ("data_dump_path", "output/data_dump")),
    "profiling": ("Ascend profiling", ("profiling_dump_path", "output/profiling")),
    "autotune": ("operator auto-tuning (RL,GA)", None),
}
FILES = {"mixlist_file": "the mixed-precision op list (modify_mixlist)",
         "fusion_switch_file": "the fusion switch file"}


def add_flags(group, add_bool_flag):
    """Add the Ascend debugging flags to an argparse group (``add_bool_flag`` from npu_utils)."""
    for flag, (what, folder) in SWITCHES.items():
        add_bool_flag(group, f"--{flag}", f"{what} (Ascend only)")
        if folder:
            group.add_argument(f"--{folder[0]}", default=folder[1], help="where it goes (default %(default)s)")
    group.add_argument("--data_dump_step", default="10", help="steps to dump, e.g. 10 or 0|5|10 (default %(default)s)")
    for flag, what in FILES.items():
        group.add_argument(f"--{flag}", default=None, help=f"{what} (Ascend only)")


def warn_unused_flags(args, device):
    """One line per Ascend-only flag that was set on a device where it does nothing."""
    for flag, what in [(flag, what) for flag, (what, _) in SWITCHES.items()] + list(FILES.items()):
        if getattr(args, flag, None):
            print(f"[device] warning: --{flag} has no effect on {device.upper()}: "
                  f"{what} needs the Ascend adapter npu_device", flush=True)


def open_adapter(npu, args, precision_mode):
    """Give the adapter module ``npu`` the run's precision, dump, profiling and tuning flags, then open it."""
    options = npu.global_options()
    options.precision_mode = precision_mode
    if args.over_dump:
        os.makedirs(args.over_dump_path, exist_ok=True)
        options.dump_config.enable_dump_debug = True
        options.dump_config.dump_path = os.path.abspath(args.over_dump_path)
        options.dump_config.dump_debug_mode = "all"
    if args.data_dump_flag:
        if args.over_dump:  # the adapter has one dump_path for both kinds of dump
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
            "output": os.path.abspath(args.profiling_dump_path), "training_trace": "on",
            "task_trace": "on", "aicpu": "on", "fp_point": "", "bp_point": ""})
    if args.mixlist_file:
        options.modify_mixlist = os.path.abspath(args.mixlist_file)
    if args.fusion_switch_file:
        options.fusion_switch_file = os.path.abspath(args.fusion_switch_file)
    if args.autotune:
        options.auto_tune_mode = "RL,GA"
    npu.open().as_default()
