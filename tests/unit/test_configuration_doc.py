"""docs/configuration.md is generated from the settings and checked in: it must match them, and every setting must
have a description and a section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_config_doc.py"


def test_every_setting_is_described() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert "settings without documentation" not in result.stderr, result.stderr


def test_the_checked_in_page_is_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_page_names_every_variable_with_its_default() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in ("SERVER_HOST", "SERVER_PORT", "SQLITE_READONLY", "MAX_RETRY_DELAY", "FAKE_REASONING_BUDGET_CAP"):
        assert f"| `{name}` |" in page
    assert f"| `SERVER_PORT` | `{Settings().server.server_port}` |" in page
    assert "| `EXTRA` |" not in page
