"""The security tests set LTI_TOOL_OUTBOUND_ALLOW themselves (naming only the victim)."""
