# iotgw -- non-recursive Makefile.
#   make            build build/iotgw
#   make test       install missing packages, run unit + integration tests
#   make test-sanitize   the same suite under ASan + UBSan (build-asan/), threads = 1
#   make test-tsan  the same suite under ThreadSanitizer (build-tsan/), threads = 2
#   make demo       end-to-end demo: PKI, upstream mosquitto, iotgw, a sensor
#   make bench      benchmarks (not part of make test)
#   make test-hostile    honest devices measured beside hostile loads (not part of make test)
#   make fuzz       build and briefly run the libFuzzer targets (clang)
#   make install    PREFIX=/usr/local DESTDIR=

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
SYSCONFDIR ?= /etc
# systemd searches $(PREFIX)/lib/systemd/system for both /usr and /usr/local.
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR  ?= $(PREFIX)/share/man
PYTHON  ?= /usr/bin/python3
SANITIZE ?=

PKGS := libssl libcrypto libmosquitto libsystemd libcjson sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wconversion -Wno-sign-conversion \
        -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude $(WARN) $(CFLAGS) $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) -lm
ifeq ($(SANITIZE),thread)
ALL_CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
else ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# [gateway] threads for the integration suite (tests/integration/gw/gateway.py): `make test`
# runs it with 2 (two worker threads), test-sanitize with 1, test-tsan with 2.
TEST_THREADS ?= 2

# Pure modules: no I/O, linked into unit tests and fuzz targets as well.
PURE_SRCS := src/buf.c src/mqtt_codec.c src/decoder.c src/reading.c src/ini.c src/config.c \
             src/config_check.c src/auth.c src/reason.c src/prom.c src/status.c src/trust.c
PURE_SRCS += src/ackq.c src/verdict.c
PURE_SRCS += src/text.c src/log_level.c src/config_keys.c src/auth_pwfile.c
PURE_SRCS += src/numfmt.c src/jscan.c
PURE_SRCS += src/cmdtopic.c src/tbucket.c
PURE_SRCS += src/proxyproto.c src/cidr.c
PURE_SRCS += src/share.c src/rbatch.c
DAEMON_SRCS := $(filter-out $(PURE_SRCS),$(wildcard src/*.c))
PURE_OBJS := $(PURE_SRCS:src/%.c=$(BUILD)/obj/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:src/%.c=$(BUILD)/obj/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all clean test test-run test-sanitize unit integration deps demo bench fuzz install \
	uninstall checksrc

all: $(BUILD)/iotgw

$(BUILD)/iotgw: $(PURE_OBJS) $(DAEMON_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/iotgw/*.h src/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(PURE_OBJS) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(PURE_OBJS) $(LDLIBS) -lcmocka

# The spool is not pure (it is SQLite on disk) but is tested on its own, on a
# temporary directory.
$(BUILD)/tests/test_spool: tests/unit/test_spool.c $(PURE_OBJS) $(BUILD)/obj/spool.o \
		$(BUILD)/obj/spool_disk.o $(BUILD)/obj/spool_vfs.o $(BUILD)/obj/spool_sync.o \
		$(BUILD)/obj/spool_wal.o \
		$(BUILD)/obj/spool_owner.o $(BUILD)/obj/strmap.o \
		| $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# strmap and the event loop are daemon modules, each tested on its own.
$(BUILD)/tests/test_strmap: tests/unit/test_strmap.c $(BUILD)/obj/strmap.o | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/test_evloop: tests/unit/test_evloop.c $(BUILD)/obj/evloop.o | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/obj $(BUILD)/tests:
	mkdir -p $@

deps:
	tools/install-deps

# `make test` first installs what is missing, then re-enters make so that
# pkg-config sees the freshly installed libraries.
test: deps
	$(MAKE) --no-print-directory test-run

test-run: unit integration

test-sanitize: deps
	$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 CFLAGS="-O1 -g" TEST_THREADS=1 \
	  test-run

# ThreadSanitizer over the integration suite with two worker threads (issue 14); any report
# fails the test whose gateway printed it (tests/integration/gw/gateway.py).
test-tsan: deps
	TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) second_deadlock_stack=1" \
	  $(MAKE) --no-print-directory BUILD=build-tsan SANITIZE=thread CFLAGS="-O1 -g" \
	  TEST_THREADS=2 test-run

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BUILD)/iotgw
	IOTGW_BIN=$(abspath $(BUILD)/iotgw) IOTGW_TEST_THREADS=$(TEST_THREADS) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

checksrc:
	@! grep -nE '\b(atoi|atol|sprintf|strcpy|strcat|strtok|gets)\s*\(' src/*.c include/iotgw/*.h \
	  || { echo "banned function used (see docs/CODE_STYLE.md)"; exit 1; }

demo: deps
	$(MAKE) --no-print-directory all
	tools/demo

bench: deps
	$(MAKE) --no-print-directory all
	IOTGW_BIN=$(abspath $(BUILD)/iotgw) $(PYTHON) bench/bench.py

# Issue 12: every hostile load with honest devices measured beside it (about 12 minutes;
# HOSTILE_ARGS="--smoke" or "--only NAME" for less). Figures in docs/security.md.
.PHONY: test-hostile
test-hostile: deps
	$(MAKE) --no-print-directory all
	IOTGW_BIN=$(abspath $(BUILD)/iotgw) $(PYTHON) bench/hostile.py $(HOSTILE_ARGS)

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 30
# fuzz_session runs a whole gateway in the fuzzer's process: every module but main.c.
FUZZ_SRCS_fuzz_session := $(filter-out src/main.c,$(wildcard src/*.c))
fuzz:
	mkdir -p build-fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	  srcs="$(PURE_SRCS)"; [ $$t = fuzz_session ] && srcs="$(FUZZ_SRCS_fuzz_session)"; \
	  clang -std=c11 -D_GNU_SOURCE -Iinclude -g -O1 -fsanitize=fuzzer,address,undefined \
	    $(PKG_CFLAGS) -o build-fuzz/$$t tests/fuzz/$$t.c $$srcs $(LDLIBS); \
	  mkdir -p build-fuzz/corpus-$$t; \
	  build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$t tests/fuzz/corpus/$${t#fuzz_}; \
	done

install: $(BUILD)/iotgw
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/iotgw $(DESTDIR)$(PREFIX)/sbin/iotgw
	install -m 0755 tools/iotgw-pki $(DESTDIR)$(PREFIX)/bin/iotgw-pki
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/iotgw.conf ]; then \
	  echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/iotgw.conf"; \
	else install -m 0640 conf/iotgw.conf $(DESTDIR)$(SYSCONFDIR)/iotgw.conf; fi
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' systemd/iotgw.service.in > $(DESTDIR)$(UNITDIR)/iotgw.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/iotgw.service
	install -m 0644 docs/iotgw.8 $(DESTDIR)$(MANDIR)/man8/iotgw.8
	install -m 0644 docs/iotgw.conf.5 $(DESTDIR)$(MANDIR)/man5/iotgw.conf.5
	install -m 0644 docs/iotgw-pki.1 $(DESTDIR)$(MANDIR)/man1/iotgw-pki.1
	install -d $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 systemd/iotgw.sysusers $(DESTDIR)$(SYSUSERSDIR)/iotgw.conf
	install -m 0644 systemd/iotgw.tmpfiles $(DESTDIR)$(TMPFILESDIR)/iotgw.conf

# Removes what install put there, except /etc/iotgw.conf, /etc/iotgw and /var/lib/iotgw
# (the operator's configuration, keys and queued readings).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/iotgw $(DESTDIR)$(PREFIX)/bin/iotgw-pki \
	  $(DESTDIR)$(UNITDIR)/iotgw.service $(DESTDIR)$(MANDIR)/man8/iotgw.8 \
	  $(DESTDIR)$(MANDIR)/man5/iotgw.conf.5 $(DESTDIR)$(MANDIR)/man1/iotgw-pki.1 \
	  $(DESTDIR)$(SYSUSERSDIR)/iotgw.conf \
	  $(DESTDIR)$(TMPFILESDIR)/iotgw.conf

clean:
	rm -rf build build-asan build-tsan build-fuzz
