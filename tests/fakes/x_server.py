"""A fake X API v2 on loopback: mentions with since_id + next_token, replies, rotating OAuth 2 refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import itertools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, bearer, first
from tests.fakes.http_server import Outgoing


def problem(status: int, kind: str, detail: str) -> Answer:
    return Answer(
        status,
        {"type": f"https://api.x.com/2/problems/{kind}", "title": kind, "detail": detail, "status": status},
    )


class FakeXServer(FakeChannelServer):
    """Brand user 42 (@brand). ``mention()`` adds a post; replies are allowed only to posts that mention."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1_578_516_295_611_748_353)
        self._tokens = itertools.count(1)
        self.access: set[str] = set()
        self.refresh: set[str] = {"refresh-0"}
        self.refresh_calls = 0
        self.tweets: list[dict[str, Any]] = []
        self.mentioning: set[str] = set()
        self.users = {"42": {"id": "42", "username": "brand", "name": "Brand"}}
        self.posted: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []  # posts of the brand's own (no reply), with their id
        self.lose_posted_answers = 0  # POST /2/tweets is carried out, then closes without answering
        self.codes: dict[str, dict[str, str]] = {}
        self.now = 1_767_225_600.0

    def issue(self) -> tuple[str, str]:
        with self.lock:
            n = next(self._tokens)
            self.access.add(f"access-{n}")
            self.refresh.add(f"refresh-{n}")
            return f"access-{n}", f"refresh-{n}"

    def mention(self, username: str, text: str, *, mentions_brand: bool = True, reply_to: str | None = None) -> str:
        with self.lock:
            self.now += 5
            tweet_id = str(next(self._ids))
            uid = str(1000 + sum(map(ord, username)))
            self.users[uid] = {"id": uid, "username": username, "name": username.title()}
            tweet: dict[str, Any] = {
                "id": tweet_id,
                "text": text,
                "author_id": uid,
                "created_at": datetime.fromtimestamp(self.now, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "conversation_id": reply_to or tweet_id,
                "edit_history_tweet_ids": [tweet_id],
            }
            if reply_to:
                tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            self.tweets.append(tweet)
            if mentions_brand:
                self.mentioning.add(tweet_id)
            return tweet_id

    def malformed(self) -> str:
        """A mention whose author is missing from ``includes.users`` (the connector cannot name it); its id."""
        with self.lock:
            self.now += 5
            tweet_id = str(next(self._ids))
            created = datetime.fromtimestamp(self.now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            tweet = {"id": tweet_id, "text": "@brand this post is malformed", "author_id": "999999999"}
            self.tweets.append({**tweet, "created_at": created})
            self.mentioning.add(tweet_id)
            return tweet_id

    def _answer(self, request: RecordedRequest) -> Outgoing:
        answer = super()._answer(request)
        if answer is not None and request.path == "/2/tweets" and answer[0] == 201:
            with self.lock:
                if self.lose_posted_answers > 0:
                    self.lose_posted_answers -= 1
                    return None  # posted, but the client never hears so
        return answer

    def route(self, request: RecordedRequest) -> Answer:
        if request.path == "/i/oauth2/authorize":
            query = {key: values[0] for key, values in request.query.items()}
            code = f"code-{next(self._tokens)}"
            self.codes[code] = query
            answer = urlencode({"code": code, "state": query["state"]})
            return Answer(302, {}, {"Location": f"{query['redirect_uri']}?{answer}"})
        if request.path == "/2/oauth2/token" and b"authorization_code" in request.body:
            form = parse_qs(request.body.decode())
            issued = self.codes.pop(form.get("code", [""])[0], None)
            digest = hashlib.sha256(form.get("code_verifier", [""])[0].encode()).digest()
            if issued is None or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != issued["code_challenge"]:
                return Answer(400, {"error": "invalid_request", "error_description": "bad code or verifier"})
            access, refresh = self.issue()
            return Answer(
                200,
                {
                    "token_type": "bearer",
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_in": 7200,
                    "scope": issued["scope"],
                },
            )
        if request.path == "/2/oauth2/token":
            form = parse_qs(request.body.decode())
            self.refresh_calls += 1
            token = form.get("refresh_token", [""])[0]
            if form.get("grant_type") != ["refresh_token"] or token not in self.refresh or not form.get("client_id"):
                return Answer(
                    400, {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
                )
            self.refresh.discard(token)  # rotation
            access, refresh = self.issue()
            return Answer(
                200, {"token_type": "bearer", "access_token": access, "refresh_token": refresh, "expires_in": 7200}
            )
        if bearer(request) not in self.access:
            return Answer(
                401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
            )
        headers = {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "449",
            "x-rate-limit-reset": str(int(self.now) + 900),
        }
        if request.path == "/2/users/me":
            return Answer(200, {"data": self.users["42"]}, headers)
        if request.path == "/2/users/42/mentions":
            since = first(request.query, "since_id")
            size = int(first(request.query, "max_results", "10"))
            offset = int(first(request.query, "pagination_token", "0") or 0)
            ordered = sorted(
                (t for t in self.tweets if t["id"] in self.mentioning), key=lambda t: int(t["id"]), reverse=True
            )
            if since:
                ordered = [t for t in ordered if int(t["id"]) > int(since)]
            start_time = first(request.query, "start_time")
            if start_time:  # YYYY-MM-DDTHH:mm:ssZ; created_at carries milliseconds, so compare the first 19 characters
                ordered = [t for t in ordered if t["created_at"][:19] >= start_time[:19]]
            page = ordered[offset : offset + size]
            body: dict[str, Any] = {"meta": {"result_count": len(page)}}
            if page:
                body["data"] = page
                # A suspended or deleted author is left out of includes, as X does (see malformed()).
                body["includes"] = {"users": [self.users[t["author_id"]] for t in page if t["author_id"] in self.users]}
                body["meta"].update({"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]})
            if offset + size < len(ordered):
                body["meta"]["next_token"] = str(offset + size)
            return Answer(200, body, headers)
        if request.path == "/2/tweets" and request.method == "POST":
            payload = request.json()
            if "reply" not in payload:  # a post of the account's own
                if not payload.get("text"):
                    return problem(400, "invalid-request", "text must not be empty")
                tweet_id = str(next(self._ids))
                self.statuses.append({"id": tweet_id, **payload})
                return Answer(201, {"data": {"id": tweet_id, "text": payload["text"]}}, headers)
            target = payload.get("reply", {}).get("in_reply_to_tweet_id")
            if target not in self.mentioning:
                return problem(
                    403,
                    "client-forbidden",
                    "Reply to this conversation is not allowed because you have not been mentioned or otherwise "
                    "engaged by the author of the post you are replying to.",
                )
            self.posted.append(payload)
            return Answer(201, {"data": {"id": str(next(self._ids)), "text": payload["text"]}}, headers)
        return problem(404, "resource-not-found", request.path)
