"""Storage service settings, read from the environment once at start-up."""

import socket
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance_name() -> str:
    return socket.gethostname()


class StorageSettings(BaseSettings):
    """Settings of one storage instance; see README.md for the table."""

    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True)

    instance_name: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        default_factory=_default_instance_name
    )
    data_bytes: Annotated[int, Field(ge=64, le=1_048_576)] = 512
    enable_fault_injection: bool = False
