"""A fake YouTube Data API + Google token endpoint on loopback: comment threads, replies, quota, token refresh."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, bearer, first

CHANNEL = "UCbrand0000000000000000"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def google_error(status: int, reason: str, message: str) -> Answer:
    return Answer(
        status, {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}
    )


class FakeYouTubeServer(FakeChannelServer):
    """Threads on the brand channel's videos; ``replies`` in a thread listing hold at most 2 (like the API's subset)."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.threads: list[dict[str, Any]] = []  # newest last
        self.access: set[str] = {"access-0"}
        self.refresh_calls = 0
        self.quota_exceeded = False
        self.inserted: list[dict[str, Any]] = []
        self.now = 1_767_225_600.0

    def _comment(self, author: str, text: str, video: str, parent: str | None = None) -> dict[str, Any]:
        self.now += 30
        n = next(self._ids)
        comment_id = f"{parent}.r{n}" if parent else f"Ugz{n:06d}"
        snippet: dict[str, Any] = {
            "authorDisplayName": author,
            "authorChannelId": {"value": CHANNEL if author == "Brand" else f"UC{author.lower()}"},
            "textDisplay": text,
            "textOriginal": text,
            "publishedAt": iso(self.now),
            "updatedAt": iso(self.now),
        }
        if parent:
            snippet["parentId"] = parent
        else:
            snippet["videoId"] = video
        return {"kind": "youtube#comment", "id": comment_id, "snippet": snippet}

    def comment(self, author: str, text: str, *, video: str = "vid1") -> str:
        with self.lock:
            top = self._comment(author, text, video)
            self.threads.append({"id": top["id"], "video": video, "top": top, "replies": []})
            return str(top["id"])

    def malformed(self, author: str) -> str:
        """A comment thread whose top-level comment has no readable ``publishedAt``; returns the thread id."""
        thread_id = self.comment(author, "this comment is malformed")
        with self.lock:
            thread = next(t for t in self.threads if t["id"] == thread_id)
            thread["top"]["snippet"]["publishedAt"] = "not a time"
        return thread_id

    def reply(self, thread_id: str, author: str, text: str) -> str:
        with self.lock:
            thread = next(t for t in self.threads if t["id"] == thread_id)
            comment = self._comment(author, text, thread["video"], parent=thread_id)
            thread["replies"].append(comment)
            return str(comment["id"])

    def _thread_json(self, thread: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "youtube#commentThread",
            "id": thread["id"],
            "snippet": {
                "channelId": CHANNEL,
                "videoId": thread["video"],
                "topLevelComment": thread["top"],
                "canReply": True,
                "totalReplyCount": len(thread["replies"]),
                "isPublic": True,
            },
        }
        if thread["replies"]:
            body["replies"] = {"comments": list(reversed(thread["replies"]))[:2]}
        return body

    def route(self, request: RecordedRequest) -> Answer:
        if request.path == "/token":
            self.refresh_calls += 1
            form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
            if form.get("refresh_token") != "refresh-0" or form.get("grant_type") != "refresh_token":
                return Answer(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
            token = f"access-{self.refresh_calls}"
            self.access.add(token)
            return Answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
        if bearer(request) not in self.access:
            return google_error(401, "authError", "Invalid Credentials")
        if self.quota_exceeded:
            return google_error(
                403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota."
            )
        query = request.query
        if request.path == "/youtube/v3/channels":
            return Answer(200, {"items": [{"id": CHANNEL, "snippet": {"title": "Brand Channel"}}]})
        if request.path == "/youtube/v3/commentThreads":
            size = int(first(query, "maxResults", "20"))
            offset = int(first(query, "pageToken", "0") or 0)
            ordered = sorted(
                self.threads,
                key=lambda t: max(
                    [t["top"]["snippet"]["publishedAt"]] + [r["snippet"]["publishedAt"] for r in t["replies"]]
                ),
                reverse=True,
            )
            page = ordered[offset : offset + size]
            body: dict[str, Any] = {"items": [self._thread_json(t) for t in page]}
            if offset + size < len(ordered):
                body["nextPageToken"] = str(offset + size)
            return Answer(200, body)
        if request.path == "/youtube/v3/comments" and request.method == "GET":
            if first(query, "id"):
                thread = next((t for t in self.threads if t["id"] == first(query, "id")), None)
                return Answer(200, {"items": [thread["top"]] if thread else []})
            thread = next((t for t in self.threads if t["id"] == first(query, "parentId")), None)
            replies = thread["replies"] if thread else []
            size = int(first(query, "maxResults", "20"))
            offset = int(first(query, "pageToken", "0") or 0)
            body = {"items": replies[offset : offset + size]}
            if offset + size < len(replies):
                body["nextPageToken"] = str(offset + size)
            return Answer(200, body)
        if request.path == "/youtube/v3/comments" and request.method == "POST":
            snippet = request.json().get("snippet", {})
            thread = next((t for t in self.threads if t["id"] == snippet.get("parentId")), None)
            if thread is None:
                return google_error(404, "commentNotFound", "The comment could not be found.")
            if len(snippet.get("textOriginal", "")) > 10_000:
                return google_error(400, "commentTextTooLong", "The comment text is too long.")
            comment = self._comment("Brand", snippet["textOriginal"], thread["video"], parent=thread["id"])
            thread["replies"].append(comment)
            self.inserted.append(snippet)
            return Answer(200, comment)
        return google_error(404, "notFound", request.path)
