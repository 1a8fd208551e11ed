"""The sandbox Mastodon-compatible server, spoken to over a real loopback socket (httpx and Mastodon.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from mastodon import Mastodon

from console.sandbox import SandboxServer
from console.sandbox.traffic import ArrivalProcess, TrafficGenerator
from tests.fakes.clock import FakeClock

NOTIFICATIONS = "/api/v1/notifications"


def id_key(value: str) -> tuple[int, str]:
    return (len(value), value)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[SandboxServer]:
    sandbox = SandboxServer(seed=1, rate_per_minute=0.0, clock=clock)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def open_client(server: SandboxServer, *, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.token if token is None else token}"}
    return httpx.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=5.0)


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx.Client]:
    with open_client(server) as http:
        yield http


@pytest.fixture
def anonymous(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=5.0) as http:
        yield http


def page_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def notification(client: httpx.Client, notification_id: str) -> dict[str, Any]:
    response = client.get(f"{NOTIFICATIONS}/{notification_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


# -- notifications paging ---------------------------------------------------------------------------------


def test_notifications_min_id_pages_forward_without_gaps_or_repeats(
    server: SandboxServer, client: httpx.Client
) -> None:
    created = server.generate(13)
    cursor = "0"
    pages: list[list[str]] = []
    while True:
        ids = page_ids(client.get(NOTIFICATIONS, params={"min_id": cursor, "limit": 5, "types[]": ["mention"]}))
        if not ids:
            break
        assert ids == sorted(ids, key=id_key, reverse=True)  # each page newest first
        pages.append(ids)
        cursor = ids[0]
    assert [len(p) for p in pages] == [5, 5, 3]
    collected = [i for page in pages for i in reversed(page)]
    assert collected == created


def test_notifications_since_id_returns_the_newest_page(server: SandboxServer, client: httpx.Client) -> None:
    created = server.generate(13)
    ids = page_ids(client.get(NOTIFICATIONS, params={"since_id": created[0], "limit": 5}))
    # since_id skips the items right after the cursor: that is why connectors page with min_id.
    assert ids == list(reversed(created[-5:]))


def test_notifications_max_id_pages_backwards(server: SandboxServer, client: httpx.Client) -> None:
    created = server.generate(13)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    while ids := page_ids(client.get(NOTIFICATIONS, params=params)):
        seen.extend(ids)
        params["max_id"] = ids[-1]
    assert seen == list(reversed(created))


def test_notifications_default_limit_is_40_and_max_80(server: SandboxServer, client: httpx.Client) -> None:
    server.generate(90)
    assert len(page_ids(client.get(NOTIFICATIONS))) == 40
    assert len(page_ids(client.get(NOTIFICATIONS, params={"limit": 500}))) == 80


def test_notifications_link_headers_point_to_next_and_prev_pages(server: SandboxServer, client: httpx.Client) -> None:
    created = server.generate(8)
    response = client.get(NOTIFICATIONS, params={"types[]": ["mention"], "limit": 3})
    ids = page_ids(response)
    next_url, prev_url = response.links["next"]["url"], response.links["prev"]["url"]
    assert next_url.startswith(f"{server.base_url}{NOTIFICATIONS}?")
    assert parse_qs(urlsplit(next_url).query) == {"limit": ["3"], "max_id": [ids[-1]], "types[]": ["mention"]}
    assert parse_qs(urlsplit(prev_url).query) == {"limit": ["3"], "min_id": [ids[0]], "types[]": ["mention"]}
    assert page_ids(client.get(next_url)) == list(reversed(created[2:5]))
    empty = client.get(prev_url)
    assert page_ids(empty) == []
    assert "link" not in empty.headers


def test_notifications_types_filter_excludes_other_types(server: SandboxServer, client: httpx.Client) -> None:
    server.generate(3)
    assert page_ids(client.get(NOTIFICATIONS, params={"types[]": ["follow"]})) == []
    assert page_ids(client.get(NOTIFICATIONS, params={"exclude_types[]": ["mention"]})) == []
    assert len(page_ids(client.get(NOTIFICATIONS, params={"types[]": ["mention", "follow"]}))) == 3


def test_notification_has_mastodon_shape(server: SandboxServer, client: httpx.Client) -> None:
    [notification_id] = server.generate(1)
    item = notification(client, notification_id)
    assert item["type"] == "mention"
    assert item["group_key"] == f"ungrouped-{notification_id}"
    assert item["created_at"] == "2026-01-01T00:00:00.000Z"
    status = item["status"]
    assert status["account"] == item["account"]
    assert status["content"].startswith(
        f'<p><span class="h-card" translate="no"><a href="{server.base_url}/@care" class="u-url mention">'
        "@<span>care</span></a></span> "
    )
    assert {m["acct"] for m in status["mentions"]} == {"care"}
    assert status["url"] == f"{server.base_url}/@{item['account']['acct']}/{status['id']}"
    assert status["uri"] == f"{server.base_url}/users/{item['account']['username']}/statuses/{status['id']}"
    assert status["id"] != notification_id  # separate sequences


# -- auth and errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [NOTIFICATIONS, f"{NOTIFICATIONS}/1", "/api/v1/statuses/1", "/api/v1/accounts/verify_credentials"]
)
def test_api_without_valid_token_is_401(server: SandboxServer, anonymous: httpx.Client, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.json() == {"error": "The access token is invalid"}
    with open_client(server, token="wrong") as wrong:
        assert wrong.get(path).status_code == 401


def test_api_post_without_token_creates_nothing(server: SandboxServer, anonymous: httpx.Client) -> None:
    assert anonymous.post("/api/v1/statuses", data={"status": "hi"}).status_code == 401
    assert server.statuses_posted() == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/statuses/999", 404),
        ("GET", "/api/v1/statuses/999/context", 404),
        ("GET", f"{NOTIFICATIONS}/999", 404),
        ("GET", "/api/v1/timelines/home", 404),
        ("DELETE", NOTIFICATIONS, 405),
        ("GET", "/api/v1/statuses", 405),
    ],
)
def test_api_unknown_resources_and_methods(client: httpx.Client, method: str, path: str, status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    if status == 404:
        assert response.json() == {"error": "Record not found"}


# -- statuses ---------------------------------------------------------------------------------------------


def test_status_context_returns_ancestors_and_descendants(server: SandboxServer, client: httpx.Client) -> None:
    root = notification(client, server.post_mention(author="maria@fosstodon.example", text="@care help"))["status"]
    reply = client.post(
        "/api/v1/statuses", data={"status": "@maria@fosstodon.example hi", "in_reply_to_id": root["id"]}
    )
    middle = notification(
        client,
        server.post_mention(author="maria@fosstodon.example", text="@care thanks", in_reply_to_id=reply.json()["id"]),
    )["status"]
    answer = client.post("/api/v1/statuses", json={"status": "you're welcome", "in_reply_to_id": middle["id"]})
    sibling = client.post("/api/v1/statuses", json={"status": "also see our FAQ", "in_reply_to_id": root["id"]})

    context = client.get(f"/api/v1/statuses/{middle['id']}/context").json()
    assert [s["id"] for s in context["ancestors"]] == [root["id"], reply.json()["id"]]
    assert [s["id"] for s in context["descendants"]] == [answer.json()["id"]]
    root_context = client.get(f"/api/v1/statuses/{root['id']}/context").json()
    assert root_context["ancestors"] == []
    assert [s["id"] for s in root_context["descendants"]] == [
        reply.json()["id"],
        middle["id"],
        answer.json()["id"],
        sibling.json()["id"],
    ]


def test_post_status_form_reply_is_stored_and_shaped(server: SandboxServer, client: httpx.Client) -> None:
    item = notification(client, server.post_mention(author="sam", text="@care where is my parcel?"))
    parent = item["status"]
    response = client.post(
        "/api/v1/statuses",
        data={"status": "@sam it left the warehouse today", "in_reply_to_id": parent["id"], "visibility": "direct"},
    )
    assert response.status_code == 200
    status = response.json()
    assert status["in_reply_to_id"] == parent["id"]
    assert status["in_reply_to_account_id"] == item["account"]["id"]
    assert status["visibility"] == "direct"
    assert status["account"]["acct"] == "care"
    assert status["mentions"] == [
        {"id": item["account"]["id"], "username": "sam", "url": f"{server.base_url}/@sam", "acct": "sam"}
    ]
    assert server.statuses_posted() == [status]
    assert client.get(f"/api/v1/statuses/{parent['id']}").json()["replies_count"] == 1
    assert client.get(f"/api/v1/statuses/{status['id']}").json()["content"] == status["content"]


def test_post_status_accepts_json_bodies(server: SandboxServer, client: httpx.Client) -> None:
    [notification_id] = server.generate(1)
    parent = notification(client, notification_id)["status"]
    response = client.post(
        "/api/v1/statuses",
        json={"status": "On it!", "in_reply_to_id": parent["id"], "spoiler_text": "order", "language": "de"},
    )
    assert response.status_code == 200
    status = response.json()
    assert (status["in_reply_to_id"], status["spoiler_text"], status["sensitive"]) == (parent["id"], "order", True)
    assert (status["language"], status["visibility"], status["content"]) == ("de", "public", "<p>On it!</p>")


def test_post_status_idempotency_key_returns_the_same_status(
    server: SandboxServer, client: httpx.Client, clock: FakeClock
) -> None:
    headers = {"Idempotency-Key": "reply-42"}
    first = client.post("/api/v1/statuses", data={"status": "hello"}, headers=headers)
    again = client.post("/api/v1/statuses", data={"status": "hello"}, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(server.statuses_posted()) == 1
    other = client.post("/api/v1/statuses", data={"status": "hello"}, headers={"Idempotency-Key": "reply-43"})
    assert other.json()["id"] != first.json()["id"]
    clock.advance(3601)  # keys are kept for one hour
    later = client.post("/api/v1/statuses", data={"status": "hello"}, headers=headers)
    assert later.json()["id"] != first.json()["id"]
    assert len(server.statuses_posted()) == 3


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"status": ""}, 422, "Validation failed: Text can't be blank"),
        ({"status": "   "}, 422, "Validation failed: Text can't be blank"),
        ({"status": "x" * 501}, 422, "Validation failed: Text character limit of 500 exceeded"),
        ({"status": "hi", "visibility": "everyone"}, 422, "Validation failed: Visibility is not included in the list"),
        (
            {"status": "hi", "in_reply_to_id": "404"},
            404,
            "The post you are trying to reply to does not appear to exist.",
        ),
    ],
)
def test_post_status_rejects_invalid_input(
    server: SandboxServer, client: httpx.Client, body: dict[str, str], status: int, error: str
) -> None:
    response = client.post("/api/v1/statuses", data=body)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert server.statuses_posted() == []


def test_post_status_counts_each_url_as_23_characters(client: httpx.Client) -> None:
    url = "https://example.com/" + "a" * 200
    fits = "x" * (500 - 23 - 1) + " " + url
    assert client.post("/api/v1/statuses", data={"status": fits}).status_code == 200
    assert client.post("/api/v1/statuses", data={"status": "x" + fits}).status_code == 422


def test_status_content_escapes_customer_html_and_links_urls(server: SandboxServer, client: httpx.Client) -> None:
    text = '@care <b>bold</b> & "quotes"\nsee https://example.com/x #Broken'
    status = notification(client, server.post_mention(author="dev", text=text))["status"]
    assert "<b>" not in status["content"]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quotes&quot;<br />see " in status["content"]
    assert (
        '<a href="https://example.com/x" rel="nofollow noopener" target="_blank"><span class="invisible">https://'
        '</span><span class="">example.com/x</span><span class="invisible"></span></a>'
    ) in status["content"]
    assert status["tags"] == [{"name": "broken", "url": f"{server.base_url}/tags/broken"}]


# -- rate limits, instance, credentials -------------------------------------------------------------------


def test_rate_limit_headers_count_down_with_iso_reset(client: httpx.Client, clock: FakeClock) -> None:
    clock.advance(42.5)
    first = client.get(NOTIFICATIONS)
    second = client.get("/api/v1/accounts/verify_credentials")
    assert first.headers["x-ratelimit-limit"] == "300"
    assert (first.headers["x-ratelimit-remaining"], second.headers["x-ratelimit-remaining"]) == ("299", "298")
    reset = datetime.fromisoformat(first.headers["x-ratelimit-reset"])
    assert first.headers["x-ratelimit-reset"].endswith("Z")
    assert reset.timestamp() == pytest.approx(clock.now() - 42.0 + 300.0)  # the end of the 5-minute window


def test_rate_limit_exhausted_returns_429_until_the_window_ends(
    server: SandboxServer, client: httpx.Client, clock: FakeClock
) -> None:
    for _ in range(300):
        last = client.get("/api/v1/accounts/verify_credentials")
    assert (last.status_code, last.headers["x-ratelimit-remaining"]) == (200, "0")
    throttled = client.get(NOTIFICATIONS)
    assert throttled.status_code == 429
    assert throttled.json() == {"error": "Too many requests"}
    assert (throttled.headers["retry-after"], throttled.headers["x-ratelimit-remaining"]) == ("300", "0")
    clock.advance(300)
    assert client.get(NOTIFICATIONS).headers["x-ratelimit-remaining"] == "299"


def test_instance_document_needs_no_token_and_describes_limits(server: SandboxServer, anonymous: httpx.Client) -> None:
    response = anonymous.get("/api/v2/instance")
    assert response.status_code == 200
    instance = response.json()
    assert (instance["domain"], instance["version"]) == ("sandbox.local", "4.3.0")
    assert instance["configuration"]["statuses"]["max_characters"] == 500
    assert instance["configuration"]["statuses"]["characters_reserved_per_url"] == 23
    assert instance["configuration"]["urls"]["streaming"] == server.base_url.replace("http://", "ws://")
    assert instance["contact"]["account"]["acct"] == "care"
    assert instance["rules"] == []
    assert "x-ratelimit-remaining" in response.headers


def test_verify_credentials_returns_the_brand_account(server: SandboxServer, client: httpx.Client) -> None:
    account = client.get("/api/v1/accounts/verify_credentials").json()
    assert (account["username"], account["acct"], account["display_name"]) == ("care", "care", "Care Team")
    assert account["url"] == f"{server.base_url}/@care"
    assert account["source"]["privacy"] == "public"


def test_requests_are_recorded_with_their_query(server: SandboxServer, client: httpx.Client) -> None:
    client.get(NOTIFICATIONS, params={"types[]": ["mention"], "limit": 2})
    assert server.requests == [("GET", NOTIFICATIONS, {"types[]": ["mention"], "limit": ["2"]})]


# -- simulated customers ----------------------------------------------------------------------------------


def mention_summaries(seed: int, clock: FakeClock, n: int) -> list[tuple[str, str, str, bool]]:
    with SandboxServer(seed=seed, clock=clock) as sandbox, open_client(sandbox) as http:
        ids = sandbox.generate(n)
        items = [notification(http, i) for i in ids]
        base_url = sandbox.base_url
    return [
        (
            i["account"]["acct"],
            i["status"]["content"].replace(base_url, "BASE"),  # ports differ between servers
            i["status"]["visibility"],
            bool(i["status"]["in_reply_to_id"]),
        )
        for i in items
    ]


def test_generate_is_deterministic_for_a_seed(clock: FakeClock) -> None:
    first = mention_summaries(7, clock, 30)
    assert mention_summaries(7, clock, 30) == first
    assert mention_summaries(8, clock, 30) != first
    assert len({acct for acct, *_ in first}) >= 10


def test_ids_increase_across_server_instances(clock: FakeClock) -> None:
    with SandboxServer(clock=clock) as earlier, open_client(earlier) as http:
        earlier_notifications = earlier.generate(20)  # all within one millisecond of the fake clock
        earlier_statuses = [notification(http, i)["status"]["id"] for i in earlier_notifications]
    clock.advance(0.001)
    with SandboxServer(clock=clock) as later, open_client(later) as http:
        later_notifications = later.generate(3)
        later_statuses = [notification(http, i)["status"]["id"] for i in later_notifications]
    for ids in (earlier_notifications + later_notifications, earlier_statuses + later_statuses):
        assert ids == sorted(ids, key=id_key)
        assert len(set(ids)) == len(ids)
    assert int(later_notifications[0]) >> 16 == int(clock.now() * 1000)


def test_backlog_is_spread_over_the_last_40_minutes(clock: FakeClock) -> None:
    with SandboxServer(backlog=12, clock=clock) as sandbox, open_client(sandbox) as http:
        items = http.get(NOTIFICATIONS).json()
    assert len(items) == 12
    times = [datetime.fromisoformat(i["created_at"]).timestamp() for i in items]
    assert times == sorted(times, reverse=True)
    assert clock.now() - 40 * 60 <= min(times) and max(times) < clock.now()
    assert max(times) - min(times) > 20 * 60


def test_follow_up_arrives_in_the_thread_after_a_reply(server: SandboxServer, client: httpx.Client) -> None:
    [mention_id] = server.generate(1)
    mention = notification(client, mention_id)
    reply = client.post(
        "/api/v1/statuses",
        data={"status": f"@{mention['account']['acct']} looking into it", "in_reply_to_id": mention["status"]["id"]},
    ).json()
    [follow_up_id] = server.simulate_follow_ups(force=True)
    follow_up = notification(client, follow_up_id)
    assert follow_up["account"]["id"] == mention["account"]["id"]
    assert follow_up["status"]["in_reply_to_id"] == reply["id"]
    assert follow_up["status"]["in_reply_to_account_id"] == reply["account"]["id"]
    assert "@<span>care</span>" in follow_up["status"]["content"]
    descendants = client.get(f"/api/v1/statuses/{mention['status']['id']}/context").json()["descendants"]
    assert [s["id"] for s in descendants] == [reply["id"], follow_up["status"]["id"]]
    assert server.simulate_follow_ups(force=True) == []  # each reply is answered once


def test_follow_ups_without_force_are_seeded(clock: FakeClock) -> None:
    def run() -> list[str]:
        with SandboxServer(seed=3, clock=clock) as sandbox, open_client(sandbox) as http:
            for notification_id in sandbox.generate(12):
                parent = notification(http, notification_id)["status"]["id"]
                http.post("/api/v1/statuses", data={"status": "thanks for writing", "in_reply_to_id": parent})
            follow_ups = [notification(http, i)["status"] for i in sandbox.simulate_follow_ups()]
            return [s["content"].replace(sandbox.base_url, "BASE") for s in follow_ups]

    answered = run()
    assert answered == run()
    assert 0 < len(answered) < 12  # some customers write back, others stay silent


def test_background_traffic_follows_the_clock(clock: FakeClock) -> None:
    def run() -> list[str]:
        start = FakeClock(clock.now())
        with SandboxServer(seed=2, rate_per_minute=6.0, clock=start) as sandbox, open_client(sandbox) as http:
            assert sandbox.pump() == []  # the fake clock has not moved: nothing is due yet
            start.advance(600)
            sandbox.pump()  # the traffic thread may get there first; either way the result is the same
            items = http.get(NOTIFICATIONS, params={"limit": 80}).json()
        assert all(
            start.now() - 600 < datetime.fromisoformat(i["created_at"]).timestamp() <= start.now() for i in items
        )
        return [i["account"]["acct"] for i in items]

    first = run()
    assert 20 <= len(first) <= 110  # about 6 a minute for 10 minutes, with bursts and lulls
    assert run() == first


def test_pump_posts_follow_ups_when_they_are_due(server: SandboxServer, client: httpx.Client, clock: FakeClock) -> None:
    replies = set()
    for notification_id in server.generate(10):
        parent = notification(client, notification_id)["status"]["id"]
        replies.add(client.post("/api/v1/statuses", data={"status": "on it", "in_reply_to_id": parent}).json()["id"])
    assert server.pump() == []  # customers take at least 20 seconds to answer
    clock.advance(121)
    follow_ups = [notification(client, i)["status"] for i in server.pump()]
    assert follow_ups
    assert {s["in_reply_to_id"] for s in follow_ups} <= replies
    assert server.simulate_follow_ups() == []  # everyone who meant to answer has answered


def test_stop_ends_the_background_traffic_thread(clock: FakeClock) -> None:
    sandbox = SandboxServer(rate_per_minute=600.0, clock=clock)
    sandbox.start()
    assert any(t.name == "sandbox-traffic" and t.is_alive() for t in threading.enumerate())
    sandbox.stop()
    assert not any(t.name.startswith("sandbox-") and t.is_alive() for t in threading.enumerate())


def test_traffic_generator_produces_varied_brand_mentions() -> None:
    generator = TrafficGenerator(seed=11)
    mentions = [generator.next_mention() for _ in range(300)]
    assert all(m.text.startswith("@care ") for m in mentions)
    assert 0.12 <= sum(m.visibility == "direct" for m in mentions) / len(mentions) <= 0.3
    assert len({m.customer.acct for m in mentions}) >= 22
    assert len({m.text for m in mentions}) >= 250
    assert any("https://" in m.text for m in mentions)
    first_seen = {m.customer.acct: i for i, m in reversed(list(enumerate(mentions)))}
    assert max(first_seen.values()) > 100  # newcomers keep appearing


def test_arrival_process_averages_the_requested_rate() -> None:
    arrivals = ArrivalProcess(seed=4, rate_per_minute=6.0)
    gaps = [arrivals.next_gap() for _ in range(3000)]
    assert 60 / (sum(gaps) / len(gaps)) == pytest.approx(6.0, rel=0.25)
    assert min(gaps) < 1.0 and max(gaps) > 60.0  # bursts and lulls


def test_stop_is_idempotent(clock: FakeClock) -> None:
    sandbox = SandboxServer(clock=clock)
    sandbox.start()
    base_url = sandbox.base_url
    sandbox.stop()
    sandbox.stop()
    with httpx.Client(trust_env=False, timeout=1.0) as http, pytest.raises(httpx.ConnectError):
        http.get(f"{base_url}/api/v2/instance")


# -- a real client ----------------------------------------------------------------------------------------


def test_mastodon_py_round_trip(server: SandboxServer) -> None:
    [mention_id] = server.generate(1)
    with requests.Session() as session:
        session.trust_env = False
        api = Mastodon(
            api_base_url=server.base_url,
            access_token=server.token,
            version_check_mode="none",
            ratelimit_method="throw",
            session=session,
            request_timeout=5,
        )
        me = api.account_verify_credentials()
        mentions = api.notifications(types=["mention"])
        status = api.status(mentions[0].status.id)
        reply = api.status_post(
            f"@{status.account.acct} thanks, we're on it",
            in_reply_to_id=status,
            visibility=status.visibility,
            idempotency_key="mastodon-py-1",
        )
        again = api.status_post("ignored", in_reply_to_id=status, idempotency_key="mastodon-py-1")
        instance = api.instance_v2()
    assert me.acct == "care"
    assert [n.id for n in mentions] == [mention_id]
    assert status.id == mentions[0].status.id
    assert reply.in_reply_to_id == status.id
    assert again.id == reply.id
    assert [s["id"] for s in server.statuses_posted()] == [reply.id]
    assert instance.configuration.statuses.max_characters == 500


# ---------------------------------------------------------------------- a restart continues the world (issue 19 #6)
def test_sandbox_restarted_on_its_state_file_continues_the_same_world(tmp_path: Any, clock: FakeClock) -> None:
    state = tmp_path / "sandbox.json"
    first = SandboxServer(seed=3, rate_per_minute=0.0, backlog=6, clock=clock, state_path=state)
    first.start()
    try:
        with open_client(first) as http:
            before = http.get(NOTIFICATIONS, params={"limit": 40}).json()
            answered = before[-1]["status"]["id"]
            posted = http.post("/api/v1/statuses", data={"status": "On it!", "in_reply_to_id": answered})
            assert posted.status_code == 200, posted.text
        follow_ups_of_first = first.simulate_follow_ups(force=True)
    finally:
        first.stop()
    assert not first.restored

    clock.advance(600)
    again = SandboxServer(seed=3, rate_per_minute=0.0, backlog=6, clock=clock, state_path=state)
    again.start()
    try:
        assert again.restored
        with open_client(again) as http:
            after = http.get(NOTIFICATIONS, params={"limit": 40}).json()
            # the same notifications, none seeded again (follow-ups the customers wrote are still there)
            assert [n["id"] for n in after] == [n for n in reversed(follow_ups_of_first)] + [n["id"] for n in before]
            assert http.get(f"/api/v1/statuses/{answered}/context").json()["descendants"][0]["content"] == (
                "<p>On it!</p>"
            )
            reply = http.post("/api/v1/statuses", data={"status": "Any news?", "in_reply_to_id": answered})
            assert reply.status_code == 200, reply.text  # not a 404: the sandbox remembers its posts
        (new_id,) = again.generate(1)
        assert id_key(new_id) > id_key(after[0]["id"])  # ids keep growing across the restart
        assert [s["content"] for s in again.statuses_posted()] == ["<p>On it!</p>", "<p>Any news?</p>"]
    finally:
        again.stop()


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "seed": 3, "brand": "care", "accounts": 5}'])
def test_sandbox_with_an_unreadable_state_file_starts_a_new_world(
    tmp_path: Any, clock: FakeClock, content: str
) -> None:
    state = tmp_path / "sandbox.json"
    state.write_text(content, encoding="utf-8")
    server = SandboxServer(seed=3, rate_per_minute=0.0, backlog=4, clock=clock, state_path=state)
    server.start()
    try:
        assert not server.restored
        with open_client(server) as http:
            assert len(http.get(NOTIFICATIONS).json()) == 4
    finally:
        server.stop()
    assert SandboxServer(seed=3, clock=clock, state_path=state).restored  # the new world was saved over it


def test_sandbox_saved_world_forgets_old_posts_but_keeps_threads_still_in_use(tmp_path: Any, clock: FakeClock) -> None:
    state = tmp_path / "sandbox.json"
    first = SandboxServer(seed=3, rate_per_minute=0.0, backlog=6, clock=clock, state_path=state)
    first.start()
    try:
        with open_client(first) as http:
            old = [n["status"]["id"] for n in http.get(NOTIFICATIONS, params={"limit": 40}).json()]
        clock.advance(15 * 86400)  # past the retention: the old backlog is now two weeks old
        (fresh,) = first.generate(1)
        with open_client(first) as http:
            # an old thread the agent answers today is kept, whole, with today's reply
            answered = old[0]
            posted = http.post("/api/v1/statuses", data={"status": "Sorry, late!", "in_reply_to_id": answered})
            assert posted.status_code == 200, posted.text
    finally:
        first.stop()

    again = SandboxServer(seed=3, rate_per_minute=0.0, backlog=6, clock=clock, state_path=state)
    again.start()
    try:
        assert again.restored
        with open_client(again) as http:
            ids = [n["id"] for n in http.get(NOTIFICATIONS, params={"limit": 40}).json()]
            assert fresh in ids  # today's mention is there
            assert http.get(f"/api/v1/statuses/{answered}").status_code == 200  # the answered thread is kept
            forgotten = [s for s in old[1:] if http.get(f"/api/v1/statuses/{s}").status_code == 404]
            assert forgotten == old[1:]  # the untouched two-week-old posts are gone
    finally:
        again.stop()
