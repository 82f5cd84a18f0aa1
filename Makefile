# pgcutover - build, test and tooling.
#
#   make            build build/pgcutover
#   make test       unit tests + integration tests against real PostgreSQL
#   make asan       the same binary with AddressSanitizer + UBSan (build-asan/)
#   make test-asan  the whole suite against the sanitizer build
#   make deps       install the Debian packages needed to build and test
#   make demo       pgcutover in front of a local PostgreSQL it starts

PKGS      := libevent openssl libpq inih
CC        ?= cc
BUILD     ?= build
PYTHON    ?= /usr/bin/python3

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wvla -Wno-format-nonliteral -Werror
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN) \
             $(shell pkg-config --cflags $(PKGS)) -I. -MMD -MP
LDLIBS    := $(shell pkg-config --libs $(PKGS)) -lm
ALL_LDFLAGS = $(LDFLAGS) $(SAN)

PROTO_SRC := $(wildcard protocol/*.c)
PROXY_SRC := $(filter-out proxy/main.c,$(wildcard proxy/*.c))
ADMIN_SRC := $(wildcard admin/*.c)
LIB_SRC   := $(PROTO_SRC) $(PROXY_SRC) $(ADMIN_SRC)
UNIT_SRC  := $(wildcard tests/unit/*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ  := $(BUILD)/proxy/main.o
UNIT_OBJ  := $(UNIT_SRC:%.c=$(BUILD)/%.o)

.PHONY: all clean test unit integration asan test-asan deps demo check-pure \
        format format-check bench

all: check-pure $(BUILD)/pgcutover

$(BUILD)/pgcutover: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# a test tool: drives admin/control.c against real servers (tests/integration/test_control.py)
$(BUILD)/control_probe: $(BUILD)/tests/tools/control_probe.o $(BUILD)/admin/control.o $(BUILD)/proxy/log.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# protocol/ stays pure: libc only, so it can be unit-tested and fuzzed alone.
check-pure:
	@if grep -nE '#include *[<"](event2|openssl|libpq-fe|ini\.h)' protocol/*.[ch]; then \
		echo "protocol/ must not include libevent, OpenSSL, libpq or inih"; exit 1; fi

unit: $(BUILD)/unit
	$(BUILD)/unit

integration: all $(BUILD)/control_probe
	PGCUTOVER_BIN=$(abspath $(BUILD)/pgcutover) PGCUTOVER_CONTROL_PROBE=$(abspath $(BUILD)/control_probe) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test: all unit integration

asan:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all build-asan/unit build-asan/control_probe

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

format:
	clang-format -i $(LIB_SRC) proxy/main.c $(wildcard */*.h) $(UNIT_SRC)

format-check:
	clang-format --dry-run -Werror $(LIB_SRC) proxy/main.c $(wildcard */*.h) $(UNIT_SRC)

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/tests/tools/control_probe.d
