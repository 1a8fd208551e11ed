"""The one error hierarchy connectors raise; httpx exceptions never escape a connector (STYLE B3).

ChannelError
 ├── AuthExpired      the token was revoked or expired: the account turns red, sends wait
 ├── RateLimited      retry_at (epoch seconds) says when the channel will talk again
 ├── Transient        network trouble, 5xx, timeouts, malformed pages: retry with backoff
 │    ├── Unreachable  the host could not be reached at all (offline, DNS, refused, no answer)
 │    └── CertificateRefused  the server's TLS certificate is not trusted by the system's certificate store
 └── Permanent        the request itself is wrong (404 deleted, 422 invalid): do not retry
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.channels.base import RateLimitInfo


class ChannelError(Exception):
    """A channel call failed; ``str(err)`` is a sentence an agent can read."""

    #: The channel's request budget as the failed fetch left it, when the connector knows it (a 5xx while the
    #: budget is spent still waits for the reset); set by the connector's ``fetch_new``.
    rate_limit: RateLimitInfo | None = None


class AuthExpired(ChannelError):
    pass


class RateLimited(ChannelError):
    def __init__(self, message: str, *, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class Transient(ChannelError):
    pass


class Unreachable(Transient):
    """No connection to the host: when every channel says this, the app is offline."""


class CertificateRefused(Transient):
    """The server's TLS certificate was refused (checked against the system's certificate store).

    Not "offline": the network works, but this server (or a TLS-inspecting proxy in between) is not trusted.
    Retried like any transient failure, since installing the proxy's certificate fixes it without a restart.
    """


class Permanent(ChannelError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
