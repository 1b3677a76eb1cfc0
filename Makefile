# Two commands do all the set-up on a fresh machine:
#   make serve   venv + install + build llama.cpp (cached) + assemble Gemma + serve it on 127.0.0.1:8080
#   make test    the same set-up, then every test
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)
CONFIG  ?= configs/config_gemma3_270m_cpu.yaml
PYTEST_ARGS ?=

.PHONY: install build serve test test-fast bench clean proto browser

$(STAMP):
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The Python bindings (extra `bindings`) without their own compile: they load our build's libllama.
	CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" $(BIN)/pip install -q -e '.[test,bindings]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

build: install
	$(BIN)/launch build --config $(CONFIG)

serve: build
	$(BIN)/launch --config $(CONFIG)

# The console's browser test drives Debian's chromium (no browser download works here).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { echo "installing Debian's chromium and chromium-driver for the console's browser test"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null || \
	    { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }; }

# Exit code 5 (no tests collected) must not pass as green.
test: build browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests ran"; exit 1; fi; exit $$rc

test-fast: install
	$(BIN)/python -m pytest -q -m "not real" $(PYTEST_ARGS)

# The KServe v2 gRPC messages module is checked in; regenerate it after editing the .proto (a test compares).
proto: install
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. launcher/protocols/kserve/grpc_predict_v2.proto

clean:
	rm -rf $(VENV) *.egg-info
