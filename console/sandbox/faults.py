"""Fault switches for the sandbox: seeded, per kind, with a probability or for the next N requests."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "FAULT_HELP",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "parse_fault_spec",
]


class Fault(StrEnum):
    """One way the sandbox can misbehave (issue 5, "The sandbox learns to fail")."""

    RETRY_AFTER = "retry_after"  # 429 with Retry-After in seconds
    RETRY_AFTER_DATE = "retry_after_date"  # 429 with Retry-After as an HTTP-date
    RATE_LIMIT_RESET = "rate_limit_reset"  # 429, budget exhausted: X-RateLimit-Remaining 0 and X-RateLimit-Reset only
    LOW_BUDGET = "low_budget"  # a normal answer that reports almost no budget left (the client should throttle)
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    SLOW = "slow"  # the answer comes after ``delay`` seconds (past the client's read timeout)
    DROP = "drop"  # the connection is closed half-way through the body
    MALFORMED_JSON = "malformed_json"  # a truncated JSON body
    HTML_ERROR = "html_error"  # an HTML error page from a proxy instead of JSON
    REVOKED = "revoked"  # 401 invalid_token
    REPEAT = "repeat"  # a notifications page that repeats items already sent
    OUT_OF_ORDER = "out_of_order"  # a notifications page in shuffled order
    MALFORMED_ITEM = "malformed_item"  # one notification on the page lacks its status's account
    DELETED = "deleted"  # 404 on GET /api/v1/statuses/:id (deleted upstream)
    GONE = "gone"  # the instance is gone: connections close without any answer


#: Faults that replace the answer before the request is handled, in the order they are tried.
REPLACING: tuple[Fault, ...] = (
    Fault.GONE,
    Fault.REVOKED,
    Fault.RETRY_AFTER,
    Fault.RETRY_AFTER_DATE,
    Fault.RATE_LIMIT_RESET,
    Fault.SERVER_ERROR,
    Fault.BAD_GATEWAY,
    Fault.UNAVAILABLE,
    Fault.HTML_ERROR,
    Fault.DELETED,
)
#: Faults that change a handled answer (page contents, headers, the bytes on the wire, timing).
ALTERING: tuple[Fault, ...] = (
    Fault.REPEAT,
    Fault.OUT_OF_ORDER,
    Fault.MALFORMED_ITEM,
    Fault.LOW_BUDGET,
    Fault.MALFORMED_JSON,
    Fault.DROP,
    Fault.SLOW,
)
_PAGE_FAULTS = frozenset({Fault.REPEAT, Fault.OUT_OF_ORDER, Fault.MALFORMED_ITEM})
_NOTIFICATIONS = "/api/v1/notifications"
_STATUS_RE = re.compile(r"/api/v1/statuses/[^/]+(/context)?")

FAULT_HELP = "comma-separated NAME[:PROBABILITY][:next=N][:after=N][:delay=S][:retry_after=S]; names: " + ", ".join(
    f.value for f in Fault
)


@dataclass(frozen=True, slots=True)
class FaultRule:
    """A switch: ``fault`` fires with ``probability`` per matching request, or on the next ``count`` ones.

    Attributes:
        fault: What goes wrong.
        probability: Chance per matching request (0..1); used when ``count`` is None.
        count: Fire on exactly the next ``count`` matching requests, then switch off.
        delay: Seconds a ``slow`` answer waits.
        retry_after: Seconds a 429 asks the client to wait (both Retry-After forms and the reset header).
        remaining: The ``X-RateLimit-Remaining`` a ``low_budget`` answer reports.
        after: Let this many matching requests through untouched before the switch is live.
    """

    fault: Fault
    probability: float = 1.0
    count: int | None = None
    delay: float = 2.0
    retry_after: float = 30.0
    remaining: int = 5
    after: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"{self.fault.value}: probability must be between 0 and 1, not {self.probability}")
        if self.count is not None and self.count < 0:
            raise ValueError(f"{self.fault.value}: next=N must not be negative")
        if min(self.delay, self.retry_after, self.remaining, self.after) < 0:
            raise ValueError(f"{self.fault.value}: delay, retry_after, remaining and after must not be negative")

    def applies_to(self, method: str, path: str) -> bool:
        """Whether this fault can hit ``method path`` at all (page faults only hit notification lists)."""
        if self.fault in _PAGE_FAULTS:
            return method == "GET" and path.rstrip("/") == _NOTIFICATIONS
        if self.fault is Fault.DELETED:
            return method == "GET" and _STATUS_RE.fullmatch(path.rstrip("/")) is not None
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "fault": self.fault.value,
            "probability": self.probability,
            "count": self.count,
            "delay": self.delay,
            "retry_after": self.retry_after,
            "remaining": self.remaining,
            "after": self.after,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from the admin endpoint's JSON (``{"fault": "503", "count": 2}``).

        Raises:
            ValueError: Unknown fault or a value out of range.
        """
        try:
            fault = Fault(str(data["fault"]))
        except (KeyError, ValueError) as exc:
            known = ", ".join(f.value for f in Fault)
            raise ValueError(f"unknown fault {data.get('fault')!r}; known: {known}") from exc
        count = data.get("count")
        try:
            return cls(
                fault=fault,
                probability=float(data.get("probability", 1.0)),
                count=None if count is None else int(count),
                delay=float(data.get("delay", 2.0)),
                retry_after=float(data.get("retry_after", 30.0)),
                remaining=int(data.get("remaining", 5)),
                after=int(data.get("after", 0)),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{fault.value}: {exc}") from exc


def parse_fault_spec(spec: str) -> list[FaultRule]:
    """Parse the ``--faults`` option: ``"503:0.2,retry_after:next=2,slow:0.1:delay=20"``.

    Args:
        spec: Comma-separated rules; each is a fault name, then optional ``:PROBABILITY`` and ``:key=value``
            parts (``next``, ``delay``, ``retry_after``, ``remaining``). Without a probability or ``next`` a
            fault fires on every matching request.

    Returns:
        The rules, in the order given.

    Raises:
        ValueError: With a sentence naming the part that is wrong.
    """
    rules: list[FaultRule] = []
    for chunk in (part.strip() for part in spec.split(",")):
        if not chunk:
            continue
        name, *options = chunk.split(":")
        data: dict[str, Any] = {"fault": name.strip()}
        for option in options:
            key, sep, value = option.partition("=")
            key = key.strip()
            if not sep:
                data["probability"] = key
            elif key in ("next", "count"):
                data["count"] = value
            elif key in ("delay", "retry_after", "remaining", "after", "probability", "p"):
                data["probability" if key == "p" else key] = value
            else:
                raise ValueError(f"unknown option {key!r} in fault {chunk!r}")
        rules.append(FaultRule.from_json(data))
    return rules


@dataclass(frozen=True, slots=True)
class Drawn:
    """The faults one request drew: at most one replacing fault, or any altering ones."""

    replacing: FaultRule | None = None
    altering: tuple[FaultRule, ...] = ()

    def altered(self, fault: Fault) -> FaultRule | None:
        return next((rule for rule in self.altering if rule.fault is fault), None)

    @property
    def empty(self) -> bool:
        return self.replacing is None and not self.altering


class FaultPlan:
    """The active switches and a seeded random source; thread-safe (the sandbox serves from many threads)."""

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: dict[Fault, FaultRule] = {}
        self._fired: dict[Fault, int] = {}
        self.set(rules)

    def set(self, rules: Iterable[FaultRule], *, replace_all: bool = False) -> None:
        """Switch faults on (a rule for a fault already on replaces it); ``replace_all`` clears the rest first."""
        with self._lock:
            if replace_all:
                self._rules.clear()
            for rule in rules:
                self._rules[rule.fault] = rule

    def clear(self, faults: Iterable[Fault] | None = None) -> None:
        """Switch the given faults off (all when None)."""
        with self._lock:
            if faults is None:
                self._rules.clear()
            else:
                for fault in faults:
                    self._rules.pop(fault, None)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules.values())

    def fired(self) -> dict[str, int]:
        """How often each fault fired since the plan was made."""
        with self._lock:
            return {fault.value: n for fault, n in self._fired.items()}

    def draw(self, method: str, path: str) -> Drawn:
        """Decide which faults hit this request, consuming ``next N`` counts and random draws."""
        with self._lock:
            if not self._rules:
                return Drawn()
            for fault in REPLACING:
                rule = self._rules.get(fault)
                if rule is not None and self._fires(rule, method, path):
                    return Drawn(replacing=rule)
            altering = tuple(
                rule
                for fault in ALTERING
                if (rule := self._rules.get(fault)) is not None and self._fires(rule, method, path)
            )
            return Drawn(altering=altering)

    def _fires(self, rule: FaultRule, method: str, path: str) -> bool:
        if not rule.applies_to(method, path):
            return False
        if rule.after > 0:
            self._rules[rule.fault] = replace(rule, after=rule.after - 1)
            return False
        if rule.count is not None:
            if rule.count <= 0:
                return False
            left = rule.count - 1
            if left:
                self._rules[rule.fault] = replace(rule, count=left)
            else:
                del self._rules[rule.fault]
        elif self._rng.random() >= rule.probability:
            return False
        self._fired[rule.fault] = self._fired.get(rule.fault, 0) + 1
        return True
