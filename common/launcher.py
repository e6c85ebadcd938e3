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
"""The launcher behind every model's ``test/*.sh`` and the ModelZoo summary it writes.

    python3 common/launcher.py launch --network=NAME --batch_size=N --case_kind=acc|perf \
        --output_root=test/output [--accuracy_key=dice] -- python3 main.py ... --model_dir={output_dir}/ckpt

starts one process per rank (``RANK_SIZE``) with its output in
``output/<device>/train_<device>.log``, shows rank 0's lines as they come when
stdout is a terminal or ``MZ_SHOW_PROGRESS=1``, waits, and writes the summary
(``Final Performance images/sec``, ``${CaseName}.log``, the loss file) from the
``TRAIN``/``METRIC`` lines of ``common/npu_utils.py``. It needs no TensorFlow.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.util
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import ascend  # noqa: E402
from common.cluster import env_int, read_ranks  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.npu_utils import METRIC_LINE_RE, STEP_LINE_RE  # noqa: E402


StepLine = collections.namedtuple("StepLine", "step loss images_per_sec elapsed_sec step_ms")


def parse_step_line(line: str) -> StepLine | None:
    """The :class:`StepLine` of a TRAIN line (``step_ms`` None on a line without it), or None."""
    match = STEP_LINE_RE.search(line)
    if not match:
        return None
    step, loss, ips, elapsed, step_ms = match.groups()
    try:
        return StepLine(int(step), float(loss), float(ips), float(elapsed),
                        None if step_ms is None else float(step_ms))
    except ValueError:
        return None


def parse_metric_lines(text: str) -> dict[str, float]:
    """All ``METRIC`` results in a log as ``{name: value}``; the last one wins."""
    metrics = {}
    for name, value in METRIC_LINE_RE.findall(text):
        try:
            metrics[name] = float(value)
        except ValueError:
            continue
    return metrics


def timed_steps(steps: list[StepLine], warmup_steps: int) -> list[StepLine]:
    """The step lines after the warm-up of the run segment they come from.

    The warm-up is counted from where the segment started, which a resumed
    run's log does not say: one logging interval before its first line (the
    gap between its first two lines). So a run resumed at step 161 leaves out
    its first, graph-tracing, lines as a fresh run does. When every logged
    step is a warm-up step (a very short run), the first line is still left
    out if there are others.
    """
    start = _segment_start(steps)
    kept = [s for s in steps if s.step > start + warmup_steps]
    return kept or steps[1:] or steps


def _segment_start(steps):
    """The step a log's segment started after: one logging interval before its first line."""
    return steps[0].step - (steps[1].step - steps[0].step if len(steps) > 1 else 1)


def step_times(steps: list[StepLine], warmup_steps: int, images_per_step: int) -> list[tuple[int, float]]:
    """``(steps covered, mean step time in ms)`` of each TRAIN line after the warm-up (``timed_steps``).

    A line's time is its ``step_ms`` (unrounded); a line without it (a log of
    an older version) gives ``images_per_step / images_per_sec``.
    """
    previous = dict(zip((s.step for s in steps), [_segment_start(steps)] + [s.step for s in steps[:-1]]))
    times = []
    for line in timed_steps(steps, warmup_steps):
        ms = line.step_ms if line.step_ms is not None else (
            1000.0 * images_per_step / line.images_per_sec if line.images_per_sec > 0 else float("inf"))
        times.append((max(line.step - previous[line.step], 1), ms))
    return times


def throughput(steps: list[StepLine], warmup_steps: int, images_per_step: int) -> float:
    """ActualFPS: the images of the steps after the warm-up over their time, ``images_per_step x 1000 /
    mean step time``; not the mean of the lines' images/s, where a slow line counts as one rate among many
    whatever its time."""
    times = step_times(steps, warmup_steps, images_per_step)
    seconds = sum(count * ms for count, ms in times) / 1000.0
    return images_per_step * sum(count for count, _ in times) / seconds if seconds > 0 else 0.0


def step_latencies(steps: list[StepLine], warmup_steps: int, images_per_step: int) -> dict[str, float]:
    """A performance run's step time in ms: the mean (weighted by the steps each line covers) and the
    90/95/99th percentiles (nearest rank) of the lines' step times after the warm-up (per step when the
    run logs every step, as the performance scripts do)."""
    times = step_times(steps, warmup_steps, images_per_step)
    if not times:
        return {}
    ranked = sorted(ms for _, ms in times)
    percentiles = {f"latency_ms_p{p}": ranked[min(len(ranked) - 1, math.ceil(p / 100 * len(ranked)) - 1)]
                   for p in (90, 95, 99)}
    mean = sum(count * ms for count, ms in times) / sum(count for count, _ in times)
    return {"latency_ms_mean": mean, **percentiles}


@dataclasses.dataclass
class Summary:
    """The ModelZoo summary of one run: the lines the dashboards parse."""

    network: str
    rank_size: int
    batch_size: int
    case_name: str
    fps: float
    e2e_sec: int
    losses: list
    accuracy: float | None = None
    extra: dict = dataclasses.field(default_factory=dict)
    run: list = dataclasses.field(default_factory=list)  # (key, value) of a run over several segments

    @property
    def training_time_ms(self) -> float:
        return self.batch_size * self.rank_size * 1000 / self.fps if self.fps > 0 else float("inf")

    def result_lines(self) -> list[str]:
        lines = ["------------------ Final result ------------------",
                 f"Final Performance images/sec : {self.fps:.2f}"]
        if self.accuracy is not None:
            lines.append(f"Final Train Accuracy : {self.accuracy:.4f}")
        lines.append(f"E2E Training Duration sec : {self.e2e_sec}")
        return lines

    def log_lines(self) -> list[str]:
        """The ``${CaseName}.log`` lines, one ``key = value`` each."""
        pairs = [("Network", self.network), ("RankSize", self.rank_size),
                 ("BatchSize", self.batch_size), ("DeviceType", platform.machine()),
                 ("CaseName", self.case_name), ("ActualFPS", f"{self.fps:.2f}"),
                 ("TrainingTime", f"{self.training_time_ms:.2f}")]
        if self.accuracy is not None:
            pairs.append(("TrainAccuracy", f"{self.accuracy:.4f}"))
        pairs.append(("ActualLoss", f"{self.losses[-1]:.6f}"))
        pairs.append(("E2ETrainingTime", self.e2e_sec))
        pairs.extend((key, f"{value:.4f}") for key, value in self.extra.items())
        pairs.extend(self.run)
        return [f"{key} = {value}" for key, value in pairs]


def summarize(log_text: str, *, network: str, batch_size: int, rank_size: int, case_name: str, e2e_sec: float,
              warmup_steps: int = 0, accuracy_key: str | None = None, extra_keys: Sequence[str] = (),
              latencies: bool = False) -> Summary:
    """Build the :class:`Summary` of a training log; ``latencies`` adds a performance run's step times.

    Raises:
      UserError: no step lines, or a requested metric is missing.
    """
    steps = [s for s in map(parse_step_line, log_text.splitlines()) if s is not None]
    if not steps:
        raise UserError("the training log has no 'TRAIN step=...' lines: no step was trained (a rerun whose "
                        "--ckpt_path run had already reached its last step has nothing left to train: "
                        "--resume=False starts over, a larger --train_steps or --train_epochs goes on)")
    metrics = parse_metric_lines(log_text)
    missing = [k for k in ([accuracy_key] if accuracy_key else []) + list(extra_keys) if k not in metrics]
    if missing:
        raise UserError(f"the training log has no METRIC line for {', '.join(missing)}")
    return Summary(network=network, rank_size=rank_size, batch_size=batch_size,
                   case_name=case_name, fps=throughput(steps, warmup_steps, batch_size * rank_size),
                   e2e_sec=int(e2e_sec), losses=[s.loss for s in steps],
                   accuracy=metrics[accuracy_key] if accuracy_key else None,
                   extra={**{k: metrics[k] for k in extra_keys},
                          **(step_latencies(steps, warmup_steps, batch_size * rank_size) if latencies else {})})


def write_summary(summary: Summary, output_dir: str) -> None:
    """Write ``train_${CaseName}_loss.txt`` and ``${CaseName}.log`` into ``output_dir``."""
    with open(os.path.join(output_dir, f"train_{summary.case_name}_loss.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{loss:.6f}\n" for loss in summary.losses)
    with open(os.path.join(output_dir, f"{summary.case_name}.log"), "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in summary.log_lines())


# --------------------------------------------------------------------------
# A run folder (--ckpt_path) over several segments: a run killed and rerun
# --------------------------------------------------------------------------

SEGMENT_RE = re.compile(r"segment-(\d+)")


def _segment_folders(run_folder):
    """The run's segment log folders ``<run_folder>/logs/segment-NNN``, oldest first."""
    logs = os.path.join(run_folder, "logs")
    names = os.listdir(logs) if os.path.isdir(logs) else []
    numbered = sorted((int(m.group(1)), n) for m, n in ((SEGMENT_RE.fullmatch(n), n) for n in names) if m)
    return [os.path.join(logs, name) for _, name in numbered]


def new_segment(run_folder: str) -> str:
    """Create the next segment's log folder in ``run_folder/logs/`` and note when it started."""
    folders = _segment_folders(run_folder)
    number = int(SEGMENT_RE.fullmatch(os.path.basename(folders[-1])).group(1)) + 1 if folders else 1
    folder = os.path.join(run_folder, "logs", f"segment-{number:03d}")
    os.makedirs(folder)
    with open(os.path.join(folder, "started"), "w", encoding="utf-8") as handle:
        handle.write(f"{time.time():.3f}\n")
    return folder


def run_history(run_folder: str, log_name: str) -> tuple[list[StepLine], int, float]:
    """``(steps, segments, seconds)`` of every segment's ``log_name``: the step lines by step number
    (a step trained again after a kill counts once, as the later segment logged it), how many
    segments, and their wall-clock seconds (start to the log's last write; a killed one included)."""
    by_step, seconds, segments = {}, 0.0, 0
    for folder in _segment_folders(run_folder):
        path = os.path.join(folder, log_name)
        if not os.path.isfile(path):
            continue
        segments += 1
        with open(path, encoding="utf-8", errors="replace") as handle:
            for step in filter(None, map(parse_step_line, handle)):
                by_step[step.step] = step
        try:
            with open(os.path.join(folder, "started"), encoding="utf-8") as handle:
                seconds += max(os.path.getmtime(path) - float(handle.read()), 0.0)
        except (OSError, ValueError):
            pass  # a segment without its start time adds its steps, not its time
    return [by_step[k] for k in sorted(by_step)], segments, seconds


def add_run_history(summary: Summary, run_folder: str, log_name: str, segment_steps: Sequence[StepLine]) -> None:
    """Make ``summary`` speak for the whole run: the loss file over every segment's steps, and
    ``SegmentSteps``, ``RunSteps``, ``RunSegments``, ``RunE2ETrainingTime`` after its keys."""
    steps, segments, seconds = run_history(run_folder, log_name)
    if not steps:
        return
    summary.losses = [s.loss for s in steps]
    summary.run = [("SegmentSteps", f"{segment_steps[0].step}-{segment_steps[-1].step}"),
                   ("RunSteps", f"{steps[0].step}-{steps[-1].step}"), ("RunSegments", segments),
                   ("RunE2ETrainingTime", int(seconds))]


# --------------------------------------------------------------------------
# The launcher behind every test/*.sh script
# --------------------------------------------------------------------------

def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _launch_parser():
    parser = argparse.ArgumentParser(
        prog="launcher.py launch",
        description="Run one training process per rank and write the ModelZoo summary. "
                    "In the command after '--', {output_dir} stands for the rank's output folder.")
    parser.add_argument("--network", required=True)
    parser.add_argument("--batch_size", type=int, required=True, help="per device")
    parser.add_argument("--case_kind", choices=("acc", "perf"), required=True)
    parser.add_argument("--output_root", required=True, help="the script's output/ folder")
    parser.add_argument("--accuracy_key", default=None, help="METRIC reported as TrainAccuracy")
    parser.add_argument("--extra_keys", default="", help="comma-separated METRICs added to the .log")
    parser.add_argument("--warmup_steps", type=int, default=0,
                        help="TRAIN lines up to this many steps after the segment's start are left out of "
                             "ActualFPS (pass the logging period to drop the first, tracing, interval)")
    parser.add_argument("--run_folder", default=None,
                        help="the run folder kept across reruns (--ckpt_path): each rank's log of every run "
                             "goes to its logs/segment-NNN/ too, and the summary covers all segments")
    parser.add_argument("--rank_table_file", default=None,
                        help="several devices: exported as RANK_TABLE_FILE (the HCCL rank table), checked on Ascend")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def _check_ascend_ranks(rank_size, env):
    """On Ascend with several devices: what the adapter's ``open()`` will need, checked before any rank starts.

    Only a process with the adapter installed is on Ascend; elsewhere the ranks find each other
    through ``WORKER_HOSTS`` (made here) or ``TF_CONFIG``, and a rank table is not read.
    """
    if rank_size == 1 or importlib.util.find_spec("npu_device") is None:
        return
    ascend.check_distribution_environment(rank_size, env)
    if env.get("RANK_TABLE_FILE"):
        ascend.check_rank_table(env["RANK_TABLE_FILE"], rank_size)


def _tail(path, lines=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def _show_progress():
    """Rank 0's lines go to stdout too on a terminal, or when the caller (the quickstart) asks."""
    return os.environ.get("MZ_SHOW_PROGRESS", "") == "1" or sys.stdout.isatty()


# TensorFlow's start-up notes, printed before TF_CPP_MIN_LOG_LEVEL takes effect:
# kept in the log, left off the screen.
_STARTUP_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom operations are on")


def _copy_lines(source, logs, echo):
    """Write each line of ``source`` to every file of ``logs`` and, with ``echo``, to stdout, as it comes."""
    for line in source:
        for log in logs:
            log.write(line)
            log.flush()
        if echo and not _STARTUP_NOISE.search(line):
            sys.stdout.write(line)
            sys.stdout.flush()
    source.close()
    for log in logs:
        log.close()


def _spellings(path):
    """A path as given (absolute), with the links above it resolved, and with every link resolved: a run
    folder named through a link, or from a folder reached through one, or itself a link, is still
    recognised inside the output folder."""
    path = os.path.abspath(path)
    return {path, os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path)),
            os.path.realpath(path)}


def _leads_to(path, keep):
    """Whether the run folder ``keep`` is ``path`` itself (0), lies inside it (1), or neither (None)."""
    for folder in _spellings(path):
        for kept in keep:
            if kept == folder:
                return 0
            if kept.startswith(folder + os.sep):
                return 1
    return None


def _remove(path):
    """Remove a file, a link (never what it points to) or a folder."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _clear(folder, keep=None):
    """Remove ``folder`` (made anew by every run), all but ``keep`` and the folders that lead to it
    when the run folder (--ckpt_path) lies inside it."""
    kept = _spellings(keep) if keep else set()
    if _leads_to(folder, kept) != 1:
        _remove(folder)
        return
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        where = _leads_to(path, kept)
        if where == 1:
            _clear(path, keep)
        elif where is None:
            _remove(path)


def _start_rank(rank_id, device_id, command, env, output_root, echo, segment=None):
    """Start one rank in a fresh ``output_root/<device_id>`` (with ``ckpt/``), its log also in the run's
    ``segment`` folder when there is one; returns (process, folder, log, copier)."""
    rank_dir = os.path.join(output_root, str(device_id))
    _clear(rank_dir, keep=segment and os.path.dirname(os.path.dirname(segment)))
    os.makedirs(os.path.join(rank_dir, "ckpt"), exist_ok=True)
    log_name = f"train_{device_id}.log"
    rank_command = [part.replace("{output_dir}", rank_dir) for part in command]
    rank_env = dict(env, RANK_ID=str(rank_id), ASCEND_DEVICE_ID=str(device_id), DEVICE_ID=str(device_id))
    logs = [open(os.path.join(folder, log_name), "w", encoding="utf-8") for folder in filter(None, (rank_dir, segment))]
    for log in logs:
        log.write("command: " + " ".join(rank_command) + "\n")
        log.flush()
    process = subprocess.Popen(rank_command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=rank_env,
                               text=True, errors="replace")
    copier = threading.Thread(target=_copy_lines, args=(process.stdout, logs, echo), daemon=True)
    copier.start()
    return process, rank_dir, os.path.join(rank_dir, log_name), copier


def launch(argv: Sequence[str]) -> int:
    """Entry point of ``launcher.py launch``; returns the exit status."""
    args = _launch_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UserError("launch needs the training command after '--'")
    ranks = read_ranks()
    rank_id_start = env_int(os.environ, "RANK_ID_START", 0, minimum=0)
    case_name = f"{args.network}_bs{args.batch_size}_{ranks.rank_size}p_{args.case_kind}"
    # Unbuffered, so that the log files and the progress on screen follow the training.
    env = dict(os.environ, RANK_SIZE=str(ranks.rank_size), JOB_ID=os.environ.get("JOB_ID", "10087"),
               PYTHONUNBUFFERED="1")
    if args.rank_table_file:
        env["RANK_TABLE_FILE"] = os.path.abspath(args.rank_table_file)
    _check_ascend_ranks(ranks.rank_size, env)
    os.makedirs(args.output_root, exist_ok=True)
    if ranks.rank_size > 1 and not env.get("TF_CONFIG") and not env.get("WORKER_HOSTS"):
        env["WORKER_HOSTS"] = ",".join(f"127.0.0.1:{p}" for p in _free_ports(ranks.rank_size))

    start = time.time()
    segment = new_segment(args.run_folder) if args.run_folder else None
    ranks_started = [_start_rank(rank, ranks.device_id if ranks.rank_size == 1 else rank_id_start + rank,
                                 command, env, args.output_root, echo=rank == 0 and _show_progress(),
                                 segment=segment)
                     for rank in range(ranks.rank_size)]
    statuses = [process.wait() for process, _, _, _ in ranks_started]
    for *_, copier in ranks_started:
        copier.join()
    e2e_sec = time.time() - start
    for status, (_, _, log_path, _) in zip(statuses, ranks_started):
        if status != 0:
            print(_tail(log_path), end="", file=sys.stderr)
            print(f"[Error] training failed with exit status {status}; log: {log_path}", file=sys.stderr)
            return status if status > 0 else 1
    _, chief_dir, chief_log, _ = ranks_started[0]
    return _report(args, ranks.rank_size, case_name, e2e_sec, chief_dir, chief_log)


def _report(args, rank_size, case_name, e2e_sec, chief_dir, chief_log):
    """Print the Final result lines and write the summary files from rank 0's log; the exit status."""
    with open(chief_log, encoding="utf-8", errors="replace") as handle:
        log_text = handle.read()
    try:
        summary = summarize(log_text, network=args.network, batch_size=args.batch_size,
                            rank_size=rank_size, case_name=case_name, e2e_sec=e2e_sec,
                            warmup_steps=args.warmup_steps, accuracy_key=args.accuracy_key,
                            extra_keys=[k for k in args.extra_keys.split(",") if k],
                            latencies=args.case_kind == "perf")
    except UserError as error:
        print(f"[Error] {error}; log: {chief_log}", file=sys.stderr)
        return 1
    segment_steps = [s for s in map(parse_step_line, log_text.splitlines()) if s is not None]
    if args.run_folder:
        add_run_history(summary, args.run_folder, os.path.basename(chief_log), segment_steps)
    write_summary(summary, chief_dir)
    print("\n".join(summary.result_lines()))
    if summary.run:
        print("Run: " + ", ".join(f"{key} {value}" for key, value in summary.run)
              + f" (every segment's logs in {os.path.join(args.run_folder, 'logs')})")
    print(f"Summary: {os.path.join(chief_dir, case_name + '.log')}")
    if not math.isfinite(summary.losses[-1]):
        print(f"[Error] the last logged loss is {summary.losses[-1]}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "launch":
        print("usage: launcher.py launch --network NAME --batch_size N --case_kind acc|perf "
              "--output_root DIR [options] -- COMMAND...", file=sys.stderr)
        return 2
    try:
        return launch(argv[1:])
    except UserError as error:
        print(f"[Error] {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
