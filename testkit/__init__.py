"""Shared by tests/ and bench/: the fake LMS, the test platform (keys, signed id_tokens,
login and launch) and the seeding of big courses. Not part of the shipped package
(pyproject includes only lti_tool*); it may import lti_tool, never tests/."""
