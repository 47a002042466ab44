"""The load-test suite end to end at smoke-test sizes: hub and the y-websocket server, N=5, 2 s windows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "load_tests" / "suite.py"


@pytest.mark.timeout(150)
def test_tiny_suite_writes_a_report_and_the_hub_delivers_everything(tmp_path: Path) -> None:
    out = tmp_path / "report"
    cmd = [sys.executable, str(SUITE), "--tiny", "--servers", "hub,y-websocket"]
    cmd += ["--scenarios", "fanout,idle,join-storm", "--out-dir", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=140, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = (out / "report.md").read_text()
    data = json.loads((out / "results.json").read_text())
    assert (out / "fanout.png").stat().st_size > 0
    assert (out / "scenarios.png").stat().st_size > 0
    assert "CC BY 4.0" in report and "nproc" in report
    assert str(REPO) not in report and str(tmp_path) not in json.dumps(data["meta"])

    rows = {(r["scenario"], r["server"]): r for r in data["summary"]}
    hub_fanout = rows[("fanout", "hub")]
    assert hub_fanout["ok"] == hub_fanout["runs"] == 1, hub_fanout["errors"]
    assert hub_fanout["delivered_pct"] == 100
    assert rows[("fanout", "y-websocket")]["ok"] == 1, rows[("fanout", "y-websocket")]["errors"]
    assert rows[("idle", "hub")]["open"] == 20
    storm = rows[("join-storm", "hub")]
    assert storm["synced"] == storm["storm_clients"] == 5
    assert "| N=5 | **hub** | 1/1 |" in report
