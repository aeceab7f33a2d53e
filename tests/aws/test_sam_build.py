"""`sam build` on this machine (no Docker, any Python 3): what it produces is what Lambda will run.

The layer is built by layers/kiro_core/Makefile with pip's cross-platform options, so its compiled parts
(pydantic-core, regex, uvloop, httptools) are Linux **aarch64** CPython 3.12 binaries whatever the build host is.

How honest each check is, by host:

* aarch64 host with CPython 3.12 (what Lambda runs): the subprocess imports `kiro_core.tokens` from the built layer
  alone (`PYTHONPATH=<layer>/python`), compiled parts included, and counts tokens.
* any other host (CI here is x86_64 / CPython 3.11): aarch64 cp312 extension modules cannot load, so instead the test
  (a) checks every extension module in the layer really is an ELF aarch64 cp312 binary, and (b) imports the layer's
  own copy of the pure-Python `kiro_core` (and its data file) with the host's regex and counts tokens. This proves
  the packaging of kiro_core and the tokenizer data; it cannot prove the aarch64 binaries run.

Byte code: the layer and the functions must ship `.pyc` files for the runtime's Python (cpython-312), unchecked-hash
(never recompiled on Lambda's read-only file systems). scripts/compile_bytecode.py writes them with a Python 3.12
found on the build machine, and fails the build when there is none; the check here needs that interpreter too (CI's
machines have it under pyenv; `make build-python` says which one is used).

Either way the count runs under an audit hook that refuses any socket connection or DNS lookup, with proxies pointing
at a closed port and an empty TIKTOKEN_CACHE_DIR: nothing can be downloaded at run time, and whatever tiktoken caches
there must be the shipped file itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType

import pytest

from tests.aws.samcli import REPO_ROOT, TEMPLATE, sam_binary, sam_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a first build downloads the wheels

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
EM_AARCH64 = 183
RUNTIME_PYTHON = "3.12"
RUNTIME_TAG = "cpython-312"
BUILT = ("KiroCoreLayer", "GatewayFunction", "GatewaySnapStartFunction", "BufferedFunction")
RUNS_LAMBDA_BINARIES = platform.machine().lower() in {"aarch64", "arm64"} and sys.version_info[:2] == (3, 12)

_NO_NETWORK = """
import sys
def _guard(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        raise RuntimeError(f"network access attempted: {event} {args!r}")
sys.addaudithook(_guard)
"""

_COUNT_TOKENS = _NO_NETWORK + """
import json, kiro_core, kiro_core.tokens as tokens
print(json.dumps({"kiro_core": kiro_core.__file__, "count": tokens.count_text("Hello, Lambda! héllo wörld"),
                  "claude": tokens.claude_tokens("def add(a, b):\\n    return a + b\\n")}))
"""

_HEALTH_EVENT = _NO_NETWORK + """
import json, sys, types, gateway, kiro_core
import gateway.lambda_handler as entry
event = json.loads(open(sys.argv[1]).read())
answer = entry.handler(event, types.SimpleNamespace(aws_request_id="build-test"))
print(json.dumps({"gateway": gateway.__file__, "kiro_core": kiro_core.__file__, "status": answer["statusCode"]}))
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `sam build` once into a temporary directory; returns the build directory."""
    root = tmp_path_factory.mktemp("sam")
    started = time.monotonic()
    result = subprocess.run(
        [sam_binary(), "build", "--template-file", str(TEMPLATE), "--build-dir", str(root / "build"),
         "--cache-dir", str(root / "cache")],
        capture_output=True, text=True, cwd=REPO_ROOT, env=sam_environment(), timeout=900,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert "Build Succeeded" in result.stdout + result.stderr
    print(f"\nsam build took {elapsed:.1f} s")
    return root / "build"


def _script(name: str) -> ModuleType:
    """A module of scripts/ (not a package) loaded by path."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def test_layer_holds_kiro_core_its_data_and_the_runtime_dependencies(build):
    python = build / "KiroCoreLayer" / "python"
    data = python / "kiro_core" / "data" / "cl100k_base.tiktoken"
    assert data.is_file()
    assert hashlib.sha256(data.read_bytes()).hexdigest() == CL100K_SHA256
    assert (python / "kiro_core" / "tokens.py").is_file()
    for package in ("fastapi", "pydantic", "pydantic_core", "httpx", "uvicorn", "mangum", "aws_lambda_powertools",
                    "regex", "orjson", "starlette"):
        assert (python / package / "__init__.py").is_file(), package
    # The gateway counts tokens without tiktoken (kiro_core.tokens): the layer ships what runs, nothing more.
    assert not (python / "tiktoken").exists() and not (python / "requests").exists()
    # The runtime provides boto3; a copy in the layer would only add size and version skew.
    assert not (python / "boto3").exists() and not (python / "botocore").exists()
    assert not (python / "bin").exists()
    assert not list(python.rglob("*.cpython-311.pyc")), "byte code of the build host's Python is useless on Lambda"


def test_layer_binaries_are_linux_aarch64_for_cpython_312(build):
    extensions = sorted((build / "KiroCoreLayer" / "python").rglob("*.so"))
    names = {p.name.split(".")[0] for p in extensions}
    assert {"_pydantic_core", "_regex"} <= names, names
    for extension in extensions:
        assert elf_machine(extension) == EM_AARCH64, extension
        assert "cpython-312-aarch64-linux-gnu" in extension.name or ".abi3." in extension.name, extension


def test_function_holds_only_the_gateway_package_and_run_sh(build):
    for name in ("GatewayFunction", "GatewaySnapStartFunction", "BufferedFunction"):
        function = build / name
        run_sh = function / "run.sh"
        assert run_sh.is_file() and os.access(run_sh, os.X_OK), name
        assert run_sh.read_text().startswith("#!/bin/bash")
        assert json.loads((function / "logging.json").read_text())["version"] == 1
        for module in ("app.py", "lambda_handler.py", "stores/secrets_manager.py", "stores/refresh_lease.py",
                       "stores/secret_document.py", "stores/aws_clients.py", "stores/dynamo_models.py",
                       "stores/factory.py", "observability.py"):
            assert (function / "gateway" / module).is_file(), (name, module)
        assert not (function / "kiro_core").exists(), "kiro_core belongs to the layer"
        stray = [p for p in function.rglob("*.pyc") if not p.name.endswith(f".{RUNTIME_TAG}.pyc")]
        assert not stray, stray[:5]
    built_template = (build / "template.yaml").read_text()
    assert "GatewayFunction" in built_template and "KiroCoreLayer" in built_template


def _trees(build: Path) -> dict[str, tuple[Path, str]]:
    """Each built Python tree and where it lives on Lambda."""
    trees = {"KiroCoreLayer": (build / "KiroCoreLayer" / "python", "/opt/python")}
    for name in BUILT[1:]:
        trees[name] = (build / name / "gateway", "/var/task/gateway")
    return trees


def test_every_module_ships_unchecked_byte_code_for_the_runtime_python(build):
    """Every .py of the layer and the functions has its cpython-312 .pyc: the 3.12 magic number, flags 0b01
    (hash-based, source never checked, so read-only /opt and /var/task never trigger a recompilation), and code
    objects naming the file where Lambda has it."""
    bytecode = _script("compile_bytecode")
    interpreter = bytecode.find_interpreter(RUNTIME_PYTHON)  # the build used it too; a missing one failed the build
    tag, magic = bytecode.probe(interpreter)
    assert tag == RUNTIME_TAG
    for name, (tree, prefix) in _trees(build).items():
        sources = sorted(tree.rglob("*.py"))
        assert len(sources) > (500 if name == "KiroCoreLayer" else 20), (name, len(sources))
        assert bytecode.missing_bytecode(tree, RUNTIME_PYTHON) == [], name
        for pyc in tree.rglob("*.pyc"):
            assert pyc.name.endswith(f".{RUNTIME_TAG}.pyc"), pyc  # no byte code of another interpreter
            header = pyc.read_bytes()[:16]
            assert header[:4].hex() == magic, pyc
            assert int.from_bytes(header[4:8], "little") == 0b01, pyc  # unchecked hash
        sample = tree / ("kiro_core/errors.py" if name == "KiroCoreLayer" else "app.py")
        shown = subprocess.run(
            [interpreter, "-I", "-c", "import marshal, sys; print(marshal.loads(open(sys.argv[1], 'rb').read()[16:])"
             ".co_filename)", str(sample.parent / "__pycache__" / f"{sample.stem}.{RUNTIME_TAG}.pyc")],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        assert shown == f"{prefix}/{sample.relative_to(tree).as_posix()}", (name, shown)


def test_runtime_python_loads_the_byte_code_without_reading_the_source(build, tmp_path):
    """Proof that the shipped .pyc is what runs: with every kiro_core source replaced by code that fails, the
    runtime's Python still imports the layer's pure-Python modules (unchecked hash-based byte code)."""
    bytecode = _script("compile_bytecode")
    interpreter = bytecode.find_interpreter(RUNTIME_PYTHON)
    copy = tmp_path / "layer" / "kiro_core"
    shutil.copytree(build / "KiroCoreLayer" / "python" / "kiro_core", copy)
    for source in copy.rglob("*.py"):
        source.write_text("raise ImportError('the source was read instead of the byte code')\n")
    result = subprocess.run(
        [interpreter, "-I", "-B", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import kiro_core.errors as e; "
         "print(e.ErrorKind.INTERNAL.name)", str(copy.parent)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "INTERNAL"


def test_a_build_without_the_runtime_python_fails_and_says_how_to_get_it(tmp_path):
    """A release build never ships without byte code by accident: no interpreter of the runtime's version (here an
    impossible 3.99 stands in for a machine without 3.12) fails the function build with instructions."""
    command = ["make", "--no-print-directory", "-f", str(REPO_ROOT / "functions" / "Makefile"), "build-GatewayFunction",
               f"ARTIFACTS_DIR={tmp_path / 'out'}", "RUNTIME_PYTHON=3.99"]
    env = {k: v for k, v in os.environ.items() if k not in ("KIRO_ALLOW_NO_BYTECODE", "BYTECODE_PYTHON")}
    failed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert failed.returncode != 0
    assert "No Python 3.99 to byte-compile" in failed.stderr
    assert "pyenv install 3.99" in failed.stderr and "BYTECODE_PYTHON=" in failed.stderr
    # A named interpreter of the wrong version is refused too (no silent fallback to another one).
    wrong = subprocess.run([*command[:-1], "RUNTIME_PYTHON=3.12"], capture_output=True, text=True, timeout=120,
                           env=env | {"BYTECODE_PYTHON": sys.executable if sys.version_info[:2] != (3, 12)
                                      else "/nonexistent/python3.12"}, cwd=tmp_path)
    assert wrong.returncode != 0 and "No Python 3.12 to byte-compile" in wrong.stderr
    # The explicit escape hatch for throw-away builds is loud, not silent.
    allowed = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env=env | {"KIRO_ALLOW_NO_BYTECODE": "1"}, cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert "WARNING: KIRO_ALLOW_NO_BYTECODE=1, building WITHOUT byte code" in allowed.stderr


def test_package_sizes_are_reported_and_within_lambda_limits(build):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "package_sizes.py"), str(build)],
                            capture_output=True, text=True, timeout=300, check=True)
    print("\n" + result.stdout)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    sizes = report["artifacts"]
    assert set(BUILT) <= set(sizes)
    layer = sizes["KiroCoreLayer"]
    for name in BUILT[1:]:
        assert sizes[name]["zipped"] < 1024 * 1024, name  # the function is only the gateway package
        assert sizes[name]["unpacked"] + layer["unpacked"] < report["unpacked_limit"], name
    assert layer["zipped"] < report["upload_limit"]
    assert "zipped" in result.stdout and "KiroCoreLayer" in result.stdout


def _pure_kiro_core(build: Path, tmp_path: Path) -> Path:
    """A directory holding only the layer's kiro_core (a link), for hosts that cannot load the aarch64 binaries."""
    pure = tmp_path / "pure"
    pure.mkdir()
    (pure / "kiro_core").symlink_to(build / "KiroCoreLayer" / "python" / "kiro_core", target_is_directory=True)
    return pure


def _offline_env(tmp_path: Path, pythonpath: list[Path]) -> dict[str, str]:
    cache = tmp_path / "empty-tiktoken-cache"
    cache.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the host's Python must not add its own .pyc files to the build
        "TIKTOKEN_CACHE_DIR": str(cache),
        "HTTPS_PROXY": "http://127.0.0.1:9",  # belt and braces: a download attempt could not go anywhere either
        "HTTP_PROXY": "http://127.0.0.1:9",
    }


def test_layer_tokenizer_counts_tokens_offline(build, tmp_path):
    layer = build / "KiroCoreLayer" / "python"
    path = [layer] if RUNS_LAMBDA_BINARIES else [_pure_kiro_core(build, tmp_path)]
    result = subprocess.run(
        [sys.executable, "-c", _COUNT_TOKENS], capture_output=True, text=True, timeout=120,
        env=_offline_env(tmp_path, path), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["count"] > 0 and answer["claude"] > 0
    origin = Path(answer["kiro_core"])
    assert origin.parent.name == "kiro_core" and str(origin).startswith(str(path[0])), origin
    # tiktoken may keep a cached copy of the file it read; it can only be the shipped file, byte for byte.
    for cached in Path(_offline_env(tmp_path, path)["TIKTOKEN_CACHE_DIR"]).iterdir():
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == CL100K_SHA256, cached


def test_built_function_serves_a_sample_event(build, tmp_path):
    """The built function directory is complete: the Mangum handler answers /health from it (plus the layer's
    kiro_core; third-party packages from the host unless this host can run the layer's binaries)."""
    function = build / "BufferedFunction"
    layer = build / "KiroCoreLayer" / "python"
    path = [function, layer] if RUNS_LAMBDA_BINARIES else [function, _pure_kiro_core(build, tmp_path)]
    result = subprocess.run(
        [sys.executable, "-c", _HEALTH_EVENT, str(REPO_ROOT / "events" / "api-health.json")],
        capture_output=True, text=True, timeout=120, env=_offline_env(tmp_path, path), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert answer["gateway"].startswith(str(function)), answer  # the built copy, not the source tree
    assert answer["kiro_core"].startswith(str(path[1])), answer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_sh_starts_uvicorn_the_way_the_web_adapter_expects(build, tmp_path):
    """The built run.sh, as LWA's /opt/bootstrap runs it (LAMBDA_TASK_ROOT, AWS_LWA_PORT), answers the readiness
    path /health on 127.0.0.1 and logs JSON lines. Third-party packages come from the host unless it can run the
    layer's aarch64 binaries (see the module docstring)."""
    function = build / "GatewayFunction"
    layer = build / "KiroCoreLayer" / "python"
    extra = [layer] if RUNS_LAMBDA_BINARIES else [_pure_kiro_core(build, tmp_path)]
    port = _free_port()
    env = _offline_env(tmp_path, extra) | {"LAMBDA_TASK_ROOT": str(function), "AWS_LWA_PORT": str(port),
                                          "PYTHONUNBUFFERED": "1"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])  # `python` = this interpreter
    env.pop("HTTP_PROXY")
    env.pop("HTTPS_PROXY")
    server = subprocess.Popen(["/bin/bash", str(function / "run.sh")], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        answer = None
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with direct.open(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    answer = (response.status, json.loads(response.read()))
                    break
            except OSError:
                time.sleep(0.2)
        assert answer is not None, server.stderr.read() if server.poll() is not None else "no answer in 60 s"
        assert answer[0] == 200 and answer[1]["status"] == "healthy"
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "uvicorn logged nothing"
    for line in lines:
        record = json.loads(line)  # every line is a JSON record (logging.json)
        assert {"time", "level", "message"} <= set(record)
