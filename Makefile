# Two commands for a fresh machine: `make demo` and `make test`. Both create and use .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch that lies on this disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: venv test demo ablation clean test-tools browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP) test-tools
	$(BIN)/python -m pytest -q

# Debian tools some tests drive: chromium + chromium-driver (the rating app's browser test) and
# dicom3tools (dciodvfy, the independent DICOM-SEG validator), orthanc and dcmtk (the DICOM node's PACS
# and independent sender, tests/node) and orthanc-dicomweb (Orthanc's STOW-RS; a plugin, so named by
# the file it installs). Installed with apt only when running as root and one is missing; never fails
# the build (those tests then skip, saying why).
TEST_TOOLS := chromium:chromium chromedriver:chromium-driver dciodvfy:dicom3tools Orthanc:orthanc storescu:dcmtk \
	/usr/share/orthanc/plugins/libOrthancDicomWeb.so:orthanc-dicomweb

test-tools:
	-@missing=""; for tool in $(TEST_TOOLS); do \
		command -v "$${tool%%:*}" >/dev/null 2>&1 || [ -e "$${tool%%:*}" ] || missing="$$missing $${tool#*:}"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing for the tests (apt)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| echo "apt could not install$$missing: the tests that need them will be skipped"; \
	fi

browser: test-tools

demo: $(STAMP)
	$(BIN)/python -m hepaseg.pipeline.demo

# The architecture ablation (aU-Net vs 2D vs isotropic 3D, 3 seeds each) on the demo cohort, two runs at a
# time with one thread each (on 2 cores a second thread speeds one run up little); see README.
ablation: $(STAMP)
	$(BIN)/python -m hepaseg.pipeline.demo --ablation --workers 2

clean:
	rm -rf $(VENV) demo
