"""accessd's Python stubs, generated from `proto/` by grpcio-tools when first imported.

They are written to a temporary directory, removed when the process exits: nothing
generated is committed, so the stubs always follow the protos as they are.
"""

import atexit
import pathlib
import shutil
import subprocess
import sys
import tempfile


PROTO_ROOT = pathlib.Path(__file__).resolve().parents[3] / "proto"


def _generate() -> None:
    out = tempfile.mkdtemp(prefix="accessd-stubs-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ],
        capture_output=True,
        text=True,
    )
    if generated.returncode != 0:
        raise RuntimeError(
            f"grpc_tools.protoc failed on {PROTO_ROOT}:\n{generated.stdout}{generated.stderr}"
        )
    sys.path.insert(0, out)


_generate()

# The generated modules import each other as `accessd.v1.*`, found on the path just added.
from accessd.v1 import access_pb2, access_pb2_grpc  # noqa: E402
from accessd.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
