"""Generate the Python stubs of ``collab.proto`` with grpcio-tools, or check them for drift.

python -m collab_server.rpc.codegen           # write collab_pb2.py, .pyi and collab_pb2_grpc.py
python -m collab_server.rpc.codegen --check   # exit 1 when the checked-in stubs differ
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parents[1]  # the directory that holds collab_server/
PROTO = PACKAGE_DIR / "collab.proto"
GENERATED = ("collab_pb2.py", "collab_pb2.pyi", "collab_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    """Run protoc (bundled with grpcio-tools) into ``out_dir`` (mirrors the package path)."""
    from grpc_tools import protoc  # a development dependency: imported only here

    import_root = str(Path(protoc.__file__).parent / "_proto")
    relative = PROTO.relative_to(ROOT)
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{ROOT}",
            f"-I{import_root}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(relative),
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed with {code}")


def drift() -> list[str]:
    """The generated files whose checked-in copy differs from a fresh generation."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        generate(out)
        fresh_dir = out / PROTO.parent.relative_to(ROOT)
        return [
            name
            for name in GENERATED
            if not (PACKAGE_DIR / name).is_file()
            or (fresh_dir / name).read_bytes() != (PACKAGE_DIR / name).read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        changed = drift()
        if changed:
            print(f"stale generated stubs: {', '.join(changed)}; run python -m collab_server.rpc.codegen")
            return 1
        print("generated stubs match collab.proto")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        generate(out)
        fresh_dir = out / PROTO.parent.relative_to(ROOT)
        for name in GENERATED:
            (PACKAGE_DIR / name).write_bytes((fresh_dir / name).read_bytes())
    print(f"wrote {', '.join(GENERATED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
