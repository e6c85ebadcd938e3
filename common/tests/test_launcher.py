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
"""Tests of common/launcher.py: the TRAIN/METRIC lines it reads, ActualFPS and the step times, the
ModelZoo summary, run folders and their segments, one process per rank."""

import os
import sys
import textwrap

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)
from common import launcher, npu_utils  # noqa: E402
from common.errors import UserError  # noqa: E402
from common.tests import processes  # noqa: E402

LAUNCHER = os.path.join(REPO_ROOT, "common", "launcher.py")


def test_step_line_round_trip():
    line = npu_utils.format_step_line(12, 0.4123456, 3.214, 40.1234, step_ms=2489.1234567)
    assert line == "TRAIN step=12 loss=0.412346 images_per_sec=3.21 elapsed_sec=40.12 step_ms=2489.123"
    assert launcher.parse_step_line("I1122 12:00:00 " + line + " l2_loss=0.1") == (12, 0.412346, 3.21, 40.12, 2489.123)
    failed = launcher.parse_step_line(npu_utils.format_step_line(3, float("nan"), 1, 1))
    assert failed.step == 3 and failed.loss != failed.loss and failed.step_ms is None
    assert launcher.parse_step_line("step 12 loss 0.4") is None


def test_metric_line_round_trip():
    text = "\n".join([npu_utils.format_metric_line("dice", 0.5), "noise",
                      npu_utils.format_metric_line("iou", 0.25), npu_utils.format_metric_line("dice", 0.875)])
    assert launcher.parse_metric_lines(text) == {"dice": 0.875, "iou": 0.25}
    with pytest.raises(ValueError):
        npu_utils.format_metric_line("val dice", 1)


def lines(*rows, batch=2):
    """StepLines of (step, step_ms) with images/s as a StepTimer prints it (rounded)."""
    return [launcher.StepLine(step, 1.0, round(batch * 1000 / ms, 2), 0.0, ms) for step, ms in rows]


def test_actual_fps_is_images_over_time_not_the_mean_of_the_lines_rates():
    # Batch 4, a line every step; one slow line (an epoch boundary): 20 images in 1.4 s.
    steps = lines((10, 100.0), (11, 100.0), (12, 100.0), (13, 1000.0), (14, 100.0), (15, 100.0), batch=4)
    assert launcher.throughput(steps, warmup_steps=1, images_per_step=4) == pytest.approx(20 / 1.4)
    mean_of_rates = sum(s.images_per_sec for s in steps[1:]) / 5
    assert mean_of_rates == pytest.approx(32.8)  # what averaging the lines would have said
    # A line every 10 steps covers 10 steps: 2 x 10 steps of 100 and 200 ms after the warm-up.
    every_10 = lines((10, 50.0), (20, 100.0), (30, 200.0), batch=2)
    assert launcher.throughput(every_10, warmup_steps=10, images_per_step=2) == pytest.approx(2 * 1000 / 150)


def test_throughput_leaves_out_warmup_steps():
    steps = lines((1, 1000.0), (2, 200.0), (3, 100.0))
    assert launcher.throughput(steps, warmup_steps=1, images_per_step=2) == pytest.approx(4 / 0.3)
    assert launcher.throughput(steps, 5, 2) == pytest.approx(4 / 0.3)  # all warm-up: only the first left out
    assert launcher.throughput(steps[:1], 5, 2) == pytest.approx(2.0)


def test_throughput_reads_a_line_without_step_ms_from_its_rate():
    old = [launcher.StepLine(1, 1.0, 2.0, 0, None), launcher.StepLine(2, 1.0, 10.0, 0, None),
           launcher.StepLine(3, 1.0, 40.0, 0, None)]
    assert launcher.throughput(old, warmup_steps=1, images_per_step=2) == pytest.approx(4 / 0.25)


def test_throughput_counts_the_warmup_from_where_a_resumed_segment_starts():
    # Resumed at step 160, a line every step: its first line (161) holds the tracing, not 1.
    every_step = lines((161, 1000.0), (162, 100.0), (163, 100.0))
    assert launcher.throughput(every_step, warmup_steps=1, images_per_step=2) == pytest.approx(20.0)
    # Resumed at step 160, a line every 100 steps: the first interval (161-200) is the warm-up.
    every_100 = lines((200, 1000.0), (300, 100.0), (400, 100.0))
    assert launcher.throughput(every_100, warmup_steps=100, images_per_step=2) == pytest.approx(20.0)


def test_step_time_percentiles_come_from_unrounded_times():
    # DenseNet-like steps of 3.3 s at batch 1: images/s rounds to 0.30 for all of them.
    steps = lines((1, 9000.0), (2, 3301.5), (3, 3333.25), (4, 3349.75), (5, 3310.0), batch=1)
    assert {s.images_per_sec for s in steps[1:]} == {0.3}
    latencies = launcher.step_latencies(steps, warmup_steps=1, images_per_step=1)
    assert latencies == pytest.approx({"latency_ms_mean": (3301.5 + 3333.25 + 3349.75 + 3310.0) / 4,
                                       "latency_ms_p90": 3349.75, "latency_ms_p95": 3349.75,
                                       "latency_ms_p99": 3349.75})


LOG = "\n".join([npu_utils.format_step_line(s, 1.0 / s, 10.0 * s, s, step_ms=200.0 / s) for s in (1, 2, 3, 4)]
                + [npu_utils.format_metric_line("dice", 0.8125), npu_utils.format_metric_line("tc", 0.5)])


def test_summary_has_exactly_the_modelzoo_keys(tmp_path):
    summary = launcher.summarize(LOG, network="Net", batch_size=2, rank_size=1, case_name="Net_bs2_1p_acc",
                                  e2e_sec=12.7, warmup_steps=2, accuracy_key="dice", extra_keys=["tc"])
    launcher.write_summary(summary, str(tmp_path))
    lines = (tmp_path / "Net_bs2_1p_acc.log").read_text().splitlines()
    keys = [line.split(" = ")[0] for line in lines]
    assert keys == ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS",
                    "TrainingTime", "TrainAccuracy", "ActualLoss", "E2ETrainingTime", "tc"]
    values = dict(line.split(" = ") for line in lines)
    # steps 3 and 4 after the warm-up: 66.667 and 50 ms, batch 2: 4 images in 0.11667 s
    assert values["ActualFPS"] == "34.29" and values["TrainingTime"] == "58.33"
    assert values["TrainAccuracy"] == "0.8125" and values["ActualLoss"] == "0.250000"
    assert values["E2ETrainingTime"] == "12" and values["tc"] == "0.5000"
    assert (tmp_path / "train_Net_bs2_1p_acc_loss.txt").read_text().split() == [
        "1.000000", "0.500000", "0.333333", "0.250000"]
    assert summary.result_lines() == ["------------------ Final result ------------------",
                                      "Final Performance images/sec : 34.29",
                                      "Final Train Accuracy : 0.8125", "E2E Training Duration sec : 12"]


def test_a_performance_summary_adds_the_step_times_after_the_warm_up():
    # LOG: steps 1-4 of 200, 100, 66.667, 50 ms, batch 2: after a 2-step warm-up 66.667 and 50 ms a step.
    summary = launcher.summarize(LOG, network="Net", batch_size=2, rank_size=1, case_name="Net_bs2_1p_perf",
                                  e2e_sec=3, warmup_steps=2, latencies=True)
    assert summary.extra == pytest.approx({"latency_ms_mean": (66.667 + 50) / 2, "latency_ms_p90": 66.667,
                                           "latency_ms_p95": 66.667, "latency_ms_p99": 66.667})


def test_summary_refuses_logs_without_steps_or_metric():
    with pytest.raises(UserError, match="no 'TRAIN step"):
        launcher.summarize("nothing", network="N", batch_size=1, rank_size=1, case_name="c", e2e_sec=1)
    with pytest.raises(UserError, match="no METRIC line for iou"):
        launcher.summarize(LOG, network="N", batch_size=1, rank_size=1, case_name="c", e2e_sec=1,
                            accuracy_key="iou")


# ---------------------------------------------------------------- launcher

def _launch(tmp_path, script, *options, env_extra=None):
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    env = dict(os.environ, **(env_extra or {}))
    for name in ("RANK_SIZE", "RANK_ID", "TF_CONFIG", "WORKER_HOSTS"):
        if not env_extra or name not in env_extra:
            env.pop(name, None)
    return processes.run([sys.executable, LAUNCHER, "launch", "--network=Net", "--batch_size=2",
                           f"--output_root={tmp_path}/output", *options, "--",
                           sys.executable, str(tmp_path / "train.py"), "--out={output_dir}"],
                         capture_output=True, text=True, env=env, timeout=180)


TRAIN_SCRIPT = f"""
    import os, sys
    sys.path.insert(0, {REPO_ROOT!r})
    from common import npu_utils
    print(" ".join(sys.argv[1:]))
    print("env", os.environ["RANK_ID"], os.environ["RANK_SIZE"], os.environ["ASCEND_DEVICE_ID"],
          os.environ.get("WORKER_HOSTS", ""))
    for step in (1, 2, 3):
        print(npu_utils.format_step_line(step, 1.0 / step, 4.0 * step, step, step_ms=500.0 / step))
    print(npu_utils.format_metric_line("dice", 0.75))
"""


@pytest.mark.subprocess
def test_launch_writes_summary_and_passes_the_rank_folder(tmp_path):
    result = _launch(tmp_path, TRAIN_SCRIPT, "--case_kind=acc", "--accuracy_key=dice", "--warmup_steps=1")
    assert result.returncode == 0, result.stderr
    # steps 2 and 3 after the warm-up, 250 and 166.667 ms at batch 2: 4 images in 0.41667 s
    assert "Final Performance images/sec : 9.60" in result.stdout
    assert "Final Train Accuracy : 0.7500" in result.stdout
    rank_dir = tmp_path / "output" / "0"
    log = (rank_dir / "train_0.log").read_text()
    assert f"command: {sys.executable} {tmp_path}/train.py --out={rank_dir}\n" in log
    assert (rank_dir / "ckpt").is_dir()
    values = dict(line.split(" = ") for line in (rank_dir / "Net_bs2_1p_acc.log").read_text().splitlines())
    assert values["CaseName"] == "Net_bs2_1p_acc" and values["TrainAccuracy"] == "0.7500"
    assert values["ActualLoss"] == "0.333333" and values["RankSize"] == "1"


@pytest.mark.subprocess
def test_launch_shows_rank_0_lines_as_they_come_only_when_asked(tmp_path):
    quiet = _launch(tmp_path, TRAIN_SCRIPT, "--case_kind=perf")
    assert quiet.returncode == 0 and "TRAIN step=" not in quiet.stdout
    noisy = TRAIN_SCRIPT + "    print('I0000 port.cc:153] oneDNN custom operations are on. You may see ...')\n"
    shown = _launch(tmp_path, noisy, "--case_kind=perf", env_extra={"MZ_SHOW_PROGRESS": "1"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    last_step = "TRAIN step=3 loss=0.333333 images_per_sec=12.00 elapsed_sec=3.00 step_ms=166.667"
    assert lines.index(last_step) < lines.index("------------------ Final result ------------------")
    # TensorFlow's start-up note stays off the screen; the log file still holds every line
    assert "oneDNN" not in shown.stdout
    log = (tmp_path / "output" / "0" / "train_0.log").read_text()
    assert "TRAIN step=3" in log and "oneDNN custom operations" in log


SEGMENT_SCRIPT = f"""
    import sys
    sys.path.insert(0, {REPO_ROOT!r})
    from common import npu_utils
    first, last, status = (int(a) for a in sys.argv[1:4])
    for step in range(first, last + 1):
        print(npu_utils.format_step_line(step, 1.0 / step, 100.0 if step == first else 10.0, step,
                                         step_ms=20.0 if step == first else 200.0))
    print(npu_utils.format_metric_line("dice", 0.75))
    sys.exit(status)
"""


@pytest.mark.subprocess
def test_a_run_folder_keeps_every_segment_and_the_summary_covers_the_whole_run(tmp_path):
    """A run folder inside output/ (what a ModelZoo user types) survives the next run; a failed
    first segment and a second one give one loss file and the whole run's step range."""
    (tmp_path / "train.py").write_text(textwrap.dedent(SEGMENT_SCRIPT))
    run_folder = tmp_path / "output" / "0" / "ckpt"
    run_folder.mkdir(parents=True)
    (run_folder / "ckpt-3.index").write_text("a checkpoint")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK_SIZE", "RANK_ID", "TF_CONFIG", "WORKER_HOSTS")}

    def launch(first, last, status):
        return processes.run([sys.executable, LAUNCHER, "launch", "--network=Net", "--batch_size=2",
                               "--case_kind=acc", "--accuracy_key=dice", "--warmup_steps=1",
                               f"--output_root={tmp_path}/output", f"--run_folder={run_folder}", "--",
                               sys.executable, str(tmp_path / "train.py"), str(first), str(last), str(status)],
                             capture_output=True, text=True, env=env, timeout=180)

    assert launch(1, 5, 9).returncode == 9  # killed or failed: no summary, its log kept
    second = launch(4, 8, 0)  # resumed from a checkpoint at step 3
    assert second.returncode == 0, second.stderr
    assert (run_folder / "ckpt-3.index").read_text() == "a checkpoint"
    segments = sorted(os.listdir(run_folder / "logs"))
    assert segments == ["segment-001", "segment-002"]
    assert "TRAIN step=5 " in (run_folder / "logs" / "segment-001" / "train_0.log").read_text()
    losses = (tmp_path / "output" / "0" / "train_Net_bs2_1p_acc_loss.txt").read_text().split()
    assert losses == [f"{1 / s:.6f}" for s in range(1, 9)]
    values = dict(line.split(" = ") for line in
                  (tmp_path / "output" / "0" / "Net_bs2_1p_acc.log").read_text().splitlines())
    assert values["ActualFPS"] == "10.00"  # the resumed segment's first (tracing) line is left out
    assert (values["SegmentSteps"], values["RunSteps"], values["RunSegments"]) == ("4-8", "1-8", "2")
    assert int(values["RunE2ETrainingTime"]) >= int(values["E2ETrainingTime"])
    assert "Run: SegmentSteps 4-8, RunSteps 1-8, RunSegments 2" in second.stdout


def test_a_new_run_clears_the_rank_folder_but_the_run_folder_and_what_links_point_to(tmp_path):
    data = tmp_path / "data"
    (data / "ck").mkdir(parents=True)
    (data / "ck" / "ckpt-1.index").write_text("kept")
    rank = tmp_path / "output" / "0"
    (rank / "old").mkdir(parents=True)
    os.symlink(data / "ck", rank / "keep_ck")  # a run folder that is a link
    launcher._clear(str(rank), keep=str(rank / "keep_ck"))
    assert os.listdir(rank) == ["keep_ck"] and (data / "ck" / "ckpt-1.index").read_text() == "kept"
    os.symlink(tmp_path, tmp_path / "link")  # a run folder named through a link above it
    (rank / "old").mkdir()
    launcher._clear(str(rank), keep=str(tmp_path / "link" / "output" / "0" / "keep_ck"))
    assert os.listdir(rank) == ["keep_ck"]
    os.symlink(data, tmp_path / "output" / "1")  # a rank folder that is a link: the link goes, not its target
    launcher._clear(str(tmp_path / "output" / "1"))
    assert not os.path.lexists(tmp_path / "output" / "1") and (data / "ck" / "ckpt-1.index").is_file()


@pytest.mark.subprocess
def test_launch_failure_prints_no_summary(tmp_path):
    result = _launch(tmp_path, TRAIN_SCRIPT + "    sys.exit(3)\n", "--case_kind=acc", "--accuracy_key=dice")
    assert result.returncode == 3
    assert "Final" not in result.stdout
    assert "training failed with exit status 3" in result.stderr
    assert not (tmp_path / "output" / "0" / "Net_bs2_1p_acc.log").exists()


@pytest.mark.subprocess
def test_launch_missing_accuracy_fails(tmp_path):
    result = _launch(tmp_path, TRAIN_SCRIPT, "--case_kind=acc", "--accuracy_key=iou")
    assert result.returncode == 1 and "no METRIC line for iou" in result.stderr
    assert "Final" not in result.stdout


@pytest.mark.subprocess
def test_launch_nonfinite_last_loss_fails(tmp_path):
    script = TRAIN_SCRIPT + "    print(npu_utils.format_step_line(4, float('nan'), 1, 1))\n"
    result = _launch(tmp_path, script, "--case_kind=perf")
    assert result.returncode == 1 and "last logged loss is nan" in result.stderr


@pytest.mark.subprocess
def test_launch_runs_one_process_per_rank(tmp_path):
    result = _launch(tmp_path, TRAIN_SCRIPT, "--case_kind=perf", env_extra={"RANK_SIZE": "2"})
    assert result.returncode == 0, result.stderr
    for rank in (0, 1):
        log = (tmp_path / "output" / str(rank) / f"train_{rank}.log").read_text()
        env_line = next(line for line in log.splitlines() if line.startswith("env "))
        rank_id, rank_size, device_id, hosts = env_line.split()[1:]
        assert (rank_id, rank_size, device_id) == (str(rank), "2", str(rank))
        assert len(hosts.split(",")) == 2 and hosts.startswith("127.0.0.1:")
    assert (tmp_path / "output" / "0" / "Net_bs2_2p_perf.log").exists()


# ---------------------------------------------------------------- two real workers
