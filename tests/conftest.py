"""Fixtures; the helpers they use are in helpers.py."""

import pytest


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder (data/ relative to it) as the current directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
