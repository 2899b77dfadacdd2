"""Run many streamlit AppTest instances at once, one per thread, like the sessions of one server.

Used by bench/system/load_sessions.py (and its test). See `concurrent_apptest` for what it fixes and why.
"""

from __future__ import annotations

import contextlib
import logging
from unittest import mock


@contextlib.contextmanager
def concurrent_apptest():
    """Let AppTest instances run in parallel threads, like sessions of one streamlit server.

    `AppTest._run` swaps process-wide state around every run: it installs its own mock
    `Runtime._instance` and sets it back to None afterwards, resets `PagesManager.uses_pages_directory`
    to None (the PagesManager it then builds sets it to True, since a app_pages/ folder sits beside
    streamlit_app.py, until the script's st.navigation sets False), and patches `config.get_option`.
    Runs in parallel interleave those swaps: `runtime.exists()` followed by `runtime.get_instance()`
    raises "Runtime hasn't been created!", and a run that reads uses_pages_directory=True executes the
    app as a v1 app_pages/-folder app. Here app_test's module sees private subclasses, so its swaps only
    touch those; the real classes keep one runtime shared by all sessions (as a server has one) and
    uses_pages_directory=False (what st.navigation sets), and the appTest option is set once (a run
    that restored it mid-way through another made that one's widgets miss their AppTest registry).
    """
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test
    from streamlit.testing.v1.util import patch_config_options

    shared = mock.MagicMock(spec=Runtime)
    shared.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    shared.dataframe_source_mgr = DataframeSourceManager()
    shared.cache_storage_manager = MemoryCacheStorageManager()
    shared.bidi_component_registry = BidiComponentManager()
    shared.bidi_component_registry.discover_and_register_components(start_file_watching=False)
    per_run_runtime = type("PerRunRuntime", (Runtime,), {"_instance": None})
    per_run_pages = type("PerRunPagesManager", (PagesManager,), {"uses_pages_directory": None})
    with (mock.patch.object(app_test, "Runtime", per_run_runtime),
          mock.patch.object(app_test, "PagesManager", per_run_pages),
          mock.patch.object(app_test, "patch_config_options", lambda _overrides: contextlib.nullcontext()),
          mock.patch.object(Runtime, "_instance", shared),
          mock.patch.object(PagesManager, "uses_pages_directory", False),
          patch_config_options({"global.appTest": True})):
        quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
        noise = lambda record: "missing ScriptRunContext" not in record.getMessage()  # noqa: E731 - AppTest()
        quiet.addFilter(noise)  # warns from the session's own thread now that a runtime exists
        try:
            yield
        finally:
            quiet.removeFilter(noise)
