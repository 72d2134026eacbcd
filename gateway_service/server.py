"""`serve()`: what `python -m gateway_service` runs, from settings to the exit status.

The settings are read and checked first (one line and exit status 2 when one is wrong); then the
supervisor (gateway_service/supervisor.py) runs the workers and the control process until SIGTERM
or SIGINT.
"""

import sys

from gateway_service.cpus import available_cpus
from gateway_service.logs import EventLog
from gateway_service.settings import SettingsError, load_settings
from gateway_service.supervisor import REUSEPORT, Supervisor


def serve(host: str, port: int, workers: int | None = None, listen: str = REUSEPORT) -> int:
    """Run the gateway on `host:port`; the exit status (0 after a graceful shutdown)."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"gateway_service: {error}", file=sys.stderr)
        return 2
    count = workers or settings.workers or available_cpus()
    log = EventLog(fmt=settings.log_format)
    return Supervisor(settings, host, port, count, log, listen).run()
