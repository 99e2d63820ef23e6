"""Server configuration: one TOML file, environment overrides, validated once.

Every key has a default, so ``load_config()`` with no file gives the embedded configuration of
DESIGN.md ("Command line"). Unknown sections and keys are errors, in the file and in the
environment, so a typo never silently falls back to a default.

Precedence, lowest first: defaults < the TOML file < ``XMPPD_<SECTION>_<KEY>`` environment
variables. Section names contain no underscore, keys may (``XMPPD_C2S_DIRECT_TLS_PORT`` is
``c2s.direct_tls_port``). Environment values are strings; lists are comma-separated
(``XMPPD_MODULES_ENABLED=disco,ping``), dicts are comma-separated ``name=value`` pairs
(``XMPPD_S2S_HOSTS=b.test=127.0.0.3:5269``); pydantic coerces ints and bools from strings.

Values derived from others are filled in after validation: ``muc.domain`` and
``upload.domain`` from ``server.domain``, ``storage.url`` from ``server.data_dir`` (which is made
absolute relative to the working directory).

Every failure is a ``ConfigError`` whose text is one line naming the key, ready for the command
line to print before exiting with status 2.
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from xmpp_server.config.core import ClusterConfig, LimitsConfig, ServerConfig, StorageConfig
from xmpp_server.config.features import (
    AUTH_MECHANISMS,
    DEFAULT_MODULES,
    AuthConfig,
    MamConfig,
    ModulesConfig,
    MucConfig,
    PushConfig,
    RegistrationConfig,
    UploadConfig,
)
from xmpp_server.config.network import (
    C2SConfig,
    ComponentsConfig,
    HTTPConfig,
    S2SConfig,
    TLSConfig,
)
from xmpp_server.config.types import ENV_PREFIX, ConfigError, Section, in_networks

__all__ = [
    "AUTH_MECHANISMS",
    "DEFAULT_MODULES",
    "ENV_PREFIX",
    "AuthConfig",
    "C2SConfig",
    "ClusterConfig",
    "ComponentsConfig",
    "Config",
    "ConfigError",
    "HTTPConfig",
    "LimitsConfig",
    "MamConfig",
    "ModulesConfig",
    "MucConfig",
    "PushConfig",
    "RegistrationConfig",
    "S2SConfig",
    "ServerConfig",
    "StorageConfig",
    "TLSConfig",
    "UploadConfig",
    "in_networks",
    "load_config",
]

class Config(BaseModel):
    """The whole configuration; one attribute per TOML section."""

    model_config = ConfigDict(extra="forbid")

    server: ServerConfig = Field(default_factory=ServerConfig)
    c2s: C2SConfig = Field(default_factory=C2SConfig)
    s2s: S2SConfig = Field(default_factory=S2SConfig)
    components: ComponentsConfig = Field(default_factory=ComponentsConfig)
    http: HTTPConfig = Field(default_factory=HTTPConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    muc: MucConfig = Field(default_factory=MucConfig)
    upload: UploadConfig = Field(default_factory=UploadConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    mam: MamConfig = Field(default_factory=MamConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    modules: ModulesConfig = Field(default_factory=ModulesConfig)

    @model_validator(mode="after")
    def _derive(self) -> Config:
        domain = self.server.domain
        if not self.muc.domain:
            self.muc.domain = f"conference.{domain}"
        if not self.upload.domain:
            self.upload.domain = f"upload.{domain}"
        if not self.storage.url:
            self.storage.url = f"sqlite+aiosqlite:///{self.server.data_dir / 'xmppd.db'}"
        taken = {domain, self.muc.domain, self.upload.domain}
        for name in self.components.secrets:
            if name in taken:
                raise ValueError(f"components.secrets: {name} is already served by this server")
        if self.cluster.redis_url and self.storage.url.startswith("sqlite"):
            # Each node would have its own database: accounts, rosters and history split.
            raise ValueError("cluster.redis_url: a cluster keeps its data in PostgreSQL; "
                             "storage.url is SQLite")
        return self


# --- loading ----------------------------------------------------------------------------------


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _format_validation_error(exc: ValidationError, env_names: Mapping[str, str]) -> str:
    errors = exc.errors()
    err = errors[0]
    loc = _format_loc(tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        text = f"unknown {'key' if '.' in loc else 'section'}: {loc}"
    else:
        msg = err["msg"]
        if err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        # Validators of a whole section report "section.key: message" themselves.
        text = msg if not loc or msg.startswith(f"{loc}.") else f"{loc}: {msg}"
    for key, var in env_names.items():
        if loc == key or loc.startswith((f"{key}.", f"{key}[")):
            text += f" (from environment variable {var})"
            break
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return " ".join(text.split())  # one line, whatever the message contained


def _env_value(annotation: Any, raw: str) -> Any:
    """Turn an environment string into what the field expects (pydantic does the rest)."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if origin is dict:
        out: dict[str, str] = {}
        for item in raw.split(","):
            if not item.strip():
                continue
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"expected 'name=value' pairs, got {item.strip()!r}")
            out[name.strip()] = value.strip()
        return out
    return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Merge ``XMPPD_*`` variables into the raw data; returns dotted key -> variable name."""
    used: dict[str, str] = {}
    sections = Config.model_fields
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX):
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("_")
        dotted = f"{section}.{key}" if key else section
        field = sections.get(section)
        model = field.annotation if field is not None else None
        if not key or not isinstance(model, type) or not issubclass(model, Section):
            raise ConfigError(f"unknown key: {dotted} (from environment variable {var})")
        if key not in model.model_fields:
            raise ConfigError(f"unknown key: {dotted} (from environment variable {var})")
        try:
            value = _env_value(model.model_fields[key].annotation, env[var])
        except ValueError as exc:
            raise ConfigError(f"{dotted}: {exc} (from environment variable {var})") from None
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table, got {type(table).__name__}")
        table[key] = value
        used[dotted] = var
    return used


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: not UTF-8 ({exc.reason})") from None


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate the configuration.

    ``path`` None means all defaults (plus the environment). ``env`` defaults to
    ``os.environ``; pass ``{}`` to ignore the environment. Raises ``ConfigError``.
    """
    data: dict[str, Any] = _read_toml(path) if path is not None else {}
    used = _apply_env(data, os.environ if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, used)) from None
