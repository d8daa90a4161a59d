"""Reports: surveys, the annual quality report and the improvement plan (`lti-tool report`)."""
