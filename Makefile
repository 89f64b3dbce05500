# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.unframe-installed
# The CPU build of torch lies on this machine's disk; a bare `torch` would pull a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install browser test lint typecheck demo conformance table matrix-table constraints clean fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Everything but torch comes at the exact versions of constraints.txt (see its header).
$(STAMP): $(BIN)/python pyproject.toml setup.py constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP) browser

# The report pages' tests screenshot them in Chromium, from Debian's packages: installed where it
# is missing and apt-get runs as root; never a failed install (those tests then skip, saying why).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && \
	        apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }; \
	    command -v chromium >/dev/null 2>&1 || \
	      echo "make: chromium could not be installed; the browser tests will skip"; \
	  else \
	    echo "make: no chromium, and no apt-get run as root to install it; the browser tests will skip"; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	PYTHONPATH=scripts $(BIN)/lint-imports

typecheck: $(STAMP)
	mkdir -p .typecheck && ln -sfn .. .typecheck/unframe
	MYPYPATH=.typecheck $(BIN)/mypy -p unframe

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -q

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

conformance: $(STAMP)
	for fw in onnx pytorch caffe2 tensorflow coreml tflite; do $(BIN)/unframe conformance --backend $$fw --jobs 2 || exit 1; done
	$(BIN)/python scripts/framework_table.py --write

table: $(STAMP)
	$(BIN)/python scripts/framework_table.py --write

# The README's framework x framework table, measured: `unframe matrix` over the small models
# scripts/matrix_models.py builds; the heat-map page and matrix.json go to $(MATRIX_REPORT).
MATRIX_REPORT ?= build/matrix
matrix-table: $(STAMP)
	$(BIN)/python scripts/framework_table.py --matrix --models build/matrix-models \
		--report $(MATRIX_REPORT) --write

# After a deliberate upgrade inside .venv: rewrites the pins, keeping the file's comment header.
constraints: $(BIN)/python
	{ grep '^#' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
		| grep -v -i -E '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .typecheck build *.egg-info

# The long fuzz run (docs/fuzzing.md): 10,000 seeded mutations per importer in worker processes;
# findings and summary.json go to $(FUZZ_OUT).
FUZZ_CASES ?= 10000
FUZZ_OUT ?= build/fuzz
fuzz: $(STAMP)
	$(BIN)/python scripts/fuzz.py --cases $(FUZZ_CASES) --importer all --jobs 2 --out $(FUZZ_OUT)
