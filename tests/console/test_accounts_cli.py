"""`care-console accounts …` against a fake forum: the secret comes from standard input only."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

import main
from console.cli.accounts import run_accounts_command
from console.ports import MemorySecretStore
from tests.fakes.clock import FakeClock
from tests.fakes.discourse_server import FakeDiscourseServer


def run(argv: list[str], data_dir: Path, secrets: MemorySecretStore, stdin: str = "") -> tuple[int, str, str]:
    args: argparse.Namespace = main.build_parser().parse_args(["--data-dir", str(data_dir), *argv])
    out, err = io.StringIO(), io.StringIO()
    code = run_accounts_command(
        args, data_dir=data_dir, secrets=secrets, clock=FakeClock(), stdin=io.StringIO(stdin), out=out, err=err
    )
    return code, out.getvalue(), err.getvalue()


def test_add_list_verify_remove(tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    with FakeDiscourseServer() as forum:
        code, _, err = run(
            ["accounts", "add", "discourse", "--base-url", forum.base_url, "--handle", "brand"], tmp_path, secrets
        )
        assert code == 2 and "standard input" in err
        code, _, err = run(
            ["accounts", "add", "discourse", "--base-url", forum.base_url, "--handle", "brand", "--token-stdin"],
            tmp_path,
            secrets,
            stdin="wrong-key\n",
        )
        assert code == 1 and "not accepted" in err
        code, out, _ = run(
            ["accounts", "add", "discourse", "--base-url", forum.base_url, "--handle", "brand", "--token-stdin"],
            tmp_path,
            secrets,
            stdin="admin-key-1\n",
        )
        assert code == 0 and "added account 1: discourse @brand" in out
        code, out, _ = run(["accounts", "list"], tmp_path, secrets)
        assert code == 0 and "discourse\t@brand" in out and "admin-key-1" not in out
        code, out, _ = run(["accounts", "verify", "discourse:brand"], tmp_path, secrets)
        assert code == 0 and "signed in as @brand" in out
        code, _, err = run(["accounts", "verify", "nobody"], tmp_path, secrets)
        assert code == 1 and "No account" in err
        code, out, _ = run(["accounts", "remove", "1"], tmp_path, secrets)
        assert code == 0 and "removed account 1" in out
    assert secrets.get("discourse:1") is None
    for path in tmp_path.iterdir():  # the database, its WAL and backups never hold the key
        assert not path.is_file() or b"admin-key-1" not in path.read_bytes()


def test_secret_is_never_an_argument() -> None:
    with pytest.raises(SystemExit):
        main.build_parser().parse_args(["accounts", "add", "bluesky", "--token", "abc"])
