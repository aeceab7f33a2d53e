"""The import layers of docs/architecture.md hold (`lint-imports`), and a lower layer importing a higher one breaks
them: the contracts in pyproject.toml are not vacuous."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{source_root}{os.pathsep}{source_root / 'functions'}"}
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
    return subprocess.run([*command, "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def copy_tree(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "static", "data")
    shutil.copytree(ROOT / "kiro_core", tmp_path / "kiro_core", ignore=ignore)
    shutil.copytree(ROOT / "functions" / "gateway", tmp_path / "functions" / "gateway", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold() -> None:
    result = lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_them(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    settings = tree / "functions" / "gateway" / "settings" / "__init__.py"
    settings.write_text(settings.read_text(encoding="utf-8") + "\nfrom gateway.app import create_app  # noqa\n",
                        encoding="utf-8")
    result = lint_imports(tree, tree)
    assert result.returncode == 1
    assert "gateway.settings is not allowed to import gateway.app" in result.stdout


def test_kiro_core_importing_the_app_breaks_them(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    tokens = tree / "kiro_core" / "tokens.py"
    tokens.write_text(tokens.read_text(encoding="utf-8") + "\nimport httpx  # noqa\n", encoding="utf-8")
    result = lint_imports(tree, tree)
    assert result.returncode == 1
    assert "kiro_core.tokens -> httpx" in result.stdout
