# mini-p2p: libproto, the p2p-* tools, their tests, and the demo.
# `make demo` and `make test` install missing Debian packages first (make deps).

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib
INCDIR = $(PREFIX)/include
MANDIR = $(PREFIX)/share/man

CC ?= cc
PKG_CONFIG ?= pkg-config
MSGPACK_PC := $(shell $(PKG_CONFIG) --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS = libevent libevent_openssl $(MSGPACK_PC) libssl libcrypto
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
# The tools read their configuration file with libinih; libproto does not.
TOOL_LIBS = $(shell $(PKG_CONFIG) --libs inih)

WARN = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
       -Wshadow -Wformat=2
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(PKG_CFLAGS) \
             -Ilibproto -MMD -MP \
             -DPROTO_MODULE_DIR='"$(LIBDIR)/mini-p2p"'
LDLIBS = $(PKG_LIBS) -lpthread -ldl
# The tools link libevent, msgpack-c, OpenSSL and libinih statically (libc
# stays shared): Debian builds those libraries with BIND_NOW, so each
# start resolved some 5,000 symbols, and p2p-fetch --version took 2.4x
# the CPU it takes now. The price: a fix to one of them reaches the tools
# when they are built again. STATIC_DEPS=0 links them as shared libraries;
# so do the sanitizer builds.
STATIC_DEPS ?= 1
ifeq ($(SANITIZE),1)
STATIC_DEPS = 0
endif
ifeq ($(STATIC_DEPS),1)
TOOL_LDLIBS = -Wl,-Bstatic $(PKG_LIBS) $(TOOL_LIBS) -Wl,-Bdynamic -lpthread -ldl
else
TOOL_LDLIBS = $(LDLIBS) $(TOOL_LIBS)
endif

# The DHT engine: a module of its own, the one thing that links OpenDHT
# (GPLv3, C++), loaded at run time only by a program started with --dht.
# Without libopendht-c-dev it is not built, and make says so (make deps).
DHT_PC := $(shell $(PKG_CONFIG) --exists opendht-c 2>/dev/null && echo opendht-c)
DHT_MODULE = $(B)/lib/mini-p2p/dht.so
# The port-mapping engine (NAT-PMP, UPnP-IGD): a module of its own too, so
# that libproto and the tools link neither libnatpmp nor libminiupnpc;
# loaded only by a node started with --nat.
NAT_OK := $(shell test -e /usr/include/natpmp.h && $(PKG_CONFIG) --exists miniupnpc 2>/dev/null && echo yes)
NAT_MODULE = $(B)/lib/mini-p2p/nat.so

ifeq ($(SANITIZE),1)
SAN = -fsanitize=address,undefined -fno-sanitize-recover=all \
      -fno-omit-frame-pointer
ALL_CFLAGS += $(SAN)
LDFLAGS += $(SAN)
endif

# Debian packages the build, the tests and the demo need.
DEB_PKGS = build-essential pkg-config libevent-dev libssl-dev libmsgpack-dev libinih-dev \
           bats bats-support bats-assert bats-file iproute2 util-linux \
           time procps cppcheck python3 python3-cryptography clang libclang-rt-14-dev jq tmux \
           parallel libarchive-tools libopendht-c-dev dhtnode python3-libtorrent \
           nginx-light curl socat \
           libnatpmp-dev libminiupnpc-dev miniupnpd-nftables nftables

B = build
LIB_SRCS = $(wildcard libproto/*.c)
# The headers make install puts in place: the public API, which proto.h
# includes. The rest are libproto's own (proto__* and private types).
PRIVATE_HEADERS = libproto/check.h libproto/frame.h libproto/picker.h \
                  libproto/log_private.h libproto/manifest_private.h \
                  libproto/msg_private.h \
                  libproto/store_private.h libproto/conn_private.h \
                  libproto/fetch_private.h libproto/server_private.h \
                  libproto/node_private.h libproto/tree_private.h \
                  libproto/module_private.h libproto/dht_private.h \
                  libproto/relay_private.h libproto/punch_private.h
PUBLIC_HEADERS = $(filter-out $(PRIVATE_HEADERS), $(wildcard libproto/*.h))
LIB_OBJS = $(LIB_SRCS:%.c=$(B)/%.o)
# The shared library: position-independent objects of their own, a soname
# that changes only with the ABI, and only proto_* exported.
LIB_VERSION = 0.1.0
SONAME = libproto.so.0
SHLIB = libproto.so.$(LIB_VERSION)
PIC_OBJS = $(LIB_SRCS:%.c=$(B)/pic/%.o)
TOOL_COMMON = $(B)/tools/tool.o $(B)/tools/log.o $(B)/tools/progress.o \
              $(B)/tools/tls.o $(B)/tools/json.o $(B)/tools/walk.o \
              $(B)/tools/treewalk.o $(B)/tools/torrent.o $(B)/tools/config.o $(B)/tools/parse.o \
              $(B)/tools/share.o $(B)/tools/dht.o $(B)/tools/nat.o \
              $(B)/tools/relay.o
BENCH_OBJS = $(patsubst %.c,$(B)/%.o,$(wildcard tools/bench/*.c))
FETCH_OBJS = $(B)/tools/fetchlist.o $(B)/tools/peerlines.o \
             $(B)/tools/fetchtree.o $(B)/tools/fetchbatch.o $(B)/tools/fetchtar.o \
             $(B)/tools/fetchdht.o $(B)/tools/treedisk.o $(B)/tools/fetchname.o \
             $(B)/tools/fetchlink.o $(B)/tools/fetchresolve.o \
             $(B)/tools/fetchstats.o $(B)/tools/fetchnode.o
TOOLS = p2p-chunk p2p-verify p2p-serve p2p-fetch p2p-discover p2p-send p2p-bench
TOOL_BINS = $(TOOLS:%=$(B)/bin/%)
UNIT_SRCS = $(wildcard tests/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/%.c=$(B)/tests/%)
EXAMPLE_SRCS = $(wildcard examples/*.c)
EXAMPLE_BINS = $(EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)
MAN1 = $(wildcard docs/man/*.1)
MAN7 = $(wildcard docs/man/*.7)

.PHONY: dht-module nat-module all deps test check lint bench fuzz fuzz-replay fuzz-build check-unit check-bats \
        check-asan asan demo install uninstall clean

all: $(B)/lib/libproto.a $(B)/lib/$(SHLIB) $(TOOL_BINS) $(UNIT_BINS) \
     $(EXAMPLE_BINS) dht-module nat-module

ifeq ($(DHT_PC),)
dht-module:
	@echo "make: libopendht-c-dev is not installed: no DHT (--dht); run make deps" >&2
else
dht-module: $(DHT_MODULE)
endif

ifeq ($(NAT_OK),)
nat-module:
	@echo "make: libnatpmp-dev or libminiupnpc-dev is not installed: no port mapping (--nat); run make deps" >&2
else
nat-module: $(NAT_MODULE)
endif

$(NAT_MODULE): libproto/nat/natmap.c libproto/nat.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags miniupnpc) -fPIC \
	    -shared $(LDFLAGS) -o $@ $< -lnatpmp \
	    $(shell $(PKG_CONFIG) --libs miniupnpc)

$(DHT_MODULE): libproto/dht/opendht.c libproto/dht.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags $(DHT_PC)) -fPIC \
	    -shared $(LDFLAGS) -o $@ $< $(shell $(PKG_CONFIG) --libs $(DHT_PC))

# Objects are kept, so that a second make (make install after make) has
# nothing to do.
.SECONDARY:

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/lib/libproto.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(B)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(B)/lib/$(SHLIB): $(PIC_OBJS) libproto/libproto.map
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) \
	    -Wl,--version-script=libproto/libproto.map -o $@ $(PIC_OBJS) \
	    $(LDLIBS)
	ln -sf $(SHLIB) $(B)/lib/$(SONAME)
	ln -sf $(SONAME) $(B)/lib/libproto.so

# The examples link the static library, so they run from the tree.
$(B)/examples/%: examples/%.c $(B)/lib/libproto.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(B)/lib/libproto.a $(LDLIBS)

$(B)/bin/%: $(B)/tools/%.o $(TOOL_COMMON) $(B)/lib/libproto.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter-out %.a,$^) $(filter %.a,$^) \
	    $(TOOL_LDLIBS)

# p2p-bench's own modules, in tools/bench/, linked into it alone (the
# recipe above puts them before the library, whatever the order of $^).
$(B)/bin/p2p-bench: $(BENCH_OBJS)
# p2p-fetch's parts, declared in tools/p2p-fetch.h, the same way.
$(B)/bin/p2p-fetch: $(FETCH_OBJS)

$(B)/tests/%: $(B)/tests/%.o $(B)/lib/libproto.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Installs the Debian packages the build and the tests need. The dhtnode
# package would start a node on the public DHT at boot (its service
# bootstraps from a public host): the service is masked before it is
# installed, as the tests run their own dhtnode inside namespaces. So is
# miniupnpd's (the package miniupnpd, which miniupnpd-nftables does not
# pull in, would answer mapping requests on the real interface): the tests
# run miniupnpd in a router namespace with a config of their own.
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "make deps: installing" $$missing; \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make deps: not root; run: apt-get install" $$missing >&2; \
	        exit 1; fi; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    if [ ! -e /etc/systemd/system/dhtnode.service ]; then \
	        mkdir -p /etc/systemd/system && \
	        ln -s /dev/null /etc/systemd/system/dhtnode.service; fi; \
	    if [ ! -e /etc/systemd/system/miniupnpd.service ]; then \
	        ln -s /dev/null /etc/systemd/system/miniupnpd.service; fi; \
	    apt-get install -y -q --no-install-recommends $$missing </dev/null || \
	    { apt-get update -q </dev/null && \
	      apt-get install -y -q --no-install-recommends $$missing </dev/null; }; \
	fi

# Each step re-reads this Makefile, so pkg-config sees what deps installed.
test: deps
	$(MAKE) all
	$(MAKE) check

# SUITES: the bats suites to run (a directory or files). bats/run-tests runs
# them P2P_TEST_JOBS tests at a time (default: 4 per CPU; 1 for one by one).
SUITES ?= tests
# Under the sanitizers: every suite but valgrind (which cannot run sanitized
# programs), p2p-bench and ratelimit (which measure speed, meaningless
# there) and install (which builds against the installed library, not the
# sanitized one).
ASAN_SUITES = $(filter-out tests/valgrind.bats tests/p2p-bench.bats \
    tests/ratelimit.bats tests/install.bats, $(wildcard tests/*.bats))
TEST_HELPERS = $(B)/tests/p2p-badpeer $(B)/tests/p2p-faultproxy

check: all $(TEST_HELPERS)
	@bats/run-tests --unit $(UNIT_BINS) --bats $(SUITES)

check-unit: $(UNIT_BINS)
	@bats/run-tests --unit $(UNIT_BINS)

check-bats: $(TOOL_BINS) $(TEST_HELPERS)
	@bats/run-tests --bats tests

# Static analysis: cppcheck must stay silent.
lint:
	cppcheck --enable=warning,style,performance,portability --std=c11 \
	    --error-exitcode=1 --quiet -Ilibproto libproto tools examples

# The sanitizer build, in build-asan/: the tools, the unit tests and the
# test helpers.
asan:
	$(MAKE) B=build-asan SANITIZE=1 all build-asan/tests/p2p-badpeer \
	    build-asan/tests/p2p-faultproxy

check-asan: deps
	$(MAKE) asan
	ASAN_OPTIONS=detect_leaks=1 \
	    P2P_BIN=$(CURDIR)/build-asan/bin \
	    $(MAKE) B=build-asan SANITIZE=1 SUITES="$(ASAN_SUITES)" check

# The quick benchmark (under 2 minutes): benchmark_report.json and
# benchmark_summary.txt in this directory.
bench: deps
	$(MAKE) all
	bats/netns-run $(B)/bin/p2p-bench --quick

demo: deps
	$(MAKE) all
	bats/netns-run examples/file_sharing_demo.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(INCDIR)/proto $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(TOOL_BINS) $(DESTDIR)$(BINDIR)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(B)/lib/libproto.a $(DESTDIR)$(LIBDIR)
	install -m 755 $(B)/lib/$(SHLIB) $(DESTDIR)$(LIBDIR)
	ln -sf $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libproto.so
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCDIR)/proto
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCDIR@|$(INCDIR)|' -e 's|@MSGPACK@|$(MSGPACK_PC)|' \
	    -e 's|@VERSION@|$(LIB_VERSION)|' \
	    libproto/libproto.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libproto.pc
	$(if $(DHT_PC),install -d $(DESTDIR)$(LIBDIR)/mini-p2p)
	$(if $(DHT_PC),install -m 644 $(DHT_MODULE) $(DESTDIR)$(LIBDIR)/mini-p2p)
	$(if $(NAT_OK),install -d $(DESTDIR)$(LIBDIR)/mini-p2p)
	$(if $(NAT_OK),install -m 644 $(NAT_MODULE) $(DESTDIR)$(LIBDIR)/mini-p2p)
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7)
	$(if $(DESTDIR),,-ldconfig)

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(LIBDIR)/libproto.a \
	    $(DESTDIR)$(LIBDIR)/$(SHLIB) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libproto.so \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/libproto.pc
	rm -rf $(DESTDIR)$(INCDIR)/proto $(DESTDIR)$(LIBDIR)/mini-p2p
	rm -f $(MAN1:docs/man/%=$(DESTDIR)$(MANDIR)/man1/%) \
	    $(MAN7:docs/man/%=$(DESTDIR)$(MANDIR)/man7/%)

clean:
	rm -rf build build-asan

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# Fuzzing (libFuzzer, clang): each target runs FUZZ_SECONDS from its corpus
# in tests/fuzz/corpus/NAME; crashes are written there too, to be kept.
# libproto is compiled once for all targets. The targets are independent:
# `make -j2 fuzz` runs two at a time. Each one's output goes to
# $(B)/fuzz/NAME.log; on a failure its end is shown.
FUZZ_TARGETS = frame msg manifest disco name
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
              -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -Ilibproto \
              $(PKG_CFLAGS)
FUZZ_LIB_OBJS = $(LIB_SRCS:%.c=$(B)/fuzz/%.o)
FUZZ_BINS = $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
FUZZ_OPTS = -malloc_limit_mb=64

$(FUZZ_LIB_OBJS): $(B)/fuzz/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) \
	    $(PKG_LIBS) -lpthread

fuzz-build: $(FUZZ_BINS)

# fuzz-run-NAME and replay-NAME are the per-target steps of fuzz and
# fuzz-replay; the status is the fuzzer's, not that of a pipe's last command.
fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-run-%: $(B)/fuzz/fuzz_%
	@mkdir -p tests/fuzz/corpus/$*
	@$< -max_total_time=$(FUZZ_SECONDS) $(FUZZ_OPTS) -max_len=65536 \
	    -print_final_stats=0 \
	    -artifact_prefix=tests/fuzz/corpus/$*/crash- \
	    tests/fuzz/corpus/$* >$(B)/fuzz/$*.log 2>&1 || \
	    { tail -n 40 $(B)/fuzz/$*.log; echo "fuzz $*: FAILED" >&2; exit 1; }
	@echo "fuzz $*: $(FUZZ_SECONDS) s: $$(grep -E '^#[0-9]+[[:space:]]+DONE' $(B)/fuzz/$*.log | tail -n 1)"

# Replays every kept input (the corpus and past crashes) once.
fuzz-replay: $(FUZZ_TARGETS:%=replay-%)

replay-%: $(B)/fuzz/fuzz_%
	@mkdir -p tests/fuzz/corpus/$*
	@$< -runs=0 $(FUZZ_OPTS) tests/fuzz/corpus/$* >$(B)/fuzz/$*.replay.log 2>&1 || \
	    { tail -n 40 $(B)/fuzz/$*.replay.log; echo "fuzz-replay $*: FAILED" >&2; exit 1; }
	@echo "fuzz-replay $*: $$(tail -n 1 $(B)/fuzz/$*.replay.log)"

# The misbehaving peer of tests/attacks.bats: built for the tests only.
$(B)/tests/p2p-badpeer: tests/peers/p2p-badpeer.c tests/helpers/say.c \
    tests/helpers/say.h $(B)/lib/libproto.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/helpers $(LDFLAGS) -o $@ \
	    $(filter %.c %.a,$^) $(LDLIBS)

# The fault-injecting TCP proxy of tests/faults.bats: built for the tests only.
$(B)/tests/p2p-faultproxy: tests/proxy/p2p-faultproxy.c tests/helpers/say.c \
    tests/helpers/say.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/helpers $(LDFLAGS) -o $@ $(filter %.c,$^) \
	    $(LDLIBS)
