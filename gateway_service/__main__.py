"""The gateway's start command: `python -m gateway_service [--host H] [--port P] [--workers N]`.

Settings come from the environment (README.md, "Gateway"); a bad one stops the gateway with one
line on stderr and exit status 2. A supervisor process binds the port and runs the workers and
the health checks (gateway_service/supervisor.py); SIGTERM or SIGINT stops it gracefully, with
exit status 0.
"""

import argparse
from collections.abc import Sequence

from gateway_service import __version__
from gateway_service.settings import MAX_WORKERS


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_WORKERS}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway_service",
        description="Round-robin HTTP gateway over storage services. Settings are read from the "
        "environment (STORAGE_SERVICES is required); see README.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--workers",
        type=_workers,
        help="worker processes (default: the WORKERS setting, else the CPUs this process may use)",
    )
    parser.add_argument(
        "--listen",
        choices=("reuseport", "shared"),
        default="reuseport",
        help="how connections reach workers: a socket each with SO_REUSEPORT (default), or one "
        "socket they share (docs/performance.md compares them)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported after parsing, so --help answers without loading FastAPI.
    from gateway_service.server import serve

    raise SystemExit(serve(args.host, args.port, args.workers, args.listen))


if __name__ == "__main__":
    main()
