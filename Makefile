# exprlmm — `make demo` runs the bundled TCGA ACC example (assoc + the paper's study), `make test` runs the test-suite.
# Both create .venv (Python >= 3.10 with pip) and install the package into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

DEMO_DATA := examples/data/tcga_acc
DEMO_OUT  := demo_output

demo: $(STAMP)
	$(BIN)/exprlmm icna $(DEMO_DATA)/ACC_snp6_nocnv_hg19.seg -o $(DEMO_OUT)/icna.tsv
	$(BIN)/exprlmm assoc --expression $(DEMO_DATA)/ACC_rnaseqv2_rsem_genes_normalized.tsv.gz \
		--samples $(DEMO_DATA)/ACC_samples.tsv --scores $(DEMO_OUT)/icna.tsv --trait icna \
		--log2p1 --model both -o $(DEMO_OUT)/results.tsv
	$(BIN)/python examples/summarize_demo.py $(DEMO_OUT)
	$(BIN)/exprlmm study examples/study/acc.toml -o $(DEMO_OUT)/study

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples tools
	$(BIN)/ruff format --check src tests benchmarks examples tools
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples tools

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples tools
	$(BIN)/ruff check --fix src tests benchmarks examples tools

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_assoc.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
