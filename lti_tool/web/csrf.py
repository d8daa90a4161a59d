"""Views that receive cross-site POSTs (LTI messages, the public verifier) carry no CSRF token.

A blueprint marks such a view with `@csrf_exempt`; the app's `before_request` checks every
other state-changing request (`lti_tool.web.auth.check_csrf`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

CSRF_EXEMPT_ENDPOINTS: set[str] = set()

View = TypeVar("View", bound=Callable[..., object])


def csrf_exempt(view: View) -> View:
    CSRF_EXEMPT_ENDPOINTS.add(f"{view.__module__}.{view.__name__}")
    return view


def is_exempt(view: Callable[..., object]) -> bool:
    return f"{view.__module__}.{view.__name__}" in CSRF_EXEMPT_ENDPOINTS
