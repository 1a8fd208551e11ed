"""The reference AT Protocol network (PLC, PDS, AppView from ``@atproto/dev-env``) for the Bluesky e2e tests.

:class:`ReferenceNetwork` runs ``start.mjs`` beside this file with the Node.js that ``install.sh`` put into
``node_modules`` (the dev-env needs Node 22), reads the service URLs it prints, and stops it by closing its
stdin. :class:`Customer` is a plain XRPC client of the PDS for what customers (and the brand's own set-up)
do: create accounts, post, reply, quote, delete, block, make and revoke app passwords.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx

HERE = Path(__file__).resolve().parent
START_SCRIPT = HERE / "start.mjs"
INSTALL_SCRIPT = HERE / "install.sh"
#: Written by install.sh when node_modules matches package-lock.json.
STAMP = HERE / "node_modules" / ".care-console-installed"
START_TIMEOUT = 120.0


class NetworkUnavailable(RuntimeError):
    """The dev-env is not installed here (no Node.js, or ``make e2e-deps`` never ran)."""


def node_binary() -> Path | None:
    """The Node 22 binary the dev-env was installed with (``node-linux-<arch>`` from the npm registry)."""
    for arch in ("x64", "arm64"):
        candidate = HERE / "node_modules" / f"node-linux-{arch}" / "bin" / "node"
        if candidate.is_file():
            return candidate
    return None


def installed_problem() -> str | None:
    """Why the network cannot start here, or None when it can."""
    if shutil.which("npm") is None and not STAMP.exists():
        return "npm is not installed, so the Bluesky reference server (@atproto/dev-env) cannot be installed"
    if not STAMP.exists() or node_binary() is None:
        return "the Bluesky reference server is not installed: run `make e2e-deps` (about three minutes, once)"
    return None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReferenceNetwork:
    """One running dev-env TestNetwork; use as a context manager (stopped and its schemas dropped on exit)."""

    def __init__(self, *, postgres_url: str | None = None, redis_host: str | None = None) -> None:
        self._postgres_url = postgres_url or os.environ.get(
            "DB_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        )
        self._redis_host = redis_host or os.environ.get("REDIS_HOST", "127.0.0.1:6379")
        # Letters and underscores only (the dev-env puts it into schema names unquoted).
        self.schema = "care_console_" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
        self._process: subprocess.Popen[str] | None = None
        self._stderr_reader: threading.Thread | None = None
        self._stderr: list[str] = []
        self.pds_url = self.appview_url = self.plc_url = self.control_url = ""
        self.schemas: list[str] = []
        self._control = httpx.Client(trust_env=False, timeout=httpx.Timeout(60.0))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        node = node_binary()
        if node is None:
            raise NetworkUnavailable(installed_problem() or "no Node.js binary in node_modules")
        env = {
            **os.environ,
            "DB_POSTGRES_URL": self._postgres_url,
            "REDIS_HOST": self._redis_host,
            "E2E_SCHEMA": self.schema,
            "NODE_NO_WARNINGS": "1",
        }
        self._process = subprocess.Popen(
            [str(node), str(START_SCRIPT)],
            cwd=HERE,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(
                f"the Bluesky reference network did not start within {START_TIMEOUT:.0f} s:\n" + self.stderr()
            )
        urls = json.loads(line[0])
        self.pds_url, self.appview_url = urls["pds"], urls["appview"]
        self.plc_url, self.control_url = urls["plc"], urls["control"]
        self.schemas = list(urls["schemas"])

    def _readline(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout.readline()

    def _drain_stderr(self) -> None:
        process = self._process
        if process is None or process.stderr is None:
            return
        for text in process.stderr:
            self._stderr.append(text)
            del self._stderr[:-200]

    def stderr(self) -> str:
        return "".join(self._stderr[-60:])

    def stop(self) -> None:
        """Close stdin (the script stops the services and drops its schemas); kill it if it hangs."""
        self._control.close()
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def process_all(self) -> None:
        """Let the AppView index everything the PDS has (a real network does this by itself, a little later)."""
        response = self._control.post(f"{self.control_url}/process")
        response.raise_for_status()

    def process_until_notified(self, customer: Customer, uris: list[str], *, rounds: int = 20) -> None:
        """``process_all`` until the AppView lists a notification of ``customer`` for each of ``uris``: a busy
        AppView can need more than one pass before a reply's notification is written (seen in CI)."""
        wanted, seen = set(uris), set[str]()
        for _ in range(rounds):
            self.process_all()
            out = customer.call("GET", "app.bsky.notification.listNotifications", params={"limit": 100})
            seen = {str(n["uri"]) for n in out["notifications"]}
            if wanted <= seen:
                return
        raise AssertionError(f"the AppView never notified {customer.handle} of {sorted(wanted - seen)}")

    def expired_access_jwt(self, did: str) -> str:
        """An app-password access JWT for ``did``, signed by the PDS, that expired an hour ago."""
        response = self._control.post(f"{self.control_url}/expired-access", json={"did": did})
        response.raise_for_status()
        return str(response.json()["accessJwt"])


class XrpcError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


@dataclass
class Customer:
    """An account on the reference PDS, driven over plain XRPC as a Bluesky client would."""

    network: ReferenceNetwork
    handle: str
    password: str
    did: str = ""
    access: str = ""
    client: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False, timeout=30.0))

    @classmethod
    def create(cls, network: ReferenceNetwork, handle: str) -> Customer:
        customer = cls(network, handle, "pw-" + secrets.token_hex(8))
        body = {"handle": handle, "email": f"{handle}@mail.test", "password": customer.password}
        session = customer.call("POST", "com.atproto.server.createAccount", body=body, auth=False)
        customer.did, customer.access = session["did"], session["accessJwt"]
        return customer

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        nsid: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        body: Any = None,
        auth: bool = True,
        appview: bool = False,
    ) -> Any:
        headers = {"authorization": f"Bearer {self.access}"} if auth else {}
        base = self.network.appview_url if appview else self.network.pds_url
        response = self.client.request(method, f"{base}/xrpc/{nsid}", params=params, json=body, headers=headers)
        payload = response.json() if response.content else {}
        if response.is_error:
            raise XrpcError(response.status_code, payload.get("error", ""), payload.get("message", ""))
        return payload

    def create_record(self, collection: str, record: dict[str, Any], *, rkey: str | None = None) -> dict[str, str]:
        body: dict[str, Any] = {"repo": self.did, "collection": collection, "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        out = self.call("POST", "com.atproto.repo.createRecord", body=body)
        return {"uri": out["uri"], "cid": out["cid"]}

    def post(
        self,
        text: str,
        *,
        at: float,
        mention: Customer | None = None,
        reply_to: dict[str, Any] | None = None,
        quote: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Post ``text`` (createdAt ``at``); ``@handle`` of ``mention`` gets a facet; returns {uri, cid}.

        ``reply_to`` is ``{"root": ref, "parent": ref}``; ``quote`` the strong ref of a quoted post.
        """
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso(at)}
        if mention is not None:
            tag = f"@{mention.handle}".encode()
            start = text.encode().index(tag)
            record["facets"] = [
                {
                    "index": {"byteStart": start, "byteEnd": start + len(tag)},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": mention.did}],
                }
            ]
        if reply_to is not None:
            record["reply"] = reply_to
        if quote is not None:
            record["embed"] = {"$type": "app.bsky.embed.record", "record": quote}
        return self.create_record("app.bsky.feed.post", record)

    def delete(self, uri: str) -> None:
        did, collection, rkey = uri.removeprefix("at://").split("/")
        self.call("POST", "com.atproto.repo.deleteRecord", body={"repo": did, "collection": collection, "rkey": rkey})

    def block(self, other: Customer, *, at: float) -> None:
        record = {"$type": "app.bsky.graph.block", "subject": other.did, "createdAt": iso(at)}
        self.create_record("app.bsky.graph.block", record)

    def app_password(self, name: str) -> str:
        out = self.call("POST", "com.atproto.server.createAppPassword", body={"name": name})
        return str(out["password"])

    def revoke_app_password(self, name: str) -> None:
        self.call("POST", "com.atproto.server.revokeAppPassword", body={"name": name})

    def records(self, collection: str = "app.bsky.feed.post") -> list[dict[str, Any]]:
        out = self.call(
            "GET", "com.atproto.repo.listRecords", params={"repo": self.did, "collection": collection, "limit": 100}
        )
        return list(out["records"])

    def thread(self, uri: str) -> dict[str, Any]:
        """``getPostThread`` through the PDS (which proxies to the AppView), as this account sees it."""
        return dict(self.call("GET", "app.bsky.feed.getPostThread", params={"uri": uri, "depth": 10}))
