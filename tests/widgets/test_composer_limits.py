"""The composer counts against the account's real limit: Mastodon's defaults until the server's own arrive."""

from __future__ import annotations

import asyncio
from typing import Any

import qasync
import sqlite_utils
from pytestqt.qtbot import QtBot

from console.channels.mastodon import InstanceLimits
from console.replies.desk import build_reply_desk
from storage.accounts import AccountRepo
from storage.replies import ReplyRepo
from storage.settings import SettingsRepo
from storage.templates import TemplateRepo
from tests.fakes.clock import FakeClock
from tests.widgets.factory import Factory
from widgets.composer import Composer


class SlowInstance:
    """A connector whose server answers its limits only when the test says so (the GUI must not wait)."""

    def __init__(self, limits: InstanceLimits) -> None:
        self.answer = asyncio.Event()
        self.calls = 0
        self._limits = limits

    async def instance_limits(self) -> InstanceLimits:
        self.calls += 1
        await self.answer.wait()
        return self._limits


def test_counter_and_block_use_the_instance_limit_once_known(
    qtbot: QtBot, qloop: qasync.QEventLoop, db: sqlite_utils.Database, factory: Factory, clock: FakeClock
) -> None:
    server = SlowInstance(InstanceLimits(max_characters=1000, characters_reserved_per_url=30))
    connectors: dict[int, Any] = {factory.account.id: server}
    desk = build_reply_desk(
        replies=ReplyRepo(db), templates=TemplateRepo(db), mentions=factory.mentions, accounts=AccountRepo(db),
        connectors=connectors, settings=SettingsRepo(db), clock=clock,
    )  # fmt: skip
    first, second = factory.add(handle="ana"), factory.add(handle="bo")
    composer = Composer(desk)
    qtbot.addWidget(composer)
    composer.show()
    composer.set_mention(first)
    composer.editor.setPlainText("x" * 600)
    assert composer.counter_text() == "605 / 500"  # the default while the server has not answered
    assert not composer.can_send() and "Too long for Mastodon" in composer.hints_text()
    assert "default" in composer.counter_tooltip()

    server.answer.set()
    qtbot.waitUntil(lambda: composer.counter_text() == "605 / 1,000")
    assert composer.can_send() and "Too long" not in composer.hints_text()
    assert "this server's limit" in composer.counter_tooltip() and "each link counts 30" in composer.counter_tooltip()
    composer.editor.setPlainText("see https://example.com/" + "a" * 100)
    assert composer.counter_text() == f"{len('@ana see ') + 30} / 1,000"  # a link counts 30 on this server

    composer.set_mention(second)  # same account: remembered, not read again
    composer.editor.setPlainText("y" * 900)
    assert composer.counter_text() == "904 / 1,000" and composer.can_send()
    qtbot.wait(20)
    assert server.calls == 1
