"""A fake Bluesky PDS + AppView on loopback: sessions with rotating refresh JWTs, backward-paged notifications."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, bearer, first
from tests.fakes.http_server import Outgoing

#: app.bsky.feed.post is keyed by TIDs (atproto.com/specs/tid: 13 base32-sortable characters).
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, error: str, message: str = "") -> Answer:
    return Answer(status, {"error": error, "message": message or error})


class FakeBlueskyServer(FakeChannelServer):
    """One brand account; customers post mentions and replies with :meth:`post`.

    The notification cursor is time based like the AppView's: a page returns entries strictly older than
    the cursor's ``indexedAt``. Unlike the AppView, :meth:`post` notifies whatever ``reason`` it is given:
    the real one sends ``reply`` only to authors of the thread's posts, so a customer's follow-up in their
    own thread reaches the brand only when it mentions the brand (checked in tests/e2e/bluesky).
    :meth:`expire_access` makes every access JWT answer ``ExpiredToken``; a
    refresh revokes the refresh JWT it used (rotation), so a second refresh with the same token fails.
    """

    def __init__(
        self, *, handle: str = "brand.test", password: str = "app-pass-1234", did: str = "did:plc:brand"
    ) -> None:
        super().__init__()
        self.handle, self.password, self.did = handle, password, did
        self._ids = itertools.count(1)
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.refresh_calls = 0
        self.create_session_calls = 0
        self.notifications: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}  # uri -> {"cid", "value"}
        self.created: list[dict[str, Any]] = []  # createRecord bodies
        self.now = 1_767_225_600.0
        self.chat_allowed = True  # the app password was created with DM access
        self.chat_log: list[dict[str, Any]] = []
        self.convos: dict[str, list[dict[str, str]]] = {}
        self.sent_dms: list[dict[str, Any]] = []
        #: How createRecord answers a record key that is taken: the reference PDS fails with 500
        #: InternalServerError (bluesky-social/atproto#3718); other PDSes answer 409 RecordAlreadyExists.
        self.taken_key_status = 500
        self.lose_created_answers = 0  # createRecord stores the record, then closes without answering
        #: The chat service fails with this status (the reference PDS answers 500 when it has none to proxy to).
        self.chat_status: int | None = None
        self.deleted: set[str] = set()  # uris of posts their authors deleted
        self.blocked_by: set[str] = set()  # DIDs of authors who block the brand

    # -- test controls ----------------------------------------------------------------------------------

    def expire_access(self) -> None:
        with self.lock:
            self.access.clear()

    def post(
        self,
        author: str,
        text: str,
        *,
        reason: str = "mention",
        reply_to: str | None = None,
        at: float | None = None,
        indexed_delay: float = 0.0,
    ) -> str:
        """A customer posts; returns the post's at-uri. ``reply_to`` is the uri of the parent post."""
        with self.lock:
            n = next(self._ids)
            self.now = at if at is not None else self.now + 10
            did = f"did:plc:{author.split('.')[0]}"
            uri = f"at://{did}/app.bsky.feed.post/3k{n:011d}"
            cid = f"bafycid{n}"
            record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso(self.now)}
            if reply_to is not None:
                parent = self.records[reply_to]
                root = parent["value"].get("reply", {}).get("root") or {"uri": reply_to, "cid": parent["cid"]}
                record["reply"] = {"root": root, "parent": {"uri": reply_to, "cid": parent["cid"]}}
            self.records[uri] = {"cid": cid, "value": record, "author": {"did": did, "handle": author}}
            self.notifications.append(
                {
                    "uri": uri,
                    "cid": cid,
                    "author": {"did": did, "handle": author, "displayName": author.split(".")[0].title()},
                    "reason": reason,
                    "record": record,
                    "isRead": False,
                    "indexedAt": iso(self.now + indexed_delay),
                    "_t": self.now + indexed_delay,
                }
            )
            return uri

    def malformed(self, author: str) -> str:
        """A customer's mention whose notification has no readable ``indexedAt`` (the connector cannot place it);
        returns its at-uri."""
        uri = self.post(author, "@brand this notification is malformed")
        with self.lock:
            entry = next(n for n in self.notifications if n["uri"] == uri)
            entry["indexedAt"] = "not a time"
        return uri

    def delete(self, uri: str) -> None:
        """The author deletes the post: it leaves the notifications, getPosts and getPostThread say so."""
        with self.lock:
            self.deleted.add(uri)
            self.notifications = [n for n in self.notifications if n["uri"] != uri]

    def block_brand(self, author: str) -> None:
        """The customer blocks the brand: their notifications vanish and their posts show as ``#blockedPost``."""
        with self.lock:
            did = f"did:plc:{author.split('.')[0]}"
            self.blocked_by.add(did)
            self.notifications = [n for n in self.notifications if n["author"]["did"] != did]

    def like(self) -> None:
        """A notification that is not a message (must be ignored)."""
        with self.lock:
            self.now += 10
            self.notifications.append(
                {
                    "uri": f"at://did:plc:x/app.bsky.feed.like/{next(self._ids)}",
                    "cid": "c",
                    "author": {"did": "did:plc:x", "handle": "x.test"},
                    "reason": "like",
                    "record": {"$type": "app.bsky.feed.like"},
                    "indexedAt": iso(self.now),
                    "_t": self.now,
                }
            )

    def dm(self, author: str, text: str) -> str:
        """A customer writes a DM (one conversation per customer); returns the message id."""
        with self.lock:
            did = f"did:plc:{author.split('.')[0]}"
            convo = f"convo-{author.split('.')[0]}"
            self.convos.setdefault(convo, [
                {"did": self.did, "handle": self.handle},
                {"did": did, "handle": author, "displayName": author.split(".")[0].title()},
            ])  # fmt: skip
            return self._log_message(convo, did, text)

    def _log_message(self, convo: str, did: str, text: str) -> str:
        self.now += 10
        rev = f"{len(self.chat_log) + 1:08d}"
        message_id = f"msg{rev}"
        self.chat_log.append(
            {
                "$type": "chat.bsky.convo.defs#logCreateMessage",
                "rev": rev,
                "convoId": convo,
                "message": {
                    "$type": "chat.bsky.convo.defs#messageView",
                    "id": message_id,
                    "rev": rev,
                    "text": text,
                    "sender": {"did": did},
                    "sentAt": iso(self.now),
                },
            }
        )
        return message_id

    def _chat(self, nsid: str, request: RecordedRequest) -> Answer:
        if request.headers.get("atproto-proxy") != "did:web:api.bsky.chat#bsky_chat":
            return _error(400, "InvalidRequest", "missing atproto-proxy header")
        if not self.chat_allowed:
            return _error(401, "InvalidToken", "Bad token scope")
        if self.chat_status is not None:
            return _error(self.chat_status, "InternalServerError", "Internal Server Error")
        if nsid == "chat.bsky.convo.getLog":
            cursor = first(request.query, "cursor")
            logs = [entry for entry in self.chat_log if entry["rev"] > cursor][:20]
            out: dict[str, Any] = {"logs": logs}
            if logs:
                out["cursor"] = logs[-1]["rev"]
            elif cursor:
                out["cursor"] = cursor
            return Answer(200, out)
        if nsid == "chat.bsky.convo.getConvo":
            convo = first(request.query, "convoId")
            if convo not in self.convos:
                return _error(400, "InvalidConvo", "Convo not found")
            return Answer(200, {"convo": {"id": convo, "members": self.convos[convo], "rev": "1"}})
        if nsid == "chat.bsky.convo.sendMessage":
            body = request.json()
            if body.get("convoId") not in self.convos:
                return _error(400, "InvalidConvo", "Convo not found")
            self.sent_dms.append(body)
            message_id = self._log_message(body["convoId"], self.did, body["message"]["text"])
            return Answer(200, {"id": message_id, "rev": message_id[3:], "text": body["message"]["text"],
                                "sender": {"did": self.did}, "sentAt": iso(self.now)})  # fmt: skip
        return _error(501, "MethodNotImplemented", nsid)

    def post_as_brand(self, text: str, *, reply_to: str, at: float | None = None) -> str:
        """The brand answers from another app (not through this API's createRecord as the connector does);
        returns the post's at-uri."""
        with self.lock:
            n = next(self._ids)
            self.now = at if at is not None else self.now + 10
            uri = f"at://{self.did}/app.bsky.feed.post/3e{n:011d}"
            parent = self.records[reply_to]
            root = parent["value"].get("reply", {}).get("root") or {"uri": reply_to, "cid": parent["cid"]}
            record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso(self.now),
                      "reply": {"root": root, "parent": {"uri": reply_to, "cid": parent["cid"]}}}  # fmt: skip
            self.records[uri] = {
                "cid": f"bafyelse{n}",
                "value": record,
                "author": {"did": self.did, "handle": self.handle},
            }
            return uri

    def own_posts(self) -> list[str]:
        """The at-uris of the brand's own posts, in creation order."""
        with self.lock:
            return [uri for uri in self.records if uri.startswith(f"at://{self.did}/")]

    def _answer(self, request: RecordedRequest) -> Outgoing:
        answer = super()._answer(request)
        if answer is not None and request.path.endswith("createRecord") and answer[0] == 200:
            with self.lock:
                if self.lose_created_answers > 0:
                    self.lose_created_answers -= 1
                    return None  # written, but the client never hears so
        return answer

    # -- routes -------------------------------------------------------------------------------------------

    def _new_session(self) -> dict[str, str]:
        n = next(self._ids)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self.access.add(access)
        self.refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "did": self.did, "handle": self.handle}

    def route(self, request: RecordedRequest) -> Answer:
        nsid = request.path.removeprefix("/xrpc/")
        if nsid == "com.atproto.server.createSession":
            self.create_session_calls += 1
            body = request.json()
            if body.get("identifier") != self.handle or body.get("password") != self.password:
                return _error(401, "AuthenticationRequired", "Invalid identifier or password")
            return Answer(200, self._new_session())
        if nsid == "com.atproto.server.refreshSession":
            self.refresh_calls += 1
            token = bearer(request)
            if token not in self.refresh:
                return _error(400, "ExpiredToken", "Token has been revoked")
            self.refresh.discard(token)  # rotation: the old refresh JWT is revoked
            return Answer(200, self._new_session())
        token = bearer(request)
        if token not in self.access:
            return _error(400, "ExpiredToken", "Token has expired")
        if nsid.startswith("chat.bsky."):
            return self._chat(nsid, request)
        if nsid == "com.atproto.server.getSession":
            return Answer(200, {"did": self.did, "handle": self.handle})
        if nsid == "app.bsky.notification.listNotifications":
            return self._list(request)
        if nsid == "com.atproto.repo.getRecord":
            query = request.query
            uri = f"at://{first(query, 'repo')}/{first(query, 'collection')}/{first(query, 'rkey')}"
            record = self.records.get(uri)
            if record is None:
                return _error(400, "RecordNotFound", f"Could not locate record: {uri}")
            return Answer(200, {"uri": uri, "cid": record["cid"], "value": record["value"]})
        if nsid == "com.atproto.repo.createRecord":
            return self._create(request.json())
        if nsid == "app.bsky.feed.getPostThread":
            return self._post_thread(first(request.query, "uri"))
        if nsid == "app.bsky.feed.getAuthorFeed":
            return self._author_feed(request)
        if nsid == "app.bsky.feed.getPosts":
            uris = request.query.get("uris", [])
            return Answer(200, {"posts": [view for uri in uris if (view := self._view(uri)) is not None]})
        return _error(501, "MethodNotImplemented", nsid)

    def _list(self, request: RecordedRequest) -> Answer:
        reasons = set(request.query.get("reasons", [])) or None
        limit = int(first(request.query, "limit", "50"))
        cursor = first(request.query, "cursor")
        entries = sorted(self.notifications, key=lambda n: n["_t"], reverse=True)
        if reasons:
            entries = [n for n in entries if n["reason"] in reasons]
        if cursor:
            entries = [n for n in entries if n["_t"] < float(cursor)]
        page = entries[:limit]
        out: dict[str, Any] = {"notifications": [{k: v for k, v in n.items() if k != "_t"} for n in page]}
        if len(entries) > limit:
            out["cursor"] = repr(page[-1]["_t"])
        return Answer(200, out)

    def _author_feed(self, request: RecordedRequest) -> Answer:
        """The actor's own posts, newest first, paged back in time by a creation-time cursor (replies only with
        ``filter=posts_with_replies``, the AppView's default; reposts never, the fake has none)."""
        actor = first(request.query, "actor")
        limit = int(first(request.query, "limit", "50"))
        cursor = first(request.query, "cursor")
        with_replies = first(request.query, "filter", "posts_with_replies") == "posts_with_replies"
        mine = [
            (datetime.fromisoformat(record["value"]["createdAt"]).timestamp(), uri)
            for uri, record in self.records.items()
            if record["author"]["did"] == actor and uri not in self.deleted
            and (with_replies or "reply" not in record["value"])
        ]  # fmt: skip
        mine.sort(reverse=True)
        if cursor:
            mine = [(t, uri) for t, uri in mine if t < float(cursor)]
        page = mine[:limit]
        out: dict[str, Any] = {"feed": [{"post": self._view(uri)} for _t, uri in page]}
        if len(mine) > limit:
            out["cursor"] = repr(page[-1][0])
        return Answer(200, out)

    def _view(self, uri: str) -> dict[str, Any] | None:
        """A postView, or None when it is deleted, blocked or unknown (getPosts leaves those out)."""
        record = self.records.get(uri)
        if record is None or uri in self.deleted or record["author"]["did"] in self.blocked_by:
            return None
        return {"uri": uri, "cid": record["cid"], "author": record["author"], "record": record["value"],
                "indexedAt": record["value"]["createdAt"]}  # fmt: skip

    def _post_thread(self, uri: str) -> Answer:
        """As the reference AppView answers: 400 NotFound for a deleted post, ``#blockedPost`` for a block."""
        record = self.records.get(uri)
        if record is None or uri in self.deleted:
            return _error(400, "NotFound", f"Post not found: {uri}")
        did = record["author"]["did"]
        if did in self.blocked_by:
            blocked = {"$type": "app.bsky.feed.defs#blockedPost", "uri": uri, "blocked": True,
                       "author": {"did": did, "viewer": {"blockedBy": True}}}  # fmt: skip
            return Answer(200, {"thread": blocked})
        node: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self._view(uri), "replies": []}
        parent = record["value"].get("reply", {}).get("parent", {}).get("uri")
        if parent is not None and (view := self._view(parent)) is not None:
            node["parent"] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": view}
        return Answer(200, {"thread": node})

    def _create(self, body: dict[str, Any]) -> Answer:
        if body.get("repo") != self.did:
            return _error(400, "InvalidRequest", "repo does not match the session")
        record = body.get("record", {})
        reply = record.get("reply")
        if reply is not None:
            for key in ("root", "parent"):
                ref = reply.get(key, {})
                known = self.records.get(ref.get("uri", ""))
                if known is None or known["cid"] != ref.get("cid"):
                    return _error(400, "InvalidRequest", f"reply.{key} is not a valid strong ref")
        text = record.get("text", "")
        for facet in record.get("facets", []):
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            if not 0 <= start < end <= len(text.encode()):
                return _error(400, "InvalidRequest", "facet out of range")
        n = next(self._ids)
        rkey = body.get("rkey")
        if rkey is not None and (not isinstance(rkey, str) or not TID_RE.match(rkey)):
            return _error(400, "InvalidRequest", f"Invalid record key for app.bsky.feed.post: {rkey!r}")
        uri = f"at://{self.did}/app.bsky.feed.post/{rkey or f'3r{n:011d}'}"
        if uri in self.records:  # the repo's tree holds one value per key
            if self.taken_key_status == 409:
                return _error(409, "RecordAlreadyExists", f"Record already exists: {uri}")
            return _error(500, "InternalServerError", "Internal Server Error")
        cid = f"bafyreply{n}"
        self.records[uri] = {"cid": cid, "value": record, "author": {"did": self.did, "handle": self.handle}}
        self.created.append(json.loads(json.dumps(body)))
        return Answer(200, {"uri": uri, "cid": cid, "validationStatus": "valid"})
