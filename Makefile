# crsc — make help lists the targets.
SHELL := /bin/bash
DOTNET ?= dotnet
RESULTS ?= $(CURDIR)/obj/test-results
PUBLISH_DIR := $(CURDIR)/obj/publish
BINARY := bin/crsc
# the interceptor sidecar's own small binary (`crsc interceptor` alone: a Native AOT binary's RSS grows with its size)
INTERCEPTOR_BINARY := bin/crsc-interceptor
PACKAGES_DIR := $(CURDIR)/obj/packages
IMAGE_DIR := $(CURDIR)/obj/image

.PHONY: help build publish test e2e bench demo package image clean deps

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

deps: ## install the Debian packages the build and tests need (root)
	@.ci/deps.sh

build: ## build everything on the JIT (net10.0 for development and tests)
	$(DOTNET) build crsc.sln -nodeReuse:false

publish: ## Native AOT binaries (net10.0, linux-x64) to bin/crsc and bin/crsc-interceptor (the sidecar's)
	$(DOTNET) publish src/Crsc/Crsc.csproj -r linux-x64 -c Release -nodeReuse:false \
	  -p:DebugType=none -o $(PUBLISH_DIR)
	$(DOTNET) publish src/Crsc.InterceptorHost/Crsc.InterceptorHost.csproj -r linux-x64 -c Release -nodeReuse:false \
	  -p:DebugType=none -o $(PUBLISH_DIR)-interceptor
	@mkdir -p bin && install -m 0755 $(PUBLISH_DIR)/crsc $(BINARY) && install -m 0755 $(PUBLISH_DIR)-interceptor/crsc-interceptor $(INTERCEPTOR_BINARY)
	@ls -l $(BINARY) $(INTERCEPTOR_BINARY) && $(BINARY) version

test: publish ## unit and integration tests, and the published binary end to end (prints N passed, N failed)
	@rm -rf $(RESULTS)/unit
	CRSC_BINARY=$(CURDIR)/$(BINARY) tests/run.sh unit $(RESULTS)/unit

e2e: package image ## the real-component suite: CRIU, containerd, registry in a trixie sandbox, package installs, the image (root)
	@rm -rf $(RESULTS)/e2e
	CRSC_BINARY=$(CURDIR)/$(BINARY) CRSC_PACKAGES=$(PACKAGES_DIR) tests/run.sh e2e $(RESULTS)/e2e

bench: publish ## benchmarks: figures and ratios against baselines measured in the same run (checkpoint-overhead-real: root, on tests/sandbox)
	CRSC_BINARY=$(CURDIR)/$(BINARY) $(DOTNET) run -c Release --project tests/Crsc.Benchmarks -- $(BENCH)

demo: ## the demo on real components (root; builds the AOT binary and sets up the sandbox itself, the two overlapping)
	tests/demo/demo.sh

package: publish ## .deb and .rpm in obj/packages (nfpm when installed, else dpkg-deb and rpmbuild from nfpm.yaml)
	@rm -rf $(PACKAGES_DIR) && mkdir -p $(PACKAGES_DIR)
	@v=$$($(BINARY) version --short) && export CRSC_VERSION=$$v && \
	if command -v nfpm >/dev/null 2>&1; then \
	  nfpm package -f nfpm.yaml -p deb -t $(PACKAGES_DIR)/crsc_$${v}_amd64.deb && \
	  nfpm package -f nfpm.yaml -p rpm -t $(PACKAGES_DIR)/crsc-$${v}-1.x86_64.rpm; \
	else \
	  python3 packaging/build-packages.py --config nfpm.yaml --out $(PACKAGES_DIR); \
	fi
	@ls -l $(PACKAGES_DIR)

image: publish ## crsc's container image, an OCI layout tarball in obj/image (Debian packages + bin/crsc and bin/crsc-interceptor, no container engine)
	packaging/build-image.sh $(BINARY) $(IMAGE_DIR)

clean: ## remove build outputs
	rm -rf bin obj
	find src tests -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
