"""A fake OAuth 2 authorization server on loopback: consent redirects, PKCE S256 checks, token issuing."""

from __future__ import annotations

import base64
import hashlib
import itertools
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, first


class FakeAuthServer(FakeChannelServer):
    """``/authorize`` answers as if the user consented (or ``deny``); ``/token`` checks code and verifier."""

    def __init__(self, *, client_id: str = "client-abc") -> None:
        super().__init__()
        self.client_id = client_id
        self.deny = False
        self.tamper_state = False
        self._codes = itertools.count(1)
        self.pending: dict[str, dict[str, str]] = {}
        self.authorize_queries: list[dict[str, str]] = []

    def route(self, request: RecordedRequest) -> Answer:
        if request.path == "/authorize":
            query = {key: values[0] for key, values in request.query.items()}
            self.authorize_queries.append(query)
            state = "forged" if self.tamper_state else query.get("state", "")
            if self.deny:
                answer = {"error": "access_denied", "state": state}
            else:
                code = f"code-{next(self._codes)}"
                self.pending[code] = query
                answer = {"code": code, "state": state}
            return Answer(302, {}, {"Location": f"{query['redirect_uri']}?{urlencode(answer)}"})
        if request.path == "/token":
            form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
            issued = self.pending.pop(form.get("code", ""), None)
            if issued is None or form.get("client_id") != self.client_id:
                return Answer(400, {"error": "invalid_grant", "error_description": "bad code"})
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if challenge != issued["code_challenge"] or form.get("redirect_uri") != issued["redirect_uri"]:
                return Answer(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
            body: dict[str, Any] = {
                "access_token": "access-1",
                "refresh_token": "refresh-1",
                "expires_in": 7200,
                "scope": issued.get("scope", ""),
                "token_type": "bearer",
            }
            return Answer(200, body)
        return Answer(404, {"error": first(request.query, "x") or "not found"})
