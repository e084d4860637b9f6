# Two commands for a fresh machine: `make demo` and `make test`. Both create and use .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch that lies on this disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: venv test demo clean browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The rating app's browser test needs Debian's chromium and chromium-driver. Installed with apt only
# when running as root and chromium is missing; never fails the build (the test then skips, saying why).
browser:
	-@if [ "$$(id -u)" = 0 ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; } && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver for the browser test (apt)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "apt could not install chromium: the browser test will be skipped"; \
	fi

demo: $(STAMP)
	$(BIN)/python -m hepaseg.pipeline.demo

clean:
	rm -rf $(VENV) demo
