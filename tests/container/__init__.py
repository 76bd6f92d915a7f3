"""Contract tests against the built serving image (nox -s container)."""
