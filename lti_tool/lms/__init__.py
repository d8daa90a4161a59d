"""Clients for the LMS services (AGS, NRPS, Moodle Web Services, Canvas REST) behind one
gradebook-source interface; service tokens, paging, retries, and the guarded HTTP client."""
