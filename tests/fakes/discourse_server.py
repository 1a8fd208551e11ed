"""A fake Discourse forum on loopback: topics, posts, the brand user's offset-paged notifications, replies,
and the User API key handshake (``/user-api-key/new``)."""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, first


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeDiscourseServer(FakeChannelServer):
    """The brand watches category 2; mentions, replies to the brand, watched posts and PMs notify it."""

    def __init__(self, *, brand: str = "brand", api_key: str = "admin-key-1") -> None:
        super().__init__()
        self.brand, self.api_key = brand, api_key
        self.user_api_key = "user-key-1"
        self.watched_categories = {2}
        self.require_approval = False
        self._post_ids = itertools.count(100)
        self._topic_ids = itertools.count(10)
        self._notification_ids = itertools.count(1)
        self.topics: dict[int, dict[str, Any]] = {}
        self.posts: dict[int, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.now = 1_767_225_600.0
        # The User API key handshake. The real forum shows an approval page and redirects after the POST
        # of its Authorize button; here GET /user-api-key/new approves at once (the user said yes).
        self.key_requests: list[dict[str, str]] = []
        self.issued: dict[str, str] = {}  # user API key -> client id
        self.allowed_scopes = {"read", "write", "message_bus", "push", "notifications", "session_info"}
        self.approve = True  # False: the redirect comes back without a payload
        self.refuse_redirect = False  # auth_redirect not in allowed_user_api_auth_redirects: an error page
        self.tamper_nonce = False  # the payload carries another nonce
        self.garble_payload = False  # the payload is not encrypted with the request's key
        self.ignore_padding = False  # a forum older than the padding parameter: always PKCS#1 v1.5

    # -- test controls -------------------------------------------------------------------------------

    def topic(self, author: str, raw: str, *, category: int = 1, private: bool = False) -> int:
        with self.lock:
            topic_id = next(self._topic_ids)
            self.topics[topic_id] = {
                "id": topic_id,
                "slug": f"topic-{topic_id}",
                "title": raw[:30],
                "category_id": None if private else category,
                "archetype": "private_message" if private else "regular",
                "posts": [],
            }
            self._add_post(topic_id, author, raw, None)
            return topic_id

    def reply(self, topic_id: int, author: str, raw: str, *, reply_to: int | None = None) -> int:
        with self.lock:
            return self._add_post(topic_id, author, raw, reply_to)["post_number"]  # type: ignore[no-any-return]

    def malformed(self, author: str) -> int:
        """A topic mentioning the brand whose post has no readable ``created_at``; returns the topic id."""
        topic_id = self.topic(author, f"@{self.brand} this post is malformed")
        with self.lock:
            self.topics[topic_id]["posts"][0]["created_at"] = "not a time"
        return topic_id

    def whisper(self, topic_id: int, author: str, raw: str) -> None:
        with self.lock:
            post = self._add_post(topic_id, author, raw, None, post_type=4, notify=False)
            self._notify(2, post)

    def delete(self, topic_id: int, post_number: int) -> None:
        with self.lock:
            for post in self.topics[topic_id]["posts"]:
                if post["post_number"] == post_number:
                    post["deleted_at"] = iso(self.now)

    def _add_post(
        self, topic_id: int, author: str, raw: str, reply_to: int | None, *, post_type: int = 1, notify: bool = True
    ) -> dict[str, Any]:
        topic = self.topics[topic_id]
        self.now += 10
        post_id = next(self._post_ids)
        post = {
            "id": post_id,
            "username": author,
            "name": author.title(),
            "user_id": sum(map(ord, author)),
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "cooked": f"<p>{raw}</p>",
            "raw": raw,
            "post_number": len(topic["posts"]) + 1,
            "post_type": post_type,
            "reply_to_post_number": reply_to,
            "topic_id": topic_id,
            "topic_slug": topic["slug"],
            "post_url": f"/t/{topic['slug']}/{topic_id}/{len(topic['posts']) + 1}",
            "version": 1,
            "deleted_at": None,
        }
        topic["posts"].append(post)
        self.posts[post_id] = post
        if notify and author != self.brand:
            parent = next((p for p in topic["posts"] if p["post_number"] == reply_to), None)
            if topic["archetype"] == "private_message":
                self._notify(6, post)
            elif re.search(rf"@{self.brand}\b", raw):
                self._notify(1, post)
            elif parent is not None and parent["username"] == self.brand:
                self._notify(2, post)
            elif topic["category_id"] in self.watched_categories:
                self._notify(17 if post["post_number"] == 1 else 9, post)
        return post

    def _notify(self, kind: int, post: dict[str, Any]) -> None:
        self.notifications.append(
            {
                "id": next(self._notification_ids),
                "notification_type": kind,
                "read": False,
                "created_at": post["created_at"],
                "topic_id": post["topic_id"],
                "post_number": post["post_number"],
                "slug": post["topic_slug"],
                "data": {"original_post_id": post["id"], "display_username": post["username"]},
            }
        )

    def other_notification(self) -> None:
        """A badge notification (type 12): not a message."""
        with self.lock:
            self.notifications.append({"id": next(self._notification_ids), "notification_type": 12, "data": {}})

    # -- routes --------------------------------------------------------------------------------------

    def _authorised(self, request: RecordedRequest) -> bool:
        headers = request.headers
        key = headers.get("user-api-key")
        if key == self.user_api_key:
            return True
        if key is not None and key in self.issued:
            # A client id header, when sent, must be the one the key was issued to.
            return headers.get("user-api-client-id", self.issued[key]) == self.issued[key]
        return headers.get("api-key") == self.api_key and headers.get("api-username") == self.brand

    def _user_api_key_new(self, request: RecordedRequest) -> Answer:
        query = {name: values[0] for name, values in request.query.items()}
        self.key_requests.append(query)
        required = ("application_name", "client_id", "scopes", "public_key", "nonce")
        if any(not query.get(name) for name in required) or query.get("padding", "oaep") != "oaep":
            return Answer(400, {"errors": ["param is missing or the value is empty"]})
        if not set(query["scopes"].split(",")) <= self.allowed_scopes or self.refuse_redirect:
            return Answer(
                403, body=b"<html>Sorry, you don't have access to that.</html>", headers={"Content-Type": "text/html"}
            )
        redirect = query.get("auth_redirect", "")
        joiner = "&" if "?" in redirect else "?"
        if not self.approve:
            return Answer(302, {}, {"Location": redirect})
        key = secrets.token_hex(16)
        self.issued[key] = query["client_id"]
        nonce = "forged" if self.tamper_nonce else query["nonce"]
        plain = json.dumps({"key": key, "nonce": nonce, "push": False, "api": 4}).encode()
        public = serialization.load_pem_public_key(query["public_key"].encode())
        if self.garble_payload:
            public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        if query.get("padding") == "oaep" and not self.ignore_padding:
            pad: padding.AsymmetricPadding = padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None
            )
        else:
            pad = padding.PKCS1v15()
        # Ruby's Base64.encode64 breaks lines, and CGI.escape encodes them: the client must cope.
        payload = base64.encodebytes(public.encrypt(plain, pad)).decode("ascii")
        return Answer(302, {}, {"Location": f"{redirect}{joiner}payload={quote_plus(payload)}"})

    def route(self, request: RecordedRequest) -> Answer:
        if request.path == "/user-api-key/new":
            return self._user_api_key_new(request)
        if not self._authorised(request):
            return Answer(
                403,
                {
                    "errors": [
                        "You are not permitted to view the requested resource. The API username or key is invalid."
                    ],
                    "error_type": "invalid_access",
                },
            )
        path = request.path
        if path == "/session/current.json":
            return Answer(200, {"current_user": {"id": 1, "username": self.brand, "name": "Brand Support"}})
        if path == "/notifications.json":
            limit = min(60, int(first(request.query, "limit", "60")))
            offset = int(first(request.query, "offset", "0"))
            entries = sorted(self.notifications, key=lambda n: n["id"], reverse=True)
            return Answer(
                200,
                {
                    "notifications": entries[offset : offset + limit],
                    "total_rows_notifications": len(entries),
                    "load_more_notifications": f"/notifications?offset={offset + limit}&username={self.brand}",
                },
            )
        if match := re.fullmatch(r"/posts/(\d+)\.json", path):
            post = self.posts.get(int(match.group(1)))
            return Answer(200, post) if post else Answer(404, {"errors": ["not found"], "error_type": "not_found"})
        if match := re.fullmatch(r"/posts/by_number/(\d+)/(\d+)\.json", path):
            topic = self.topics.get(int(match.group(1)), {"posts": []})
            post = next((p for p in topic["posts"] if p["post_number"] == int(match.group(2))), None)
            return Answer(200, post) if post else Answer(404, {"errors": ["not found"], "error_type": "not_found"})
        if match := re.fullmatch(r"/t/(\d+)\.json", path):
            found = self.topics.get(int(match.group(1)))
            if found is None:
                return Answer(404, {"errors": ["not found"], "error_type": "not_found"})
            visible = [p for p in found["posts"] if p["post_type"] != 4]
            return Answer(200, {"id": found["id"], "archetype": found["archetype"], "post_stream": {"posts": visible}})
        if path == "/user_actions.json":
            return self._user_actions(request)
        if path == "/posts.json" and request.method == "POST":
            return self._create(request.json())
        return Answer(404, {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"})

    def _user_actions(self, request: RecordedRequest) -> Answer:
        """A user's activity, newest first, 30 an offset page; ``filter=5``: their replies (posts after a topic's
        first), each with a short ``excerpt`` of its cooked text as the real list gives."""
        username = first(request.query, "username")
        offset = int(first(request.query, "offset", "0"))
        wanted = {int(f) for f in first(request.query, "filter", "4,5").split(",")}
        entries = []
        for post in sorted(self.posts.values(), key=lambda p: p["id"], reverse=True):
            action = 4 if post["post_number"] == 1 else 5
            if post["username"] != username or action not in wanted or post["deleted_at"] is not None:
                continue
            entries.append(
                {
                    "action_type": action,
                    "created_at": post["created_at"],
                    "excerpt": post["cooked"][3:-4][:300],
                    "post_id": post["id"],
                    "post_number": post["post_number"],
                    "reply_to_post_number": post["reply_to_post_number"],
                    "slug": post["topic_slug"],
                    "topic_id": post["topic_id"],
                    "username": post["username"],
                }
            )
        return Answer(200, {"user_actions": entries[offset : offset + 30]})

    def _create(self, body: dict[str, Any]) -> Answer:
        self.created.append(body)
        topic = self.topics.get(body.get("topic_id", -1))
        if topic is None:
            return Answer(404, {"errors": ["The requested URL or resource could not be found."]})
        raw = body.get("raw", "")
        if len(raw) < 20:
            return Answer(422, {"action": "create_post", "errors": ["Body is too short (minimum is 20 characters)"]})
        if self.require_approval:
            return Answer(200, {"action": "enqueued", "pending_post": {"id": 9001, "raw": raw}, "pending_count": 1})
        post = self._add_post(topic["id"], self.brand, raw, body.get("reply_to_post_number"), notify=False)
        return Answer(200, post)
