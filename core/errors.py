"""The project's small exception hierarchy. The CLI turns any CovblendError into a one-line error."""


class CovblendError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CovblendError, ValueError):
    """A configuration value is out of range or inconsistent; the message names the value."""


class CheckpointError(CovblendError):
    """A file is not a checkpoint this project wrote (or cannot be read); the message names the file."""
