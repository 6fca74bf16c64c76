# shoal build. `make` builds build/shoal; `make test` runs unit and integration tests;
# `make test-asan` does the same with AddressSanitizer + UBSan.
CC ?= cc
# No "Entering/Leaving directory" lines: the test runner's summary must end the output.
MAKEFLAGS += --no-print-directory
# Cross builds: `make ARCH=armhf` or `make ARCH=arm64` (Debian architecture names) build into
# build-ARCH/ with Debian's cross compiler, against a sysroot of the target's Debian
# libraries that scripts/sysroot.sh downloads into build-ARCH/sysroot (docs/packaging.md).
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
# only from the command line: some environments export ARCH=x86_64 and the like
ifneq ($(origin ARCH),command line)
ARCH := $(HOST_ARCH)
endif
ifneq ($(ARCH),$(HOST_ARCH))
TRIPLET := $(or $(word 2,$(subst :, ,$(filter $(ARCH):%,armhf:arm-linux-gnueabihf \
             arm64:aarch64-linux-gnu amd64:x86_64-linux-gnu))),$(error unknown ARCH $(ARCH)))
BUILD ?= build-$(ARCH)
SYSROOT ?= $(abspath $(BUILD))/sysroot
CC := $(TRIPLET)-gcc --sysroot=$(SYSROOT)
PKG_CONFIG := PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/$(TRIPLET)/pkgconfig:$(SYSROOT)/usr/share/pkgconfig pkg-config
ifeq ($(filter clean,$(MAKECMDGOALS)),)
ifneq ($(shell scripts/sysroot.sh $(ARCH) $(SYSROOT) >&2 && echo ok),ok)
$(error scripts/sysroot.sh $(ARCH) failed)
endif
endif
endif
PKG_CONFIG ?= pkg-config
BUILD ?= build
PKGS := libuv raft sqlite3 libarchive jansson openssl ldns libcurl yaml-0.1
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wno-format-truncation -Wno-unknown-warning-option
CFLAGS ?= -O2 -g
SHOAL_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -Isrc $(shell $(PKG_CONFIG) --cflags $(PKGS))
# libcurl, libarchive and libyaml are not linked: src/base/curl_lazy.c, archive_lazy.c and
# yaml_lazy.c load them when first called (CLI start-up, daemon's memory); nor are raft,
# sqlite3, openssl and ldns: the stubs of src/base/lazy_stubs.S load them (the functions
# shoal calls are in src/base/lazy_stubs.def).
STUBBED_PKGS := raft sqlite3 openssl ldns
LDLIBS += $(shell $(PKG_CONFIG) --libs $(filter-out libcurl libarchive yaml-0.1 $(STUBBED_PKGS),$(PKGS))) -lhttp_parser -lm

# Relative relocations packed (DT_RELR, glibc 2.36): shoal's .rela.dyn of 68 kB, all read at
# each start, becomes 0.7 kB: 64 kB less RSS in every shoal process (docs/benchmarks.md,
# Session 11). Only where the linker knows the flag (binutils 2.40 does for amd64, not for
# Debian's arm cross linkers).
RELR_LDFLAGS := $(shell echo 'int main(void) { return 0; }' | $(CC) -x c - -o /dev/null \
                  -Wl,-z,pack-relative-relocs -Wl,--fatal-warnings 2>/dev/null && \
                  echo -Wl,-z,pack-relative-relocs)

SRC := $(wildcard src/base/*.c src/tls/*.c src/model/*.c src/api/*.c src/http/*.c src/store/*.c src/raft/*.c \
                  src/manager/*.c src/agent/*.c src/cli/*.c src/daemon/*.c src/dev/*.c)
LIB_SRC := $(filter-out src/main.c,$(SRC))
OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/src/base/lazy_stubs_S.o $(BUILD)/gen/ui_assets.o
UI_FILES := $(wildcard src/ui/*.html src/ui/*.js src/ui/*.css)
UNIT_SRC := $(wildcard tests/unit/*.c)

# The OAR commands are shoal under their names (src/cli/cli_oar.c): links beside it.
OAR_CMDS := oarsub oarstat oardel oarnodes oarhold oarresume

all: $(BUILD)/shoal $(BUILD)/unit_tests $(OAR_CMDS:%=$(BUILD)/%)

$(OAR_CMDS:%=$(BUILD)/%):
	@mkdir -p $(dir $@)
	@ln -sfn shoal $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/src/base/lazy_stubs_S.o: src/base/lazy_stubs.S
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	@$(CC) -Isrc $(CFLAGS) -MMD -MP -c $< -o $@

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
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) $(RELR_LDFLAGS) -o $@ $^ $(LDLIBS)

# The unit tests make archives with more of libarchive than shoal uses, and call more of the
# stubbed libraries: linked (shoal's own calls still go through the stubs).
$(BUILD)/unit_tests: $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libshoal.a
	@echo "  LD      $@"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) \
	  $(shell $(PKG_CONFIG) --libs libarchive $(STUBBED_PKGS))

# The job scheduler's benchmark (bench/sched_bench.c): `make bench`, then
# build/sched_bench [JOBS [NODES [CORES]]]; not part of the tests.
bench: $(BUILD)/sched_bench $(BUILD)/orch_bench

$(BUILD)/sched_bench: $(BUILD)/bench/sched_bench.o $(BUILD)/libshoal.a
	@echo "  LD      $@"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The orchestrator pass's benchmark (bench/orch_bench.c): build/orch_bench
# [SERVICES [REPLICAS [NODES]]].
$(BUILD)/orch_bench: $(BUILD)/bench/orch_bench.o $(BUILD)/libshoal.a
	@echo "  LD      $@"
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test: all
	SHOAL_BIN=$(abspath $(BUILD)/shoal) UNIT_BIN=$(abspath $(BUILD)/unit_tests) \
	  /usr/bin/python3 -m pytest -v -p no:cacheprovider --durations=30 tests/

# Sanitizer reports of every shoal process the tests run go to build-asan/sanitizer/;
# tests/test_zz_sanitizers.py fails when any report is there.
test-asan: export ASAN_OPTIONS = log_path=$(abspath build-asan)/sanitizer/asan
test-asan: export UBSAN_OPTIONS = log_path=$(abspath build-asan)/sanitizer/ubsan:print_stacktrace=1
test-asan: export SHOAL_SANITIZER_DIR = $(abspath build-asan)/sanitizer
test-asan:
	rm -rf build-asan/sanitizer && mkdir -p build-asan/sanitizer
	+$(ASAN_MAKE) test

# Only the build of build-asan/ (scripts/test.sh runs it at low priority during `make test`).
asan:
	+$(ASAN_MAKE) all

ASAN_MAKE = $(MAKE) BUILD=build-asan CC=clang \
  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
  LDFLAGS="-fsanitize=address,undefined"

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
	@$(CC) $(SHOAL_CFLAGS) $(CFLAGS) $(LDFLAGS) -MMD -MP -o $@ $< $(BUILD)/libshoal.a $(LDLIBS) \
	  $(shell $(PKG_CONFIG) --libs $(STUBBED_PKGS))

# Debian package: `make deb` (this machine's architecture) or `make deb ARCH=armhf|arm64` gives
# build-deb-ARCH/shoal_VERSION_ARCH.deb, built with Debian's hardening flags (dpkg-buildflags)
# by scripts/package.sh (docs/packaging.md).
DEB_FLAGS = $(shell DEB_HOST_ARCH=$(ARCH) DEB_BUILD_OPTIONS= DEB_BUILD_MAINT_OPTIONS=hardening=+all \
              dpkg-buildflags --get $(1) 2>/dev/null)
deb:
	@$(MAKE) ARCH=$(ARCH) BUILD=build-deb-$(ARCH) SYSROOT=$(abspath build-$(ARCH))/sysroot \
	  CFLAGS="$(call DEB_FLAGS,CFLAGS) $(call DEB_FLAGS,CPPFLAGS)" \
	  LDFLAGS="$(call DEB_FLAGS,LDFLAGS)" build-deb-$(ARCH)/shoal
	@scripts/package.sh $(ARCH) build-deb-$(ARCH) $(if $(TRIPLET),$(abspath build-$(ARCH))/sysroot)

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all asan bench test test-asan fuzz fuzz-targets deb clean
-include $(OBJ:.o=.d) $(BUILD)/src/main.d $(UNIT_SRC:%.c=$(BUILD)/%.d) \
         $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%.d)
