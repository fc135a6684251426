"""Lines in gust's log (``wasi:logging``), tagged with the function and
request: ``log.info("cache miss")``. ``print`` writes the function's
stdout, which gust logs when the invocation ends."""

from wit_world.imports import logging as _logging

_Level = _logging.Level


def _log(level: "_logging.Level", message: str, context: str) -> None:
    _logging.log(level, context, str(message))


def trace(message: str, context: str = "") -> None:
    _log(_Level.TRACE, message, context)


def debug(message: str, context: str = "") -> None:
    _log(_Level.DEBUG, message, context)


def info(message: str, context: str = "") -> None:
    _log(_Level.INFO, message, context)


def warn(message: str, context: str = "") -> None:
    _log(_Level.WARN, message, context)


def error(message: str, context: str = "") -> None:
    _log(_Level.ERROR, message, context)


def critical(message: str, context: str = "") -> None:
    _log(_Level.CRITICAL, message, context)
