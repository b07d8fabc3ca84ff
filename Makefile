# Crossdesk: the two commands of the README, and a few helpers.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: local test send-samples fmt lint

## Run Crossdesk locally on an embedded database (no AWS account needed).
local:
	./scripts/with-local-env $(CARGO) run --locked --bin crossdesk-local

## Run every check and test: formatting, clippy, unit, contract and end-to-end tests.
test:
	./scripts/test

## Sign every sample in events/ and post it to the running local stack.
send-samples:
	./scripts/with-local-env $(CARGO) run --locked --quiet --bin crossdesk-send -- $$(ls events/facebook/*.json events/twitter/*.json events/email/*.eml events/chat/*.json)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
