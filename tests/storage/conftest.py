"""The `storage` fixture: a migrated Storage on each backend (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage import Storage, open_storage


@pytest.fixture
async def storage_url(db_url: str) -> str:
    """An empty database of each backend, not yet migrated."""
    return db_url


@pytest.fixture
async def storage(storage_url: str) -> AsyncIterator[Storage]:
    store = await open_storage(storage_url)
    try:
        yield store
    finally:
        await store.close()
