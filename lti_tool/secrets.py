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
