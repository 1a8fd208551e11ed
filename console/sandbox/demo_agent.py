"""The headless demo's agent: answers the most urgent sandbox item like a person would, resolves, asks Net Easy."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.ports import Clock
from console.queue import QueueService
from console.replies.outbox import Outbox
from console.surveys.service import SurveyService
from console.triage import Triage
from storage.rows import MentionStatus, ReplyState

REPLIES = (
    "Hi {name}, thanks for flagging this, and sorry for the hassle. I'm checking it right now and will come back "
    "to you within the hour with what I find.",
    "Hi {name}, I've got this. Give me a few minutes to look at your account and I'll reply here with the next step.",
    "Thanks {name}! I've passed this on to the right team and I'll update you here as soon as I hear back.",
)


@dataclass
class DemoAgent:
    """One action per ``step``: resolve an answered item (and ask Net Easy), else answer the most urgent one."""

    queue: QueueService
    outbox: Outbox
    triage: Triage | None
    surveys: SurveyService | None
    clock: Clock
    replied: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"replies": 0, "resolved": 0, "surveys": 0})

    async def step(self) -> str | None:
        """Do one thing; return what was done, for the demo's progress lines."""
        for mention_id in list(self.replied):
            states = {r.state for r in self.outbox.replies(mention_id)}
            if ReplyState.SENT in states and self.triage is not None:
                self.replied.remove(mention_id)
                self.triage.set_status(mention_id, MentionStatus.RESOLVED)
                self.counts["resolved"] += 1
                text = f"resolved item {mention_id}"
                if self.surveys is not None and self.surveys.check(mention_id).allowed:
                    await self.surveys.send(mention_id)
                    self.counts["surveys"] += 1
                    text += " and sent a Net Easy survey"
                return text
        for mention_id in self.queue.queue_ids()[:20]:
            if mention_id in self.replied or self.outbox.replies(mention_id):
                continue
            row = self.queue.rows_by_id([mention_id])[mention_id]
            name = (row.author_name or row.author_handle).split()[0]
            text = REPLIES[mention_id % len(REPLIES)].format(name=name)
            self.outbox.queue(mention_id, text)
            self.replied.append(mention_id)
            self.counts["replies"] += 1
            return f"replied to @{row.author_handle}"
        return None
