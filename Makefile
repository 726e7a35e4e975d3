# Template development: `make demo` bakes and exercises the default project, `make test` runs
# the template's test suite. Both install what they need into .venv from requirements-dev.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
BUILD ?= build
DEMO := $(BUILD)/my-ml-project
PYTEST_ARGS ?=
# Where torch comes from for the PyTorch projects the tests bake (empty: the package index).
TORCH_INDEX ?=

.PHONY: help install install-bench lock lint format test demo bench bench-frameworks bench-models bench-privacy bench-encrypted faults clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

LOCKS := {{cookiecutter.project}}/requirements

install: $(VENV)/.installed $(VENV)/interop/.installed ## Create .venv: the generated project's locked dependencies, then the pinned tools
$(VENV)/.installed: requirements-dev.txt $(LOCKS)/dev.lock $(LOCKS)/pytorch.txt $(LOCKS)/rllib.txt $(LOCKS)/tensorflow.txt $(LOCKS)/tune.txt
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCKS)/dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(if $(TORCH_INDEX),--extra-index-url "$(TORCH_INDEX)") -r $(LOCKS)/pytorch.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(if $(TORCH_INDEX),--extra-index-url "$(TORCH_INDEX)") -r $(LOCKS)/rllib.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCKS)/tensorflow.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCKS)/tune.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# tritonclient and schemathesis, which the interoperability tests run against the server.
$(VENV)/interop/.installed: requirements-interop.txt
	[ -x $(VENV)/interop/bin/python ] || $(PYTHON) -m venv $(VENV)/interop
	$(VENV)/interop/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-interop.txt
	touch $@

install-bench: $(VENV)/bench/.installed $(VENV)/interop/.installed ## The benchmark's other servers: BentoML in .venv/bench, Triton in .venv/interop
$(VENV)/bench/.installed: requirements-bench.txt
	[ -x $(VENV)/bench/bin/python ] || $(PYTHON) -m venv $(VENV)/bench
	$(VENV)/bench/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

lock: install ## Re-lock the generated project's dependencies (uv, needs the package index)
	rm -rf $(BUILD)/lock
	$(BIN)/cookiecutter . --no-input --output-dir $(BUILD)/lock python_version=3.10
	# The encrypted image installs serve.lock, then encrypted.lock: the same pins plus TenSEAL.
	for extra in dev serve encrypted; do \
	  $(BIN)/uv pip compile $(BUILD)/lock/my-ml-project/pyproject.toml --extra $$extra \
	    $$([ $$extra = encrypted ] && echo --constraint $(LOCKS)/serve.lock) \
	    --universal --python-version 3.10 --generate-hashes --no-header --no-annotate \
	    -o $(LOCKS)/$$extra.lock && \
	  sed -i "1i # The project's \`$$extra\` dependencies for every platform and Python >= 3.10, each file's SHA-256\n# checked on install: pip install --require-hashes -r requirements/$$extra.lock\n# Written by the template's \`make lock\` (uv pip compile --universal); do not edit by hand." $(LOCKS)/$$extra.lock || exit 1; \
	done

lint: install ## ruff on hooks, tests and actions
	$(BIN)/ruff check hooks tests actions benchmarks
	$(BIN)/ruff format --check hooks tests actions benchmarks

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix hooks tests actions benchmarks
	$(BIN)/ruff format hooks tests actions benchmarks

# --durations: the slowest tests, to keep .ci/run within its 45 minutes as the suite grows.
test: lint ## The template's tests: generation matrix, hooks, pipeline end to end
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25 $(PYTEST_ARGS)

demo: install ## Bake the default project into build/ and run its whole demo
	rm -rf $(DEMO) $(BUILD)/my-ml-project-dvc-storage
	$(BIN)/cookiecutter . --no-input --output-dir $(BUILD)
	$(MAKE) -C $(DEMO) demo VENV=$(abspath $(VENV))
	@echo "Demo project: $(DEMO) (cd there and run 'make help')"

BENCH_ARGS ?=
bench: install install-bench ## Serving benchmark of the demo project against MLflow, FastAPI, BentoML, Triton (after make demo; needs wrk)
	$(BIN)/python benchmarks/serve_vs_mlflow.py --project $(DEMO) $(BENCH_ARGS)
	$(BIN)/python benchmarks/serve_vs_mlflow.py --project $(DEMO) --rows 1000 --connections 4 $(BENCH_ARGS)

bench-frameworks: install ## Per task and framework: dvc repro and training time, serving vs mlflow models serve, image size, fine-tuning vs from scratch (needs wrk and Docker)
	$(BIN)/python benchmarks/frameworks.py --image

bench-models: install ## scikit-learn classifiers and Fairlearn mitigation: training time, quality, fairness, parity
	$(BIN)/python benchmarks/sklearn_models.py
	$(BIN)/python benchmarks/sklearn_models.py --biased

bench-privacy: install ## Differentially private training: accuracy and time against non-private, per epsilon
	$(BIN)/python benchmarks/private_training.py

bench-encrypted: install ## Encrypted inference: latency per row, bytes per request, context size, against plaintext
	$(BIN)/python benchmarks/encrypted_inference.py
	$(BIN)/python benchmarks/private_training.py --framework pytorch --repeats 5

faults: install ## Fault figures of the demo project's server: slow bodies, saturation, SIGTERM (after make demo)
	ulimit -n 4096 && $(BIN)/python benchmarks/faults.py --project $(DEMO)

clean: ## Remove build output (keeps .venv)
	rm -rf $(BUILD) .pytest_cache .ruff_cache
