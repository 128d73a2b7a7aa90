# The project's interface. Everything runs from the pinned virtualenv, created on first use.
STACK ?= dev
PY := .venv/bin/python
VENV_STAMP := .venv/.installed

.PHONY: preview test lint schema codeowners migrate check diff bench clean reference reference-check tools promote engine-tools cluster-up cluster-down server-check up-local

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

## tools: build promtool and amtool at the Prometheus and Alertmanager versions the chart deploys (Go module
## proxy, Go toolchain needed), cached under .tools/ by version; the tests use them (tests/tools.py)
tools: $(VENV_STAMP)
	nice -n 19 $(PY) tests/build_tools.py

## lint: ruff (lint and format) and mypy over the code, configured in pyproject.toml
lint: $(VENV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## schema: regenerate the editor JSON Schema under stacks/schema/
schema: $(VENV_STAMP)
	$(PY) -m components.spec.schema

## codeowners: regenerate .github/CODEOWNERS from teams.<team>.owners in the stack files (a test checks it is current)
codeowners: $(VENV_STAMP)
	$(PY) -m components.spec.codeowners

## migrate: print the `pulumi state move` commands that split STACK's single stack into its platform
## and team stacks: make migrate STACK=prod ORG=acme-shop (docs/operations.md#migrating-to-team-stacks)
ORG ?= organization
migrate: $(VENV_STAMP)
	$(PY) -m engine.migrate $(STACK) --org $(ORG)

## check: apply the policy rules to manifest files: make check FILES="a.yaml b.yaml" [FORMAT=json] [STACK=prod]
## (STACK picks the settings and enforcement; without it, check judges as prod)
FORMAT ?= text
check: $(VENV_STAMP)
	$(PY) -m engine.check $(FILES) --format $(FORMAT) $(if $(filter command line environment,$(origin STACK)),--stack $(STACK))

## diff: the offline desired-state diff of STACK between BASE (a git ref) and the working tree:
## make diff STACK=prod BASE=origin/main; writes build/$(STACK)/diff.md and diff.json
## (python -m engine.diff exits 1 when the change introduces a mandatory policy violation, 2 when it cannot diff)
BASE ?= HEAD
diff: $(VENV_STAMP)
	$(PY) -m engine.diff $(STACK) --base $(BASE)

## bench: synthetic stacks of N = 10, 100, 500 services against the SDK floor; writes build/bench/results.json
bench: $(VENV_STAMP)
	$(PY) -m bench.run

## promote: move SERVICE's image pin from staging to prod once every promotion gate holds (docs/delivery.md):
## make promote SERVICE=orders; reads PROMOTE_KUBE_API (+ _TOKEN_FILE, _CA) and PROMOTE_PROMETHEUS_URL;
## writes build/promote/$(SERVICE).md; exits 1 when a gate does not hold or an API does not answer
promote: $(VENV_STAMP)
	@test -n "$(SERVICE)" || { echo "make promote: set SERVICE=<name>" >&2; exit 2; }
	$(PY) -m engine.promote $(SERVICE) --write

clean:
	rm -rf build

## reference: regenerate reference/ from upstream charts and CRDs: make reference SOURCE=<dir>
## (the team's reference layout, or `helm pull --untar` charts beside CRD files); reference-check compares only
reference: $(VENV_STAMP)
	@test -n "$(SOURCE)" || { echo "make reference: set SOURCE=<folder of upstream charts and CRDs>" >&2; exit 2; }
	$(PY) -m engine.reference_build $(SOURCE)

reference-check: $(VENV_STAMP)
	@test -n "$(SOURCE)" || { echo "make reference-check: set SOURCE=<folder of upstream charts and CRDs>" >&2; exit 2; }
	$(PY) -m engine.reference_build $(SOURCE) --check

## engine-tools: build the real pulumi CLI, language host, Kubernetes provider, kube-apiserver,
## kube-controller-manager and etcd from the Go module proxy into .engine-tools/bin/ (cached per version
## in ~/.cache/platform-engine-tools; a second run takes seconds). See docs/engine.md.
engine-tools: $(VENV_STAMP)
	PYTHON=$(abspath $(PY)) bash engine/tools/build.sh

## cluster-up: etcd + kube-apiserver on loopback with the reference CRDs (and STACK's namespaces when
## STACK is given on the command line); kubeconfig in build/cluster/kubeconfig. cluster-down stops it.
cluster-up: $(VENV_STAMP)
	$(PY) -m engine.real.cluster up $(if $(filter command line environment,$(origin STACK)),--stack $(STACK))

cluster-down: $(VENV_STAMP)
	$(PY) -m engine.real.cluster down

## server-check: server-side dry run of every object STACK renders against the local cluster
## (make cluster-up first); exit 1 on any rejection
server-check: $(VENV_STAMP)
	test -d build/$(STACK)/manifests || $(PY) -m engine.preview $(STACK)
	$(PY) -m engine.real.server_check $(STACK)

## up-local: the real Pulumi CLI's cycle (up, preview --expect-no-changes, one image bump, destroy) on
## STACK against its own fresh local cluster; writes build/$(STACK)/up-local.json
up-local: $(VENV_STAMP)
	test -d build/$(STACK)/manifests || $(PY) -m engine.preview $(STACK)
	$(PY) -m engine.real.up_local $(STACK)
