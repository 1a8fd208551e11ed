"""`care-console doctor`: checks of the things that break a desktop install, each with what to do about it."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from console.cli.outbox import account_outbox
from console.ports import SystemClock
from console.wording import count
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, close_database, open_database
from storage.errors import DatabaseCorrupt, DatabaseTooNew, StorageError
from storage.maintenance import MaintenanceRepo
from storage.replies import ReplyRepo
from storage.rows import Health

_OUTBOX_ADVICE = (
    "see them with `care-console outbox`; `outbox retry ID` sends one again, `outbox withdraw ID` takes it back"
)
_HEALTH_ADVICE = {
    Health.AUTH_EXPIRED: "reconnect the account (Accounts…) to give it a new token",
    Health.RATE_LIMITED: "nothing to do: sync resumes by itself when the channel allows it",
    Health.FAILING: "check the network and the server address; sync keeps retrying with backoff",
}


@dataclass(frozen=True, slots=True)
class Finding:
    area: str
    ok: bool
    message: str
    advice: str = ""

    def line(self) -> str:
        mark = "ok " if self.ok else "!! "
        text = f"{mark}{self.area}: {self.message}"
        return f"{text}\n     -> {self.advice}" if self.advice and not self.ok else text


def check(
    data_dir: Path, *, keyring_backend: str | None, qt_version: str | None, now: float | None = None
) -> list[Finding]:
    """Run every check; never modifies the database (no migration).

    Args:
        data_dir: the data folder to inspect.
        keyring_backend: the usable keyring backend's name, or None when none is usable.
        qt_version: the Qt version, or None when Qt could not be imported.
        now: the current epoch time (for "next try in …"); default the system clock.
    """
    now = SystemClock().now() if now is None else now
    findings = [
        Finding("python", sys.version_info >= (3, 11), sys.version.split()[0], "install Python 3.11 or newer"),
        Finding(
            "qt",
            qt_version is not None,
            qt_version or "PySide6 cannot be imported",
            "reinstall the app (PySide6-Essentials 6.11 is required)",
        ),
        Finding(
            "keyring",
            keyring_backend is not None,
            keyring_backend or "no usable OS keyring backend: tokens are kept for one session only",
            "on Linux install and unlock a Secret Service (GNOME Keyring or KWallet)",
        ),
    ]
    findings.append(_folder(data_dir))
    path = data_dir / DB_FILENAME
    if not path.exists():
        findings.append(Finding("database", True, f"{path} does not exist yet (created on first start)"))
        return findings
    try:
        db = open_database(path, migrate=False)
    except DatabaseTooNew as exc:
        findings.append(Finding("database", False, str(exc), "install the newer Care Console that wrote it"))
        return findings
    except DatabaseCorrupt as exc:
        findings.append(
            Finding("database", False, str(exc), "start the app and accept 'move aside', or restore a .bak copy")
        )
        return findings
    except StorageError as exc:
        findings.append(Finding("database", False, str(exc), "check the folder's permissions and free disk space"))
        return findings
    try:
        facts = MaintenanceRepo(db).facts()
        size_mb = path.stat().st_size / 1e6
        message = (
            f"{path} · schema {facts.version} · {size_mb:.1f} MB · {facts.messages} messages · "
            f"integrity {facts.integrity}"
        )
        advice = "restore the newest .bak copy next to the file" if not facts.intact else ""
        if not facts.current:
            message += f" · will be upgraded to schema {facts.latest} on next start (a backup is made first)"
        findings.append(Finding("database", facts.intact, message, advice))
        # The outbox's columns are read only from a database at the current schema (doctor never migrates).
        replies = ReplyRepo(db) if facts.version == facts.latest else None
        waiting = failed = 0
        for account in AccountRepo(db).list():
            state = "enabled" if account.enabled else "disabled"
            reason = f" ({account.health_reason})" if account.health_reason else ""
            outbox = account_outbox(replies, account.id) if replies is not None else None
            held = f" · {outbox.sentence(now)}" if outbox is not None and not outbox.clear else ""
            waiting += outbox.waiting if outbox is not None else 0
            failed += outbox.failed if outbox is not None else 0
            findings.append(
                Finding(
                    f"account {account.id}",
                    (account.health is Health.OK or not account.enabled) and not held,
                    f"{account.kind} @{account.handle} {state}: {account.health.value}{reason}{held}",
                    _HEALTH_ADVICE.get(account.health, "") or (_OUTBOX_ADVICE if held else ""),
                )
            )
        if replies is not None:
            findings.append(
                Finding(
                    "outbox",
                    failed == 0,
                    f"{count(waiting, 'reply')} waiting to be sent, {count(failed, 'reply')} failed",
                    _OUTBOX_ADVICE,
                )
            )
    finally:
        close_database(db)
    return findings


def _folder(data_dir: Path) -> Finding:
    if not data_dir.exists():
        return Finding("data folder", True, f"{data_dir} (not created yet)")
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    writable = os.access(data_dir, os.W_OK)
    private = sys.platform == "win32" or not mode & 0o077
    message = f"{data_dir} (mode {mode:o}{'' if writable else ', read-only'})"
    if not writable:
        return Finding("data folder", False, message, "make the folder writable by your user")
    if not private:
        return Finding("data folder", False, message, f"restrict it to your user: chmod 700 '{data_dir}'")
    return Finding("data folder", True, message)
