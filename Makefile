# poolbench: build, test, bench, install.
#
#   make                  libexecutors.a, libworkloads.a, libserver.a, poolbench
#   make test             cmocka suite (SANITIZE=address|undefined|thread)
#   make bench            scripts/bench.sh (BENCH_PROFILE=quick|default|full)
#   make bench-cluster HOSTFILE=hosts   the mpi rows across the hosts of an Open MPI hostfile
#   make fuzz             libFuzzer target for the frame decoder (clang)
#   make soak             seeded randomized fault soak (SOAK_SECONDS=60, SOAK_SEED=)
#   make peers            empty-task cost of GLib's and Python's pools beside ours
#   make scale            threads against GLib's pool from 1k to 1M tasks, memory per future
#   make install PREFIX=/usr/local DESTDIR=   (make uninstall: the same files)
#   make deps             install missing Debian packages (idempotent)

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
CFLAGS  ?= -O2 -g
LDFLAGS ?=
SANITIZE ?=

# The libraries, by pkg-config module, and the Debian package of each.
PKGS := hwloc libcurl libmicrohttpd zlib libcrypto jansson
DEB_hwloc := libhwloc-dev
DEB_libcurl := libcurl4-openssl-dev
DEB_libmicrohttpd := libmicrohttpd-dev
DEB_zlib := zlib1g-dev
DEB_libcrypto := libssl-dev
DEB_jansson := libjansson-dev
DEB_cmocka := libcmocka-dev

# pkg-config runs only for goals that build against the libraries, never
# before `make deps`: test, bench and peers install the packages first and
# then build in a second make (below), which reads pkg-config after the
# install.  A module pkg-config cannot find stops the build here, naming
# its Debian package, instead of linking with an empty library list.
NO_LIB_GOALS := deps clean uninstall test bench bench-cluster peers scale soak lint fuzz report build/fuzz/%
BUILD_GOALS := $(filter-out $(NO_LIB_GOALS),$(or $(MAKECMDGOALS),all))
ifneq ($(BUILD_GOALS),)
  NEED_MODS := $(PKGS) $(if $(filter test-suite build/%/tests/% build/tests/%,$(BUILD_GOALS)),cmocka)
  ifeq ($(shell command -v pkg-config),)
    $(error pkg-config is not installed: run `make deps` (or apt-get install pkg-config))
  endif
  MISSING_MODS := $(strip $(foreach m,$(NEED_MODS),$(if $(shell pkg-config --exists $(m) && echo y),,$(m))))
  ifneq ($(MISSING_MODS),)
    $(error pkg-config finds no $(foreach m,$(MISSING_MODS),$(m) (Debian package $(DEB_$(m)))): run `make deps` (or apt-get install them))
  endif
  PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
  PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
  CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
  # Open MPI is optional: without it the mpi backend reports itself
  # unavailable (EX_EUNAVAIL) and everything else builds.  HAVE_MPI=0
  # builds without it even where it is installed (into $(BUILD)/nompi).
  HAVE_MPI ?= $(if $(shell pkg-config --exists ompi-c && echo y),1,0)
  ifeq ($(HAVE_MPI),1)
    MPI_CFLAGS := $(shell pkg-config --cflags ompi-c) -DEX_HAVE_MPI
    MPI_LIBS := $(shell pkg-config --libs ompi-c)
  endif
endif

# With Open MPI (HAVE_MPI=1, above) the MPI ping-pong of `poolbench
# calibrate` (tools/mpi_pingpong.c, outside the harness) is built beside
# poolbench.  (A second definition of HAVE_MPI and MPI_CFLAGS here, from
# the merge of issue 16's two branches, dropped -DEX_HAVE_MPI: the mpi
# executor was built unavailable.)

BASE_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -pthread -D_GNU_SOURCE \
               -Iexecutors -Iworkloads -Iserver -Iharness $(PKG_CFLAGS) $(MPI_CFLAGS)

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
ifeq ($(HAVE_MPI),0)
  BUILD := $(BUILD)/nompi
endif

# The binary names its own build kind in every runs.csv row (build_info.c).
SAN_DEFINE := $(if $(SANITIZE),-DPB_SANITIZE='"$(SANITIZE)"')
ALL_CFLAGS  := $(BASE_CFLAGS) $(SAN_FLAGS) $(SAN_DEFINE) $(CFLAGS)
ALL_LDFLAGS := -pthread $(SAN_FLAGS) $(LDFLAGS)

EX_SRC := $(wildcard executors/*.c)
WL_SRC := $(wildcard workloads/*.c)
SV_SRC := $(wildcard server/*.c)
PB_SRC := $(wildcard harness/*.c)
TEST_SRC := $(wildcard tests/test_*.c)

EX_OBJ := $(EX_SRC:%.c=$(BUILD)/%.o)
WL_OBJ := $(WL_SRC:%.c=$(BUILD)/%.o)
SV_OBJ := $(SV_SRC:%.c=$(BUILD)/%.o)
PB_OBJ := $(PB_SRC:%.c=$(BUILD)/%.o)
PB_LIB_OBJ := $(filter-out $(BUILD)/harness/main.o,$(PB_OBJ))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

LIBEX := $(BUILD)/libexecutors.a
# The shared library: the same sources, position-independent, built with
# hidden visibility and a version script from the public header (only the
# ex_ functions executor.h declares are exported), soname
# libexecutors.so.$(EX_SOVERSION).
EX_VERSION := 0.1.0
EX_SOVERSION := 0
LIBEX_SO := $(BUILD)/libexecutors.so.$(EX_VERSION)
EX_PIC_OBJ := $(EX_SRC:%.c=$(BUILD)/pic/%.o)
EX_MAP := $(BUILD)/executors.map
LIBWL := $(BUILD)/libworkloads.a
LIBSV := $(BUILD)/libserver.a
LIBPB := $(BUILD)/libharness.a
POOLBENCH := $(BUILD)/poolbench
# Built without the sanitizers: Open MPI's own allocations at exit would be
# reported as leaks of ours.
MPI_PINGPONG := $(if $(filter 1,$(HAVE_MPI)),$(BUILD)/mpi_pingpong)

.PHONY: all test test-suite bench bench-run bench-cluster bench-cluster-run fuzz install uninstall clean deps report peers peers-run \
        soak soak-run scale scale-run lint

all: $(LIBEX) $(LIBEX_SO) $(LIBWL) $(LIBSV) $(POOLBENCH) $(MPI_PINGPONG)

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBEX): $(EX_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/pic/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(EX_MAP): executors/executor.h scripts/exports.sh
	@mkdir -p $(dir $@)
	scripts/exports.sh executors/executor.h >$@

$(LIBEX_SO): $(EX_PIC_OBJ) $(EX_MAP)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libexecutors.so.$(EX_SOVERSION) \
	    -Wl,--version-script=$(EX_MAP) -Wl,-z,defs -o $@ $(EX_PIC_OBJ) $(MPI_LIBS)
	ln -sf libexecutors.so.$(EX_VERSION) $(BUILD)/libexecutors.so.$(EX_SOVERSION)
	ln -sf libexecutors.so.$(EX_SOVERSION) $(BUILD)/libexecutors.so

$(LIBWL): $(WL_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBSV): $(SV_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBPB): $(PB_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(POOLBENCH): $(BUILD)/harness/main.o $(LIBPB) $(LIBSV) $(LIBWL) $(LIBEX)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(MPI_LIBS) -lm
	@if [ "$(BUILD)" = build ]; then ln -sf build/poolbench poolbench; fi

$(BUILD)/mpi_pingpong: tools/mpi_pingpong.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror $(MPI_CFLAGS) $(CFLAGS) -o $@ $< $(LDFLAGS) $(MPI_LIBS)

$(BUILD)/tests/%: tests/%.c $(LIBPB) $(LIBSV) $(LIBWL) $(LIBEX) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIBPB) $(LIBSV) $(LIBWL) $(LIBEX) \
	    $(ALL_LDFLAGS) $(CMOCKA_LIBS) $(PKG_LIBS) $(MPI_LIBS) -lm

# The suite: every tests/test_*.c binary, then every tests/e2e_*.sh; ends
# with "N passed, N failed".  `make test` installs what is missing first,
# then builds and runs in a second make that sees the installed packages.
VALGRIND ?= 0
test: deps
	@$(MAKE) --no-print-directory test-suite

test-suite: all $(TEST_BIN)
	@POOLBENCH=$(abspath $(POOLBENCH)) SANITIZE=$(SANITIZE) VALGRIND=$(VALGRIND) \
	    tests/run.sh $(TEST_BIN)

# The static checks (scripts/lint.sh): shellcheck, cppcheck, pyflakes.
lint: deps
	@scripts/lint.sh

# The soak test (tests/soak.c): random rounds on every backend with
# injected faults, invariants checked after each; SOAK_SEED replays.
SOAK_SECONDS ?= 60
SOAK_SEED ?=
soak: deps
	@$(MAKE) --no-print-directory soak-run

soak-run: all $(BUILD)/tests/soak
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SEED=$(SOAK_SEED) $(BUILD)/tests/soak

bench: deps
	@$(MAKE) --no-print-directory bench-run

bench-run: all
	@BENCH_CFLAGS="$(ALL_CFLAGS)" CC="$(CC)" scripts/bench.sh

# The mpi rows across the machines of an Open MPI hostfile (lines `host
# slots=N`; README "Several machines"): the hostfile is checked first, then
# the packages and the build, then scripts/bench_cluster.sh.
HOSTFILE ?=
bench-cluster:
	@/usr/bin/python3 scripts/cluster_hosts.py check "$(HOSTFILE)" >/dev/null
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-cluster-run

bench-cluster-run: all
	@scripts/bench_cluster.sh "$(HOSTFILE)"

report:
	@scripts/report.sh "$(RESULTS)"

# The peers we measure against (GLib's GThreadPool, Python's executors),
# beside poolbench overhead, on this machine.
peers: deps
	@$(MAKE) --no-print-directory peers-run

peers-run: all
	@scripts/peers/run.sh

# The scale step (scripts/scale.py): `poolbench overhead` on threads and
# GLib's GThreadPool alternated at every size, and the memory per pending
# future (`poolbench footprint`).  SCALE_SIZES, SCALE_REPS, SCALE_OUT.
SCALE_SIZES ?= 1000,10000,100000,1000000
SCALE_REPS ?= 5
SCALE_OUT ?=
scale: deps
	@$(MAKE) --no-print-directory scale-run

scale-run: all
	@scripts/py.sh scripts/scale.py --poolbench $(abspath $(POOLBENCH)) \
	    --sizes $(SCALE_SIZES) --reps $(SCALE_REPS) $(if $(SCALE_OUT),--out $(SCALE_OUT))

FUZZ_SECONDS ?= 60
fuzz: build/fuzz/fuzz_wire
	build/fuzz/fuzz_wire -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -print_final_stats=1 build/fuzz/corpus

build/fuzz/fuzz_wire: fuzz/fuzz_wire.c executors/wire.c executors/chunk.c executors/buf.c executors/wire.h
	@mkdir -p build/fuzz/corpus
	clang -std=gnu11 -D_GNU_SOURCE -O1 -g -Iexecutors -fsanitize=fuzzer,address,undefined \
	    -o $@ fuzz/fuzz_wire.c executors/wire.c executors/chunk.c executors/buf.c

deps:
	@scripts/deps.sh

# The installed layout, as Debian's C libraries: the header under the
# project's directory (<poolbench/executor.h>), the shared library with its
# soname links beside the static one, a pkg-config file
# (poolbench-executors), the program and the Python runner.
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
PCDIR ?= $(LIBDIR)/pkgconfig
# The manual pages and the bash completion, where Debian puts them: every
# ex_ function of the header (scripts/exports.sh) gets a man3 page that is
# a .so link to libexecutors(3), so that `man ex_submit` finds it.
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
EX_FUNCS = $(shell scripts/exports.sh executors/executor.h | sed -n 's/^ *\(ex_[a-z0-9_]*\);$$/\1/p')
INSTALLED := $(INCDIR)/poolbench/executor.h $(LIBDIR)/libexecutors.a \
    $(LIBDIR)/libexecutors.so.$(EX_VERSION) $(LIBDIR)/libexecutors.so.$(EX_SOVERSION) \
    $(LIBDIR)/libexecutors.so $(PCDIR)/poolbench-executors.pc $(PREFIX)/bin/poolbench \
    $(MANDIR)/man1/poolbench.1 $(MANDIR)/man3/libexecutors.3 $(BASHCOMPDIR)/poolbench \
    $(LIBDIR)/poolbench/mpi_pingpong

# A directory under PREFIX as ${prefix}/..., so that pkg-config's
# --define-prefix (or --define-variable=prefix=) relocates the file.
pc_rel = $(patsubst $(PREFIX)%,$${prefix}%,$(1))

install: all
	install -d $(DESTDIR)$(INCDIR)/poolbench $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PCDIR) \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/poolbench/pyrunner
	install -m 644 executors/executor.h $(DESTDIR)$(INCDIR)/poolbench/executor.h
	install -m 644 $(LIBEX) $(DESTDIR)$(LIBDIR)/libexecutors.a
	install -m 755 $(LIBEX_SO) $(DESTDIR)$(LIBDIR)/libexecutors.so.$(EX_VERSION)
	ln -sf libexecutors.so.$(EX_VERSION) $(DESTDIR)$(LIBDIR)/libexecutors.so.$(EX_SOVERSION)
	ln -sf libexecutors.so.$(EX_SOVERSION) $(DESTDIR)$(LIBDIR)/libexecutors.so
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(call pc_rel,$(LIBDIR))|' \
	    -e 's|@INCDIR@|$(call pc_rel,$(INCDIR))|' \
	    -e 's|@VERSION@|$(EX_VERSION)|' -e 's|@MPI_LIBS@|$(MPI_LIBS)|' \
	    executors/poolbench-executors.pc.in \
	    >$(DESTDIR)$(PCDIR)/poolbench-executors.pc
	install -m 755 $(POOLBENCH) $(DESTDIR)$(PREFIX)/bin/poolbench
	install -m 644 scripts/pyrunner/*.py $(DESTDIR)$(PREFIX)/share/poolbench/pyrunner/
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 docs/man/poolbench.1 $(DESTDIR)$(MANDIR)/man1/poolbench.1
	install -m 644 docs/man/libexecutors.3 $(DESTDIR)$(MANDIR)/man3/libexecutors.3
	for f in $(EX_FUNCS); do \
	    echo '.so man3/libexecutors.3' >$(DESTDIR)$(MANDIR)/man3/$$f.3 || exit 1; \
	done
	install -m 644 completion/poolbench.bash $(DESTDIR)$(BASHCOMPDIR)/poolbench
	$(if $(MPI_PINGPONG),install -D -m 755 $(MPI_PINGPONG) $(DESTDIR)$(LIBDIR)/poolbench/mpi_pingpong)

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(addsuffix .3,$(EX_FUNCS)))
	rm -rf $(DESTDIR)$(PREFIX)/share/poolbench
	-rmdir $(DESTDIR)$(INCDIR)/poolbench $(DESTDIR)$(LIBDIR)/poolbench 2>/dev/null

clean:
	rm -rf build poolbench
