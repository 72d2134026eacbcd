# Build, test, deploy and clean up the service assembly. `make` lists the targets.
# Works with `docker compose` (v2) and `docker-compose` (v1).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Tests and tools run from the project's own virtualenv: a deployment needs only
# requirements-deploy.txt in it (venv-deploy), every other target requirements-dev.txt too (venv).
PYTHON ?= .venv/bin/python
DEPLOY_TIMEOUT ?= 120
# One line of progress per long step, the step's output in .cache/logs/ (shown when it fails).
STEP := scripts/step.sh
# Builds the images named, or those the compose and stack files given run (all five: none given).
BUILD_IMAGES := PYTHON=$(PYTHON) scripts/build-images.sh

GATEWAY_PROJECT := service-assembly
NGINX_PROJECT := service-assembly-nginx
HAPROXY_PROJECT := service-assembly-haproxy
CADDY_PROJECT := service-assembly-caddy
SWARM_STACK := service-assembly-swarm
SWARM_NGINX_STACK := service-assembly-swarm-nginx
# Expanded when used, not once at start: docker-check may have just installed docker-compose.
COMPOSE = $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi)
COMPOSE_GATEWAY = $(COMPOSE) -p $(GATEWAY_PROJECT) -f docker-compose.yml
COMPOSE_NGINX = $(COMPOSE) -p $(NGINX_PROJECT) -f docker-compose.nginx.yml
COMPOSE_HAPROXY = $(COMPOSE) -p $(HAPROXY_PROJECT) -f docker-compose.haproxy.yml
COMPOSE_CADDY = $(COMPOSE) -p $(CADDY_PROJECT) -f docker-compose.caddy.yml

# Gateway settings for every deployment: gateway.env (or the file GATEWAY_ENV_FILE names) with
# the settings set in the environment laid over it, checked, then written to DEPLOY_ENV, which
# the compose and stack files read as `env_file` (gateway_service/deploy_env.py).
GATEWAY_ENV_FILE ?= gateway.env
DEPLOY_ENV := .cache/gateway.env

# BASE_IMAGE / PYTHON_BASE_IMAGE / NGINX_BASE_IMAGE given on the command line or in the
# environment reach scripts/build-images.sh; otherwise it chooses (see docs/deploy.md).

.PHONY: help venv venv-deploy install-dev docker-check base-image wheels images deploy-env deploy \
	deploy-nginx deploy-haproxy deploy-caddy deploy-swarm deploy-swarm-nginx test-swarm test \
	test-unit test-services test-integration lint down clean clean-all bench bench-smoke loadtest \
	loadtest-smoke k8s-check scan report

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: .venv/.installed ## Create .venv with every development requirement (tests, lint, load test, bench)
venv-deploy: .venv/.deploy ## Create .venv with what deploying and its unit tests need (requirements-deploy.txt)
# Stamp files: .venv/bin/python is a symlink, and touching it would touch the system python.
.venv/.deploy: requirements-deploy.txt gateway_service/requirements.txt storage_service/requirements.txt
	@scripts/venv.sh .venv requirements-deploy.txt
	@touch $@
.venv/.installed: .venv/.deploy requirements-dev.txt
	@scripts/venv.sh .venv requirements-dev.txt
	@touch $@

# The scanners' own virtualenv: checkov's dependencies would fight requirements-dev.txt's pins.
.venv-scan/.installed: requirements-scan.txt
	@scripts/venv.sh .venv-scan requirements-scan.txt
	@touch $@

install-dev: venv ## Same as venv

docker-check:
	@command -v docker >/dev/null 2>&1 || { echo "error: docker is not installed (https://docs.docker.com/engine/install/)" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "error: cannot reach the Docker daemon: is it running, and may user $$(id -un) use it?" >&2; exit 1; }
	@scripts/host-packages.sh compose

base-image: docker-check ## Build the local Debian base image (debootstrap; root). FORCE=1 rebuilds
	@$(STEP) base-image "base image (debootstrap the first time)" scripts/build-base-image.sh

wheels: venv-deploy ## Download the services' pinned requirements as wheels into .cache/wheels
	PYTHON=$(PYTHON) scripts/download-wheels.sh

images: docker-check venv-deploy ## Build all five images, in parallel (BUILD_JOBS=, BASE_IMAGE=... to choose the base)
	@$(BUILD_IMAGES)

deploy-env: venv-deploy ## Check the gateway settings (gateway.env + environment) into .cache/gateway.env
	@$(PYTHON) -m gateway_service.deploy_env $(GATEWAY_ENV_FILE) $(DEPLOY_ENV)

# Build the images one compose deployment runs, start it with the checked settings and wait until
# it is healthy. $(1) compose command (its last word the compose file), $(2) project, $(3) what
# serves, $(4) port variable, $(5) its default, $(6) its endpoints (no commas: they would split
# the call's arguments).
define compose_up
	@$(BUILD_IMAGES) $(lastword $(1))
	@$(STEP) up-$(2) "$(3) + storage1..3 started and healthy (project $(2))" \
		$(SHELL) -c 'GATEWAY_ENV_FILE=$(DEPLOY_ENV) $(1) up -d && scripts/wait-healthy.sh $(2) $(DEPLOY_TIMEOUT)'
	@echo "$(3) ready: http://127.0.0.1:$${$(4):-$(5)} ($(6))"
endef

# Every deployment first passes the unit tests of the services it deploys, then builds only the
# images it runs.
deploy: docker-check deploy-env test-services ## Build, unit-test and start our gateway + 3 storage services on 127.0.0.1:8000
	$(call compose_up,$(COMPOSE_GATEWAY),$(GATEWAY_PROJECT),gateway,GATEWAY_PORT,8000,GET /data /status /health /metrics)

deploy-nginx: docker-check deploy-env test-services ## Build, unit-test and start nginx + 3 storage services on 127.0.0.1:8080
	$(call compose_up,$(COMPOSE_NGINX),$(NGINX_PROJECT),nginx,NGINX_PORT,8080,GET /data /status /health)

deploy-haproxy: docker-check deploy-env test-services ## Build, unit-test and start HAProxy + 3 storage services on 127.0.0.1:8081
	$(call compose_up,$(COMPOSE_HAPROXY),$(HAPROXY_PROJECT),HAProxy,HAPROXY_PORT,8081,GET /data /status /health)

deploy-caddy: docker-check deploy-env test-services ## Build, unit-test and start Caddy + 3 storage services on 127.0.0.1:8082
	$(call compose_up,$(COMPOSE_CADDY),$(CADDY_PROJECT),Caddy,CADDY_PORT,8082,GET /data /health; no /status)

deploy-swarm: docker-check deploy-env test-services ## Deploy our gateway + STORAGE_REPLICAS (3) storage replicas on Docker Swarm, port 8000
	@$(BUILD_IMAGES) docker-stack.yml
	GATEWAY_ENV_FILE=$(DEPLOY_ENV) scripts/swarm.sh deploy $(SWARM_STACK) docker-stack.yml \
		http://127.0.0.1:$${GATEWAY_PORT:-8000} $(DEPLOY_TIMEOUT)
	@echo "gateway ready on swarm: http://127.0.0.1:$${GATEWAY_PORT:-8000} (docker stack ps $(SWARM_STACK))"

deploy-swarm-nginx: docker-check deploy-env test-services ## The same with nginx in the gateway's place, port 8080
	@$(BUILD_IMAGES) docker-stack.nginx.yml
	GATEWAY_ENV_FILE=$(DEPLOY_ENV) scripts/swarm.sh deploy $(SWARM_NGINX_STACK) docker-stack.nginx.yml \
		http://127.0.0.1:$${NGINX_PORT:-8080} $(DEPLOY_TIMEOUT)
	@echo "nginx ready on swarm: http://127.0.0.1:$${NGINX_PORT:-8080} (docker stack ps $(SWARM_NGINX_STACK))"

test: venv images ## Run all tests: unit, and integration against the images (needs Docker)
	@scripts/host-packages.sh test
	$(PYTHON) -m pytest --durations=25

test-unit: venv ## Run the unit tests of both services, toolkit/, loadcompare/ and scorecard/ (the slow differential test runs in `make test`)
	$(PYTHON) -m pytest -m "not slow" gateway_service/tests storage_service/tests toolkit/tests loadcompare/tests scorecard/tests

test-services: venv-deploy ## Run the unit tests of both services: what every deploy runs first (seconds; once per state of the code)
	@scripts/unit-tests.sh $(PYTHON)

test-integration: venv images ## Run the contract suite against every described gateway in containers (GATEWAY_FILES= adds yours)
	$(PYTHON) -m pytest -m integration tests

# The stacks are removed whatever the outcome, and the swarm left if make initialised it.
test-swarm: venv deploy-env docker-check ## Scale, roll and kill storage under load on both swarm stacks (~4 min; results/swarm/)
	@$(BUILD_IMAGES) docker-stack.yml docker-stack.nginx.yml
	GATEWAY_ENV_FILE=$(DEPLOY_ENV) $(PYTHON) -m pytest -m swarm tests/swarm; \
		status=$$?; scripts/swarm.sh down; exit $$status

lint: venv ## ruff (lint + format check), mypy --strict, the GitHub workflow files (offline)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy .
	$(PYTHON) -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(PYTHON) -m check_jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	.venv/bin/zizmor --offline --quiet .github

# kubernetes-validate and checkov come from the scan virtualenv (requirements-scan.txt).
k8s-check: .venv-scan/.installed ## Render k8s/ and validate it offline: schemas (kubernetes-validate) and checkov
	PATH="$(CURDIR)/.venv-scan/bin:$$PATH" scripts/validate-k8s.sh

loadtest: venv ## Compare both gateways under locust load (~10 min); report in results/loadtest/<time>/
	$(PYTHON) -m loadtests --deploy $(LOADTEST_ARGS)

loadtest-smoke: venv ## Short load comparison for CI on 2 locust workers (<2 min once deployed); fails if a run gave no result
	$(PYTHON) -m loadtests --short --deploy --workers 2 $(LOADTEST_ARGS)

bench: venv ## Benchmark our gateway against nginx, HAProxy and Caddy, at 1 and 2 workers (~15 min; results/bench/)
	@scripts/host-packages.sh bench
	$(PYTHON) -m bench $(BENCH_ARGS)

bench-smoke: venv ## Prove the benchmark works: seconds per gateway, no timing claims (CI)
	@scripts/host-packages.sh bench
	$(PYTHON) -m bench --smoke $(BENCH_ARGS)

report: venv ## The scorecard page from the latest results: results/report/index.html (REPORT_ARGS=--run-missing, --readme)
	$(PYTHON) -m scorecard $(REPORT_ARGS)

scan: .venv-scan/.installed ## Offline scans: hadolint, checkov (Dockerfiles, compose, stack files, k8s/), bandit
	PATH="$(CURDIR)/.venv-scan/bin:$$PATH" scripts/scan.sh

down: docker-check ## Stop every compose and swarm deployment (keeps the images)
	$(COMPOSE_GATEWAY) down -v --remove-orphans
	$(COMPOSE_NGINX) down -v --remove-orphans
	$(COMPOSE_HAPROXY) down -v --remove-orphans
	$(COMPOSE_CADDY) down -v --remove-orphans
	scripts/swarm.sh down

clean: down ## Remove every deployment: containers, networks, volumes, stacks (keeps images and caches)
	@scripts/clean.sh $(GATEWAY_PROJECT) $(NGINX_PROJECT) $(HAPROXY_PROJECT) $(CADDY_PROJECT)

clean-all: down ## clean, plus the project's images, the local base image, the build cache, .cache and .venv-scan
	@ALL=1 scripts/clean.sh $(GATEWAY_PROJECT) $(NGINX_PROJECT) $(HAPROXY_PROJECT) $(CADDY_PROJECT)
