"""Gradebook sync status and the "Sync now" action."""

from flask import Blueprint

bp = Blueprint("sync", __name__, url_prefix="/instructor/sync")
