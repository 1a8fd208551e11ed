"""What the app leaves until after its first paint: the OS keyring, and library parts it never uses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import main
from console.cli import common
from console.lean_imports import hidden
from console.ports import MemorySecretStore, SecretStore, SystemClock


def test_the_keyring_is_opened_on_first_use_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[SecretStore] = []

    def make_secret_store() -> tuple[SecretStore, str | None]:
        opened.append(MemorySecretStore())
        return opened[-1], "No OS keyring is available"

    monkeypatch.setattr(common, "make_secret_store", make_secret_store)
    args = main.build_parser().parse_args(["--data-dir", str(tmp_path), "--sandbox"])
    runtime = common.open_app_runtime(args, SystemClock(), demo=False)
    try:
        assert opened == []
        runtime.secrets.set("mastodon:9", "token-1")
        assert len(opened) == 1 and opened[0].get("mastodon:9") == "token-1"
        assert common.secret_backend(runtime.secrets) is opened[0]
        assert len(opened) == 1
    finally:
        asyncio.run(runtime.aclose())


def test_hidden_modules_cannot_be_imported_inside_the_block_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "care_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "care_probe_module", raising=False)
    with hidden("care_probe_module"), pytest.raises(ImportError):
        import care_probe_module
    import care_probe_module

    assert care_probe_module.VALUE == 1
    with hidden("care_probe_module"):  # already imported: left alone
        assert sys.modules["care_probe_module"] is care_probe_module


def test_numpy_waits_until_needed_and_still_works() -> None:
    code = (
        "import sys, main, httpx, sqlite_utils\n"
        "assert 'numpy' not in sys.modules, 'imported at start'\n"
        "import numpy\n"
        "print(int(numpy.arange(4).sum()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(main.__file__).parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "6"
