# poolbench: build, test, bench, install.
#
#   make                  libexecutors.a, libworkloads.a, poolbench
#   make test             cmocka suite (SANITIZE=address|undefined|thread)
#   make bench            scripts/bench.sh (BENCH_PROFILE=quick|default|full)
#   make fuzz             libFuzzer target for the frame decoder (clang)
#   make peers            empty-task cost of GLib's and Python's pools beside ours
#   make install PREFIX=/usr/local DESTDIR=
#   make deps             install missing Debian packages (idempotent)

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
CFLAGS  ?= -O2 -g
LDFLAGS ?=
SANITIZE ?=

PKGS := hwloc libcurl libmicrohttpd zlib libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

BASE_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -pthread -D_GNU_SOURCE \
               -Iexecutors -Iworkloads -Iharness $(PKG_CFLAGS)

ifeq ($(SANITIZE),)
  BUILD := build
  SAN_FLAGS :=
else ifeq ($(SANITIZE),address)
  BUILD := build/asan
  SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),undefined)
  BUILD := build/ubsan
  SAN_FLAGS := -fsanitize=undefined -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),thread)
  BUILD := build/tsan
  SAN_FLAGS := -fsanitize=thread
else
  $(error SANITIZE must be one of: address, undefined, thread (got '$(SANITIZE)'))
endif

# The binary names its own build kind in every runs.csv row (build_info.c).
SAN_DEFINE := $(if $(SANITIZE),-DPB_SANITIZE='"$(SANITIZE)"')
ALL_CFLAGS  := $(BASE_CFLAGS) $(SAN_FLAGS) $(SAN_DEFINE) $(CFLAGS)
ALL_LDFLAGS := -pthread $(SAN_FLAGS) $(LDFLAGS)

EX_SRC := $(wildcard executors/*.c)
WL_SRC := $(wildcard workloads/*.c)
PB_SRC := $(wildcard harness/*.c)
TEST_SRC := $(wildcard tests/test_*.c)

EX_OBJ := $(EX_SRC:%.c=$(BUILD)/%.o)
WL_OBJ := $(WL_SRC:%.c=$(BUILD)/%.o)
PB_OBJ := $(PB_SRC:%.c=$(BUILD)/%.o)
PB_LIB_OBJ := $(filter-out $(BUILD)/harness/main.o,$(PB_OBJ))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

LIBEX := $(BUILD)/libexecutors.a
LIBWL := $(BUILD)/libworkloads.a
LIBPB := $(BUILD)/libharness.a
POOLBENCH := $(BUILD)/poolbench

.PHONY: all test bench fuzz install clean deps check-deps report peers

all: $(LIBEX) $(LIBWL) $(POOLBENCH)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBEX): $(EX_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBWL): $(WL_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBPB): $(PB_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(POOLBENCH): $(BUILD)/harness/main.o $(LIBPB) $(LIBWL) $(LIBEX)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm
	@if [ "$(BUILD)" = build ]; then ln -sf build/poolbench poolbench; fi

$(BUILD)/tests/%: tests/%.c $(LIBPB) $(LIBWL) $(LIBEX) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIBPB) $(LIBWL) $(LIBEX) \
	    $(ALL_LDFLAGS) $(CMOCKA_LIBS) $(PKG_LIBS) -lm

# The suite: every tests/test_*.c binary, then tests/e2e.sh; ends with
# "N passed, N failed".
VALGRIND ?= 0
test: deps all $(TEST_BIN)
	@POOLBENCH=$(abspath $(POOLBENCH)) SANITIZE=$(SANITIZE) VALGRIND=$(VALGRIND) \
	    tests/run.sh $(TEST_BIN)

bench: deps all
	@BENCH_CFLAGS="$(ALL_CFLAGS)" CC="$(CC)" scripts/bench.sh

report:
	@scripts/report.sh "$(RESULTS)"

# The peers we measure against (GLib's GThreadPool, Python's executors),
# beside poolbench overhead, on this machine.
peers: all
	@scripts/peers/run.sh

FUZZ_SECONDS ?= 60
fuzz: build/fuzz/fuzz_wire
	build/fuzz/fuzz_wire -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -print_final_stats=1 build/fuzz/corpus

build/fuzz/fuzz_wire: fuzz/fuzz_wire.c executors/wire.c executors/chunk.c executors/wire.h
	@mkdir -p build/fuzz/corpus
	clang -std=gnu11 -D_GNU_SOURCE -O1 -g -Iexecutors -fsanitize=fuzzer,address,undefined \
	    -o $@ fuzz/fuzz_wire.c executors/wire.c executors/chunk.c executors/buf.c

deps:
	@scripts/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin
	install -m 644 executors/executor.h $(DESTDIR)$(PREFIX)/include/executor.h
	install -m 644 $(LIBEX) $(DESTDIR)$(PREFIX)/lib/libexecutors.a
	install -m 755 $(POOLBENCH) $(DESTDIR)$(PREFIX)/bin/poolbench

clean:
	rm -rf build poolbench
