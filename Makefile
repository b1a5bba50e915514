# xdsnode build.
#
#   make            build/xdsnode (and the mock control plane once it exists)
#   make test       install missing deps, build, run every unit and e2e test
#   make asan       the same suite under AddressSanitizer + UBSan (build-asan/)
#   make demo       mock control plane + upstreams + node on loopback
#   make bench      benchmarks against peers (not part of make test)
#
# Generated code (Envoy protos compiled by protoc-c) lives in $(BUILD)/gen and
# is never committed. The Envoy API protos are fetched at build time from a
# pinned npm package (scripts/fetch-protos.sh).

BUILD    ?= build
SAN      ?=
CC       ?= cc
OPT      ?= -O2 -g

PKGS     := grpc libprotobuf-c libnghttp2 openssl yaml-0.1 jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

GEN      := $(BUILD)/gen
PSRC     := $(BUILD)/proto-src
PROTO_INC := $(PSRC)/fix $(PSRC)/envoy-api $(PSRC)/xds $(PSRC)/googleapis \
             $(PSRC)/protoc-gen-validate /usr/include

BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -pthread
CFLAGS   := $(BASE_CFLAGS) -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-format-truncation \
            -Iinclude -I$(GEN) $(PKG_CFLAGS)
GEN_CFLAGS := $(BASE_CFLAGS) -w -Iinclude -I$(GEN) $(PKG_CFLAGS)
LDLIBS   := $(PKG_LIBS) -lev -lhttp_parser -pthread -lm

# Our sources: every .c under src/ except the entry point, plus the xDS
# client (xds/client/). The mock control plane (xds/cp/) is its own binary.
LIB_SRCS := $(filter-out src/main.c,$(shell find src xds/client -name '*.c' 2>/dev/null | LC_ALL=C sort))
CP_SRCS  := $(shell find xds/cp -name '*.c' 2>/dev/null | LC_ALL=C sort)
CP_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(CP_SRCS))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | LC_ALL=C sort)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all test asan demo bench clean deps protos unit-bins
.DELETE_ON_ERROR:

all: $(BUILD)/xdsnode $(if $(CP_SRCS),$(BUILD)/xdsnode-cp)

deps:
	@./scripts/install-deps.sh

# --- Envoy protos ---------------------------------------------------------

$(PSRC)/.stamp: scripts/fetch-protos.sh
	./scripts/fetch-protos.sh $(PSRC)
	@touch $@

$(BUILD)/proto-files.txt: $(PSRC)/.stamp proto/roots.txt scripts/proto-closure.sh
	./scripts/proto-closure.sh proto/roots.txt $(PROTO_INC) > $@.tmp
	@mv $@.tmp $@

# xdsnode's own protos live in proto/xdsnode/ and may import Envoy's.
OWN_PROTOS := $(shell find proto/xdsnode -name '*.proto' 2>/dev/null | LC_ALL=C sort)

$(GEN)/.stamp: $(BUILD)/proto-files.txt scripts/gen-registry.sh $(OWN_PROTOS)
	@rm -rf $(GEN) && mkdir -p $(GEN)
	protoc-c $(addprefix -I,$(PROTO_INC)) --c_out=$(GEN) $$(cat $(BUILD)/proto-files.txt)
	$(if $(OWN_PROTOS),protoc-c -Iproto $(addprefix -I,$(PROTO_INC)) --c_out=$(GEN) $(patsubst proto/%,%,$(OWN_PROTOS)))
	./scripts/gen-registry.sh $(GEN) > $(GEN)/pb_registry.c
	@touch $@

# proto.mk lists the generated objects; make re-reads it once it exists.
$(BUILD)/proto.mk: $(GEN)/.stamp
	@{ printf 'GEN_SRCS :='; cd $(GEN) && find . -name '*.c' | sed 's|^\./| $$(GEN)/|' | LC_ALL=C sort | tr -d '\n'; echo; } > $@

ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
-include $(BUILD)/proto.mk
endif
GEN_OBJS := $(patsubst $(GEN)/%.c,$(BUILD)/genobj/%.o,$(GEN_SRCS))

$(BUILD)/genobj/%.o: $(GEN)/%.c $(GEN)/.stamp
	@mkdir -p $(dir $@)
	@$(CC) $(GEN_CFLAGS) -c $< -o $@

$(BUILD)/libenvoyapi.a: $(GEN_OBJS)
	@rm -f $@
	@echo "AR $@"
	@ar rcs $@ $^

protos: $(BUILD)/libenvoyapi.a

# --- xdsnode --------------------------------------------------------------

$(BUILD)/obj/%.o: %.c $(GEN)/.stamp
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(LIB_OBJS:.o=.d) $(CP_OBJS:.o=.d) $(BUILD)/obj/src/main.d

$(BUILD)/libxdsnode.a: $(LIB_OBJS)
	@rm -f $@
	@echo "AR $@"
	@ar rcs $@ $^

$(BUILD)/xdsnode: $(BUILD)/obj/src/main.o $(BUILD)/libxdsnode.a $(BUILD)/libenvoyapi.a
	@echo "LD $@"
	@$(CC) $(BASE_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/xdsnode-cp: $(CP_OBJS) $(BUILD)/libxdsnode.a $(BUILD)/libenvoyapi.a
	@echo "LD $@"
	@$(CC) $(BASE_CFLAGS) -o $@ $^ $(LDLIBS)

# --- tests ----------------------------------------------------------------

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libxdsnode.a $(BUILD)/libenvoyapi.a
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(CFLAGS) $(shell pkg-config --cflags criterion) -o $@ $< \
	    $(BUILD)/libxdsnode.a $(BUILD)/libenvoyapi.a $(LDLIBS) $(shell pkg-config --libs criterion)

unit-bins: $(UNIT_BINS)

test: deps
	$(MAKE) all unit-bins
	./scripts/run-tests.sh $(BUILD)

asan: deps
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all unit-bins
	XDSNODE_SANITIZED=1 ./scripts/run-tests.sh build-asan

demo: deps all
	./scripts/demo.sh $(BUILD)

bench: deps all
	./bench/run.sh $(BUILD)

clean:
	rm -rf build build-asan
