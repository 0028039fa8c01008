"""Config, the base of every settings object (core's and the study spec's), and its one error translation.

The rules (strict types, unknown keys refused, lists as tuples, one ConfigError line per problem) are in DESIGN §7.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, create_model, model_validator

from core.errors import ConfigError

# Pydantic's error types in the project's words; any other type keeps pydantic's message ("must be …").
REASONS = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "missing": "is required",
}


class Config(BaseModel):
    """Frozen, strict, unknown keys refused; construction errors are ConfigErrors (config_error)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise config_error(e, type(self)) from e

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return data

    @classmethod
    def from_dict(cls, d: dict):
        """Build from a plain nested dict (TOML, JSON, a checkpoint); missing keys and sections default."""
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__} needs a table of settings, got {d!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        """Plain nested dict: tuples as lists, None dropped (TOML has no null); from_dict(to_dict()) == self."""
        return self.model_dump(mode="json", exclude_none=True)

    def replace(self, **changes: Any):
        """A copy with `changes`, validated like a new config."""
        return type(self)(**{**dict(self), **changes})

    @classmethod
    def section(cls, name: str, keys: Iterable[str]) -> type[Config]:
        """A Config of some of cls's fields, with their types, defaults and bounds (e.g. one section of a spec)."""
        fields = {key: (cls.model_fields[key].annotation, cls.model_fields[key]) for key in keys}
        return create_model(name, __base__=Config, **fields)


def every_and_last(epoch: int, epochs: int, every: int) -> bool:
    """Whether epoch (0-based) of a run of `epochs` is an every-th one or the last: the cadence of periodic work."""
    return (epoch + 1) % every == 0 or epoch == epochs - 1


def one_of(names: Callable[[], Iterable[str]]) -> AfterValidator:
    """A field check: the value is one of names(), e.g. a registry's keys; names is called when a config is
    validated, so a registry that the module fills after the config class still serves."""

    def check(value):
        if value not in names():
            raise ValueError(f"must be one of {', '.join(map(str, names()))}")
        return value

    return AfterValidator(check)


def config_error(e: ValidationError, cls: type[BaseModel]) -> ConfigError:
    """The first problem of `e` (raised building `cls`) as one ConfigError; nested keys are dotted (scene.k_max)."""
    err = e.errors(include_url=False)[0]
    loc = err["loc"]
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # a model_validator's own line; its key, if it has one, lies below loc
        if cause.key is None:
            return cause
        return ConfigError.at(".".join(filter(None, (key, cause.key))), cause.value, cause.reason)
    if isinstance(cause, ValueError):  # a field check's reason (one_of, an interval's order)
        reason = str(cause)
    elif err["type"] == "extra_forbidden":
        reason = f"is not a known key{_allowed(cls, loc[:-1])}"
    elif err["type"] in REASONS:
        reason = REASONS[err["type"]].format(**err.get("ctx", {}))
    else:
        reason = err["msg"].replace("Input should be", "must be")
    return ConfigError.at(key, err["input"], reason)


def _allowed(cls: type[BaseModel], loc: tuple) -> str:
    """The keys of the config at loc below cls, as " (allowed: a, b)"; "" where loc leads to no config."""
    for part in loc:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return ""
        cls = field.annotation
    return f" (allowed: {', '.join(sorted(cls.model_fields))})"
