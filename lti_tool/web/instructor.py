"""Pages for the instructor role."""

from flask import Blueprint

bp = Blueprint("instructor", __name__, url_prefix="/instructor")
