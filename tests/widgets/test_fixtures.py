"""The widget-test ``arun`` fixture runs coroutines on a qasync loop that Qt drives."""

from __future__ import annotations

import asyncio
from typing import Any

import qasync


def test_arun_runs_coroutines_on_the_qasync_loop(arun: Any) -> None:
    async def which_loop() -> asyncio.AbstractEventLoop:
        await asyncio.sleep(0.01)
        return asyncio.get_running_loop()

    assert isinstance(arun(which_loop()), qasync.QEventLoop)
