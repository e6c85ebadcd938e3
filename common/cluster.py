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
"""Which process is which: the rank variables of a ModelZoo script and the multi-worker cluster."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from common.errors import UserError


@dataclasses.dataclass(frozen=True)
class Ranks:
    """Where this process stands among ``rank_size`` data-parallel workers; rank 0 is the chief."""

    rank_size: int = 1
    rank_id: int = 0
    device_id: int = 0

    @property
    def is_chief(self) -> bool:
        return self.rank_id == 0


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """The integer environment variable ``name`` (``default`` when unset); UserError when bad."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"-?\d+", raw):
        raise UserError(f"environment variable {name}={raw!r} is not an integer")
    if int(raw) < minimum:
        raise UserError(f"environment variable {name}={raw} must be at least {minimum}")
    return int(raw)


def read_ranks(env: Mapping[str, str] | None = None) -> Ranks:
    """:class:`Ranks` from ``RANK_SIZE``, ``RANK_ID``, ``ASCEND_DEVICE_ID``/``DEVICE_ID`` (unset: 1, 0, 0)."""
    env = os.environ if env is None else env
    rank_size, rank_id = env_int(env, "RANK_SIZE", 1, 1), env_int(env, "RANK_ID", 0, 0)
    if rank_id >= rank_size:
        raise UserError(f"RANK_ID={rank_id} must be smaller than RANK_SIZE={rank_size}")
    device_id = env_int(env, "ASCEND_DEVICE_ID", env_int(env, "DEVICE_ID", 0, 0), 0)
    return Ranks(rank_size, rank_id, device_id)


def worker_tf_config(ranks: Ranks, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The ``TF_CONFIG`` of multi-worker training (None for one process): ``TF_CONFIG`` as given
    (checked), else built from ``WORKER_HOSTS=host:port,...`` (one per rank, in rank order)."""
    env = os.environ if env is None else env
    if ranks.rank_size == 1:
        return None
    if env.get("TF_CONFIG"):
        try:
            config, what = json.loads(env["TF_CONFIG"]), "TF_CONFIG"
            workers = config["cluster"]["worker"]
        except (ValueError, KeyError, TypeError):
            raise UserError("TF_CONFIG is not JSON with cluster.worker") from None
    else:
        workers, what = [h.strip() for h in env.get("WORKER_HOSTS", "").split(",") if h.strip()], "WORKER_HOSTS"
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": ranks.rank_id}}
        if not workers:
            raise UserError(f"RANK_SIZE={ranks.rank_size} needs TF_CONFIG or "
                            "WORKER_HOSTS=host:port,... to find the other workers")
        for host in workers:
            if not re.fullmatch(r"[^\s:]+:\d+", host):
                raise UserError(f"WORKER_HOSTS entry {host!r} is not host:port")
    if len(workers) != ranks.rank_size:
        noun = "workers" if what == "TF_CONFIG" else "hosts"
        raise UserError(f"{what} lists {len(workers)} {noun} but RANK_SIZE={ranks.rank_size}")
    return config
