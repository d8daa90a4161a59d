"""From the gradebook to decisions: sync, mappings, evaluation, re-evaluation, evidence, passback.

`sync/` brings the course's roster and marks into the store; `marks`, `mappings`, `decisions`,
`transitions`, `reevaluation`, `windows`, `prior_learning`, `tool_scores` and `review` turn
them into each learner's decision (rules from `lti_tool.domain`); `evidence` archives every
decision and `passback` sends its score to the LMS gradebook. `evaluation` gathers the use
cases; `routes`, `sync_routes`, `*_commands` and `jobs` are the entry points.
"""
