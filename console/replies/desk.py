"""What the composer needs in one service: the item's reply context, templates, checks, drafts and the outbox."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo

from console.channels.base import Connector
from console.ports import Clock
from console.replies.checks import (
    LengthCheck,
    PrivacyFinding,
    check_length,
    find_private_data,
    is_public,
    length_rule,
)
from console.replies.limits import ReplyLimits
from console.replies.outbox import Outbox
from console.replies.phrases import PhraseChecker, PhraseHit
from console.replies.templates import Blank, TemplateService, blanks, format_due_time, placeholder_values
from storage.accounts import AccountRepo
from storage.capacity import StatusPostRepo
from storage.mentions import MentionRepo
from storage.replies import ReplyRepo
from storage.rows import MentionKind, ReplyRow, ReplyState
from storage.settings import AGENT_NAME, SettingsRepo
from storage.templates import TemplateRepo, TemplateRow

__all__ = [
    "ReplyChecks",
    "ReplyContext",
    "ReplyDesk",
    "ReplyRow",
    "ReplyState",
    "TemplateRow",
    "build_reply_desk",
    "promise_time",
]

#: A promise ("I'll come back to you by {due_time}") is never closer than this: a deadline due sooner (or
#: already past) is not a time the agent can keep, so the promise is an hour from now instead (issue 19 #7).
PROMISE_LEAD = 10 * 60
#: The fallback promise: an hour from now, rounded up to five minutes ("by 14:05", not "by 14:03").
PROMISE_FALLBACK = 60 * 60
PROMISE_ROUNDING = 5 * 60


def promise_time(due_at: int | None, now: float) -> int:
    """The time a reply promises to come back by: the item's next deadline when it is comfortably ahead,
    otherwise an hour from now. Always in the future.

    Args:
        due_at: The item's nearest running deadline (None when none runs).
        now: The current time.

    Returns:
        Epoch seconds, at least ``PROMISE_LEAD`` after ``now``.
    """
    if due_at is not None and due_at >= now + PROMISE_LEAD:
        return due_at
    fallback = now + PROMISE_FALLBACK
    return int(-(-fallback // PROMISE_ROUNDING) * PROMISE_ROUNDING)


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """Who and where a reply to one queue item goes."""

    mention_id: int  # the thread head
    channel: str
    handle: str  # the customer's handle, without "@"
    customer_name: str
    visibility: str  # the answered message's visibility (the default for the reply)
    direct: bool  # the answered message is a direct message: the reply is always private
    due_at: int | None
    values: dict[str, str] = field(default_factory=dict)  # placeholder values
    account_id: int = 0  # the account that answers (whose server's limits count)


@dataclass(frozen=True, slots=True)
class ReplyChecks:
    """Everything the composer shows about a reply text. Only ``blocking`` reasons stop sending."""

    length: LengthCheck
    blanks: list[Blank]
    phrases: list[PhraseHit]
    privacy: list[PrivacyFinding]  # only for public replies
    broken_promise: str = ""  # the promised time ("12:18") when it has passed since the template was inserted

    @property
    def blocking(self) -> list[str]:
        reasons = []
        if self.broken_promise:
            reasons.append(f"The time you promise ({self.broken_promise}) has passed: change it before sending.")
        if self.length.over:
            reasons.append(self.length.reason)
        if self.blanks:
            names = ", ".join(f"[{b.label}]" for b in self.blanks[:3])
            more = "…" if len(self.blanks) > 3 else ""
            reasons.append(f"Fill in the blanks first: {names}{more} (Tab jumps to the next one).")
        return reasons


class ReplyDesk:
    """Facade over templates, the phrase check, length and privacy checks, drafts and the outbox."""

    def __init__(
        self,
        mentions: MentionRepo,
        outbox: Outbox,
        templates: TemplateService,
        clock: Clock,
        *,
        agent_name: Callable[[], str] = lambda: "",
        phrases: PhraseChecker | None = None,
        tz: tzinfo | None = None,
        limits: ReplyLimits | None = None,
    ) -> None:
        self._mentions = mentions
        self.outbox = outbox
        self.templates = templates
        self._clock = clock
        self._agent_name = agent_name
        self._phrases = phrases if phrases is not None else PhraseChecker()
        self._tz = tz
        #: Each account's real reply limit (Mastodon: the instance's), read once per account in the background.
        self.limits = limits if limits is not None else ReplyLimits(outbox.connectors, clock)
        #: The time each item's inserted template promised (its {due_time}), by thread head.
        self._promised: dict[int, int] = {}

    @property
    def clock(self) -> Clock:
        return self._clock

    def context(self, mention_id: int) -> ReplyContext | None:
        """The reply context of a queue item (None when it is gone)."""
        row = self._mentions.rows_by_id([mention_id]).get(mention_id)
        if row is None:
            return None
        thread = self._mentions.thread(row.head_id if row.head_id is not None else row.id)
        if not thread:
            return None
        head, last = thread[0], thread[-1]
        context = ReplyContext(
            mention_id=head.id,
            channel=head.channel,
            handle=last.author_handle,
            customer_name=last.author_name or head.author_name,
            visibility=last.visibility,
            direct=last.kind is MentionKind.DIRECT or last.visibility == "direct",
            due_at=head.due_at,
            account_id=head.account_id,
        )
        return replace(context, values=self._values(context))

    def _values(self, context: ReplyContext) -> dict[str, str]:
        """Placeholder values as they are now: the agent's current name, a promise still ahead."""
        return placeholder_values(
            customer_name=context.customer_name,
            handle=context.handle,
            agent_name=self._agent_name(),
            channel=_channel_name(context.channel),
            due_at=promise_time(context.due_at, self._clock.now()),
            tz=self._tz,
        )

    def check(self, context: ReplyContext, text: str, *, visibility: str) -> ReplyChecks:
        """Length (with the handle, against the account's own limit), blanks, stiff phrases and, for public
        replies, personal data."""
        limit = url_length = None
        if context.channel == "mastodon":
            limits = self.limits.limits(context.account_id)
            limit, url_length = limits.max_characters, limits.characters_reserved_per_url
        return ReplyChecks(
            length=check_length(
                length_rule(context.channel, direct=context.direct or visibility == "direct"),
                text,
                handle=context.handle,
                limit=limit,
                url_length=url_length,
            ),
            blanks=blanks(text),
            phrases=self._phrases.check(text),
            privacy=find_private_data(text) if is_public(visibility) else [],
            broken_promise=self.broken_promise(context, text),
        )

    def request_limits(self, context: ReplyContext) -> bool:
        """Start reading the account's real limit in the background when not known yet (Mastodon only).

        Returns:
            True when a read started; :attr:`limits` listeners hear the account id once it is known.
        """
        return context.channel == "mastodon" and self.limits.request(context.account_id)

    def search_templates(self, query: str, context: ReplyContext | None) -> list[TemplateRow]:
        return self.templates.search(query, channel=context.channel if context else None)

    def render_template(self, template: TemplateRow, context: ReplyContext) -> str:
        """The template filled for the item at the moment it is inserted: the name the agent gave (even a
        minute ago, in the welcome) and a promised time still in the future (issue 19 #7, #11)."""
        self.templates.record_use([template.id])
        values = self._values(context)
        promised = promise_time(context.due_at, self._clock.now())
        self._promised[context.mention_id] = promised
        return self.templates.render(template, values, channel=context.channel)

    def broken_promise(self, context: ReplyContext, text: str) -> str:
        """The promised time in ``text`` when it has passed since the template was inserted ("" otherwise)."""
        promised = self._promised.get(context.mention_id)
        if promised is None or promised > self._clock.now():
            return ""
        shown = format_due_time(promised, self._tz)
        return shown if shown in text else ""

    def send(
        self,
        context: ReplyContext,
        text: str,
        *,
        visibility: str,
        seen_at: int,
        template_ids: Sequence[int] = (),
        override: bool = False,
        override_reason: str = "",
    ) -> int:
        """Queue the reply in the outbox (committed before any network call) and wake the sender.

        A reply built from a holding template (tag "holding") is a holding reply: it promises a follow-up by
        the item's next deadline ({due_time}), or in an hour when none runs. ``override``: in team mode the agent
        chose "Send anyway" (offline from the team, or over a colleague's claim): the reply passes the team's
        check and is marked for review with ``override_reason`` (docs/TEAM.md).
        """
        holding = any("holding" in t.tags for t in (self.templates.get(i) for i in template_ids) if t is not None)
        holding_until = None
        if holding:
            now = self._clock.now()
            promised = self._promised.get(context.mention_id)
            holding_until = promised if promised is not None and promised > now else promise_time(context.due_at, now)
        reply_id = self.outbox.queue(
            context.mention_id,
            text,
            visibility="direct" if context.direct else visibility,
            purpose="holding" if holding else "reply",
            template_id=template_ids[0] if template_ids else None,
            seen_at=seen_at,
            holding_until=holding_until,
            override=override,
            override_reason=override_reason,
        )
        self.outbox.wake()
        return reply_id

    def correct(self, reply_id: int, text: str) -> int:
        fix_id = self.outbox.correct(reply_id, text)
        self.outbox.wake()
        return fix_id


def _channel_name(kind: str) -> str:
    return {"mastodon": "Mastodon", "bluesky": "Bluesky", "x": "X", "messenger": "Messenger"}.get(
        kind, kind.replace("_", " ").title()
    )


def build_reply_desk(
    *,
    replies: ReplyRepo,
    templates: TemplateRepo,
    mentions: MentionRepo,
    accounts: AccountRepo,
    connectors: Mapping[int, Connector],
    settings: SettingsRepo,
    clock: Clock,
    on_sent: Callable[[ReplyRow], None] | None = None,
    statuses: StatusPostRepo | None = None,
) -> ReplyDesk:
    """Wire the outbox, the template library (seeded with the shipped defaults) and the desk.

    Args:
        replies: The outbox table.
        templates: The template library.
        mentions: Threads.
        accounts: Account handles.
        connectors: Connector per account (the poller's mapping; later additions are seen).
        settings: For the agent's name.
        clock: Time source.
        on_sent: Called for each reply once posted (the SLA engine's hook).
        statuses: The status-post table (capacity updates, issue 14).

    Returns:
        The desk; its ``outbox.run()`` must be started by the caller.
    """

    def agent_name() -> str:
        return settings.get(AGENT_NAME).strip()

    outbox = Outbox(
        replies,
        mentions,
        accounts,
        connectors,
        clock,
        actor=lambda: agent_name() or "agent",
        on_sent=on_sent,
        statuses=statuses,
    )
    service = TemplateService(templates, clock)
    service.ensure_defaults()
    return ReplyDesk(mentions, outbox, service, clock, agent_name=agent_name)
