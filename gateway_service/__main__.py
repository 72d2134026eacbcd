"""The gateway's start command: `python -m gateway_service [--host H] [--port P] [--version]`.

Settings come from the environment (README.md, "Gateway"); a bad one stops the gateway with one
line on stderr and exit status 2. Runs uvicorn with uvloop and the protections in server.py:
a deadline for request heads, a cap on client connections, the soft open-file limit raised.
"""

import argparse
from collections.abc import Sequence

from gateway_service import __version__


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway_service",
        description="Round-robin HTTP gateway over storage services. Settings are read from the "
        "environment (STORAGE_SERVICES is required); see README.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after parsing, so --help answers without loading FastAPI and uvicorn.
    from gateway_service.app import create_app_from_env
    from gateway_service.server import serve

    serve(create_app_from_env(), args.host, args.port)


if __name__ == "__main__":
    main()
