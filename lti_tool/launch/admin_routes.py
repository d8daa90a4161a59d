"""Office pages for platform registrations and deployments."""

from flask import Blueprint

bp = Blueprint("platforms", __name__, url_prefix="/admin/platforms")
