# Crossdesk: the two commands of the README, and a few helpers.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: local test send-samples fmt lint fuzz

## Run Crossdesk locally on an embedded database (no AWS account needed).
local:
	./scripts/with-local-env $(CARGO) run --locked --bin crossdesk-local

## Run every check and test: formatting, clippy, unit, contract and end-to-end tests.
test:
	./scripts/test

## Sign every sample in events/ and post it to the running local stack.
send-samples:
	./scripts/with-local-env $(CARGO) run --locked --quiet --bin crossdesk-send -- $$(ls events/facebook/*.json events/twitter/*.json events/email/*.eml events/chat/*.json)

## Fuzz the channel parsers (README, "Fuzzing"): every target, or TARGET=name; SECONDS per target.
fuzz:
	CROSSDESK_FUZZ_SECONDS=$(or $(SECONDS),30) ./scripts/fuzz $(TARGET)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# ---- Deploying to AWS (README, "Deploying to AWS") -------------------------------------------
# The tools (SAM CLI, cargo-lambda, zig; pinned in infra/requirements-deploy.txt) go into .venv
# the first time one of these targets runs. STACK=name and AWS_REGION=region override the
# answers `sam deploy --guided` saved in infra/samconfig.toml.
FUNCTIONS := $(notdir $(patsubst %/Cargo.toml,%,$(wildcard functions/*/Cargo.toml)))
DEPLOY_ENV := PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1
STACK_TOOL := $(CURDIR)/.venv/bin/python $(CURDIR)/infra/stack.py $(if $(STACK),--stack $(STACK)) $(if $(AWS_REGION),--region $(AWS_REGION))

.PHONY: deploy-tools build-lambdas deploy outputs secrets email-activate teardown

## Install the deployment tools into .venv (done by the targets below when needed).
deploy-tools:
	./infra/ensure-deploy-tools

## Cross-compile every function for Lambda (arm64) into target/lambda/<function>/bootstrap.
build-lambdas: deploy-tools
	$(DEPLOY_ENV) $(CARGO) lambda build --release --arm64 --locked $(addprefix --package ,$(FUNCTIONS))

## Build and deploy the stack: `sam deploy --guided` the first time (it saves infra/samconfig.toml),
## then `sam deploy` with those answers. DEPLOY_ARGS='--parameter-overrides K=V ...' adds options.
deploy: deploy-tools
	cd infra && $(DEPLOY_ENV) sam build
	cd infra && if [ -f samconfig.toml ]; then \
	  $(DEPLOY_ENV) sam deploy $(if $(STACK),--stack-name $(STACK)) $(if $(AWS_REGION),--region $(AWS_REGION)) $(DEPLOY_ARGS); \
	else \
	  $(DEPLOY_ENV) sam deploy --guided --capabilities CAPABILITY_IAM $(if $(STACK),--stack-name $(STACK)) $(if $(AWS_REGION),--region $(AWS_REGION)) $(DEPLOY_ARGS); \
	fi
	$(STACK_TOOL) outputs

## The stack's outputs: webhook URLs, support address, queue URLs, table, bucket, secret, user pool.
outputs: deploy-tools
	$(STACK_TOOL) outputs

## Fill the channel secret from SECRETS_FILE (a JSON object) and/or CROSSDESK_* variables, merged
## with what it holds; prints the keys it set, never a value.
secrets: deploy-tools
	$(STACK_TOOL) secrets $(if $(SECRETS_FILE),--file $(SECRETS_FILE))

## Make the stack's SES receipt rule set the active one (FORCE=1 replaces another active set).
email-activate: deploy-tools
	$(STACK_TOOL) email-activate $(if $(FORCE),--force)

## Delete the stack. The table and the bucket are kept (DeletionPolicy: Retain); see the README.
teardown: deploy-tools
	$(STACK_TOOL) before-delete
	cd infra && $(DEPLOY_ENV) sam delete $(if $(STACK),--stack-name $(STACK)) $(if $(AWS_REGION),--region $(AWS_REGION)) $(TEARDOWN_ARGS)
