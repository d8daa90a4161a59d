"""LTI endpoints: /lti/login, /lti/launch, /lti/jwks, /lti/register."""

from flask import Blueprint

bp = Blueprint("lti", __name__, url_prefix="/lti")
