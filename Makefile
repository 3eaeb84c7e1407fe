# The two commands of the README: `make demo` (main job, embedded defaults) and `make test`.
SHELL := /bin/bash
export SOHOA_HOME ?= $(CURDIR)/var/demo

.PHONY: setup setup-services demo test bench clean

setup:
	bash scripts/setup.sh

setup-services:
	bash scripts/setup.sh --with-services

demo: setup
	.venv/bin/sohoa init --if-missing
	.venv/bin/sohoa demo

test: setup-services
	bash scripts/test.sh

clean:
	rm -rf var .pytest_cache
