"""Fast tests: pure logic, moto in-process or behind a Stubber, property tests (`python -m pytest -m "not e2e"`)."""
