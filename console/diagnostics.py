"""Logs and crash reports: rotating log files, secret redaction, a recent-lines buffer, local crash reports."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import logging.handlers
import os
import platform
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from typing_extensions import override

from console.ports import SecretStore

LOG_FILENAME = "care-console.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_LOG_BYTES = 2 * 1024 * 1024
LOG_BACKUPS = 5
#: The same error (type and code path) writes at most one crash report per this many seconds.
CRASH_REPORT_INTERVAL = 60.0
#: Third-party libraries that log chatter at INFO (fontTools logs every table it subsets for a PDF): WARNING only.
NOISY_LOGGERS = ("httpx", "httpcore", "qasync", "matplotlib", "PIL", "fontTools", "fpdf", "urllib3")

#: Shapes of credentials that must never reach a log line or a crash report, whatever logged them.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s'\"]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)((?:access|refresh)_?token|password|app_password|client_secret|api_key)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&}]+"
    ),
)


class SecretRedactor(logging.Filter):
    """Removes known secret values and credential-shaped strings from every record it sees.

    Known values (tokens read from the keyring at run time) are registered with ``add``; the patterns catch
    the rest (an Authorization header in an exception text, ``access_token=...`` in a URL).
    """

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) >= 6:  # shorter values would redact ordinary words
            with self._lock:
                self._values.add(secret)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, "[redacted]")
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + (m.group(2) if m.lastindex and m.lastindex >= 2 else "")
                               + "[redacted]", text)  # fmt: skip
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info))
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class RecentLines(logging.Handler):
    """Keeps the last formatted lines in memory for crash reports."""

    def __init__(self, capacity: int = 200) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


class LogFile(logging.handlers.RotatingFileHandler):
    """The rotating log file. A write that fails (a full disk, a file size limit) never prints logging's
    "--- Logging error ---" traceback: it says once, in one line on stderr, that log lines are not being saved,
    and says again when they are saved again."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
        self._paused = False
        self._failed = False

    @override
    def emit(self, record: logging.LogRecord) -> None:
        self._failed = False
        super().emit(record)
        if self._paused and not self._failed:
            self._paused = False
            self._say(f"Care Console: the log file {self.baseFilename} is written again.")

    @override
    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
            return
        self._failed = True
        if not self._paused:
            self._paused = True
            reason = exc.strerror or str(exc) or type(exc).__name__
            self._say(
                f"Care Console: log lines are not being saved: the log file {self.baseFilename} cannot be "
                f"written ({reason}). The app goes on; free some disk space."
            )

    @staticmethod
    def _say(line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


class Diagnostics:
    """The app's logging setup; built once by main.py and handed to whoever needs the redactor or the buffer."""

    def __init__(
        self, log_dir: Path | None, *, level: int = logging.INFO, console_level: int = logging.WARNING
    ) -> None:
        self.log_dir = log_dir
        self.redactor = SecretRedactor()
        self.recent = RecentLines()
        self.recent.addFilter(self.redactor)
        self.handlers: list[logging.Handler] = [self.recent]
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(console_level)
        stream.setFormatter(logging.Formatter(LOG_FORMAT))
        stream.addFilter(self.redactor)
        self.handlers.append(stream)
        self.file_error: str | None = None
        if log_dir is not None:
            try:
                log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                handler = LogFile(log_dir / LOG_FILENAME)
                os.chmod(log_dir / LOG_FILENAME, 0o600)
                handler.setFormatter(logging.Formatter(LOG_FORMAT))
                handler.addFilter(self.redactor)
                self.handlers.append(handler)
            except OSError as exc:  # a read-only or full disk must not stop the app
                self.file_error = f"Cannot write logs to {log_dir}: {exc}"
        self.level = level
        self._last_reports: dict[str, tuple[float, Path]] = {}  # crash signature -> (written at, path)

    def install(self) -> None:
        root = logging.getLogger()
        root.setLevel(self.level)
        for handler in self.handlers:
            root.addHandler(handler)
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def uninstall(self) -> None:
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            with contextlib.suppress(OSError):  # a full disk fails the last flush: never a crash on the way out
                handler.close()

    def write_crash_report(
        self,
        kind: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
        *,
        versions: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> Path | None:
        """Write a local crash report (traceback, versions, recent log lines; redacted). None if it can't.

        The same error repeating (same type, raised from the same code path) writes at most one report per
        ``CRASH_REPORT_INTERVAL`` seconds: a timer that fails every second must not fill the disk with
        copies (issue 19 §1). Meanwhile the path of the report already written is returned.
        """
        if self.log_dir is None:
            return None
        at = now if now is not None else time.time()
        signature = crash_signature(kind, tb)
        last = self._last_reports.get(signature)
        if last is not None and 0 <= at - last[0] < CRASH_REPORT_INTERVAL:
            return last[1]
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(at))
        path = self.log_dir / f"crash-{stamp}.txt"
        text = crash_report_text(kind, exc, tb, versions=versions or {}, recent=list(self.recent.lines))
        try:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(self.redactor.redact(text), encoding="utf-8")
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        except OSError:
            return None
        self._last_reports[signature] = (at, path)
        return path


def crash_signature(kind: type[BaseException], tb: TracebackType | None) -> str:
    """What makes two crashes "the same error": the exception type and the code path that raised it.

    The message is left out on purpose: it often carries changing values (ids, times, counts).
    """
    frames = traceback.extract_tb(tb) if tb is not None else []
    where = ";".join(f"{frame.filename}:{frame.name}:{frame.lineno}" for frame in frames)
    return f"{kind.__module__}.{kind.__qualname__}@{where}"


def crash_report_text(
    kind: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
    *,
    versions: Mapping[str, str],
    recent: Iterable[str],
) -> str:
    lines = ["Care Console crash report", "", "Versions:"]
    base = {"python": sys.version.split()[0], "platform": platform.platform()}
    lines += [f"  {key}: {value}" for key, value in {**base, **versions}.items()]
    lines += ["", "Traceback:", "".join(traceback.format_exception(kind, exc, tb)).rstrip(), "", "Recent log lines:"]
    lines += [f"  {line}" for line in recent]
    return "\n".join(lines) + "\n"


class RedactingSecretStore:
    """A SecretStore that registers every secret it hands out or saves with the log redactor.

    Tokens are read lazily by connectors, so the redactor learns each value the moment the app can first
    hold it; a value (or any text inside a JSON credential bundle) then never reaches a log line or a crash
    report, whatever shape the text around it has.
    """

    def __init__(self, inner: SecretStore, redactor: SecretRedactor) -> None:
        self._inner = inner
        self._redactor = redactor

    @property
    def inner(self) -> SecretStore:
        """The wrapped store (the OS keyring, or the session-only store)."""
        return self._inner

    def get(self, key: str) -> str | None:
        value = self._inner.get(key)
        if value:
            self._register(value)
        return value

    def set(self, key: str, value: str) -> None:
        self._register(value)
        self._inner.set(key, value)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # backend-specific extras (usable(), backend_name())

    def _register(self, value: str) -> None:
        self._redactor.add(value)
        try:
            data = json.loads(value)
        except ValueError:
            return
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if len(item) >= 16:  # tokens and passwords; not "bearer" or a scope name
                    self._redactor.add(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
