# The project's interface. Everything runs from the pinned virtualenv, created on first use.
STACK ?= dev
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: preview test schema clean

$(VENV_STAMP): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(VENV_STAMP)

## preview: run the program offline for STACK and write build/$(STACK)/
preview: $(VENV_STAMP)
	$(PY) -m engine.preview $(STACK)

## test: run the test suite
test: $(VENV_STAMP)
	$(PY) -m pytest -q

## schema: regenerate the editor JSON Schema under stacks/schema/
schema: $(VENV_STAMP)
	$(PY) -m components.spec.schema

clean:
	rm -rf build
