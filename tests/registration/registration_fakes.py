"""A fake LMS for Dynamic Registration: serves the real Moodle OpenID configuration (issuer and
endpoints moved to its own loopback address) and a registration endpoint that checks what the
tool sent and answers the way Moodle or Canvas do."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, jsonify, request

_HERE = Path(__file__).resolve()
FIXTURES = next(
    (base / "shared" / "fixtures" for base in (_HERE.parents[3], _HERE.parents[2].parent)
     if (base / "shared" / "fixtures").is_dir()),
    _HERE.parents[3] / "shared" / "fixtures",
)


def load_fixture(*parts: str):
    """A captured message from ../shared/fixtures (the same files tests/conftest.py reads)."""
    return json.loads(FIXTURES.joinpath(*parts).read_text())

MOODLE_ORIGIN = "http://127.0.0.1:8100"
CANVAS_PLATFORM_CONFIGURATION = {
    "product_family_code": "canvas",
    "version": "OpenSource",
    "messages_supported": [
        {"type": "LtiResourceLinkRequest",
         "placements": ["course_navigation", "account_navigation", "link_selection"]},
        {"type": "LtiDeepLinkingRequest",
         "placements": ["link_selection", "assignment_selection", "editor_button"]},
    ],
    "variables": ["Canvas.course.id", "Canvas.user.id", "Context.id.history"],
    "https://canvas.instructure.com/lti/account_name": "Example State University",
    "https://canvas.instructure.com/lti/account_lti_guid": "8a1f0c7e-canvas-guid",
}


@dataclass
class FakePlatform:
    """Behaviour switches for one test; `received` records every registration POST."""

    kind: str = "moodle"
    registration_token: str = "reg-token-123"
    client_id: str = "wIHNTU76CCVPeFh"
    deployment_id: str = "1"
    reply_status: int = 200
    reply_body: object | None = None
    config_changes: dict = field(default_factory=dict)
    received: list[dict] = field(default_factory=list)
    origin: str = ""

    def configuration(self) -> dict:
        text = json.dumps(load_fixture("moodle", "platform_openid_configuration.json"))
        config = json.loads(text.replace(MOODLE_ORIGIN, self.origin))
        if self.kind == "canvas":
            config["registration_endpoint"] = f"{self.origin}/api/lti/registrations"
            config["authorization_endpoint"] = f"{self.origin}/api/lti/authorize_redirect"
            config["token_endpoint"] = f"{self.origin}/login/oauth2/token"
            config["jwks_uri"] = f"{self.origin}/api/lti/security/jwks"
            config["scopes_supported"] = [
                *config["scopes_supported"],
                "https://canvas.instructure.com/lti-ags/progress/scope/show",
            ]
            config["https://purl.imsglobal.org/spec/lti-platform-configuration"] = (
                copy.deepcopy(CANVAS_PLATFORM_CONFIGURATION))
        for key, value in self.config_changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        return config

    def registration_reply(self, sent: dict) -> dict:
        """Moodle echoes the registration with client_id and deployment_id added; Canvas does
        the same and adds its own keys."""
        reply = copy.deepcopy(sent)
        reply["client_id"] = self.client_id
        tool_config = reply.setdefault("https://purl.imsglobal.org/spec/lti-tool-configuration",
                                       {})
        tool_config["deployment_id"] = self.deployment_id
        if self.kind == "moodle":
            tool_config["version"] = "1.3.0"
        else:
            reply["https://canvas.instructure.com/lti/registration_config_url"] = (
                f"{self.origin}/api/lti/registrations/1/view")
        return reply

    def app(self) -> Flask:
        app = Flask("fake_platform")
        config_path = ("/mod/lti/openid-configuration.php" if self.kind == "moodle"
                       else "/api/lti/security/openid-configuration")

        @app.get(config_path)
        def openid_configuration():
            return jsonify(self.configuration())

        def register():
            sent = request.get_json(force=True)
            self.received.append({"headers": dict(request.headers), "body": sent})
            if request.headers.get("Authorization") != f"Bearer {self.registration_token}":
                return jsonify({"error": "invalid_token"}), 401
            domain = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["domain"]
            target = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"][
                "target_link_uri"]
            if self.kind == "moodle" and domain not in target:
                return "domain_targetlinkuri_mismatch", 400
            if self.reply_body is not None:
                return app.response_class(
                    self.reply_body if isinstance(self.reply_body, str)
                    else json.dumps(self.reply_body),
                    status=self.reply_status, mimetype="application/json")
            return jsonify(self.registration_reply(sent)), self.reply_status

        app.add_url_rule("/mod/lti/openid-registration.php", view_func=register,
                         methods=["POST"])
        app.add_url_rule("/api/lti/registrations", view_func=register, methods=["POST"],
                         endpoint="canvas_register")
        return app

    @property
    def configuration_url(self) -> str:
        if self.kind == "moodle":
            return f"{self.origin}/mod/lti/openid-configuration.php"
        return f"{self.origin}/api/lti/security/openid-configuration"
