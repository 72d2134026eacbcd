"""`python -m bench`: run the benchmark (see `python -m bench --help`)."""

import argparse
import os
import sys

from toolkit.gateways import FILES_VARIABLE, GatewayFileError

# The targets are fixed when bench.settings is imported, so --gateway-file is read first, by
# argparse too (the full parser, bench/cli.py, accepts the same abbreviations of it).
_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--gateway-file", action="append", default=[])
files = [*_early.parse_known_args()[0].gateway_file, os.environ.get(FILES_VARIABLE, "")]
os.environ[FILES_VARIABLE] = os.pathsep.join(f for f in files if f)
try:
    from bench.cli import main
except GatewayFileError as error:
    print(f"bench: {error}", file=sys.stderr)
    raise SystemExit(2) from None

raise SystemExit(main())
