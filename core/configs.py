"""Nested configs from plain dicts (TOML, JSON, checkpoints): one builder, so every section is checked alike."""

from __future__ import annotations

from dataclasses import fields

from core.errors import ConfigError


def build_section(cls: type, table: dict, where: str):
    """cls from table; a class with its own from_dict builds itself. Unknown keys are errors naming them.

    Lists become tuples, since frozen configs hold tuples (TOML and JSON only know lists).
    """
    if hasattr(cls, "from_dict"):
        return cls.from_dict(dict(table))
    allowed = {f.name for f in fields(cls)}
    bad = set(table) - allowed
    if bad:
        raise ConfigError(f"unknown key(s) {sorted(bad)} in {where}; allowed: {sorted(allowed)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})


def build_sections(d: dict, parts: dict[str, type], where: str) -> dict:
    """{name: built section} for every part; missing sections take their defaults, unknown ones are errors."""
    unknown = set(d) - set(parts)
    if unknown:
        raise ConfigError(f"unknown {where} section(s) {sorted(unknown)}; expected {sorted(parts)}")
    return {name: build_section(cls, d.get(name, {}), f"{where}.{name}") for name, cls in parts.items()}
