"""The workspace database for the pages: one engine per (workspace, URL), migrated on first use."""

from __future__ import annotations

import streamlit as st

from mtl_core.store import database_url
from mtl_core.store.db import open_store
from mtl_core.workspace import hold_workspace, workspace_dir


@st.cache_resource(show_spinner=False)
def _sessions_for(url: str, home: str):
    del url  # part of the cache key only: open_store reads the same env/workspace
    hold_workspace(home)  # for this server's lifetime: `restore` refuses while the app uses the workspace
    return open_store(home)[1]


def get_sessions():
    """A SQLAlchemy sessionmaker for the active workspace (SQLite by default, or MTL_STUDIO_DATABASE_URL)."""
    home = workspace_dir()
    return _sessions_for(database_url(home), str(home))
