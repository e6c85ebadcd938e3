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
"""Tests of common/tests/processes.py: a timeout takes the whole process group, so does the end of a
command or of a ``started`` block, and a quick run starts nothing."""

import os
import signal
import subprocess
import time

import pytest

from common.tests import processes

# A background sleep (the grandchild) whose pid the shell prints, then the shell's own command.
LEAVES_A_CHILD = "sleep 300 > /dev/null 2>&1 & echo $!; "


def _running(pid):
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid):
    """Whether ``pid`` has ended, allowing a moment for the kernel to deliver the SIGKILL."""
    for _ in range(50):
        if not _running(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)  # leave nothing behind
    return False


@pytest.mark.subprocess
def test_a_timeout_kills_the_command_and_what_it_started_and_keeps_the_output():
    with pytest.raises(subprocess.TimeoutExpired) as expired:
        processes.run(["bash", "-c", LEAVES_A_CHILD + "sleep 300"], timeout=2, capture_output=True, text=True)
    assert _gone(int(expired.value.stdout))


@pytest.mark.subprocess
def test_what_a_finished_command_left_running_is_killed():
    result = processes.run(["bash", "-c", LEAVES_A_CHILD + "exit 3"], timeout=60, capture_output=True, text=True)
    assert result.returncode == 3 and _gone(int(result.stdout))
    with pytest.raises(subprocess.CalledProcessError):
        processes.run(["bash", "-c", "exit 3"], timeout=60, check=True)


@pytest.mark.subprocess
def test_started_kills_its_group_at_its_timeout_and_when_the_block_is_left():
    with processes.started(["bash", "-c", "sleep 300"], timeout=1) as process:
        assert process.wait(timeout=60) == -signal.SIGKILL
    with pytest.raises(KeyError):
        with processes.started(["bash", "-c", LEAVES_A_CHILD + "sleep 300"], timeout=600,
                               stdout=subprocess.PIPE, text=True) as process:
            child = int(process.stdout.readline())
            raise KeyError("a failing test")
    assert process.returncode == -signal.SIGKILL and _gone(child)


def test_a_quick_run_starts_no_process(monkeypatch, tmp_path):
    monkeypatch.setenv(processes.QUICK_VARIABLE, "1")
    marker = tmp_path / "ran"
    with pytest.raises(RuntimeError, match="marked @pytest.mark.subprocess"):
        processes.run(["touch", str(marker)], timeout=60)
    with pytest.raises(RuntimeError, match="marked @pytest.mark.subprocess"):
        with processes.started(["touch", str(marker)], timeout=60):
            pass
    assert not marker.exists()
