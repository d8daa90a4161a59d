"""Office pages: issued credentials, search and revocation."""

from flask import Blueprint

bp = Blueprint("office_credentials", __name__, url_prefix="/admin/credentials")
