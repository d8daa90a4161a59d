"""pytest fixtures around the fake LMS of `testkit.fakelms` (shared with bench/)."""
