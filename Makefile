# Two entry points for a fresh machine (see README):
#   make demo   set up .venv from the pinned constraints and run the main job on embedded defaults
#   make test   set up .venv the same way, lint (ruff check, ruff format --check), run the test suite
# The stamp depends on pyproject.toml: a change there (dependencies, entry points) reinstalls the package, so the
# installed metadata always carries the current entry points (the seiscore.commands / seiscore.benchmarks seams).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[ssb,siren,drfwi,traces,s3,test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/seis demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) .pytest_cache
