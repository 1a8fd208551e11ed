"""KeyringSecretStore under a real Secret Service (gnome-keyring in a private D-Bus session), where available."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_under_gnome_keyring(tmp_path: Path) -> None:
    missing = [tool for tool in ("dbus-run-session", "gnome-keyring-daemon") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no real Secret Service here: {', '.join(missing)} not installed")
    try:
        import secretstorage  # noqa: F401
    except ImportError:
        pytest.skip("no real Secret Service here: the secretstorage package is not installed")
    script = textwrap.dedent(
        """
        import keyring
        from keyring.backends import SecretService
        keyring.set_keyring(SecretService.Keyring())
        from storage.secrets import KeyringSecretStore
        store = KeyringSecretStore(service="care-console-test")
        assert store.usable()
        store.set("bluesky:1", "app-pass")
        assert store.get("bluesky:1") == "app-pass"
        store.delete("bluesky:1")
        assert store.get("bluesky:1") is None
        print("ok")
        """
    )
    (tmp_path / "check.py").write_text(script)
    shell = (
        "echo test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; "
        f"{sys.executable} {tmp_path / 'check.py'}"
    )
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", shell],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.stdout.strip().endswith("ok"), result.stderr
