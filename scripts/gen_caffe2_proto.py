"""Regenerates backends/caffe2/native/caffe2_pb2.py (and .pyi) from caffe2.proto.

Run from anywhere: ``.venv/bin/python scripts/gen_caffe2_proto.py [--out DIR]``. Needs
grpcio-tools (the ``dev`` extra), whose bundled protoc makes the output independent of any system
protoc. ``--out`` writes elsewhere (tests use it to check that the committed bindings are current).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parents[1] / "backends" / "caffe2" / "native"

# protoc writes a guard that refuses protobuf runtimes older than protoc itself; the bindings use
# only the descriptor-builder API (protobuf >= 3.20), so the guard would just narrow the
# `protobuf>=4.25` that pyproject.toml promises.
_GUARD = re.compile(
    r"from google\.protobuf import runtime_version as _runtime_version\n"
    r"|_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_DIR, help="output directory")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)

    from grpc_tools import protoc  # imported late so that --help works without grpcio-tools

    args = [
        "protoc",
        f"--proto_path={PROTO_DIR}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        str(PROTO_DIR / "caffe2.proto"),
    ]
    status = protoc.main(args)
    if status != 0:
        print(f"protoc failed with status {status}", file=sys.stderr)
        return int(status)
    module = out / "caffe2_pb2.py"
    module.write_text(_GUARD.sub("", module.read_text()))
    print(f"wrote {module} and {module.with_suffix('.pyi')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
