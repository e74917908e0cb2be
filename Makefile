# recmap: the two commands of the README, and a few more.
#   make demo   install what is missing, build the library, the tool and the
#               demo only, run the multi-writer crash demo
#   make test   install what is missing, build, run the whole suite with ctest
#   make bench  recmap against LMDB, same run (docs/BENCHMARKS.md)
#   make fuzz   longer libFuzzer runs (FUZZ_SECONDS per harness)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The demo builds only what it runs: the library, the tool and the demo.
demo: configure
	cmake --build $(BUILD) -j $(JOBS) --target recmap_cli recmap_demo
	$(BUILD)/examples/recmap_demo --tool $(BUILD)/tools/recmap

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	bash bench/run.sh $(BUILD)

fuzz: deps
	bash fuzz/run.sh $${FUZZ_SECONDS:-600}

clean:
	rm -rf $(BUILD)
