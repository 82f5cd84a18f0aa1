# pgcutover - build, test and tooling.
#
#   make            build build/pgcutover
#   make test       unit tests + integration tests against real PostgreSQL
#   make asan       the same binary with AddressSanitizer + UBSan (build-asan/)
#   make test-asan  the whole suite against the sanitizer build
#   make deps       install the Debian packages needed to build and test
#   make demo       pgcutover in front of a local PostgreSQL it starts
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS each (build-fuzz/)
#   make fuzz-replay  every fuzz seed and regression input, with this build's flags
#   make man        the man pages pgcutover(1) and pgcutover.ini(5), from docs/reference.md
#   make install    binary, man pages, systemd unit, logrotate snippet and examples
#                   (PREFIX=/usr/local, DESTDIR); make uninstall removes them
#   make deb        the Debian package, in build/deb/ (dpkg-buildpackage -us -uc -b)

PKGS      := libevent openssl libpq inih libsystemd
CC        ?= cc
BUILD     ?= build
PYTHON    ?= /usr/bin/python3

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wvla -Wno-format-nonliteral -Werror
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) $(SAN) \
             $(shell pkg-config --cflags $(PKGS)) -I. -MMD -MP
LDLIBS    := $(shell pkg-config --libs $(PKGS)) -lm
ALL_LDFLAGS = $(LDFLAGS) $(SAN)

# the layers, lowest first (README, "How it is built"; make check-layers)
PROTO_SRC := $(wildcard protocol/*.c)
AUTH_SRC  := $(wildcard proxy/auth/*.c)
IO_SRC    := $(wildcard proxy/io/*.c)
CORE_SRC  := $(wildcard proxy/core/*.c)
PROXY_SRC := $(filter-out proxy/main.c,$(wildcard proxy/*.c))
CUT_SRC   := $(wildcard admin/cutover/*.c)
ADMIN_SRC := $(wildcard admin/*.c)
LIB_SRC   := $(PROTO_SRC) $(AUTH_SRC) $(IO_SRC) $(CORE_SRC) $(PROXY_SRC) $(CUT_SRC) $(ADMIN_SRC)
ALL_HDR   := $(wildcard protocol/*.h proxy/*.h proxy/*/*.h admin/*.h admin/*/*.h)
UNIT_SRC  := $(wildcard tests/unit/*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ  := $(BUILD)/proxy/main.o
UNIT_OBJ  := $(UNIT_SRC:%.c=$(BUILD)/%.o)

.PHONY: all clean test unit integration asan test-asan deps demo check-pure check-layers \
        format format-check bench bench-scale fuzz fuzz-build fuzz-run fuzz-replay man install uninstall deb

all: check-pure check-layers $(BUILD)/pgcutover

$(BUILD)/pgcutover: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# tests/unit/test_reference.c reads docs/reference.md from this tree, wherever build/unit runs
$(BUILD)/tests/unit/test_reference.o $(BUILD)/tests/unit/test_fleet_sql.o: ALL_CFLAGS += -DPGCUTOVER_SRCDIR='"$(CURDIR)"'

# a test tool: drives the control connections (admin/cutover/control*.c) against real
# servers (tests/integration/test_control.py)
CONTROL_OBJ := $(addprefix $(BUILD)/admin/cutover/,control.o control_connect.o control_text.o \
                 control_conninfo.o)
$(BUILD)/control_probe: $(BUILD)/tests/tools/control_probe.o $(CONTROL_OBJ) $(BUILD)/proxy/core/log.o \
                       $(BUILD)/proxy/core/log_syslog.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Layers depend one way (tests/check_layers.sh says which may include which).
check-layers:
	@sh tests/check_layers.sh

# protocol/ stays pure: libc only, so it can be unit-tested and fuzzed alone.
check-pure:
	@if grep -nE '#include *[<"](event2|openssl|libpq-fe|ini\.h)' protocol/*.[ch]; then \
		echo "protocol/ must not include libevent, OpenSSL, libpq or inih"; exit 1; fi

unit: $(BUILD)/unit
	$(BUILD)/unit

integration: all $(BUILD)/control_probe
	PGCUTOVER_BIN=$(abspath $(BUILD)/pgcutover) PGCUTOVER_CONTROL_PROBE=$(abspath $(BUILD)/control_probe) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test: all unit fuzz-replay integration

asan:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all build-asan/unit build-asan/control_probe \
		$(FUZZ_TARGETS:%=build-asan/fuzz-replay/%)

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(MAKE) BUILD=build-asan CC=clang CFLAGS="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

deps:
	bash .ci/deps.sh

demo: all
	$(PYTHON) tests/demo.py

# direct / PgBouncer / pgcutover side by side (bench/README.md); not part of test
bench: all
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# the pause of SWITCH against idle clients, sequences, tables and databases
# (bench/scale.py; also make bench BENCH_ARGS=--scale); not part of test
bench-scale: all
	$(PYTHON) bench/scale.py $(SCALE_ARGS)

format:
	clang-format -i $(LIB_SRC) proxy/main.c $(ALL_HDR) $(UNIT_SRC) $(wildcard tests/fuzz/*.c)

format-check:
	clang-format --dry-run -Werror $(LIB_SRC) proxy/main.c $(ALL_HDR) $(UNIT_SRC) $(wildcard tests/fuzz/*.c)

# ---- fuzzing (docs/fuzzing.md) ----
#
# tests/fuzz/fuzz_NAME.c is one target, with its inputs in tests/fuzz/fuzz_NAME/
# (seeds/ and regressions/).  FUZZ_DEPS_<target> lists the objects it links
# besides itself, so that each target carries only the code it exercises
# (protocol/pq reads, protocol/pq_build writes and needs pq; sqllex stands alone).
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_DEPS_fuzz_pq           := protocol/pq protocol/pq_build
FUZZ_DEPS_fuzz_startup_auth := protocol/pq proxy/auth/crypto proxy/auth/secret proxy/auth/md5 proxy/auth/scram_msg proxy/auth/scram_server proxy/auth/scram_client proxy/auth/userlist
# the configuration module is proxy/core/config*.c (config_int.h lists its files)
FUZZ_DEPS_fuzz_config       := proxy/core/config proxy/core/config_read proxy/core/config_keys \
                               proxy/core/config_units proxy/core/config_check \
                               proxy/core/config_dump proxy/core/log_syslog proxy/io/tls
FUZZ_DEPS_fuzz_admin_cmd    := admin/admin_cmd
FUZZ_DEPS_fuzz_listen_sql   := proxy/listen_sql
# conninfo_parse checks an sslmode with the TLS module's parser
FUZZ_DEPS_fuzz_conninfo     := proxy/core/conninfo proxy/io/tls
# what pgcutover reads in clients' SQL (schema changes, shadow reads) and in servers' answers
FUZZ_DEPS_fuzz_sql          := protocol/sqltok protocol/fingerprint protocol/sqlclass
FUZZ_DEPS_fuzz_digest       := protocol/pqdigest
# -max_len per target: a little above the largest input the code treats specially
FUZZ_MAXLEN_fuzz_pq           := 12000
FUZZ_MAXLEN_fuzz_startup_auth := 2048
FUZZ_MAXLEN_fuzz_config       := 4096
FUZZ_MAXLEN_fuzz_admin_cmd    := 512
FUZZ_MAXLEN_fuzz_listen_sql   := 2048
FUZZ_MAXLEN_fuzz_conninfo     := 1024
FUZZ_MAXLEN_fuzz_sql          := 4096
FUZZ_MAXLEN_fuzz_digest       := 4096

FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# extra libFuzzer options for every target, e.g. FUZZ_ARGS=-use_value_profile=1
FUZZ_ARGS    ?=

# libFuzzer binaries: $(BUILD)/<target> (only built with BUILD=build-fuzz, see fuzz)
define FUZZ_RULES
$$(BUILD)/$(1): $$(BUILD)/tests/fuzz/$(1).o $$(FUZZ_DEPS_$(1):%=$$(BUILD)/%.o)
	$$(CC) $$(ALL_LDFLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(LDLIBS)

$$(BUILD)/fuzz-replay/$(1): $$(BUILD)/tests/fuzz/$(1).o $$(BUILD)/tests/fuzz/replay_main.o $$(FUZZ_DEPS_$(1):%=$$(BUILD)/%.o)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

# Replays every seed and regression input through the targets, built with
# this build's compiler and flags (gcc for test, clang + sanitizers for
# test-asan); fails when any input crashes or breaks an invariant.
fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz-replay/%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(BUILD)/fuzz-replay/$$t tests/fuzz/$$t/seeds tests/fuzz/$$t/regressions; \
	done

# Builds the libFuzzer binaries into build-fuzz/ and runs each for
# FUZZ_SECONDS on a working copy of its seeds and regressions
# (build-fuzz/corpus/<target>), so that the corpora in git stay as they are.
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CFLAGS="-O1 -g" \
		SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-build
	$(MAKE) BUILD=$(FUZZ_BUILD) fuzz-run

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/%)

fuzz-run:
	@fail=""; \
	$(foreach t,$(FUZZ_TARGETS),sh tests/fuzz/run.sh $(BUILD) $(t) $(FUZZ_SECONDS) \
		$(or $(FUZZ_MAXLEN_$(t)),4096) $(FUZZ_ARGS) || fail="$$fail $(t)";) \
	if [ -n "$$fail" ]; then echo "fuzz: failed:$$fail"; exit 1; fi

# ---- man pages, installation, the Debian package (docs/operations.md) ----
#
# The man pages are written from the reference manual (docs/man/mkman.py pulls
# its sections into docs/man/*.scd.in; scdoc makes roff of them), so they say
# what docs/reference.md says.
MAN_PAGES := $(BUILD)/man/pgcutover.1 $(BUILD)/man/pgcutover.ini.5

man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd.in docs/man/mkman.py docs/reference.md proxy/core/version.h
	@mkdir -p $(dir $@)
	$(PYTHON) docs/man/mkman.py docs/reference.md $< > $@.scd
	scdoc < $@.scd > $@.tmp
	mv $@.tmp $@

# Where make install puts things.  SYSCONFDIR is /etc for PREFIX=/usr (the
# Debian package), PREFIX/etc otherwise; the unit names BINDIR and SYSCONFDIR.
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/pgcutover
SYSCONFDIR     ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
LOGROTATEDIR   ?= $(SYSCONFDIR)/logrotate.d
# what the example configuration names: the unit's StateDirectory and LogsDirectory
STATEDIR       ?= /var/lib/pgcutover
LOGDIR         ?= /var/log/pgcutover
INSTALL        ?= install

# every file make install writes, relative to DESTDIR (make uninstall removes them)
EXAMPLES := pgcutover.ini userlist.txt prometheus.yml pgcutover.rules.yml \
            pgcutover-dashboard.json
INSTALLED := $(BINDIR)/pgcutover $(MANDIR)/man1/pgcutover.1 $(MANDIR)/man5/pgcutover.ini.5 \
             $(SYSTEMDUNITDIR)/pgcutover.service $(LOGROTATEDIR)/pgcutover \
             $(EXAMPLES:%=$(DOCDIR)/examples/%)

# The unit names BINDIR and SYSCONFDIR; the example configuration is the one
# an installed service uses: state and log under /var (conf/pgcutover.ini,
# for a run from the source tree, keeps them beside itself).  Both are written
# at install time, so that they always name this PREFIX; the grep fails when
# conf/pgcutover.ini no longer has the lines the sed rewrites.
install: all man
	grep -q '^state_dir = ./state *;' conf/pgcutover.ini && grep -q '^log_file = *;' conf/pgcutover.ini
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(LOGROTATEDIR) $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 755 $(BUILD)/pgcutover $(DESTDIR)$(BINDIR)/pgcutover
	$(INSTALL) -m 644 $(BUILD)/man/pgcutover.1 $(DESTDIR)$(MANDIR)/man1/pgcutover.1
	$(INSTALL) -m 644 $(BUILD)/man/pgcutover.ini.5 $(DESTDIR)$(MANDIR)/man5/pgcutover.ini.5
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		dist/systemd/pgcutover.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/pgcutover.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/pgcutover.service
	$(INSTALL) -m 644 dist/logrotate/pgcutover $(DESTDIR)$(LOGROTATEDIR)/pgcutover
	sed -e 's|^state_dir = ./state *;.*|state_dir = $(STATEDIR)  ; durable route state, one file per database|' \
	    -e 's|^log_file = *;.*|log_file = $(LOGDIR)/pgcutover.log  ; reopened on SIGUSR2 (logrotate) and SIGHUP|' \
	    conf/pgcutover.ini > $(DESTDIR)$(DOCDIR)/examples/pgcutover.ini
	chmod 644 $(DESTDIR)$(DOCDIR)/examples/pgcutover.ini
	$(INSTALL) -m 644 conf/userlist.txt dist/prometheus/prometheus.yml \
		dist/prometheus/pgcutover.rules.yml dist/grafana/pgcutover-dashboard.json \
		$(DESTDIR)$(DOCDIR)/examples/

uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# The Debian package, built from a copy of the tree so that nothing is written
# beside it (dpkg-buildpackage puts its results in the parent directory), and
# only when the tree has changed since the last build (dist/build-deb.sh).
DEB_DIR ?= build/deb
deb:
	sh dist/build-deb.sh $(DEB_DIR)

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/tests/tools/control_probe.d
-include $(FUZZ_SRC:%.c=$(BUILD)/%.d) $(BUILD)/tests/fuzz/replay_main.d
