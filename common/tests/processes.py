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
"""For the tests of every directory: the one way a test starts a script or any other process, and
the markers of the two test tiers.

A test that starts one is marked ``subprocess`` and starts it with ``run`` or
``started``: in a session of its own, with a timeout, and killed with its whole
process group (the bash of a train script, the launcher and every rank's
main.py) when the timeout passes or the test leaves early. A test that trains
or infers long in its own process (over some 10 s on 2 cores) is marked
``slow``. ``run_tests.sh --quick`` leaves both out and sets ``MZ_TESTS_QUICK=1``,
under which ``run`` and ``started`` refuse to start anything, so an unmarked
test that starts a process fails there. Every directory's conftest.py
registers the markers with ``register_markers``.
"""

import contextlib
import os
import signal
import subprocess
import threading

MARKERS = ("subprocess: starts a script or another process (run_tests.sh --quick leaves it out)",
           "slow: trains or infers for over some 10 s in this process (run_tests.sh --quick leaves it out)")
QUICK_VARIABLE = "MZ_TESTS_QUICK"


def register_markers(config):
    """Register the ``subprocess`` and ``slow`` markers (each directory's ``pytest_configure``)."""
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


def kill_group(process):
    """SIGKILL ``process``'s process group (it leads one: ``start_new_session``), if any of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _refuse_in_quick_run(command):
    if os.environ.get(QUICK_VARIABLE) == "1":
        raise RuntimeError(f"{command!r}: a test that starts a process is marked @pytest.mark.subprocess "
                           "(run_tests.sh --quick runs no process)")


def run(command, timeout, input=None, capture_output=False, check=False, **popen_kwargs):
    """``subprocess.run`` in a session of its own whose whole process group is killed at the end.

    ``timeout`` (seconds) is required; when it passes, the group is SIGKILLed and
    ``subprocess.TimeoutExpired`` raised with the output so far. Anything the
    command left running (a rank, a background job) is killed when it ends.
    Other arguments as ``subprocess.run``; returns its ``CompletedProcess``.
    """
    _refuse_in_quick_run(command)
    if capture_output:
        popen_kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        popen_kwargs["stdin"] = subprocess.PIPE
    with subprocess.Popen(command, start_new_session=True, **popen_kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            stdout, stderr = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr) from None
        finally:
            kill_group(process)
    if check and process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command, stdout, stderr)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@contextlib.contextmanager
def started(command, timeout, **popen_kwargs):
    """``subprocess.Popen`` in a session of its own, for a test that watches a process while it runs.

    Yields the ``Popen``. Its whole process group is SIGKILLed when the block is
    left (normally or by an exception) or, if the block is still running then,
    ``timeout`` seconds after the start.
    """
    _refuse_in_quick_run(command)
    process = subprocess.Popen(command, start_new_session=True, **popen_kwargs)
    timer = threading.Timer(timeout, kill_group, (process,))
    timer.daemon = True
    timer.start()
    try:
        yield process
    finally:
        timer.cancel()
        kill_group(process)
        with process:  # closes its pipes and waits for it
            pass
