"""Replies seen on the channel (issue #22 item 5) against the reference PDS and AppView: the brand answers a
customer from another app (here: a plain XRPC client logged in as the brand), and the app, syncing, finds that
reply in the brand's own feed (``app.bsky.feed.getAuthorFeed``), shows it in the item's thread and meets the
first response; a reply the app sent itself is never taken for one from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from console.ports import MemorySecretStore
from console.replies.outbox import SendOutcome
from storage.rows import DeadlineKind, ReplyState
from storage.seen_replies import is_seen_key
from tests.e2e.bluesky.network import ReferenceNetwork
from tests.e2e.bluesky.test_reference_server import Arun, NewAccount, add_brand, app, ref, stored, sync
from tests.fakes.clock import FakeClock


def test_a_reply_from_another_app_is_found_in_the_brands_feed_and_meets_the_first_response(
    reference_network: ReferenceNetwork, new_account: NewAccount, tmp_path: Path, clock: FakeClock, arun: Arun
) -> None:
    brand, alice, bob = (new_account(name) for name in ("brand", "alice", "bob"))
    secrets = MemorySecretStore()
    account_id = add_brand(tmp_path, brand, reference_network, secrets)
    clock.advance(10)
    question = alice.post(f"@{brand.handle} is my refund through?", at=clock.now(), mention=brand)
    clock.advance(10)
    other = bob.post(f"@{brand.handle} do you ship to Norway?", at=clock.now(), mention=brand)
    reference_network.process_until_notified(brand, [question["uri"], other["uri"]])

    async def first_sync() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            report = await sync(runtime, account_id)
            assert report.ok, report.error

    arun(first_sync(), timeout=60)
    clock.advance(60)
    answered_at = clock.now()
    elsewhere = brand.post(
        f"@{alice.handle} Yes, it left us this morning.",
        at=answered_at,
        mention=alice,
        reply_to={"root": ref(question), "parent": ref(question)},
    )
    reference_network.process_all()
    clock.advance(60)

    async def later_sync() -> None:
        async with app(tmp_path, clock, secrets) as runtime:
            rows = stored(runtime, account_id)
            item = rows[question["uri"]].id
            bob_item = rows[other["uri"]].id
            report = await sync(runtime, account_id)
            assert report.ok, report.error
            seen = [r for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]
            assert [(r.external_id, r.state, r.text) for r in seen] == [
                (elsewhere["uri"], ReplyState.SENT, f"@{alice.handle} Yes, it left us this morning.")
            ]
            (first,) = [d for d in runtime.queue.deadlines(item) if d.kind is DeadlineKind.FIRST_RESPONSE]
            assert first.met_at == int(answered_at)
            # The app's own reply to Bob, read back from the same feed, stays the app's own.
            reply = runtime.replies.outbox.queue(bob_item, "Yes, in 3 to 5 days.")
            assert (await runtime.replies.outbox.drain()) == {reply: SendOutcome.SENT}
            reference_network.process_all()
            clock.advance(60)
            again = await sync(runtime, account_id)
            assert again.ok, again.error
            assert [is_seen_key(r.idempotency_key) for r in runtime.replies.outbox.replies(bob_item)] == [False]
            assert len([r for r in runtime.replies.outbox.replies(item) if is_seen_key(r.idempotency_key)]) == 1

    arun(later_sync(), timeout=60)
