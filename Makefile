# Two commands: `make run` (set up, index the seeds, start the assistant) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install run test bench-xquad constraints clean

$(BIN)/assistant: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $@

install: $(BIN)/assistant

# Index seeds/ when the index is empty, then start a conversation in the terminal.
run: install
	@$(BIN)/python -c "from assistant import Assistant; import sys; sys.exit(Assistant.from_config().status().chunks == 0)" \
		|| $(BIN)/assistant ingest seeds/
	$(BIN)/assistant chat

test: install
	$(BIN)/python -m pytest

# XQuAD retrieval, Arabic paragraphs: Arabic questions, then English questions.
bench-xquad: install
	$(BIN)/assistant bench squad --retrieval-only --data evals/xquad/xquad.ar.json --json out/bench-xquad-ar.json
	$(BIN)/assistant bench squad --retrieval-only --data evals/xquad/xquad.ar.json \
		--questions evals/xquad/xquad.en.json --json out/bench-xquad-en.json

constraints: install
	(echo "# Exact versions used by make and CI (pip install -c constraints.txt). Regenerate with"; \
	 echo "# 'make constraints' after changing dependencies in pyproject.toml."; \
	 $(BIN)/pip freeze --exclude-editable) > constraints.txt

clean:
	rm -rf $(VENV) data out
