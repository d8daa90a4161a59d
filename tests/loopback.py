"""Tests whose fake LMSs and platforms listen on loopback say so explicitly: the guarded
outbound client refuses loopback addresses unless LTI_TOOL_OUTBOUND_ALLOW lists them (it lifts
only the address rule; each registration's recorded hosts still apply)."""

from __future__ import annotations

import dataclasses

from lti_tool.outbound import OutboundClient, OutboundPolicy
from lti_tool.settings import Settings

# Fakes bind 127.0.0.1 on a free port (some tests name them `localhost`).
LOOPBACK_FAKES = "127.0.0.1,localhost"


def allow_loopback_fakes(settings: Settings) -> Settings:
    return dataclasses.replace(settings, outbound_allow=LOOPBACK_FAKES)


def loopback_client() -> OutboundClient:
    """A guarded client that may reach the loopback fakes."""
    return OutboundClient(OutboundPolicy.from_settings(
        dataclasses.replace(Settings(), outbound_allow=LOOPBACK_FAKES)))


def loopback_jwks_fetch(**kwargs: float):
    """`fetch_jwks` through a client that may reach the loopback fakes."""
    import functools

    from lti_tool.launch.jwks_cache import fetch_jwks

    return functools.partial(fetch_jwks, outbound=loopback_client(), **kwargs)
