"""Micro-credential pages: the Office's catalogue and the instructor's offering settings."""

from flask import Blueprint

bp = Blueprint("catalogue", __name__, url_prefix=None)
