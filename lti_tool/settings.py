"""Settings: built-in defaults < config/defaults.toml < LTI_TOOL_CONFIG file < LTI_TOOL_* env."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ENV_PREFIX = "LTI_TOOL_"
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "defaults.toml"
DYNAMIC_REGISTRATION_POLICIES = ("open", "invite", "off")


class SettingsError(ValueError):
    """A setting has a value the tool cannot run with."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///lti_tool.db"
    base_url: str = "http://127.0.0.1:8000"
    data_dir: str = "instance"
    key_storage: str = "file"
    dynamic_registration: str = "open"
    key_grace_seconds: int = 172800
    jwt_leeway_seconds: int = 60
    max_id_token_bytes: int = 65536
    sync_interval_minutes: int = 60
    sync_after_launch: bool = True
    issuer_name: str = "Example University"
    issuer_url: str = "https://www.example.edu"
    issuer_email: str = ""
    issuer_country: str = "TR"
    issuer_region: str = ""
    # National registration, VAT or EUID number: ELM requires it of an issuer (EDC export).
    issuer_legal_identifier: str = ""
    issuer_slug: str = "institution"
    issuer_image_url: str = ""
    # RS256 (every Open Badges verifier accepts it) or EdDSA.
    badge_jwt_alg: str = "RS256"
    # validUntil = issue date + this many days; 0 = credentials do not expire.
    credential_validity_days: int = 0
    default_locale: str = "en"
    secret_key: str = ""
    testing: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def is_https(self) -> bool:
        return urlparse(self.base_url).scheme == "https"

    def url(self, path: str) -> str:
        """Absolute public URL of a tool path."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def validate(self) -> Settings:
        if self.dynamic_registration not in DYNAMIC_REGISTRATION_POLICIES:
            raise SettingsError(
                f"LTI_TOOL_DYNAMIC_REGISTRATION must be one of "
                f"{', '.join(DYNAMIC_REGISTRATION_POLICIES)}, not {self.dynamic_registration!r}"
            )
        if self.key_storage not in ("file", "database"):
            raise SettingsError("LTI_TOOL_KEY_STORAGE must be 'file' or 'database'")
        parsed = urlparse(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SettingsError(f"LTI_TOOL_BASE_URL is not an absolute URL: {self.base_url!r}")
        if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SettingsError(
                "LTI_TOOL_BASE_URL must use HTTPS except on loopback (127.0.0.1, localhost)"
            )
        return self


def _coerce(name: str, raw: object, default: object) -> object:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            return int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be an integer") from exc
    return str(raw)


def load_settings(overrides: dict | None = None, environ: dict | None = None) -> Settings:
    """Read settings from the layered sources; `overrides` (tests, CLI flags) win over all."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    files = [REPO_CONFIG]
    if environ.get(ENV_PREFIX + "CONFIG"):
        files.append(Path(environ[ENV_PREFIX + "CONFIG"]))
    for path in files:
        if path.is_file():
            with path.open("rb") as handle:
                values.update(tomllib.load(handle))
    known = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
    for name in known:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    values.update(overrides or {})
    kwargs: dict[str, object] = {}
    extra: dict[str, object] = {}
    defaults = Settings()
    for name, raw in values.items():
        if name in known:
            kwargs[name] = _coerce(name, raw, getattr(defaults, name))
        else:
            extra[name] = raw
    return Settings(**kwargs, extra=extra).validate()
