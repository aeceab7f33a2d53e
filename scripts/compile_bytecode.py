"""Byte-compile a built Lambda tree (layer or function) with the Lambda runtime's own Python.

Why: without `.pyc` files every cold start compiles the gateway and its dependencies from source (`import gateway.app`
takes ~760 ms instead of ~330 ms), and Lambda's /opt and /var/task are read-only, so nothing is ever cached.
Byte code is keyed by interpreter version (`__pycache__/x.cpython-312.pyc`) and magic number, so only the runtime's
exact minor version helps; the build host's own Python (3.11 in CI) does not.

The `.pyc` files are *unchecked hash-based* (PEP 552): the interpreter loads them without comparing the source's
time stamp or hash, so file times changed by zipping and unpacking never trigger a (failing) recompilation.
Code objects record the path the tree has on Lambda (`--prefix`, e.g. /opt/python), so tracebacks show real paths.

A missing interpreter fails the build with instructions. `KIRO_ALLOW_NO_BYTECODE=1` turns that into a loud warning
for throw-away builds; a release build should never set it.

Usage: python3 scripts/compile_bytecode.py TREE --python-version 3.12 --prefix /opt/python
       python3 scripts/compile_bytecode.py --check --python-version 3.12   (only find the interpreter)
Env:   BYTECODE_PYTHON (an interpreter to use; must be that version), KIRO_ALLOW_NO_BYTECODE
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ALLOW_ENV = "KIRO_ALLOW_NO_BYTECODE"
PYTHON_ENV = "BYTECODE_PYTHON"
_PROBE = "import sys, importlib.util as u; print(sys.implementation.cache_tag, u.MAGIC_NUMBER.hex())"


class NoInterpreter(Exception):
    """No interpreter of the runtime's version was found; the message says how to get one."""


def cache_tag(version: str) -> str:
    """`3.12` -> `cpython-312` (the name part of `__pycache__/x.cpython-312.pyc`)."""
    major, minor = version.split(".")[:2]
    return f"cpython-{major}{minor}"


def probe(interpreter: str) -> tuple[str, str] | None:
    """(cache tag, magic number in hex) of an interpreter, or None when it does not run (e.g. a pyenv shim of a
    version that is installed but not selected)."""
    try:
        result = subprocess.run([interpreter, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    if result.returncode != 0:
        return None
    parts = result.stdout.split()
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.parent.parent.name)
    return tuple(int(n) for n in numbers)


def candidates(version: str) -> list[str]:
    """Where a CPython of `version` usually lives, most specific first: $BYTECODE_PYTHON, `pythonX.Y` on PATH, the
    versions pyenv installed (newest patch first), uv's managed interpreters (found, never downloaded)."""
    found: list[str] = []
    explicit = os.environ.get(PYTHON_ENV, "")
    if explicit:
        return [explicit]  # an explicit choice is the only one: a wrong one must fail, not fall back
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        installed = Path(root).glob(f"versions/{version}.*/bin/python{version}")
        found.extend(str(p) for p in sorted(installed, key=_version_key, reverse=True))
    uv = shutil.which("uv")
    if uv:
        result = subprocess.run([uv, "python", "find", "--no-python-downloads", version],
                                capture_output=True, text=True, timeout=60, check=False)
        if result.returncode == 0 and result.stdout.strip():
            found.append(result.stdout.strip())
    return list(dict.fromkeys(found))


def find_interpreter(version: str) -> str:
    """An interpreter whose cache tag is the runtime's; raises NoInterpreter with what was tried and what to do."""
    wanted = cache_tag(version)
    tried: list[str] = []
    for candidate in candidates(version):
        answer = probe(candidate)
        if answer is not None and answer[0] == wanted:
            return candidate
        tried.append(f"{candidate} ({answer[0] if answer else 'does not run'})")
    raise NoInterpreter(
        f"No Python {version} to byte-compile the Lambda package for the python{version} runtime "
        f"(tried: {', '.join(tried) or 'nothing found'}).\n"
        f"Without byte code every cold start compiles the gateway from source (about twice as slow).\n"
        f"Get Python {version} and build again, for example:\n"
        f"  pyenv install {version}                      (then it is found under ~/.pyenv/versions)\n"
        f"  uv python install {version}                  (found through `uv python find`)\n"
        f"  brew install python@{version} / your distribution's python{version} package\n"
        f"or name it: {PYTHON_ENV}=/path/to/python{version} sam build\n"
        f"For a throw-away build only: {ALLOW_ENV}=1 sam build (slower cold starts)."
    )


def missing_bytecode(tree: Path, version: str) -> list[Path]:
    """Every `.py` under `tree` without its `__pycache__/<name>.<tag>.pyc`."""
    tag = cache_tag(version)
    return [py for py in sorted(tree.rglob("*.py"))
            if not (py.parent / "__pycache__" / f"{py.stem}.{tag}.pyc").is_file()]


def compile_tree(tree: Path, version: str, prefix: str) -> str:
    """Compile `tree` with the runtime's interpreter; returns the interpreter used. Raises NoInterpreter, or
    RuntimeError when a file does not compile (a package that ships code the runtime cannot even parse)."""
    interpreter = find_interpreter(version)
    command = [interpreter, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
               "-s", str(tree), "-p", prefix, str(tree)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    missing = missing_bytecode(tree, version)
    if result.returncode != 0 or missing:
        names = ", ".join(str(p.relative_to(tree)) for p in missing[:10])
        raise RuntimeError(f"compileall with {interpreter} failed (exit {result.returncode}); "
                           f"no byte code for {len(missing)} file(s): {names}\n{result.stdout}{result.stderr}")
    return interpreter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", type=Path, nargs="?", help="the built directory (e.g. $ARTIFACTS_DIR/python)")
    parser.add_argument("--python-version", required=True, help="the Lambda runtime's Python, e.g. 3.12")
    parser.add_argument("--prefix", help="where the tree lives on Lambda, e.g. /opt/python")
    parser.add_argument("--check", action="store_true", help="only find the interpreter and print it")
    args = parser.parse_args(argv)
    if not args.check and (args.tree is None or not args.prefix):
        parser.error("TREE and --prefix are required (unless --check)")
    try:
        if args.check:
            print(f"Python {args.python_version} for the byte code: {find_interpreter(args.python_version)}")
            return 0
        interpreter = compile_tree(args.tree, args.python_version, args.prefix)
    except NoInterpreter as problem:
        if os.environ.get(ALLOW_ENV) == "1":
            banner = "!" * 100
            print(f"{banner}\nWARNING: {ALLOW_ENV}=1, building WITHOUT byte code.\n{problem}\n{banner}",
                  file=sys.stderr)
            return 0
        print(f"ERROR: {problem}", file=sys.stderr)
        return 2
    except RuntimeError as problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    count = sum(1 for _ in args.tree.rglob(f"*.{cache_tag(args.python_version)}.pyc"))
    print(f"byte-compiled {count} modules in {args.tree} with {interpreter} (unchecked-hash, paths {args.prefix})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
