"""Strict readers of the environment: a misspelled or invalid value stops the start with the variable named.

Secrets may also come from ``<NAME>_FILE`` (a path whose content is the value), as container orchestrators
mount them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, else the content of the file named by ``<NAME>_FILE``, else ``default``."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return default


def env_bool(name: str, default: bool) -> bool:
    """Only ``1``/``0``/``true``/``false`` (any case) are accepted; anything else is a start-up error."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1 or 0")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={value!r} must be finite")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Comma-separated values, blanks dropped; secrets lists may come from ``<NAME>_FILE`` too."""
    value = env_str(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


# A line of a local settings file: NAME=value, the value as it is (no quotes, no expansion).
_LOCAL_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def read_local_settings(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of ``path`` (blank lines and ``#`` comments skipped); empty when it is missing.

    ``make run`` keeps the settings it chose for a local trial in such a file (``var/local.env``) so that
    ``manage.py`` commands run later, in another shell, see the same service without exports.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ImproperlyConfigured(f"{path} cannot be read: {exc}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LOCAL_LINE.match(line)
        if match is None:
            raise ImproperlyConfigured(f"{path}, line {number}: expected NAME=value, found {line[:60]!r}")
        values[match[1]] = match[2]
    return values


def apply_local_settings(path: Path) -> dict[str, str]:
    """Fill the environment from ``path`` for the names it does not set: the environment always wins.

    Returns the values taken from the file.
    """
    taken = {name: value for name, value in read_local_settings(path).items() if name not in os.environ}
    os.environ.update(taken)
    return taken


def write_local_settings(path: Path, values: dict[str, str], *, header: str) -> None:
    """Write ``values`` as ``NAME=value`` lines, readable by the owner only (0600): the file may hold a secret."""
    for name, value in values.items():
        if not _LOCAL_LINE.match(f"{name}={value}") or "\n" in value or "\r" in value:
            raise ValueError(f"{name}={value!r} cannot be written as one NAME=value line")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{name}={value}" for name, value in values.items()]
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a file left by an interrupted write
    os.replace(temporary, path)
