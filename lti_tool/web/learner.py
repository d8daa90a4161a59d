"""Pages for the learner role."""

from flask import Blueprint

bp = Blueprint("learner", __name__, url_prefix="/learner")
