"""The channel-health strip and the offline status bar: states, texts, the one-click sign-in."""

from __future__ import annotations

import dataclasses

from pytestqt.qtbot import QtBot

from console.model import Health
from console.queue import QueueService
from console.sync.health import AccountHealth, HealthSnapshot
from tests.fakes.clock import FakeClock
from widgets.health import HealthStrip
from widgets.main_window import MainWindow
from widgets.theme import local_time


def account(account_id: int = 1, health: Health = Health.OK, **changes: object) -> AccountHealth:
    base = AccountHealth(
        account_id=account_id, kind="mastodon", handle=f"care{account_id}", display_name="Care", is_sandbox=False,
        health=health, reason="", next_attempt_at=None, last_success_at=None, consecutive_failures=0, quarantined=0,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def strip(qtbot: QtBot) -> HealthStrip:
    widget = HealthStrip()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_strip_stays_hidden_while_everything_is_fine(qtbot: QtBot, clock: FakeClock) -> None:
    widget = strip(qtbot)
    widget.set_snapshot(HealthSnapshot((account(),), None, 0), clock.now())
    assert widget.isHidden()
    assert widget.chip_state(1) == "ok"
    assert widget.chip_text(1) == "@care1 · connected"


def test_each_health_state_has_its_colour_and_words(qtbot: QtBot, clock: FakeClock) -> None:
    now = clock.now()
    later = int(now) + 600
    snapshot = HealthSnapshot(
        (
            account(1, Health.DEGRADED, next_attempt_at=later, reason="server error (502)"),
            account(2, Health.RATE_LIMITED, next_attempt_at=later),
            account(3, Health.FAILING, reason="refused (422)", next_attempt_at=later),
            account(4, Health.AUTH_EXPIRED, reason="The access token was revoked"),
            account(5, Health.OK, quarantined=2),
        ),
        None,
        0,
    )
    widget = strip(qtbot)
    widget.set_snapshot(snapshot, now)
    assert widget.isVisible()
    at = local_time(later, now=now)
    assert widget.chip_text(1) == f"@care1 · retrying at {at}"
    assert widget.chip_text(2) == f"@care2 · rate limited until {at}"
    assert widget.chip_text(3) == f"@care3 · failing (next try {at})"
    assert widget.chip_text(4) == "@care4 · sign-in expired: replies wait"
    assert widget.chip_text(5) == "@care5 · connected · 2 unreadable"
    assert [widget.chip_state(i) for i in range(1, 6)] == ["warning", "warning", "error", "error", "ok"]
    assert [widget.reauth_button(i).isVisible() for i in range(1, 6)] == [False, False, False, True, False]
    assert snapshot.worst is Health.AUTH_EXPIRED


def test_sign_in_again_is_one_click(qtbot: QtBot, clock: FakeClock) -> None:
    widget = strip(qtbot)
    widget.set_snapshot(HealthSnapshot((account(7, Health.AUTH_EXPIRED, reason="revoked"),), None, 2), clock.now())
    with qtbot.waitSignal(widget.reauthenticate_requested) as signal:
        widget.reauth_button(7).click()
    assert signal.args == [7]
    assert widget.message_text() == "Signing in…"
    # Signed in: the account turns green and the button goes away.
    widget.set_snapshot(HealthSnapshot((account(7),), None, 0), clock.now())
    assert widget.chip_state(7) == "ok"
    assert not widget.reauth_button(7).isVisible()


def test_accounts_that_went_away_lose_their_chip(qtbot: QtBot, clock: FakeClock) -> None:
    widget = strip(qtbot)
    widget.set_snapshot(HealthSnapshot((account(1, Health.FAILING), account(2, Health.FAILING)), None, 0), 0.0)
    widget.set_snapshot(HealthSnapshot((account(2, Health.FAILING),), None, 0), clock.now())
    assert widget.chip_text(2).startswith("@care2")
    try:
        widget.chip_text(1)
    except KeyError:
        pass
    else:
        raise AssertionError("the chip of a removed account is still shown")


def test_offline_banner_and_status_bar(qtbot: QtBot, service: QueueService, clock: FakeClock) -> None:
    window = MainWindow(service, clock)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    since = int(clock.now()) - 300
    offline = HealthSnapshot((account(1, Health.DEGRADED, next_attempt_at=int(clock.now()) + 60),), since, 3)
    window.on_health(offline)
    expected = f"Offline since {local_time(since, now=clock.now())} · 3 replies waiting"
    assert window.health_strip.banner_text() == expected
    assert window.sync_status_text() == expected
    assert not window.sync_status_ok()
    # Back online: the banner goes and the status bar tells the sync state again.
    window.on_health(HealthSnapshot((account(1),), None, 0))
    assert window.health_strip.banner_text() == ""
    assert window.health_strip.isHidden()
    assert window.sync_status_text() == "Not synced yet"
    one = HealthSnapshot((account(1, Health.DEGRADED),), since, 1)
    window.on_health(one)
    assert window.sync_status_text().endswith("· 1 reply waiting")
