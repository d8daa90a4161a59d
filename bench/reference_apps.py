"""The two references bench/launch.py measures in the same run as the tool (issue 19).

- `bare_tool()`: a bare pylti1p3 Flask tool with no database: the platform in a
  `ToolConfDict`, state in pylti1p3's cookie, the nonce in Flask's signed cookie session;
  `/lti/login` answers pylti1p3's OIDC redirect, `/lti/launch` runs pylti1p3's full launch
  validation and redirects (303), as the tool does.
- `floor()`: the crypto + HTTP floor: the same two routes, doing only one RS256 verification
  of the id_token (jwcrypto) and one EdDSA signature (the tool's page token) per launch.

Both read their configuration from the environment bench/launch.py sets
(LTI_BENCH_ISSUER, LTI_BENCH_CLIENT_ID, LTI_BENCH_DEPLOYMENT_ID, LTI_BENCH_PLATFORM_JWKS,
LTI_BENCH_AUTH_URL) and are served by gunicorn: `bench.reference_apps:bare_tool()`.
"""

from __future__ import annotations

import json
import os
import secrets
from urllib.parse import urlencode

from flask import Flask, redirect, request
from jwcrypto import jwk, jws


def _config() -> dict:
    return {"issuer": os.environ["LTI_BENCH_ISSUER"],
            "client_id": os.environ["LTI_BENCH_CLIENT_ID"],
            "deployment_id": os.environ.get("LTI_BENCH_DEPLOYMENT_ID", "1"),
            "jwks": json.loads(os.environ["LTI_BENCH_PLATFORM_JWKS"]),
            "auth_url": os.environ["LTI_BENCH_AUTH_URL"]}


def bare_tool() -> Flask:
    from pylti1p3.contrib.flask import (
        FlaskCookieService,
        FlaskMessageLaunch,
        FlaskOIDCLogin,
        FlaskRequest,
        FlaskSessionService,
    )
    from pylti1p3.tool_config import ToolConfDict

    config = _config()
    tool_key = jwk.JWK.generate(kty="RSA", size=2048)
    settings = {config["issuer"]: [{
        "default": True, "client_id": config["client_id"], "auth_login_url": config["auth_url"],
        "auth_token_url": config["auth_url"] + "/token", "key_set_url": None,
        "key_set": config["jwks"], "deployment_ids": [config["deployment_id"]]}]}
    tool_conf = ToolConfDict(settings)
    tool_conf.set_private_key(config["issuer"],
                              tool_key.export_to_pem(private_key=True, password=None).decode(),
                              client_id=config["client_id"])
    app = Flask(__name__)
    app.secret_key = "bench-reference-tool"  # the same in every worker (the nonce is in it)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    def services(flask_request: FlaskRequest) -> dict:
        return {"cookie_service": FlaskCookieService(flask_request),
                "session_service": FlaskSessionService(flask_request)}

    @app.route("/lti/login", methods=["GET", "POST"])
    def login():
        flask_request = FlaskRequest()
        oidc = FlaskOIDCLogin(flask_request, tool_conf, **services(flask_request))
        target = flask_request.get_param("target_link_uri")
        return oidc.redirect(target)

    @app.post("/lti/launch")
    def launch():
        flask_request = FlaskRequest()
        message = FlaskMessageLaunch(flask_request, tool_conf, **services(flask_request))
        data = message.get_launch_data()
        return redirect(f"/done?sub={data.get('sub', '')}", code=303)

    return app


def floor() -> Flask:
    config = _config()
    platform_keys = jwk.JWKSet.from_json(json.dumps(config["jwks"]))
    page_key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    app = Flask(__name__)

    @app.route("/lti/login", methods=["GET", "POST"])
    def login():
        query = urlencode({"state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
                           "redirect_uri": request.values.get("target_link_uri", "")})
        return redirect(f"{config['auth_url']}?{query}", code=302)

    @app.post("/lti/launch")
    def launch():
        token = jws.JWS()
        token.deserialize(request.form["id_token"])
        token.verify(platform_keys, alg="RS256")  # one RS256 verification
        page = jws.JWS(token.objects["payload"][:64])
        page.add_signature(page_key, alg="EdDSA", protected={"alg": "EdDSA"})  # one EdDSA sign
        return redirect("/done?t=" + page.serialize(compact=True)[-16:], code=303)

    return app
