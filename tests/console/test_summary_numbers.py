"""Numbers a supervisor can trust (issue 20, "Numbers" 1, 2, 5, 8): how figures are counted across shift edges."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import sqlite_utils

from console.reports.export.codec import to_dict, write_json
from console.reports.export.tables import write_csv
from console.reports.review import load_summaries, merge
from console.reports.summary import SummaryBuilder, business_calendar
from console.sla.policy import shipped_policy
from console.sync.manual import MANUAL_ACTOR
from storage.shifts import ShiftRepo
from tests.console.shift_script import AGENT, DAY, Script, at
from tests.fakes.clock import FakeClock


# ---------------------------------------------------------------------------------------------------- numbers 1
def test_summary_counts_breaches_inherited_from_before_the_shift(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    night = [s.post(s.mastodon.id, "mastodon", f"n{i}", f"Overnight question {i}", at(1, 10 * i)) for i in range(4)]
    s.mentions.mark_breaches(at(7))  # every first response fell due in the night
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    s.reply(night[0], at(8, 5), at(8, 6))
    s.reply(night[1], at(8, 10), at(8, 11))
    s.status(night[1], at(8, 12), "open", "resolved")
    s.status(night[2], at(8, 20), "new", "spam")  # dealt with: its first response stopped in the shift
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))

    first = next(k for k in summary.sla if k.kind == "first_response")
    assert (first.met, first.breached, first.inherited, first.met_pct) == (0, 4, 4, 0.0)
    assert sorted(b.mention_id for b in summary.breaches) == sorted(night)
    assert all(b.inherited for b in summary.breaches)
    # The figures agree with the item rows: every row that says "breached" is one of the breaches listed.
    rows = {r.mention_id: r for r in summary.items}
    assert {m for m, r in rows.items() if r.sla_first_response == "breached"} == set(night)
    assert sum(r.breaches for r in summary.items) == len(summary.breaches) == 4


def test_a_breach_settled_before_the_shift_is_not_counted_again(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    old = s.post(s.mastodon.id, "mastodon", "ana", "Where is my order?", at(1))
    s.mentions.mark_breaches(at(2))
    s.reply(old, at(3), at(3))  # answered late, before this shift: the previous shift's breach
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    s.act(at(8, 30), old, "tags_changed", tags="orders")  # the shift touches the item
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    assert summary.breaches == []
    assert all(k.breached == 0 for k in summary.sla)
    (row,) = [r for r in summary.items if r.mention_id == old]
    assert (row.sla_first_response, row.breaches) == ("before the shift", 0)


# ---------------------------------------------------------------------------------------------------- numbers 2
def test_resolved_then_reopened_by_the_customer_counts_as_open(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    item = s.post(s.mastodon.id, "mastodon", "ana", "My refund?", at(8, 10))
    s.reply(item, at(8, 14), at(8, 15))
    s.status(item, at(8, 16), "new", "resolved")
    # "ok, but how long will the refund take?": the customer's message reopens it (what store_batch logs).
    db.conn.execute("UPDATE mentions SET status = 'open' WHERE id = ?", (item,))
    s.events.append(at=at(8, 40), actor="sync", kind="reopened", mention_id=item, by_message=999)
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    c = summary.counts
    assert (c.resolved, c.resolved_single_reply, c.still_open) == (0, 0, 1)
    (row,) = summary.items
    assert (row.status, row.reopened, row.resolved_at, row.open_at_end) == ("open", True, None, True)


def test_single_interaction_means_resolved_not_reopened_one_human_reply(
    db: sqlite_utils.Database, clock: FakeClock
) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    m = s.mastodon.id
    once = s.post(m, "mastodon", "ana", "One answer is enough", at(8, 1))
    twice = s.post(m, "mastodon", "ben", "Needs two replies", at(8, 2))
    back = s.post(m, "mastodon", "cara", "Resolved, reopened, resolved", at(8, 3))
    s.reply(once, at(8, 10), at(8, 10))
    s.status(once, at(8, 11), "new", "resolved")
    s.reply(twice, at(8, 12), at(8, 12))
    s.reply(twice, at(8, 13), at(8, 13))
    s.status(twice, at(8, 14), "open", "resolved")
    s.reply(back, at(8, 15), at(8, 15))
    s.status(back, at(8, 16), "new", "resolved")
    s.status(back, at(8, 20), "resolved", "open")  # the agent reopened it
    s.status(back, at(8, 25), "open", "resolved")
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    assert (summary.counts.resolved, summary.counts.resolved_single_reply) == (3, 1)
    assert {r.mention_id for r in summary.items if r.reopened} == {back}


def test_a_survey_answer_is_not_a_reopen(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    item = s.post(s.mastodon.id, "mastodon", "ana", "Thanks for the help", at(8, 1))
    s.reply(item, at(8, 5), at(8, 5))
    s.status(item, at(8, 6), "new", "resolved")
    # "2": store_batch reopens, the survey reader records the bare answer and puts the item back to resolved.
    s.events.append(at=at(8, 30), actor="sync", kind="reopened", mention_id=item, by_message=77)
    s.events.append(at=at(8, 30), actor="sync", kind="survey_answered", mention_id=item, message=77, question=False)
    s.events.append(
        at=at(8, 30), actor="sync", kind="status_changed", mention_id=item, **{"from": "open", "to": "resolved"}
    )
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    assert (summary.counts.resolved, summary.counts.resolved_single_reply) == (1, 1)


# ---------------------------------------------------------------------------------------------------- numbers 8
def test_first_response_in_calendar_and_business_time(db: sqlite_utils.Database, clock: FakeClock) -> None:
    s = Script(db, clock)
    friday = DAY + 86_400  # 2026-01-02, a Friday; London is on UTC in winter
    monday = DAY + 4 * 86_400
    item = s.post(s.mastodon.id, "mastodon", "ana", "Friday evening question", friday + 17 * 3600)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, monday + 8 * 3600)
    s.reply(item, monday + 9 * 3600 + 600, monday + 9 * 3600 + 600)
    clock.set(monday + 12 * 3600)
    shift = repo.end(shift.id, monday + 12 * 3600, "")
    business = business_calendar(shipped_policy())
    summary = SummaryBuilder(repo, clock, business=business).build(shift)
    fr = summary.first_response
    # Calendar: Fri 17:00 -> Mon 09:10 = 64 h 10 min. Business (Mon-Fri 09:00-17:30): 30 min Fri + 10 min Mon.
    assert fr.samples_s == [64 * 3600 + 600]
    assert fr.business_samples_s == [40 * 60] and fr.business_median_s == 2400.0
    assert fr.business_calendar == "business"
    (row,) = summary.items
    assert (row.first_response_s, row.first_response_business_s) == (64 * 3600 + 600, 2400)


# ---------------------------------------------------------------------------------------------------- numbers 5
def test_merge_counts_customers_and_open_items_once(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path
) -> None:
    s = Script(db, clock)
    m = s.mastodon.id
    repo = ShiftRepo(db)
    first = repo.start(AGENT, at(8))
    carried = s.post(m, "mastodon", "ana", "Still broken", at(8, 10))
    s.reply(carried, at(8, 20), at(8, 20))
    done = s.post(m, "mastodon", "ben", "Quick one", at(9))
    s.reply(done, at(9, 5), at(9, 5))
    s.status(done, at(9, 6), "new", "resolved")
    clock.set(at(12))
    first = repo.end(first.id, at(12), "")
    second = repo.start(AGENT, at(13))
    again = s.post(m, "mastodon", "ana", "Another thing", at(13, 10))  # the same customer, a new item
    s.reply(again, at(13, 20), at(13, 20))
    s.act(at(13, 30), carried, "tags_changed", tags="bug")  # the carried item is worked on, still open
    s.reply(done, at(13, 40), at(13, 40))  # ben again, on his resolved item: handled in this shift too
    clock.set(at(17))
    second = repo.end(second.id, at(17), "")
    one, two = (SummaryBuilder(repo, clock).build(x) for x in (first, second))
    assert one.counts.still_open == 1 and two.counts.still_open == 2
    keys = {r.customer: r.customer_key for r in [*one.items, *two.items]}
    assert len(keys) == 2 and all(k.startswith("c-") for k in keys.values())
    assert {r.customer_key for r in one.items if r.customer == "@ana"} == {
        r.customer_key for r in two.items if r.customer == "@ana"
    }

    merged = merge(load_summaries([write_json(x, tmp_path / f"{x.shift.id}.json") for x in (one, two)]))
    (mastodon,) = merged.channels
    assert mastodon.customers == 2  # ana and ben, though each was counted in both shifts
    assert merged.total.still_open == 2  # "carried" open in both shifts counts once; "again" is open too


# ---------------------------------------------------------------------------------------------------- numbers 9
def test_themes_drop_stop_words_in_every_language_the_customers_write_in(
    db: sqlite_utils.Database, clock: FakeClock
) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    m = s.mastodon.id
    texts = [
        ("de1", "Kann ich meine Bestellung noch ändern? Danke", "order"),
        ("de2", "Danke, aber kann die Bestellung schneller kommen?", ""),
        ("fr1", "Merci, mais ma commande est toujours bloquée au checkout", ""),
        ("fr2", "Bonjour, pourquoi ma commande est bloquée? Merci", ""),
        ("en1", "My order is stuck at checkout, thanks", "order"),
        ("en2", "Checkout keeps failing for my order", ""),
    ]
    for handle, text, tags in texts:
        s.post(m, "mastodon", handle, text, at(8, 10), tags=tags)
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    themes = [(t.kind, t.label, t.count) for t in summary.themes]
    # Tags first; then terms, with German, French and English function words and thanks removed.
    assert themes == [
        ("tag", "order", 2),
        ("term", "checkout", 3),
        ("term", "bestellung", 2),
        ("term", "bloquée", 2),
        ("term", "commande", 2),
    ]
    checkout = next(t for t in summary.themes if t.label == "checkout")
    assert checkout.quotes == [texts[2][1], texts[4][1]]  # each theme keeps its quotes (two)


def test_exports_carry_the_stable_customer_key(db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    s.post(s.mastodon.id, "mastodon", "ana", "First", at(8, 1))
    s.post(s.mastodon.id, "mastodon", "ana", "Second", at(8, 2))
    s.post(s.mastodon.id, "mastodon", "ben", "Third", at(8, 3))
    clock.set(at(9))
    shift = repo.end(shift.id, at(9), "")
    plain = SummaryBuilder(repo, clock).build(shift)
    redacted = SummaryBuilder(repo, clock).build(shift, redact=True)
    with write_csv(plain.items, tmp_path / "items.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = {row["customer"]: row["customer_key"] for row in rows}
    assert len(set(keys.values())) == 2 and len(rows) == 3
    # The key is the same in a redacted export, so a merge of redacted summaries still counts customers once.
    assert sorted(r.customer_key for r in redacted.items) == sorted(row["customer_key"] for row in rows)
    assert all("ana" not in r.customer_key for r in redacted.items)


def test_a_version_1_summary_still_loads_and_merges(
    db: sqlite_utils.Database, clock: FakeClock, tmp_path: Path
) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start(AGENT, at(8))
    s.post(s.mastodon.id, "mastodon", "ana", "First", at(8, 1))
    s.post(s.mastodon.id, "mastodon", "ben", "Second", at(8, 2))
    clock.set(at(9))
    data = to_dict(SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), "")))
    data["version"] = 1  # what an older Care Console wrote: none of the version 2 fields
    for channel in data["channels"]:
        del channel["customer_keys"]
    for row in data["items"]:
        for name in ("customer_key", "first_response_business_s", "reopened"):
            del row[name]
    for name in ("business_median_s", "business_p90_s", "business_mean_s", "business_samples_s", "business_calendar"):
        del data["first_response"][name]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    review = load_summaries([old])
    assert not review.problems
    (mastodon,) = merge(review).channels
    assert mastodon.customers == 2  # no keys: the per-shift count


def test_a_post_added_by_hand_is_not_the_work_of_an_agent_named_manual(
    db: sqlite_utils.Database, clock: FakeClock
) -> None:
    s = Script(db, clock)
    repo = ShiftRepo(db)
    shift = repo.start("manual", at(8))  # an agent whose name happens to be the intake's actor
    item = s.post(s.mastodon.id, "mastodon", "ana", "Pasted from elsewhere", at(8, 10))
    s.events.append(at=at(8, 10), actor=MANUAL_ACTOR, kind="received", mention_id=item)  # what the intake logs
    clock.set(at(9))
    summary = SummaryBuilder(repo, clock).build(repo.end(shift.id, at(9), ""))
    assert summary.counts.handled == 0  # the app added it; nobody handled it yet
