# flopcut build. `make` builds build/flopcut and the libraries; `make test` installs what tests
# need and runs unit tests under ASan+UBSan plus the integration suite; `make demo` runs the demo.
CC      ?= gcc
BUILD   ?= build
GEN     := $(BUILD)/gen
PROTO   ?= /usr/include/onnx/onnx.proto

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -fPIC -fopenmp $(WARN) $(CFLAGS) -Iinclude -Isrc -I$(GEN)
LDLIBS  := -lprotobuf-c -ldnnl -lz -lm -fopenmp

LIB_SRC := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
GEN_SRC := $(GEN)/onnx.pb-c.c
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))

REL_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/gen/onnx.pb-c.o
ASAN_OBJ := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRC)) $(BUILD)/asan/gen/onnx.pb-c.o
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

.PHONY: all deps test test-unit test-py test-slow demo fuzz bench bench-kernels clean lint
all: $(BUILD)/flopcut $(BUILD)/libflopcut.a $(BUILD)/libflopcut.so

deps:
	@tools/install-deps.sh build

$(GEN)/onnx.pb-c.c $(GEN)/onnx.pb-c.h: $(PROTO)
	@mkdir -p $(GEN)
	cp $(PROTO) $(GEN)/onnx.proto
	cd $(GEN) && protoc-c --c_out=. onnx.proto

$(BUILD)/obj/gen/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -fPIC $(CFLAGS) -I$(GEN) -c $< -o $@
$(BUILD)/asan/gen/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -fPIC -O1 -g $(SAN) -I$(GEN) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/asan/%.o: %.c $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/libflopcut.a: $(REL_OBJ)
	ar rcs $@ $^
$(BUILD)/libflopcut.so: $(REL_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)
$(BUILD)/flopcut: $(patsubst %.c,$(BUILD)/obj/%.o,$(CLI_SRC)) $(BUILD)/libflopcut.a
	$(CC) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/flopcut: $(patsubst %.c,$(BUILD)/asan/%.o,$(CLI_SRC)) $(ASAN_OBJ)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/unit_tests: $(patsubst %.c,$(BUILD)/asan/%.o,$(UNIT_SRC)) $(ASAN_OBJ)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

test: 
	@tools/install-deps.sh test
	@$(MAKE) --no-print-directory all $(BUILD)/asan/flopcut $(BUILD)/asan/unit_tests
	@$(MAKE) --no-print-directory test-unit test-py

test-unit: $(BUILD)/asan/unit_tests
	$(BUILD)/asan/unit_tests tests/data

test-py: $(BUILD)/asan/flopcut $(BUILD)/flopcut
	FLOPCUT_BIN=$(BUILD)/asan/flopcut python3 -m pytest -q tests/py

# The seven torchvision reference models (exported once into build/models, ~550 MB).
test-slow: all
	@tools/install-deps.sh test
	FLOPCUT_SLOW=1 python3 -m pytest -q tests/py

demo: 
	@tools/install-deps.sh demo
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

# flopcut vs ONNX Runtime on ResNet-50, MobileNetV2, EfficientNet-B0, ViT-B/16 at 1 and 2 threads
# (runs interleaved), and peak RSS of `flopcut run` on ResNet-50. BENCH_ARGS="--iters 50" etc.
bench: all
	@tools/install-deps.sh bench
	python3 tools/bench.py $(BENCH_ARGS)

# Sparse kernels vs oneDNN dense on ResNet-50 layer shapes (1 thread). BENCH_KERNELS_ARGS="--threads 2" etc.
bench-kernels: $(BUILD)/bench_kernels
	OMP_NUM_THREADS=1 $(BUILD)/bench_kernels $(BENCH_KERNELS_ARGS)
$(BUILD)/bench_kernels: bench/bench_kernels.c $(BUILD)/libflopcut.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libflopcut.a $(LDLIBS)

FUZZ_SECONDS ?= 60
fuzz: $(GEN)/onnx.pb-c.h
	@tools/install-deps.sh test
	tools/fuzz.sh $(FUZZ_SECONDS)

lint:
	clang-tidy $(LIB_SRC) $(CLI_SRC) -- -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc -I$(GEN)
	cppcheck --quiet --enable=warning,portability --std=c11 -Iinclude -Isrc src

clean:
	rm -rf $(BUILD)/obj $(BUILD)/asan $(BUILD)/gen $(BUILD)/flopcut $(BUILD)/lib* $(BUILD)/fuzz

-include $(shell find $(BUILD)/obj $(BUILD)/asan -name '*.d' 2>/dev/null)
