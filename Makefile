# Misalign: `make demo` runs the whole pipeline on the built-in demo, `make test` runs every test.
# Everything builds in release mode: the numerical tests are too slow in debug builds.
SWIFT ?= swift
SWIFTFLAGS ?= -c release -Xswiftc -enable-testing
BIN = $(shell $(SWIFT) build $(SWIFTFLAGS) --show-bin-path 2>/dev/null)

.PHONY: setup build test demo bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT) build $(SWIFTFLAGS)

test: build
	$(SWIFT) test $(SWIFTFLAGS)

demo: build
	@bash scripts/demo.sh "$(BIN)"

bench: build
	"$(BIN)/misalign-bench"

clean:
	rm -rf .build
