# reckon's make targets. The tests run with scripts/test.sh (CI runs
# exactly that); these are conveniences around the scripts.

LAB_NAME ?= demo
LAB_STATE_DIR ?= /run/reckon-lab

.PHONY: help lab-up lab-down lab-status

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

lab-up: ## build the standard test network and leave it running (root; LAB_NAME=demo)
	scripts/lab.sh up --name $(LAB_NAME) --state-dir $(LAB_STATE_DIR)

lab-down: ## stop the test network and remove its namespaces and files
	scripts/lab.sh down --name $(LAB_NAME) --state-dir $(LAB_STATE_DIR)

lab-status: ## say whether the test network is up and healthy, and what is in it
	scripts/lab.sh status --name $(LAB_NAME) --state-dir $(LAB_STATE_DIR)
