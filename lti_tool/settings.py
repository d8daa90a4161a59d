"""Settings: built-in defaults < config/defaults.toml < LTI_TOOL_CONFIG file < LTI_TOOL_* env."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lti_tool.outbound import AllowList, AllowListError

ENV_PREFIX = "LTI_TOOL_"
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "defaults.toml"
# `lti-tool demo` writes this beside its database, so that every other command run in the
# demo's folder works on the demo's data and knows its URL (DESIGN.md).
DEMO_CONFIG = "lti_tool_demo.toml"
DYNAMIC_REGISTRATION_POLICIES = ("open", "invite", "off")
# What a web session is bound to besides its token (web.auth.client_binding).
SESSION_BINDINGS = ("network", "agent", "off")
# Where the tool's signing keys live (lti_tool.store.keys).
KEY_STORAGES = ("file", "database")


class SettingsError(ValueError):
    """A setting has a value the tool cannot run with."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///lti_tool.db"
    base_url: str = "http://127.0.0.1:8000"
    data_dir: str = "instance"
    key_storage: str = "file"
    dynamic_registration: str = "invite"
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
    # Evidence and data lifecycle (README "Evidence archive and data lifecycle"): days a record
    # kind is kept before the daily purge removes it; 0 keeps it for ever.
    retention_evidence_days: int = 3650
    retention_scores_days: int = 730
    retention_audit_days: int = 3650
    retention_sessions_days: int = 30
    # An RFC 3161 timestamp authority for `evidence checkpoint export` (optional).
    evidence_tsa_url: str = ""
    default_locale: str = "en"
    # Outbound calls (lti_tool.outbound): addresses they may reach although loopback, private
    # or link-local (`host`, CIDR, `host:port`, comma-separated), and the caps of one call.
    outbound_allow: str = ""
    outbound_max_bytes: int = 32 * 1024 * 1024
    outbound_timeout_seconds: int = 30
    # Total seconds /lti/register may spend on the platform (configuration and registration).
    registration_timeout_seconds: int = 10
    # Rate limits per client address (`limits` notation) and where the counters live:
    # "database" (the tool's database: shared by every worker) or a limits storage URI.
    rate_limit_login: str = "60/minute"
    rate_limit_register: str = "10/minute"
    rate_limit_verify: str = "30/minute"
    # The public quality-cycle pages (lti_tool.reports.routes): the stakeholder feedback form
    # (showing it, sending it) and the e-mailed follow-up link.
    rate_limit_feedback_page: str = "60/minute"
    rate_limit_feedback: str = "3/minute;10/hour"
    rate_limit_follow_up: str = "30/minute"
    rate_limit_storage: str = "database"
    # POST /verify: the largest body and the canonicalisation work it may cost.
    verify_max_bytes: int = 262144
    verify_max_quads: int = 2000
    verify_max_blank_nodes: int = 200
    verify_max_work: int = 2000
    verify_timeout_seconds: int = 5
    # network: the launching browser's User-Agent and /24 (IPv6 /64) network; agent: the
    # User-Agent only (clients whose address changes mid-session); off: the token alone.
    session_binding: str = "network"
    # More origins allowed to frame every page (comma-separated `scheme://host[:port]`), for an
    # LMS whose course pages live on another host than its issuer and auth endpoint.
    frame_ancestors: str = ""
    # Outgoing mail (employability follow-ups); no host = no e-mail, the learner page still asks.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: int = 30
    # Annual report: figures from fewer answers than this are shown as "fewer than N".
    report_min_cell: int = 5
    secret_key: str = ""
    # Fernet key sealing REST tokens and database-stored private keys; empty: a 0600 file
    # data_dir/encryption.key made on first use.
    encryption_key: str = ""
    # Issuers several institutions may share without an operator's --allow-shared-issuer:
    # Canvas cloud, where every school is https://canvas.instructure.com with its own client_id.
    shared_issuers: str = ("https://canvas.instructure.com,https://canvas.beta.instructure.com,"
                           "https://canvas.test.instructure.com")
    # Pending registrations (open Dynamic Registration) not approved within this many days
    # are removed by `prune_pending_registrations`.
    pending_registration_days: int = 14
    testing: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def is_https(self) -> bool:
        return urlparse(self.base_url).scheme == "https"

    def url(self, path: str) -> str:
        """Absolute public URL of a tool path."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def validate(self) -> Settings:
        """The settings if every value is one the tool can run with, else SettingsError
        naming each bad variable (all of them, not only the first)."""
        problems = [f"{ENV_PREFIX}{name.upper()} {problem}"
                    for name, check in CHECKS.items()
                    if (problem := check(getattr(self, name))) is not None]
        if problems:
            raise SettingsError("; ".join(problems))
        return self


# --- what each setting must be: one check per rule, one row per setting -----------------------

Check = Callable[[Any], "str | None"]
_RATE = r"\s*\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?\s*"
RATE_LIMIT = re.compile(rf"{_RATE}(;{_RATE})*")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, not {value!r}"
    return check


def positive(value: int) -> str | None:
    return None if value > 0 else "must be a positive number"


def rate_limit(value: str) -> str | None:
    return None if RATE_LIMIT.fullmatch(value) else (
        f"must look like '60/minute' (several separated by ';'), not {value!r}")


def allow_list(value: str) -> str | None:
    try:
        AllowList.parse(value)
    except AllowListError as exc:
        return str(exc).removeprefix(f"{ENV_PREFIX}OUTBOUND_ALLOW ")  # it names the variable
    return None


def public_url(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"is not an absolute URL: {value!r}"
    if parsed.scheme == "http" and parsed.hostname not in LOOPBACK_HOSTS:
        return "must use HTTPS except on loopback (127.0.0.1, localhost)"
    return None


CHECKS: dict[str, Check] = {
    "base_url": public_url,
    "dynamic_registration": one_of(DYNAMIC_REGISTRATION_POLICIES),
    "session_binding": one_of(SESSION_BINDINGS),
    "key_storage": one_of(KEY_STORAGES),
    "outbound_allow": allow_list,
    **dict.fromkeys(("rate_limit_login", "rate_limit_register", "rate_limit_verify",
                     "rate_limit_feedback_page", "rate_limit_feedback", "rate_limit_follow_up"),
                    rate_limit),
    **dict.fromkeys(("outbound_max_bytes", "outbound_timeout_seconds",
                     "registration_timeout_seconds", "verify_max_bytes", "verify_max_quads",
                     "verify_max_blank_nodes", "verify_max_work", "verify_timeout_seconds"),
                    positive),
}


def _coerce(name: str, raw: object, default: object) -> object:
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            if not isinstance(raw, int | str):
                raise TypeError(raw)
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be an integer") from exc
    return str(raw)


def load_settings(overrides: Mapping[str, object] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the layered sources; `overrides` (tests, CLI flags) win over all.

    With the process environment (no `environ` given) and no `LTI_TOOL_CONFIG`, a demo's
    `lti_tool_demo.toml` in the current directory is the site file.
    """
    from_process = environ is None
    env: Mapping[str, str] = os.environ if environ is None else environ
    values: dict[str, object] = {}
    files = [REPO_CONFIG]
    if env.get(ENV_PREFIX + "CONFIG"):
        files.append(Path(env[ENV_PREFIX + "CONFIG"]))
    elif from_process and ENV_PREFIX + "CONFIG" not in env:
        files.append(Path.cwd() / DEMO_CONFIG)
    for path in files:
        if path.is_file():
            with path.open("rb") as handle:
                values.update(tomllib.load(handle))
    known = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
    for name in known:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    values.update(overrides or {})
    # each value coerced to its field's type (`_coerce`) before the dataclass gets it
    kwargs: dict[str, Any] = {}
    extra: dict[str, object] = {}
    defaults = Settings()
    for name, raw in values.items():
        if name in known:
            kwargs[name] = _coerce(name, raw, getattr(defaults, name))
        else:
            extra[name] = raw
    return Settings(**kwargs, extra=extra).validate()
