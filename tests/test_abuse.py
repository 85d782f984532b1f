"""The abuse suite: ``bench/abuse.py --quick`` against a real node (a subprocess) while one
tenant floods long-polls and its API, anonymous sources send slowloris headers, slow and
19 MB bodies, and a brute force guesses one account's password.

A second tenant gets no errors, /healthz stays 200, the node grows by at most 100 MB and locks
the account before 30 guesses. The second tenant's p99 under attack is held only to 10x its
quiet p99 here, a guard against a collapse: issue 18's goal is 2x, which this 2-core host (the
attacker shares its cores with the node) does not reach (1.3x to 7.4x in quick runs, 3.6x and
5.8x in two serial test passes, 3.0x in a full `bench/abuse.py` run); the bench prints the
figure against the 2x goal, and the issue stays open on it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGRESSION_RATIO = 10.0  # not the goal (2x): see the module's docstring


@pytest.mark.slow
def test_a_second_tenant_is_served_while_the_node_is_attacked():
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "abuse.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^figure: (\w+) = ([0-9.e+-]+)", run.stdout, re.MULTILINE)
    }
    assert figures["abuse_other_tenant_errors"] == 0, run.stdout
    assert figures["abuse_healthz_failures"] == 0, run.stdout
    assert figures["abuse_other_tenant_p99_ratio"] <= REGRESSION_RATIO, run.stdout
    assert figures["abuse_rss_growth_mb"] <= 100, run.stdout
    assert figures["abuse_login_guesses_per_hour"] <= 30, run.stdout
