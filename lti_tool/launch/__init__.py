"""LTI 1.3: OIDC login, launch validation, roles, deep linking, dynamic registration, keys."""
