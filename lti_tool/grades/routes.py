"""Outcome mapping, rubric scoring, decisions and re-evaluation."""

from flask import Blueprint

bp = Blueprint("evaluation", __name__, url_prefix="/instructor")
