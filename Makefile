# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.unframe-installed
# The CPU build of torch lies on this machine's disk; a bare `torch` would pull a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test lint typecheck demo conformance table constraints clean fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Everything but torch comes at the exact versions of constraints.txt (see its header).
$(STAMP): $(BIN)/python pyproject.toml setup.py constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

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
	for fw in onnx pytorch caffe2 tensorflow coreml; do $(BIN)/unframe conformance --backend $$fw || exit 1; done
	$(BIN)/python scripts/framework_table.py --write

table: $(STAMP)
	$(BIN)/python scripts/framework_table.py --write

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
