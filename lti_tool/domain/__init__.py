"""Pure domain core: micro-credentials, rubrics, mappings, evaluation, decisions, pathways.

No Flask, no SQLAlchemy, no I/O here: entities and rules only.
"""
