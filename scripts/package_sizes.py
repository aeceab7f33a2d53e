"""Print the zipped and unpacked sizes of what `sam build` produced: the layer and each function.

Why: Lambda limits the unpacked function plus its layers to 250 MB and a direct zip upload to 50 MB, and the size
of what Lambda downloads and unpacks shows up in every cold start. `sam deploy` zips each build directory; this zips
them the same way (deflate, in memory) so the numbers match what is uploaded, within a few kilobytes.

Usage: python3 scripts/package_sizes.py [BUILD_DIR]      (default .aws-sam/build; `make package-sizes` builds first)
Prints a table, then one JSON line for scripts and tests.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

UNPACKED_LIMIT = 250 * 1024 * 1024  # function + all layers, unzipped
UPLOAD_LIMIT = 50 * 1024 * 1024  # one zip uploaded directly (sam deploy goes through S3, but layers count alike)


def zipped_size(directory: Path) -> tuple[int, int, int]:
    """(zipped bytes, unpacked bytes, files) of `directory`, zipped as SAM does (deflate, relative paths)."""
    buffer = io.BytesIO()
    unpacked = files = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
                unpacked += path.stat().st_size
                files += 1
    return buffer.getbuffer().nbytes, unpacked, files


def artifacts(build: Path) -> dict[str, Path]:
    """The build's artifact directories by logical id (each directory beside the built template.yaml)."""
    if not (build / "template.yaml").is_file():
        raise SystemExit(f"{build} is not a sam build directory (no template.yaml): run `sam build` first")
    return {p.name: p for p in sorted(build.iterdir()) if p.is_dir()}


def mb(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MB"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    build = Path(args[0] if args else ".aws-sam/build")
    report: dict[str, dict[str, int]] = {}
    for name, directory in artifacts(build).items():
        zipped, unpacked, files = zipped_size(directory)
        report[name] = {"zipped": zipped, "unpacked": unpacked, "files": files}
    width = max(len(name) for name in report) if report else 10
    print(f"{'artifact':<{width}}  {'zipped':>10}  {'unpacked':>10}  {'files':>6}")
    for name, sizes in report.items():
        print(f"{name:<{width}}  {mb(sizes['zipped']):>10}  {mb(sizes['unpacked']):>10}  {sizes['files']:>6}")
    layers = sum(s["unpacked"] for n, s in report.items() if n.endswith("Layer"))
    functions = {n: s for n, s in report.items() if not n.endswith("Layer")}
    largest = max((s["unpacked"] for s in functions.values()), default=0)
    print(f"largest function + layers unpacked: {mb(largest + layers)} of Lambda's 250 MB")
    print(json.dumps({"artifacts": report, "unpacked_limit": UNPACKED_LIMIT, "upload_limit": UPLOAD_LIMIT}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
