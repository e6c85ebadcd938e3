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
"""The two exceptions every entry point turns into one line and an exit status, never a traceback."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

USER_ERROR_EXIT = 2
DIVERGED_EXIT = 3
_Result = TypeVar("_Result")


class UserError(Exception):
    """A user's mistake (a flag, an environment variable, an input file): one line, exit 2."""


class TrainingDiverged(Exception):
    """A non-finite loss or weights stopped training; the last good checkpoint stays the latest: exit 3."""


def exit_on_user_error(main: Callable[..., _Result]) -> Callable[..., _Result]:
    """Decorate a CLI entry point: UserError and TrainingDiverged become one line on stderr and an exit status."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> _Result:
        try:
            result = main(*args, **kwargs)
        except (UserError, TrainingDiverged) as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(DIVERGED_EXIT if isinstance(error, TrainingDiverged) else USER_ERROR_EXIT)
        if os.environ.get("TF_CONFIG") and os.environ.get("RANK_SIZE", "1") not in ("", "1") and not result:
            # A MultiWorkerMirroredStrategy worker that finished its work can abort while TensorFlow
            # tears down its collective runtime at interpreter exit ("terminate called without an
            # active exception", SIGABRT; tensorflow#55250, seen here on TF 2.6.5): leave without it.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return result

    return wrapper
