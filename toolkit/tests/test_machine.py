import os
import platform
import sys

import pytest

from toolkit.machine import (
    NOT_AVAILABLE,
    command_output,
    describe_machine,
    package_version,
    tool_version,
)


def test_the_machine_is_this_one() -> None:
    machine = describe_machine()

    assert machine.nproc == os.cpu_count()
    assert machine.python == platform.python_version()
    assert machine.kernel == platform.release()
    assert machine.cpu_model
    assert machine.cpu_model != "unknown"
    assert machine.memory.endswith(" GiB")
    assert machine.summary == f"{machine.cpu_model}, {machine.nproc} cores, {machine.memory} RAM"


def test_package_versions_are_the_installed_ones() -> None:
    assert package_version("pytest") == pytest.__version__
    assert package_version("no-such-package-here") == "not installed"


def test_a_version_flag_is_read_whatever_its_exit_status() -> None:
    # wrk -v prints its version and exits 1.
    command = [sys.executable, "-c", "import sys; print('wrk 4.1.0'); print('x'); sys.exit(1)"]

    assert tool_version(*command) == "wrk 4.1.0"


def test_a_version_on_stderr_is_read() -> None:
    # nginx -v prints to stderr.
    command = [sys.executable, "-c", "import sys; sys.stderr.write('nginx version: 1.22\\n')"]

    assert tool_version(*command) == "nginx version: 1.22"


def test_a_missing_tool_is_not_available() -> None:
    assert tool_version("no-such-tool-here", "-v") == NOT_AVAILABLE
    assert command_output("no-such-tool-here") == NOT_AVAILABLE


def test_a_failing_command_is_not_available() -> None:
    assert command_output(sys.executable, "-c", "print('fatal'); raise SystemExit(128)") == (
        NOT_AVAILABLE
    )
    assert command_output(sys.executable, "-c", "print('abc1234')") == "abc1234"
