"""The function's config (``wasi:config@0.2.0-rc.1``): the manifest's
``config = { key = "value" }``, secrets resolved::

    from gust import config

    ttl = int(config.get("token_ttl") or "3600")
"""

from typing import Dict, Optional

from componentize_py_types import Err
from wit_world.imports import wasi_config_store as store


class ConfigError(Exception):
    """The config could not be read."""


def get(key: str, default: Optional[str] = None) -> Optional[str]:
    """The value of ``key``, or ``default`` when it is not set."""
    try:
        value = store.get(key)
    except Err as e:
        raise ConfigError(str(e.value)) from None
    return default if value is None else value


def get_all() -> Dict[str, str]:
    """Every key and value."""
    try:
        return dict(store.get_all())
    except Err as e:
        raise ConfigError(str(e.value)) from None
