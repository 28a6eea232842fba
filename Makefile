# Carnet — developer commands. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MANAGE := $(PY) manage.py
HOST ?= 127.0.0.1
PYTEST_ARGS ?= -n 2 --durations=15
PORT ?= 8000

.PHONY: run test lint fmt migrations-check check-deploy messages bench clean 

# A virtualenv made with a Python older than 3.12 is thrown away and rebuilt.
ifneq ($(wildcard $(PY)),)
ifneq ($(shell $(PY) -c 'import sys; print(sys.version_info >= (3, 12))' 2>/dev/null),True)
$(shell rm -rf $(VENV))
endif
endif

$(PY):
	@python=$$(scripts/find-python) || exit 1; \
	 echo "Creating $(VENV) with $$python"; \
	 "$$python" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	@echo "Installing Carnet's Python packages (a minute or two the first time)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	@echo "Installing Carnet's Python packages and test tools (a minute or two the first time)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

locale/fr/LC_MESSAGES/django.mo: locale/fr/LC_MESSAGES/django.po | $(VENV)/.installed
	DEBUG=1 $(MANAGE) compilemessages --ignore=.venv -v0

## run: install, migrate, load demo data, start web server + Celery worker and beat (Ctrl-C stops all)
run: export DEBUG ?= 1
run: $(VENV)/.installed locale/fr/LC_MESSAGES/django.mo
	@scripts/check-port "$(HOST)" "$(PORT)"
	@mkdir -p var
	$(MANAGE) migrate --no-input -v0
	$(MANAGE) seed_demo
	@scripts/run-dev "$(HOST)" "$(PORT)"

# With DATABASE_URL, the pages are also rendered on SQLite (what make run uses without
# it): every role's home, the demo logins, the dashboard, the records pages, messaging's
# access table. A query SQLite refuses fails here, not in someone's first make run. The
# tables come from the models (--nomigrations: makemigrations --check holds them equal).
SQLITE_SMOKE = --nomigrations tests/portal/test_pages.py tests/portal/test_seed_demo.py \
	tests/portal/test_access_logging.py tests/records/test_dashboard_feed.py tests/records/test_records_pages_cost.py \
	tests/portal/test_union.py tests/messaging/test_access.py

## test: install test dependencies and run the whole suite (and, with DATABASE_URL, the pages on SQLite too)
test: $(VENV)/.installed-dev locale/fr/LC_MESSAGES/django.mo
	$(BIN)/pytest $(PYTEST_ARGS)
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "--- the pages on SQLite too (make run without DATABASE_URL)"; \
		env -u DATABASE_URL $(BIN)/pytest $(PYTEST_ARGS) $(SQLITE_SMOKE); \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: $(VENV)/.installed
	DEBUG=1 $(MANAGE) makemigrations --check --dry-run

## check-deploy: Django's deployment checks under production-like settings
# (an operator as a real one would be named: the placeholders are flagged, carnet.W001)
check-deploy: $(VENV)/.installed
	DEBUG=0 SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=carnet.example \
	 DOCUMENT_KEYS=k1:$$(head -c 32 /dev/urandom | base64) \
	 OPERATOR_NAME='Centre hospitalier de Carnet' OPERATOR_ADDRESS='1 rue de la Santé, 75014 Paris' \
	 OPERATOR_HOSTING='Hébergeur de données de santé certifié HDS (exemple)' \
	 SUPPORT_EMAIL=support@carnet.example DPO_EMAIL=dpo@carnet.example \
	 $(MANAGE) check --deploy --fail-level WARNING

## messages: extract translatable strings into locale/fr and compile them
messages: $(VENV)/.installed
	DEBUG=1 $(MANAGE) makemessages -l fr --ignore=.venv --ignore=var --no-obsolete
	DEBUG=1 $(MANAGE) compilemessages --ignore=.venv

## bench: speed figures on synthetic data (uses DATABASE_URL's server when set)
bench: $(VENV)/.installed-dev
	$(PY) -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) var
