"""Public endpoints: credentials, achievements, issuers, status lists, verification."""

from flask import Blueprint

bp = Blueprint("public", __name__)
