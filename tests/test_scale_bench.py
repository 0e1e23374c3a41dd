"""bench/scale.py, short: two gateways and two workers on PostgreSQL and JetStream, one
worker killed (SIGKILL) midway while cars raise alarms. The survivor takes its partitions
over from their checkpoints: no acknowledged position lost, no alert or follow-up trigger
doubled, every alarm's alert there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)
from tests.conftest import PG_ADMIN_URL, PG_PROBLEM
from tests.processes import environment

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scale.py"
PARTITIONS = 8


@pytest.mark.slow
@pytest.mark.postgres
def test_a_worker_killed_under_load_loses_and_doubles_nothing(tmp_path, nats_server):  # noqa: F811
    if PG_PROBLEM is not None:
        pytest.skip(f"PostgreSQL unreachable: {PG_PROBLEM}")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--devices", "40", "--seconds", "24", "--kill-worker",
         "--partitions", str(PARTITIONS), "--lease-s", "3", "--checkpoint-s", "2",
         "--alarm-every", "2", "--settle-s", "90", "--admin-url", PG_ADMIN_URL],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["device_errors"] == 0
    assert result["acknowledged"] == result["sent"] >= 40 * 20
    assert (result["lost"], result["duplicates"]) == (0, 0)
    assert result["stored"] == result["acknowledged"]
    assert result["expected_alerts"] >= 15  # 20 alarms, the last ones perhaps unsent
    assert (result["missing_alerts"], result["duplicate_alerts"]) == (0, 0)
    assert result["duplicate_triggers"] == 0
    assert result["killed_worker_at_s"] is not None
    # The survivor owns every partition: it took the killed worker's over.
    assert result["partitions_owned"] == [sorted(str(p) for p in range(PARTITIONS))]
    assert result["exit_codes"] == [-9, 0, 0, 0]
    assert result["drained_after_s"] is not None
