"""The Office's plan form as a browser would post it (fields named by path)."""

from __future__ import annotations

from lti_tool.catalogue import importexport
from lti_tool.domain.catalogue import DesignPlan


def plan_form(plan: DesignPlan) -> list[tuple[str, str]]:
    """Every field of `plan`, plus the empty slots the form always offers."""
    data = importexport.plan_to_dict(plan)
    form = [(key, "" if value is None else str(value)) for key, value in data.items()
            if not isinstance(value, list) and key != "schema_version"]
    form += [(name, "\n".join(data[name])) for name in importexport.LIST_FIELDS]
    for i, outcome in enumerate(data["outcomes"]):
        form += [(f"outcomes[{i}].{k}", outcome[k]) for k in ("code", "statement", "domain")]
        if outcome["required"]:
            form.append((f"outcomes[{i}].required", "on"))
        form.append((f"outcomes[{i}].rubric.threshold", outcome["rubric"]["threshold"]))
        for j, level in enumerate(outcome["rubric"]["levels"]):
            form += [(f"outcomes[{i}].rubric.levels[{j}].{k}", str(v)) for k, v in level.items()]
        form += [(f"outcomes[{i}].rubric.levels[9].code", ""),
                 (f"outcomes[{i}].rubric.levels[9].lower_bound", "")]
    slot = len(data["outcomes"])
    form += [(f"outcomes[{slot}].code", ""), (f"outcomes[{slot}].domain", ""),
             (f"outcomes[{slot}].required", "on")]
    return form
