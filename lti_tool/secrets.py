"""Secrets kept as files readable by the owner only (0600), created on first use."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


class InsecureSecretFile(RuntimeError):
    """A secret file that others can read: refuse rather than leak."""


def write_secret(path: Path, data: bytes) -> None:
    """Write atomically with 0600 from the start (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_secret(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InsecureSecretFile(
            f"{path} is readable by group or others (mode {oct(mode)}); run: chmod 600 {path}"
        )
    return path.read_bytes()


def read_or_create_secret(path: Path, size: int) -> str:
    if not path.exists():
        write_secret(path, secrets.token_hex(size).encode())
    return read_secret(path).decode().strip()


# --- secrets at rest in the database ----------------------------------------------------------
# LMS REST tokens and database-stored private keys are sealed with Fernet (AES-128-CBC with
# HMAC-SHA256, from `cryptography`) under the installation's encryption key: the setting
# `encryption_key` (LTI_TOOL_ENCRYPTION_KEY, a Fernet key) or, when it is empty, the 0600 file
# `data_dir/encryption.key`, created on first use. A database dump alone reveals none of them.

SEALED_PREFIX = "fernet:v1:"
KEY_FILE = "encryption.key"


class SecretKeyMismatch(RuntimeError):
    """A sealed value that this installation's encryption key cannot open."""


def _fernet(settings):
    from cryptography.fernet import Fernet

    configured = getattr(settings, "encryption_key", "")
    if configured:
        try:
            return Fernet(configured.encode())
        except ValueError as exc:
            raise SecretKeyMismatch(
                "LTI_TOOL_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded "
                "bytes; make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')") from exc
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        write_secret(path, Fernet.generate_key())
    return Fernet(read_secret(path).strip())


def seal(settings, value: str | None) -> str | None:
    """The stored form of a secret (None stays None)."""
    if value is None:
        return None
    return SEALED_PREFIX + _fernet(settings).encrypt(value.encode()).decode()


def unseal(settings, stored: str | None) -> str | None:
    """The secret from its stored form. Values written before sealing existed are read as
    they are (they are sealed the next time they are written)."""
    if stored is None or not stored.startswith(SEALED_PREFIX):
        return stored
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(settings).decrypt(stored[len(SEALED_PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretKeyMismatch(
            "A secret in the database was sealed with another encryption key: set "
            "LTI_TOOL_ENCRYPTION_KEY (or restore data_dir/encryption.key) to the key it was "
            "written with.") from None


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(SEALED_PREFIX)
