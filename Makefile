# Build, test, deploy and clean up the service assembly. `make` lists the targets.
# Works with `docker compose` (v2) and `docker-compose` (v1).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Tests and tools run from the project's own virtualenv, which `make venv` (a prerequisite) creates.
PYTHON ?= .venv/bin/python
DEPLOY_TIMEOUT ?= 120

GATEWAY_PROJECT := service-assembly
NGINX_PROJECT := service-assembly-nginx
COMPOSE := $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)
COMPOSE_GATEWAY = $(COMPOSE) -p $(GATEWAY_PROJECT) -f docker-compose.yml
COMPOSE_NGINX = $(COMPOSE) -p $(NGINX_PROJECT) -f docker-compose.nginx.yml

# BASE_IMAGE / PYTHON_BASE_IMAGE / NGINX_BASE_IMAGE given on the command line or in the
# environment reach scripts/build-images.sh; otherwise it chooses (see docs/deploy.md).

.PHONY: help venv install-dev docker-check base-image wheels images deploy deploy-nginx \
	test test-unit test-integration lint down clean clean-all bench bench-smoke loadtest loadtest-smoke

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: .venv/.installed ## Create .venv and install the development requirements
# A stamp file: .venv/bin/python is a symlink, and touching it would touch the system python.
.venv/.installed: requirements-dev.txt gateway_service/requirements.txt storage_service/requirements.txt
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

install-dev: venv ## Same as venv

docker-check:
	@command -v docker >/dev/null 2>&1 || { echo "error: docker is not installed (https://docs.docker.com/engine/install/)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: cannot reach the Docker daemon: is it running, and may user $$(id -un) use it?" >&2; exit 1; }
	@test -n "$(COMPOSE)" || { echo "error: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed" >&2; exit 1; }

base-image: docker-check ## Build the local Debian base image (debootstrap; root). FORCE=1 rebuilds
	scripts/build-base-image.sh

wheels: venv ## Download the services' pinned requirements as wheels into .cache/wheels
	PYTHON=$(PYTHON) scripts/download-wheels.sh

images: docker-check wheels ## Build the storage, gateway and nginx images (BASE_IMAGE=... to choose the base)
	scripts/build-images.sh

deploy: images test-unit ## Build, unit-test and start our gateway + 3 storage services on 127.0.0.1:8000
	$(COMPOSE_GATEWAY) up -d
	scripts/wait-healthy.sh $(GATEWAY_PROJECT) $(DEPLOY_TIMEOUT)
	@echo "gateway ready: http://127.0.0.1:$${GATEWAY_PORT:-8000} (GET /data, /status, /health, /metrics)"

deploy-nginx: images test-unit ## Build, unit-test and start nginx + 3 storage services on 127.0.0.1:8080
	$(COMPOSE_NGINX) up -d
	scripts/wait-healthy.sh $(NGINX_PROJECT) $(DEPLOY_TIMEOUT)
	@echo "nginx ready: http://127.0.0.1:$${NGINX_PORT:-8080} (GET /data, /status, /health)"

test: venv images ## Run all tests: unit, and integration against the images (needs Docker)
	$(PYTHON) -m pytest

test-unit: venv ## Run the unit tests of both services (the slow differential test runs in `make test`)
	$(PYTHON) -m pytest -m "not slow" gateway_service/tests storage_service/tests

test-integration: venv images ## Run the contract suite against both gateways in containers
	$(PYTHON) -m pytest -m integration tests

lint: venv ## ruff (lint + format check) and mypy --strict
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy .

loadtest: venv ## Compare both gateways under locust load (~10 min); report in results/loadtest/<time>/
	$(PYTHON) -m loadtests --deploy $(LOADTEST_ARGS)

loadtest-smoke: venv ## Short load comparison for CI (<2 min once deployed); fails if a run gave no result
	$(PYTHON) -m loadtests --short --deploy $(LOADTEST_ARGS)

bench: venv ## Benchmark our gateway against nginx and HAProxy (~6 min; results/bench/)
	$(PYTHON) -m bench $(BENCH_ARGS)

bench-smoke: venv ## Prove the benchmark works: seconds per gateway, no timing claims (CI)
	$(PYTHON) -m bench --smoke $(BENCH_ARGS)

down: docker-check ## Stop both deployments (keeps the images)
	$(COMPOSE_GATEWAY) down -v --remove-orphans
	$(COMPOSE_NGINX) down -v --remove-orphans

clean: down ## Remove both deployments: containers, networks and project images (keeps the base image)
	scripts/clean.sh $(GATEWAY_PROJECT) $(NGINX_PROJECT)

clean-all: down ## clean, plus the local base image and .cache (wheels, rootfs)
	ALL=1 scripts/clean.sh $(GATEWAY_PROJECT) $(NGINX_PROJECT)
