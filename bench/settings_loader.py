"""Start-up cost of the settings: the hand-written loader against a pydantic-settings twin of the same sections.

    python bench/settings_loader.py --samples 20

The twin is generated from `gateway.settings.sections` (same fields, types, `Literal`s, defaults, descriptions; one
`BaseSettings` class per section) into a temporary directory. Each sample is a fresh interpreter that first imports
pydantic and FastAPI (as the app does), then measures the CPU (`time.process_time`) of importing the settings and
loading them once from the environment. Prints the median and the minimum of each.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

from gateway.settings import SECTION_TYPES  # noqa: E402

CODE = {
    "hand-written (gateway.settings)": "from gateway.settings import Settings; Settings.from_env()",
    "pydantic-settings twin": "import pyd_settings; pyd_settings.from_env()",
}
WRAP = "import time, pydantic, fastapi; t = time.process_time(); {code}; print((time.process_time() - t) * 1000)"


def twin_source() -> str:
    lines = ["from typing import Literal", "from pydantic import Field",
             "from pydantic_settings import BaseSettings, SettingsConfigDict", "",
             "CONFIG = SettingsConfigDict(env_file='.env', extra='ignore', frozen=True)", ""]
    for kind in SECTION_TYPES.values():
        hints = typing.get_type_hints(kind)
        lines += [f"class {kind.__name__}(BaseSettings):", "    model_config = CONFIG"]
        for spec in dataclasses.fields(kind):
            hint = hints[spec.name]
            shown = repr(hint).replace("typing.", "") if typing.get_origin(hint) is typing.Literal else hint.__name__
            hidden = ", repr=False" if spec.metadata.get("secret") else ""
            lines.append(f"    {spec.name}: {shown} = Field({spec.default!r}, "
                         f"description={spec.metadata['doc']!r}{hidden})")
        lines.append("")
    names = ", ".join(kind.__name__ for kind in SECTION_TYPES.values())
    lines += [f"SECTIONS = [{names}]", "", "def from_env():", "    return [kind() for kind in SECTIONS]"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    (folder / "pyd_settings.py").write_text(twin_source(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT), str(ROOT / "functions")])}
    figures: dict[str, list[float]] = {name: [] for name in CODE}
    for _ in range(args.samples):
        for name, code in CODE.items():
            result = subprocess.run([sys.executable, "-c", WRAP.format(code=code)], capture_output=True, text=True,
                                    cwd=folder, env=env, check=True)
            figures[name].append(float(result.stdout))
    for name, values in figures.items():
        print(f"{name:34s} median {statistics.median(values):6.1f} ms  min {min(values):6.1f} ms  n={len(values)}")


if __name__ == "__main__":
    main()
