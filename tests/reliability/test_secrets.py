"""A planted token never leaks: after syncing, replying, a revoked sign-in, a crash report and every export,
no file the app wrote (database, WAL, logs, crash reports, exports) and no sandbox request log holds it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.diagnostics import Diagnostics, RedactingSecretStore
from console.ports import MemorySecretStore
from console.reports.export.service import Format
from console.runtime import open_runtime
from console.sandbox import SandboxServer
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, open_database
from tests.fakes.clock import FakeClock
from tests.reliability.conftest import TALLY

#: Shaped like nothing the redactor's patterns know: only registration can catch it.
PLANTED = "PLANTEDq7Zr9XwV3mK2pL8sT4nY6bJ1cF5hG0dE"
ROTATED_PREFIX = "sandbox"


@pytest.fixture
def diagnostics(tmp_path: Path) -> Iterator[Diagnostics]:
    diag = Diagnostics(tmp_path / "data" / "logs", level=logging.DEBUG, console_level=logging.CRITICAL)
    diag.install()
    yield diag
    diag.uninstall()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_planted_token_appears_in_no_file_log_crash_report_export_or_request_log(
    tmp_path: Path, diagnostics: Diagnostics, arun: Callable[..., Any]
) -> None:
    data_dir = tmp_path / "data"
    clock = FakeClock()
    with SandboxServer(token=PLANTED, backlog=8, clock=clock, seed=3) as server:
        db = open_database(data_dir / DB_FILENAME)
        account = AccountRepo(db).add(kind="mastodon", handle="care", base_url=server.base_url, now=int(clock.now()))
        db.conn.close()
        inner = MemorySecretStore()
        inner.set(f"mastodon:{account.id}", PLANTED)
        secrets = RedactingSecretStore(inner, diagnostics.redactor)
        runtime = open_runtime(data_dir, clock=clock, secrets=secrets)
        try:
            assert not runtime.on_sandbox
            (report,) = arun(runtime.poller.sync_once())
            assert report.ok and report.stored == 8, report.error
            assert runtime.replies is not None and runtime.shifts is not None and runtime.exports is not None
            runtime.shifts.start("Robin")
            for head in runtime.mentions.queue_ids()[:3]:
                runtime.replies.outbox.queue(head, "Thanks, we are on it.")
            arun(runtime.replies.outbox.drain())
            # The sign-in is revoked: the failure is logged, with the request that carried the token.
            server.revoke_token()
            clock.advance(600)
            (failed,) = arun(runtime.poller.sync_once())
            assert not failed.ok
            logging.getLogger("care_console").warning("debug dump of the failed request: headers=%s", {
                "Authorization": f"Bearer {PLANTED}"})  # fmt: skip
            logging.getLogger("care_console").error("a careless message: token %s", PLANTED)
            try:
                raise httpx.HTTPStatusError(
                    f"401 for {server.base_url}?access_token={PLANTED}", request=None, response=None
                )  # type: ignore[arg-type]
            except httpx.HTTPStatusError:
                report_path = diagnostics.write_crash_report(*sys.exc_info())  # type: ignore[arg-type]
            assert report_path is not None and report_path.exists()
            clock.advance(3600)
            runtime.shifts.end(f"notes (the agent pasted a token by mistake? no: {len(PLANTED)} chars)")
            exports = tmp_path / "exports"
            exports.mkdir()
            for fmt in Format:
                runtime.exports.export(None, fmt, exports / f"summary.{fmt.value}")
        finally:
            arun(runtime.aclose())
        requests = list(server.requests)
    scanned = _files(tmp_path)
    assert any(p.name.endswith(".log") for p in scanned)
    leaks = [p for p in scanned if PLANTED.encode() in p.read_bytes()]
    assert leaks == [], f"the token leaked into {leaks}"
    assert all(PLANTED not in repr(query) for _method, _path, query in requests)
    assert PLANTED not in "\n".join(diagnostics.recent.lines)
    TALLY["files scanned for secrets"] += len(scanned)
    TALLY["secrets leaked"] += len(leaks)


def test_database_logs_and_exports_are_owner_only(tmp_path: Path, diagnostics: Diagnostics) -> None:
    import stat

    from console.reports.export.service import ExportService
    from console.shifts.service import ShiftService
    from storage.settings import SettingsRepo
    from storage.shifts import ShiftRepo

    clock = FakeClock()
    path = tmp_path / "data" / DB_FILENAME
    db = open_database(path)
    shifts = ShiftService(ShiftRepo(db), SettingsRepo(db), clock)
    shifts.start("Robin")
    clock.advance(60)
    shifts.end()
    service = ExportService(path, clock, SettingsRepo(db))
    try:
        outputs = [service.export(None, fmt, tmp_path / f"s.{fmt.value}") for fmt in Format]
    finally:
        service.close()
        db.conn.close()
    logging.getLogger("care_console").warning("a line so that the log file exists")
    for file in [path, *outputs, *(tmp_path / "data" / "logs").iterdir()]:
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, f"{file} is readable by others"
    TALLY["files checked owner-only"] += len(outputs) + 1
