"""Settings for the whole test session.

The graph cache (archsim/cache.py) goes to a folder of this session, never the user's own cache:
a test neither reads graphs a developer built with other code nor leaves entries behind. Tests
that build the same workload share its entry, as runs on a user's machine do.
"""

from __future__ import annotations

import os

import pytest

from archsim.cache import CACHE_ENV


@pytest.fixture(scope="session", autouse=True)
def session_graph_cache(tmp_path_factory):
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("graph-cache"))
    yield os.environ[CACHE_ENV]
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before
