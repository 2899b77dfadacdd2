"""MTL Studio core: one shared encoder, several task heads; training, evaluation, inference, store.

Never imports streamlit.
"""

import os

# Nothing may reach a model hub at run time: every model and corpus is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transformers.utils import logging as _hf_logging  # noqa: E402

_hf_logging.disable_progress_bar()
_hf_logging.set_verbosity_error()

__version__ = "0.1.0"
