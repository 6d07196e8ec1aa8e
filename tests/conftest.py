"""Fixtures; the helpers they use are in helpers.py."""

import pytest

from dogs_vs_cats.feature_store import STORE_VARIABLE


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder (data/ relative to it) as the current directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def feature_store(tmp_path_factory, monkeypatch):
    """A fresh, empty feature store for every test (FEATURE_STORE), inherited by the stages it runs:
    never the user's. Module-scoped projects, built before this, use the session's (helpers.py)."""
    location = tmp_path_factory.mktemp("feature-store")
    monkeypatch.setenv(STORE_VARIABLE, str(location))
    return location
