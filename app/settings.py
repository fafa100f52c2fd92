"""Settings, read one way: each package declares its own, `load_settings` reads them once.

A package lists its settings in one place (name, type, default, environment variable,
whether it is a secret) and loads them from its `init_app`. Values come, in this order,
from the overrides given to `create_app` (tests), the environment, or the default; the
result goes into `app.config`, where code reads it. Nothing reads `os.environ` at call
time. `barid config show` prints every declared setting, its value (secrets masked) and
where it came from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

_EXT = "barid.settings"


class ConfigError(RuntimeError):
    """The environment asks for something the platform cannot start with."""


def parse_bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def parse_json(raw: str) -> Any:
    return json.loads(raw)


def parse_floats(raw: str) -> list[float]:
    """A comma-separated list of numbers: "10,30,120"."""
    return [float(part) for part in raw.split(",") if part.strip()]


def parse_optional(raw: str) -> str | None:
    """A string that is unset when empty."""
    return raw or None


@dataclass(frozen=True)
class Setting:
    """One setting: its `app.config` name, how to read its environment variable, its
    default (a value, or a function of the settings loaded before it), and whether its
    value is a secret that `barid config show` masks.

    A secret with a default has a development value (so `make run` works with nothing
    set): production refuses to start while such a secret is missing or still that
    value (app.config.production_problems). `development_default=False` says the
    default is fit for production too (e.g. the database URL, checked on its own)."""

    name: str
    parse: Callable[[str], Any] = str
    default: Any = None
    env: str | None = None  # the environment variable; the name itself unless given
    secret: bool = False
    doc: str = ""
    computed: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)
    development_default: bool | None = None  # None: every secret with a default

    @property
    def refused_in_production(self) -> bool:
        """Whether production must be given its own value for this setting."""
        if self.development_default is not None:
            return self.development_default
        return self.secret and self.default is not None

    @property
    def env_name(self) -> str:
        return self.env or self.name

    def default_for(self, config: dict[str, Any]) -> Any:
        return self.computed(config) if self.computed is not None else self.default


@dataclass
class Loaded:
    setting: Setting
    owner: str
    source: str  # "default", "environment" or "override"


def load_settings(app: Flask, owner: str, settings: Sequence[Setting],
                  overrides: dict[str, Any] | None = None) -> None:
    """Put each of `settings` into `app.config` and remember where its value came from.

    A value already in `app.config` (set by `create_app`'s overrides) wins over the
    environment, which wins over the default. Raises ConfigError naming the variable
    when an environment value cannot be read as its type.
    """
    loaded: dict[str, Loaded] = app.extensions.setdefault(_EXT, {})
    given = overrides if overrides is not None else app.extensions.get("barid.overrides", {})
    for s in settings:
        if s.name in given:
            app.config[s.name] = given[s.name]
            source = "override"
        elif s.env_name in os.environ:
            raw = os.environ[s.env_name]
            try:
                app.config[s.name] = s.parse(raw)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{s.env_name}={raw!r} is not a valid value: {exc}") from exc
            source = "environment"
        else:
            app.config[s.name] = s.default_for(app.config)
            source = "default"
        loaded[s.name] = Loaded(s, owner, source)


def declared(app: Flask) -> dict[str, Loaded]:
    """Every setting loaded into `app`, by name."""
    return dict(app.extensions.get(_EXT, {}))


def mask(value: Any) -> str:
    """A secret shown without its value: set or not, and its length."""
    if value in (None, ""):
        return "(not set)"
    return f"****** ({len(str(value))} characters)"
