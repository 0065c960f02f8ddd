# ssta — build, test, install, and the pipeline targets.
#
#   make            build lib/libssta.a and every tool into bin/
#   make check      quick tests (minutes); ends with "N passed, N failed"
#   make check-long sanitizer build + bad-input suite + short fuzz run
#   make deps       apt-get the Debian packages ssta needs (root)
#   make bench-deps apt-get python3-torch for `make bench`'s PyTorch peer (root)
#   make bench      training/inference img/s against the PyTorch peer, then bench-kd
#   make bench-kd   a KD step's cost (two caches, two online teachers) vs the plain step
#   make install    PREFIX=/usr/local DESTDIR= : tools and man pages
#   make V=1        show the commands
#
# Pipelines (pipelines/*.mk; each resumes where it was interrupted, and its
# head comment lists its variables):
#   make reproduce-table2   the main job: Table 2/3, quick preset (45–65 min)
#   make robust shape-bias  mCE and shape bias of the Table 2 students
#   make cka pred-pref attn-maps   the teachers compared: CKA between blocks
#                           (Figure 2), prediction preference (Figure 5), where
#                           their heads look (Figure 1)
#   make teachers           retrain the SL pair and the DINO teacher (hours)
#   make dino-teacher       the DINO (SSL) teacher alone, probes and k-NN (~2 h 40 min
#                           on a Zen 5 VM, ~5 h on an Ice Lake one; resumable)
#   make student            one student, supervised, 40 epochs (~50 min)
#   make demo               the shortest path to a model and a stream (~5 min)
# Long runs in the background: SSTA_PROGRESS=60 make ... > log 2>&1 &
#
# CC, CFLAGS, CPPFLAGS, LDFLAGS, LDLIBS, PREFIX and DESTDIR are honoured.

CC       ?= cc
CFLAGS   ?= -O2 -g -march=native
CPPFLAGS ?=
LDFLAGS  ?=
PREFIX   ?= /usr/local
BUILD    ?= build
BIN      ?= bin

# Library → Debian package that provides its pkg-config file.
PKG_DEBS := openblas:libopenblas-dev libzstd:libzstd-dev libjpeg:libjpeg62-turbo-dev \
            libarchive:libarchive-dev spng:libspng-dev zlib:zlib1g-dev
PKGS     := $(foreach p,$(PKG_DEBS),$(firstword $(subst :, ,$(p))))
# Everything `make deps` installs (libraries, tools the tests use, the data set).
DEBS     := build-essential pkg-config $(foreach p,$(PKG_DEBS),$(lastword $(subst :, ,$(p)))) \
            zstd dataset-fashion-mnist python3-numpy python3-scipy gnuplot-nox

ifeq ($(filter deps bench-deps clean help,$(MAKECMDGOALS)),)
  MISSING := $(foreach p,$(PKG_DEBS),$(if $(shell pkg-config --exists $(firstword $(subst :, ,$(p))) && echo y),,$(lastword $(subst :, ,$(p)))))
  ifneq ($(strip $(MISSING)),)
    $(error missing libraries; install the Debian packages: $(MISSING)   (or run 'make deps' as root))
  endif
  PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
  PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
endif

WARN     := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wvla -Wformat=2 -Wno-format-truncation
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -pthread -MMD -MP
ALL_CPPFLAGS := -Ilib -Itools/common $(CPPFLAGS) $(PKG_CFLAGS)
ALL_LIBS := $(PKG_LIBS) -lm -pthread $(LDLIBS)

ifeq ($(V),1)
  Q :=
  say = @:
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2);
endif

LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libssta.a
COMMON_OBJ := $(BUILD)/tools/common/tool.o
TOOLS     := $(sort $(notdir $(basename $(wildcard tools/*.c))))
BINS      := $(TOOLS:%=$(BIN)/%)
UNIT_SRC  := $(wildcard tests/unit/*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
MAN1      := $(wildcard man/man1/*.1)
MAN5      := $(wildcard man/man5/*.5)

# Keep the objects that chained pattern rules make (bin/% from build/tools/%.o).
# Not a bare .SECONDARY: that would make every target intermediate, and make
# would then not create a missing one (a new seed's runs) for a target that
# is otherwise up to date.
.PRECIOUS: $(BUILD)/%.o
.PHONY: all check check-long fuzz bench bench-kd bench-deps install uninstall deps clean help
.DEFAULT_GOAL := all

all: $(BINS) $(UNIT_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/%: $(BUILD)/tools/%.o $(COMMON_OBJ) $(LIB)
	@mkdir -p $(BIN)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(ALL_LIBS) -o $@

# The analysis tools share their model side (tools/common/model.c).
MODEL_OBJ := $(BUILD)/tools/common/model.o
$(BIN)/mce-eval $(BIN)/shape-bias: $(MODEL_OBJ)
# The training tools share their architecture options (tools/common/arch.c).
ARCH_OBJ := $(BUILD)/tools/common/arch.o
$(BIN)/distill-step $(BIN)/dino-train: $(ARCH_OBJ)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(ALL_LIBS) -o $@
# The tools' shared helpers have their unit test too.
$(BUILD)/tests/test_tool: $(COMMON_OBJ)

# Quick tier: every unit test program and every CLI test script.
check: all
	@BUILD=$(BUILD) BIN=$(BIN) sh tests/run.sh $(UNIT_BINS) $(sort $(wildcard tests/cli/*.sh))

# Long tier: the whole quick tier again under ASan+UBSan, then a short fuzz run.
check-long:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	        LDFLAGS="-fsanitize=address,undefined" SSTA_LONG=1 check
	$(MAKE) fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-60}

# Coverage-guided fuzzing of the record/stream parser (clang + libFuzzer).
FUZZ_SECONDS ?= 300
fuzz: $(LIB_SRC)
	@command -v clang >/dev/null || { echo "fuzz: clang is missing (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@mkdir -p $(BUILD)/fuzz
	clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Ilib $(PKG_CFLAGS) \
	    tests/fuzz/fuzz_record.c $(LIB_SRC) $(PKG_LIBS) -lm -pthread -o $(BUILD)/fuzz/fuzz_record
	@mkdir -p $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_record -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -rss_limit_mb=1024 $(BUILD)/fuzz/corpus tests/fuzz/seeds

bench: all
	sh bench/run.sh
	BIN=$(BIN) sh bench/kd.sh

# The KD step against the plain step (bench/kd.sh; sizes from KD_BENCH_* there).
bench-kd: all
	BIN=$(BIN) sh bench/kd.sh

# Measurement programs in bench/ (not part of `all`): make build/bench/NAME
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ $(ALL_LIBS) -o $@

install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5)

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(PREFIX)/bin/%) \
	      $(MAN1:man/man1/%=$(DESTDIR)$(PREFIX)/share/man/man1/%) \
	      $(MAN5:man/man5/%=$(DESTDIR)$(PREFIX)/share/man/man5/%)

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBS)

# Only `make bench` needs these (the PyTorch peer, bench/torch_peer.py).
BENCH_DEBS := python3-torch python3-numpy
bench-deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BENCH_DEBS)

clean:
	rm -rf build build-* bin

help:
	@sed -n '2,/^# CC, CFLAGS/p' Makefile

# Pipeline fragments (teachers, table 2, ...) live in pipelines/.
-include $(wildcard pipelines/*.mk)
-include $(LIB_OBJ:.o=.d) $(COMMON_OBJ:.o=.d) $(MODEL_OBJ:.o=.d) $(ARCH_OBJ:.o=.d) $(TOOLS:%=$(BUILD)/tools/%.d) $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%.d)
