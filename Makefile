# shoal build. `make` builds build/shoal; `make test` runs unit and integration tests;
# `make test-asan` does the same with AddressSanitizer + UBSan.
CC ?= cc
# No "Entering/Leaving directory" lines: the test runner's summary must end the output.
MAKEFLAGS += --no-print-directory
BUILD ?= build
PKGS := libuv raft sqlite3 libarchive jansson openssl ldns libcurl
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wno-format-truncation -Wno-unknown-warning-option
CFLAGS ?= -O2 -g
SHOAL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS += $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lm

SRC := $(wildcard src/base/*.c src/api/*.c src/store/*.c src/raft/*.c src/manager/*.c \
                  src/agent/*.c src/cli/*.c src/daemon/*.c src/dev/*.c)
LIB_SRC := $(filter-out src/main.c,$(SRC))
OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/ui_assets.o
UI_FILES := $(wildcard src/ui/*.html src/ui/*.js src/ui/*.css)
UNIT_SRC := $(wildcard tests/unit/*.c)

all: $(BUILD)/shoal $(BUILD)/unit_tests

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# The dashboard's files, compiled in (src/api/ui_assets.h).
$(BUILD)/gen/ui_assets.c: $(UI_FILES) scripts/embed_ui.py
	@mkdir -p $(dir $@)
	@echo "  EMBED   $@"
	@/usr/bin/python3 scripts/embed_ui.py $@ $(UI_FILES)

$(BUILD)/gen/ui_assets.o: $(BUILD)/gen/ui_assets.c
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libshoal.a: $(OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/shoal: $(BUILD)/src/main.o $(BUILD)/libshoal.a
	@echo "  LD      $@"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libshoal.a
	@echo "  LD      $@"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test: all
	SHOAL_BIN=$(abspath $(BUILD)/shoal) UNIT_BIN=$(abspath $(BUILD)/unit_tests) \
	  /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/

# Sanitizer reports of every shoal process the tests run go to build-asan/sanitizer/;
# tests/test_zz_sanitizers.py fails when any report is there.
test-asan: export ASAN_OPTIONS = log_path=$(abspath build-asan)/sanitizer/asan
test-asan: export UBSAN_OPTIONS = log_path=$(abspath build-asan)/sanitizer/ubsan:print_stacktrace=1
test-asan: export SHOAL_SANITIZER_DIR = $(abspath build-asan)/sanitizer
test-asan:
	rm -rf build-asan/sanitizer && mkdir -p build-asan/sanitizer
	$(MAKE) BUILD=build-asan CC=clang \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" test

# libFuzzer targets (tests/fuzz/fuzz_*.c, docs/fuzzing.md) in build-fuzz/: the library
# built with coverage instrumentation and ASan+UBSan, each target linked with libFuzzer.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
fuzz:
	@$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="$(FUZZ_CFLAGS)" \
	  LDFLAGS="-fsanitize=fuzzer,address,undefined" fuzz-targets

fuzz-targets: $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%)

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/libshoal.a
	@echo "  LD      $@"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -MMD -MP -o $@ $< $(BUILD)/libshoal.a $(LDLIBS)

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all test test-asan fuzz fuzz-targets clean
-include $(OBJ:.o=.d) $(BUILD)/src/main.d $(UNIT_SRC:%.c=$(BUILD)/%.d) \
         $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%.d)
