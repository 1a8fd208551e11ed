"""A fake Graph API for one Page on loopback: feed, comments (cursor paging), Messenger conversations, sends."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, bearer, first
from tests.fakes.http_server import Outgoing

PAGE = "19292868552"
VERSION = "/v25.0"


def fb_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> Answer:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Fake"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Answer(status, {"error": error})


class FakeFacebookServer(FakeChannelServer):
    def __init__(self, *, token: str = "page-token-1", now: float = 1_767_225_600.0) -> None:
        super().__init__()
        self.token = token
        self._ids = itertools.count(1000)
        self.posts: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.convos: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self.now = now
        self.window_closed = False
        self.published: list[dict[str, Any]] = []  # posts the Page published through the API, with their id
        self.can_publish = True  # the token has pages_manage_posts
        self.lose_published_answers = 0  # POST /{page}/feed publishes, then closes without answering

    def post(self) -> str:
        with self.lock:
            self.now += 60
            post_id = f"{PAGE}_{next(self._ids)}"
            self.posts[post_id] = {"id": post_id, "created_time": self.now, "updated_time": self.now, "comments": []}
            return post_id

    def comment(self, post_id: str, name: str, text: str, *, parent: str | None = None, page: bool = False) -> str:
        with self.lock:
            self.now += 30
            comment_id = f"{post_id.split('_')[1]}_{next(self._ids)}"
            author = {"id": PAGE, "name": "Brand"} if page else {"id": f"{sum(map(ord, name))}", "name": name}
            entry: dict[str, Any] = {
                "id": comment_id,
                "message": text,
                "from": author,
                "created_time": fb_time(self.now),
                "permalink_url": f"https://www.facebook.com/{post_id}?comment_id={comment_id}",
            }
            if parent:
                entry["parent"] = {"id": parent}
            self.posts[post_id]["comments"].append(entry)
            self.posts[post_id]["updated_time"] = self.now
            self.comments[comment_id] = entry
            return comment_id

    def malformed(self, post_id: str, name: str) -> str:
        """A comment on ``post_id`` with no readable ``created_time``; returns the comment id."""
        comment_id = self.comment(post_id, name, "this comment is malformed")
        with self.lock:
            self.comments[comment_id]["created_time"] = "not a time"
        return comment_id

    def message(self, psid: str, name: str, text: str, *, from_page: bool = False) -> str:
        with self.lock:
            self.now += 30
            convo = self.convos.setdefault(psid, {"id": f"t_{psid}", "messages": [], "name": name})
            message_id = f"m_{next(self._ids)}"
            sender = {"id": PAGE, "name": "Brand"} if from_page else {"id": psid, "name": name}
            convo["messages"].append(
                {"id": message_id, "message": text, "from": sender, "created_time": fb_time(self.now)}
            )
            convo["updated_time"] = self.now
            return message_id

    def _answer(self, request: RecordedRequest) -> Outgoing:
        answer = super()._answer(request)
        if answer is not None and request.method == "POST" and request.path.endswith("/feed") and answer[0] == 200:
            with self.lock:
                if self.lose_published_answers > 0:
                    self.lose_published_answers -= 1
                    return None  # published, but the client never hears so
        return answer

    def route(self, request: RecordedRequest) -> Answer:
        if bearer(request) != self.token:
            return graph_error(400, 190, "Error validating access token: Session has expired", 463)
        path = request.path.removeprefix(VERSION)
        query = request.query
        if path == "/me":
            return Answer(200, {"id": PAGE, "name": "Brand Page"})
        if path == f"/{PAGE}/feed" and request.method == "POST":
            if not self.can_publish:
                return graph_error(403, 200, "(#200) Requires pages_manage_posts permission to manage the object")
            message = request.json().get("message", "")
            if not message:
                return graph_error(400, 100, "(#100) Missing message or attachment.")
            self.now += 1
            post_id = f"{PAGE}_{next(self._ids)}"
            self.posts[post_id] = {"id": post_id, "created_time": self.now, "updated_time": self.now, "comments": []}
            self.published.append({"id": post_id, "message": message})
            return Answer(200, {"id": post_id})
        if path == f"/{PAGE}/feed":
            posts = sorted(self.posts.values(), key=lambda p: p["updated_time"], reverse=True)
            data = [
                {"id": p["id"], "created_time": fb_time(p["created_time"]), "updated_time": fb_time(p["updated_time"])}
                for p in posts
            ]
            return Answer(200, {"data": data[: int(first(query, "limit", "25"))]})
        if path.endswith("/comments") and request.method == "GET":
            post = self.posts[path.split("/")[1]]
            ordered = list(reversed(post["comments"]))
            size = int(first(query, "limit", "100"))
            offset = int(first(query, "after", "0") or 0)
            body: dict[str, Any] = {"data": ordered[offset : offset + size]}
            if offset + size < len(ordered):
                body["paging"] = {
                    "cursors": {"after": str(offset + size)},
                    "next": f"{self.base_url}{VERSION}{path}?limit={size}&after={offset + size}&filter=stream",
                }
            return Answer(200, body)
        if path.endswith("/comments") and request.method == "POST":
            target = path.split("/")[1]
            if target not in self.comments:
                return graph_error(400, 100, "Unsupported post request. Object does not exist")
            self.sent.append({"comment_on": target, **request.json()})
            return Answer(200, {"id": f"{target.split('_')[0]}_{next(self._ids)}"})
        if path == f"/{PAGE}/conversations":
            convos = sorted(self.convos.values(), key=lambda c: c["updated_time"], reverse=True)
            data = [
                {
                    "id": c["id"],
                    "updated_time": fb_time(c["updated_time"]),
                    "link": f"/{PAGE}/inbox/{c['id']}",
                    "messages": {"data": list(reversed(c["messages"]))[:20]},
                }
                for c in convos
            ]
            return Answer(200, {"data": data})
        if path == f"/{PAGE}/messages" and request.method == "POST":
            if self.window_closed:
                return graph_error(400, 10, "(#10) This message is sent outside of allowed window.", 2018278)
            body = request.json()
            self.sent.append(body)
            return Answer(200, {"recipient_id": body["recipient"]["id"], "message_id": f"m_{next(self._ids)}"})
        object_id = path.strip("/")
        if object_id in self.comments:
            return Answer(200, self.comments[object_id])
        for convo in self.convos.values():
            for message in convo["messages"]:
                if message["id"] == object_id:
                    return Answer(200, {"id": object_id, "from": message["from"]})
        return graph_error(404, 803, f"Some of the aliases you requested do not exist: {object_id}")
