"""Which team this copy belongs to: ``TeamConfig`` in the settings, the password in the keyring.

The settings hold the team database's address without its password (``TeamDsn.display()``), the member's name
and uuid, and how new events are noticed. The password is in the SecretStore only, under a key naming the server
(``team:<host>:<port>:<db>:<user>``), so two teams on two servers never share one; it never enters settings, logs,
exports, a ``repr`` or an exception message.

Reading the config must stay cheap: ``open_runtime`` calls ``load_config`` at every start, solo included, so this
module never imports psycopg (``storage.team.connect`` is imported where a DSN is parsed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from console.ports import SecretStore
from storage.settings import Setting, SettingsRepo

if TYPE_CHECKING:
    from storage.team.connect import TeamDsn

__all__ = [
    "NOTIFY_MODES",
    "TEAM_DSN",
    "TEAM_MEMBER",
    "TEAM_MEMBER_UUID",
    "TEAM_NOTIFY",
    "TEAM_ROLE",
    "NotifyMode",
    "TeamConfig",
    "clear_config",
    "forget_password",
    "load_config",
    "password_key",
    "read_password",
    "save_config",
    "store_password",
]

NotifyMode = Literal["auto", "poll"]
#: ``auto``: LISTEN/NOTIFY, falling back to polling when notifications cannot work (a transaction-mode pooler);
#: ``poll``: always poll (chosen by hand for a pooler known to drop notifications).
NOTIFY_MODES: tuple[NotifyMode, ...] = ("auto", "poll")

#: The team database's address without password; empty = no team (solo).
TEAM_DSN = Setting("team.dsn", "", str)
TEAM_MEMBER = Setting("team.member", "", str)
TEAM_MEMBER_UUID = Setting("team.member_uuid", "", str)
TEAM_ROLE = Setting("team.role", "agent", str)
TEAM_NOTIFY = Setting("team.notify", "auto", str)


@dataclass(frozen=True, slots=True)
class TeamConfig:
    """This copy's team: where (no password), who, and how it listens. Safe to log and to show."""

    #: ``postgresql://user@host:port/db?…&schema=…`` (``TeamDsn.display()``), never with a password.
    dsn: str
    member: str
    member_uuid: str
    role: str = "agent"
    notify: NotifyMode = "auto"

    def parsed(self) -> TeamDsn:
        """The DSN as ``TeamDsn`` (imports psycopg: call it only when team mode starts)."""
        from storage.team.connect import TeamDsn

        return TeamDsn.parse(self.dsn)

    @property
    def schema(self) -> str:
        return self.parsed().schema

    @property
    def server(self) -> str:
        """``host:port/dbname`` for the health strip and ``team status``."""
        return self.parsed().server


def password_key(dsn: TeamDsn) -> str:
    """The keyring key of the password for ``dsn``'s login: ``team:<host>:<port>:<db>:<user>``."""
    return f"team:{dsn.host}:{dsn.port}:{dsn.dbname}:{dsn.user}"


def load_config(settings: SettingsRepo) -> TeamConfig | None:
    """The saved team, or None when this copy works solo (no psycopg import, a few settings reads)."""
    dsn = settings.get(TEAM_DSN)
    member = settings.get(TEAM_MEMBER)
    if not dsn or not member:
        return None
    notify = settings.get(TEAM_NOTIFY)
    mode: NotifyMode = "poll" if notify == "poll" else "auto"
    return TeamConfig(
        dsn=dsn,
        member=member,
        member_uuid=settings.get(TEAM_MEMBER_UUID),
        role=settings.get(TEAM_ROLE),
        notify=mode,
    )


def save_config(settings: SettingsRepo, config: TeamConfig) -> None:
    """Save ``config`` (the DSN must carry no password: ``TeamDsn.display()`` never does)."""
    settings.set(TEAM_MEMBER, config.member)
    settings.set(TEAM_MEMBER_UUID, config.member_uuid)
    settings.set(TEAM_ROLE, config.role)
    settings.set(TEAM_NOTIFY, config.notify)
    settings.set(TEAM_DSN, config.dsn)  # last: a half-saved config reads as solo


def clear_config(settings: SettingsRepo) -> None:
    """Forget the team (``team leave``): the copy works solo from the next start."""
    settings.set(TEAM_DSN, "")
    settings.set(TEAM_MEMBER_UUID, "")


def store_password(secrets: SecretStore, dsn: TeamDsn, password: str) -> None:
    secrets.set(password_key(dsn), password)


def read_password(secrets: SecretStore, dsn: TeamDsn) -> str | None:
    return secrets.get(password_key(dsn))


def forget_password(secrets: SecretStore, dsn: TeamDsn) -> None:
    secrets.delete(password_key(dsn))
