"""`python -m bench`: run the benchmark (see `python -m bench --help`)."""

import os
import sys

from toolkit.gateways import FILES_VARIABLE, GatewayFileError


def _gateway_files(argv: list[str]) -> list[str]:
    """The --gateway-file values: the targets are known when bench.settings is imported."""
    files = []
    for index, arg in enumerate(argv):
        if arg == "--gateway-file" and index + 1 < len(argv):
            files.append(argv[index + 1])
        elif arg.startswith("--gateway-file="):
            files.append(arg.partition("=")[2])
    return files


files = [*_gateway_files(sys.argv[1:]), os.environ.get(FILES_VARIABLE, "")]
os.environ[FILES_VARIABLE] = os.pathsep.join(f for f in files if f)
try:
    from bench.cli import main
except GatewayFileError as error:
    print(f"bench: {error}", file=sys.stderr)
    raise SystemExit(2) from None

raise SystemExit(main())
