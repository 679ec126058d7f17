# Misalign: `make demo` runs the whole pipeline on the built-in demo, `make test` runs every test.
# Everything builds in release mode: the numerical tests are too slow in debug builds.
SWIFT ?= swift
SWIFTFLAGS ?= -c release -Xswiftc -enable-testing
BIN = $(shell $(SWIFT) build $(SWIFTFLAGS) --show-bin-path 2>/dev/null)

.PHONY: setup build test demo bench clean

setup:
	@bash scripts/setup.sh

# One build of everything, tests included, so `swift test` reuses it instead of rebuilding
# the whole package with test settings (which doubled CI's build time).
build: setup
	$(SWIFT) build $(SWIFTFLAGS) --build-tests

test: build
	$(SWIFT) test $(SWIFTFLAGS) --skip-build

demo: build
	@bash scripts/demo.sh "$(BIN)" "$(MODEL)" "$(JUDGE)"

bench: build
	"$(BIN)/misalign-bench"

clean:
	rm -rf .build
