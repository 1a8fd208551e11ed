"""The sandbox's fault switches, each driven over a real loopback socket, and its admin endpoint."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from console.sandbox import SandboxServer
from console.sandbox.faults import Fault, FaultPlan, FaultRule, parse_fault_spec
from tests.fakes.clock import FakeClock

NOTIFICATIONS = "/api/v1/notifications"


@pytest.fixture
def server(clock: FakeClock) -> Iterator[SandboxServer]:
    sandbox = SandboxServer(seed=3, rate_per_minute=0.0, backlog=12, clock=clock)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, trust_env=False, timeout=5.0) as http:
        yield http


def switch(server: SandboxServer, fault: str, **options: object) -> None:
    server.set_faults([FaultRule.from_json({"fault": fault, "count": 1, **options})])


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json()]


def key(value: str) -> tuple[int, str]:
    return (len(value), value)


def test_spec_parsing_and_bad_specs() -> None:
    rules = parse_fault_spec("503:0.25, retry_after:next=2:retry_after=90, slow:0.1:delay=3")
    assert [(r.fault, r.probability, r.count) for r in rules] == [
        (Fault.UNAVAILABLE, 0.25, None),
        (Fault.RETRY_AFTER, 1.0, 2),
        (Fault.SLOW, 0.1, None),
    ]
    assert rules[1].retry_after == 90 and rules[2].delay == 3
    for bad in ("teapot", "503:1.5", "503:next=-1", "503:colour=red", "slow:abc"):
        with pytest.raises(ValueError, match=r"\w"):
            parse_fault_spec(bad)


def test_retry_after_in_seconds(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "retry_after", retry_after=42)
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert client.get(NOTIFICATIONS).status_code == 200  # "next 1 request" is over


def test_retry_after_as_http_date(server: SandboxServer, client: httpx.Client, clock: FakeClock) -> None:
    switch(server, "retry_after_date", retry_after=120)
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 429
    when = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    assert when.timestamp() == pytest.approx(clock.now() + 120, abs=1)


def test_rate_limit_exhaustion_gives_only_the_reset_header(
    server: SandboxServer, client: httpx.Client, clock: FakeClock
) -> None:
    switch(server, "rate_limit_reset", retry_after=200)
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.headers["X-RateLimit-Remaining"] == "0"
    reset = datetime.fromisoformat(response.headers["X-RateLimit-Reset"])
    assert reset.timestamp() == pytest.approx(clock.now() + 200, abs=1)


def test_low_budget_answers_but_reports_little_left(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "low_budget", remaining=3)
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 200 and len(response.json()) > 0
    assert response.headers["X-RateLimit-Remaining"] == "3"


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors(server: SandboxServer, client: httpx.Client, status: str) -> None:
    switch(server, status)
    response = client.get(NOTIFICATIONS)
    assert response.status_code == int(status)
    assert "error" in response.json()


def test_slow_answer_runs_past_the_client_timeout(server: SandboxServer) -> None:
    switch(server, "slow", delay=0.6)
    headers = {"Authorization": f"Bearer {server.token}"}
    with (
        httpx.Client(
            base_url=server.base_url, headers=headers, trust_env=False, timeout=httpx.Timeout(2.0, read=0.15)
        ) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.get(NOTIFICATIONS)


def test_dropped_connection_mid_body(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "drop")
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|closed"):
        client.get(NOTIFICATIONS)
    assert client.get(NOTIFICATIONS).status_code == 200


def test_malformed_json(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "malformed_json")
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_html_error_page(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "html_error")
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_revoked_token_fault(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "revoked")
    response = client.get(NOTIFICATIONS)
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_revoking_rotates_the_token(server: SandboxServer, client: httpx.Client) -> None:
    old = server.token
    assert client.post("/_sandbox/revoke").status_code == 200
    assert server.token != old
    assert client.get(NOTIFICATIONS).status_code == 401
    fresh = client.get(NOTIFICATIONS, headers={"Authorization": f"Bearer {server.token}"})
    assert fresh.status_code == 200


def test_page_repeats_items_already_sent(server: SandboxServer, client: httpx.Client) -> None:
    everything = ids(client.get(NOTIFICATIONS, params={"limit": 80}))
    cursor = sorted(everything, key=key)[5]
    switch(server, "repeat")
    page = ids(client.get(NOTIFICATIONS, params={"min_id": cursor, "limit": 80}))
    assert any(key(i) <= key(cursor) for i in page)


def test_items_out_of_order(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "out_of_order")
    page = ids(client.get(NOTIFICATIONS, params={"limit": 80}))
    assert sorted(page, key=key, reverse=True) != page
    assert len(set(page)) == 12


def test_malformed_item(server: SandboxServer, client: httpx.Client) -> None:
    switch(server, "malformed_item")
    page = client.get(NOTIFICATIONS).json()
    assert sum("account" not in entry["status"] for entry in page) == 1


def test_mention_deleted_upstream(server: SandboxServer, client: httpx.Client) -> None:
    status_id = client.get(NOTIFICATIONS).json()[0]["status"]["id"]
    switch(server, "deleted")
    assert client.get(NOTIFICATIONS).status_code == 200  # only status fetches are affected
    assert client.get(f"/api/v1/statuses/{status_id}").status_code == 404
    assert client.get(f"/api/v1/statuses/{status_id}").status_code == 200


def test_instance_gone(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults([FaultRule(Fault.GONE, count=2)])
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            client.get(NOTIFICATIONS)
    assert client.get(NOTIFICATIONS).status_code == 200


def test_next_n_requests_then_off(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults([FaultRule(Fault.UNAVAILABLE, count=3)])
    statuses = [client.get(NOTIFICATIONS).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]
    assert server.faults.fired() == {"503": 3}


def test_probability_is_seeded() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan([FaultRule(Fault.SERVER_ERROR, probability=0.3)], seed=seed)
        return [plan.draw("GET", NOTIFICATIONS).replacing is not None for _ in range(200)]

    first = pattern(11)
    assert first == pattern(11)
    assert first != pattern(12)
    assert 30 <= sum(first) <= 90


def test_admin_endpoint_switches_faults_on_and_off(server: SandboxServer, client: httpx.Client) -> None:
    request_count = len(server.requests)
    on = client.post("/_sandbox/faults", json={"spec": "503:next=1", "faults": [{"fault": "slow", "probability": 0}]})
    assert on.status_code == 200
    assert {rule["fault"] for rule in on.json()["faults"]} == {"503", "slow"}
    assert client.get(NOTIFICATIONS).status_code == 503
    listed = client.get("/_sandbox/faults").json()
    assert [rule["fault"] for rule in listed["faults"]] == ["slow"]
    assert listed["fired"] == {"503": 1}
    assert client.delete("/_sandbox/faults").json()["faults"] == []
    bad = client.post("/_sandbox/faults", json={"faults": [{"fault": "teapot"}]})
    assert bad.status_code == 422 and "teapot" in bad.json()["error"]
    assert len(server.requests) == request_count + 1  # admin calls are not part of the API traffic


def test_faults_set_at_start(clock: FakeClock) -> None:
    with SandboxServer(clock=clock, faults=parse_fault_spec("502:next=1")) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.token}"}
        with httpx.Client(base_url=sandbox.base_url, headers=headers, trust_env=False, timeout=5.0) as http:
            assert [http.get(NOTIFICATIONS).status_code for _ in range(2)] == [502, 200]


def test_after_lets_requests_through_first(server: SandboxServer, client: httpx.Client) -> None:
    server.set_faults(parse_fault_spec("500:next=1:after=2"))
    assert [client.get(NOTIFICATIONS).status_code for _ in range(4)] == [200, 200, 500, 200]
