"""``care-console accounts …``: list, add (secret from standard input only), verify and remove accounts by script."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import httpx

from console.channels import CHANNELS, ChannelKind
from console.cli.common import data_dir_of, make_secret_store, redacting
from console.cli.outbox import AccountOutbox, account_outbox
from console.ports import Clock, SecretStore, SystemClock
from console.wording import count
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from storage.db import DB_FILENAME, close_database, open_database
from storage.lock import InstanceLock
from storage.replies import ReplyRepo
from storage.rows import Health

if TYPE_CHECKING:
    from console.accounts.service import AccountService

__all__ = ["add_parser", "run", "run_accounts_command"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare the ``accounts`` subcommand and its actions."""
    accounts = sub.add_parser("accounts", help="list, add, verify or remove channel accounts")
    actions = accounts.add_subparsers(dest="accounts_command", required=True)
    actions.add_parser("list", help="list the accounts and their health")
    add = actions.add_parser("add", help="add an account; the secret is read from standard input")
    add.add_argument("kind", choices=[k.value for k in ChannelKind if k is not ChannelKind.X])
    add.add_argument("--base-url", default="", help="server address (default: the channel's usual one)")
    add.add_argument("--handle", default="", help="login handle / username")
    add.add_argument(
        "--token-stdin", action="store_true", help="read the token, app password or API key from standard input"
    )
    verify = actions.add_parser("verify", help="check an account's credential now")
    verify.add_argument("name", help="account id, handle or kind:handle")
    remove = actions.add_parser("remove", help="remove an account and forget its credential")
    remove.add_argument("name", help="account id, handle or kind:handle")
    remove.add_argument("--delete-items", action="store_true", help="also delete its messages (default: keep them)")


async def _run(
    args: argparse.Namespace,
    service: AccountService,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
    *,
    outbox: Callable[[int], AccountOutbox],
    now: float,
) -> int:
    command = args.accounts_command
    if command == "list":
        views = service.list()
        if not views:
            print("no accounts (the app runs on the sandbox)", file=out)
        for view in views:
            state = "enabled" if view.enabled else "disabled"
            reason = f" ({view.health_reason})" if view.health_reason else ""
            health = f"{view.health.value}{reason}"
            replies = outbox(view.id)
            if not replies.clear:
                # Syncing may work while replies wait on a 429 or failed: "ok" alone would hide them.
                health = replies.sentence(now) if view.health is Health.OK else f"{health} · {replies.sentence(now)}"
            print(
                f"{view.id}\t{view.kind}\t@{view.handle}\t{view.base_url}\t{state}\t{health}"
                f"\t{count(view.items, 'item')}",
                file=out,
            )
        return 0
    if command == "add":
        kind = ChannelKind(args.kind)
        secret = ""
        if kind is not ChannelKind.MANUAL:
            if not args.token_stdin:
                print("The secret is read only from standard input: add --token-stdin and pipe it in.", file=err)
                return 2
            secret = stdin.readline().strip()
        base_url = args.base_url or CHANNELS[kind].default_base_url
        view = await service.add(kind, handle=args.handle, base_url=base_url, secret=secret)
        print(f"added account {view.id}: {view.kind} @{view.handle} ({view.display_name})", file=out)
        if service.keyring_warning:
            print(service.keyring_warning, file=err)
        return 0
    view = service.find(args.name)
    if command == "verify":
        identity = await service.verify(view.id)
        print(f"account {view.id}: ok, signed in as @{identity.handle} ({identity.display_name})", file=out)
        return 0
    if command == "remove":
        deleted = service.remove(view.id, delete_items=args.delete_items)
        kept = "" if args.delete_items else f", its {count(view.items, 'item')} kept"
        print(f"removed account {view.id} (@{view.handle}){kept}; {count(deleted, 'item')} deleted", file=out)
        return 0
    raise AssertionError(command)  # pragma: no cover - argparse restricts the choices


def run(args: argparse.Namespace) -> int:
    """Run one ``accounts`` action with the OS keyring (or a session-only store, said in a warning)."""
    secrets, warning = make_secret_store()
    return run_accounts_command(
        args,
        data_dir=data_dir_of(args),
        secrets=redacting(args, secrets),
        clock=SystemClock(),
        stdin=sys.stdin,
        out=sys.stdout,
        err=sys.stderr,
        keyring_warning=warning,
    )


def run_accounts_command(
    args: argparse.Namespace,
    *,
    data_dir: Path,
    secrets: SecretStore,
    clock: Clock,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
    keyring_warning: str | None = None,
) -> int:
    """Run one ``accounts`` action against the data directory (takes the instance lock).

    Returns:
        The exit code: 0 ok, 1 the action failed (message on ``err``), 2 bad usage.
    """
    from console.accounts.service import AccountError, AccountService  # here: main.py imports this module at app start
    from console.channels.http import tls_context

    lock = InstanceLock(data_dir)
    lock.acquire()
    try:
        db = open_database(data_dir / DB_FILENAME)
        try:

            async def go() -> int:
                async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0), verify=tls_context()) as client:
                    service = AccountService(
                        AccountRepo(db), AccountAdmin(db), secrets, clock, client, keyring_warning=keyring_warning
                    )
                    try:
                        return await _run(
                            args,
                            service,
                            stdin,
                            out,
                            err,
                            outbox=lambda account_id: account_outbox(ReplyRepo(db), account_id),
                            now=clock.now(),
                        )
                    except AccountError as exc:
                        print(str(exc), file=err)
                        return 1

            return asyncio.run(go())
        finally:
            close_database(db)
    finally:
        lock.release()
