"""The team soak (issue 22, "Proof"): ten agent processes on one queue through faults; then every mention answered
exactly once on the sandbox, no event lost, every member's copy equal to the server's.

``make test`` runs it bounded (a few hundred mentions, faults for some seconds, well under 90 s); ``make soak``
runs it long through ``TEAM_SOAK_*`` (see tests/team/harness.py).
"""

from __future__ import annotations

import faulthandler
import time

from tests.team.harness import Soak, SoakPlan
from tests.team.pgserver import soak_folder


def test_team_soak() -> None:
    plan = SoakPlan.from_env()
    # The suite's faulthandler dumps every thread after 60 s (faulthandler_timeout): the soak runs longer by design,
    # so its own watchdog allows the run's chaos plus the settling and checks, and still catches a real hang.
    faulthandler.dump_traceback_later(300 + 4 * plan.chaos_seconds, exit=False)
    with soak_folder("care-soak-") as folder:
        soak = Soak(plan, folder)
        started = time.monotonic()
        with soak.running():
            soak.run()
            finals = soak.settle()
            figures = soak.check(finals)
        print(f"\nteam soak: {figures} in {time.monotonic() - started:.1f} s")
        assert not figures["known_problems"]
