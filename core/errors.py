"""The project's small exception hierarchy. The CLI turns any CovblendError into a one-line error."""

from __future__ import annotations


class CovblendError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CovblendError, ValueError):
    """A configuration value is out of range or inconsistent; the message names the value.

    key, value, reason: the one setting at fault, when there is one (ConfigError.at); None for a rule between
    several settings, whose message names them all. A study spec re-renders them as "file: where.key = value: …".
    """

    key: str | None = None
    value: object = None
    reason: str | None = None

    @classmethod
    def at(cls, key: str, value: object, reason: str) -> ConfigError:
        """The error "{key} {reason}, got {key}={value!r}", e.g. at("n_elements", 1, "must be >= 2")."""
        error = cls(f"{key} {reason}, got {key}={value!r}")
        error.key, error.value, error.reason = key, value, reason
        return error


class CheckpointError(CovblendError):
    """A file is not a checkpoint this project wrote (or cannot be read); the message names the file."""
