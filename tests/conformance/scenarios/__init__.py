"""The conformance scenarios, one mixin class per concern; `tests.conformance.suite` composes
them into `BackendSuite`."""
