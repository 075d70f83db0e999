"""Fixtures of the integration tests (the stores themselves come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support import clocked_service


@pytest.fixture
def service(store_url):
    """A service on each store whose clock moves only when a test says so (a module may
    define its own `service`, which then wins)."""
    service = clocked_service(store_url)
    yield service
    service.close()
