"""The learner's own data as JSON (`/learner/my-data.json`): the right of access and
portability (KVKK Art. 11, GDPR Art. 15 and 20). A learner gets only their own rows; the
file carries the evidence segments that prove their records offline."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from lti_tool.grades.lifecycle import learner_data
from lti_tool.web.auth import require_actor, require_role
from lti_tool.web.db import get_db
from lti_tool.web.db import runtime as web_runtime

bp = Blueprint("lifecycle", __name__)


@bp.get("/learner/my-data.json")
@require_role("learner")
def my_data() -> Response:
    actor = require_actor()
    data = learner_data(get_db(), web_runtime().settings, actor.platform_id, actor.person_id)
    return Response(json.dumps(data, indent=1, ensure_ascii=False),
                    mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-data.json"',
                             "Cache-Control": "no-store"})
