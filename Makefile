# SPDX-License-Identifier: MIT
# vhdtool and libvhd.  `make` builds; `make check` runs every test suite;
# `make demo` shows the main job; `make install PREFIX=... DESTDIR=...`.

VERSION     := 1.0.0
SOVERSION   := 1
PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
DESTDIR     ?=
BUILD       ?= build

CC          ?= cc
CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASEFLAGS   := -std=c11 -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -fPIC -pthread
SANFLAGS    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ifeq ($(SAN),1)
BASEFLAGS   += $(SANFLAGS)
LDSAN       := $(SANFLAGS)
endif
LIBFLAGS    := $(BASEFLAGS) -DLIBVHD_BUILDING -fvisibility=hidden -Ilibvhd
TOOLFLAGS   := $(BASEFLAGS) -Ilibvhd -Ivhdtool -Iefiboot -Ihandoff
LDLIBS      := -luuid -lz -pthread

# The core builds freestanding (efiboot): it must include no POSIX or stdio
# header and reach the host only through struct vhd_io and platform.h.
CORE_SRCS   := format utf footer header bitmap bitmap_cache bat open rw zero resize compact merge setparent repair io_util info chain create check io_mem io_fault
HOST_SRCS   := io_posix platform_posix host
LIB_OBJS    := $(addprefix $(BUILD)/obj/libvhd/,$(addsuffix .o,$(CORE_SRCS) $(HOST_SRCS)))

TOOL_SRCS   := $(wildcard vhdtool/*.c)
TOOL_OBJS   := $(patsubst vhdtool/%.c,$(BUILD)/obj/vhdtool/%.o,$(TOOL_SRCS))

# tls_none.c stands in for tls.c (GnuTLS) in the static build only.
NBD_SRCS    := $(filter-out nbd/tls_none.c,$(wildcard nbd/*.c))
NBD_OBJS    := $(patsubst nbd/%.c,$(BUILD)/obj/nbd/%.o,$(NBD_SRCS))

UNIT_SRCS   := $(wildcard tests/unit/*.c)
# efiboot's pure-C parts (the config parser, the FAT/exFAT mapper) build
# for the host too: the unit tests, the fuzzers and vhdtool use them.
EFI_PURE_SRCS := $(wildcard efiboot/bootconf.c efiboot/fsmap.c efiboot/fat.c efiboot/exfat.c efiboot/fsdir.c)
FSMAP_SRCS  := efiboot/fsmap.c efiboot/fat.c efiboot/exfat.c efiboot/fsdir.c
FSMAP_OBJS  := $(patsubst efiboot/%.c,$(BUILD)/obj/efiboot/%.o,$(FSMAP_SRCS))
UNIT_BIN    := $(BUILD)/unit-tests
# vhd-handoff (handoff/): the initramfs side of the OS handoff, linked
# statically so it runs in any initramfs and as /run/initramfs/shutdown.
# Its pure parsers also go into the unit tests and the fuzzer.
HANDOFF_PURE_SRCS := handoff/crc32.c handoff/params.c handoff/extents.c handoff/gpt.c handoff/dmtable.c
# libvhd/utf.c is pure C with no libvhd dependency: built in as a source,
# so vhd-handoff still links no libvhd.
HANDOFF_SRCS := $(wildcard handoff/*.c) libvhd/utf.c
# vhdtool boot-check reads GPTs with vhd-handoff's parser.
HANDOFF_GPT_SRCS := handoff/crc32.c handoff/params.c handoff/gpt.c
HANDOFF_GPT_OBJS := $(patsubst handoff/%.c,$(BUILD)/obj/handoff/%.o,$(HANDOFF_GPT_SRCS))
HANDOFF_STATIC := $(if $(filter 1,$(SAN)),,-static)
INITRAMFS_TOOLS_DIR ?= /etc/initramfs-tools

SONAME      := libvhd.so.$(SOVERSION)
SHLIB       := $(BUILD)/libvhd.so.$(VERSION)

.PHONY: all clean check deps unit cli nbd boot asan valgrind demo install core-purity freestanding bench
all: $(BUILD)/libvhd.a $(BUILD)/libvhd.so $(BUILD)/vhdtool $(BUILD)/vhd-nbd $(BUILD)/libvhd.pc \
	$(BUILD)/vhd-handoff

$(BUILD)/obj/libvhd/%.o: libvhd/%.c libvhd/*.h | $(BUILD)/obj/libvhd
	$(CC) $(CFLAGS) $(LIBFLAGS) -c -o $@ $<

$(BUILD)/obj/vhdtool/%.o: vhdtool/%.c vhdtool/*.h libvhd/libvhd.h efiboot/*.h handoff/handoff.h | $(BUILD)/obj/vhdtool
	$(CC) $(CFLAGS) $(TOOLFLAGS) -c -o $@ $<

# efiboot's FAT/exFAT reader for vhdtool boot-check.
$(BUILD)/obj/efiboot/%.o: efiboot/%.c efiboot/*.h libvhd/*.h | $(BUILD)/obj/efiboot
	$(CC) $(CFLAGS) $(BASEFLAGS) -Ilibvhd -Iefiboot -c -o $@ $<

$(BUILD)/obj/handoff/%.o: handoff/%.c handoff/*.h libvhd/utf.h | $(BUILD)/obj/handoff
	$(CC) $(CFLAGS) $(BASEFLAGS) -iquote libvhd -Ihandoff -c -o $@ $<

$(BUILD)/obj/nbd/%.o: nbd/%.c nbd/*.h libvhd/libvhd.h | $(BUILD)/obj/nbd
	$(CC) $(CFLAGS) $(BASEFLAGS) -Ilibvhd -Inbd -c -o $@ $<

$(BUILD)/obj/libvhd $(BUILD)/obj/vhdtool $(BUILD)/obj/nbd $(BUILD)/obj/efiboot $(BUILD)/obj/handoff:
	mkdir -p $@

$(BUILD)/libvhd.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(SHLIB): $(LIB_OBJS) libvhd/libvhd.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libvhd/libvhd.map \
		-Wl,--no-undefined $(LDSAN) -o $@ $(LIB_OBJS) $(LDLIBS)

$(BUILD)/libvhd.so: $(SHLIB)
	ln -sf libvhd.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf libvhd.so.$(VERSION) $@

$(BUILD)/vhdtool: $(TOOL_OBJS) $(FSMAP_OBJS) $(HANDOFF_GPT_OBJS) $(BUILD)/libvhd.a
	$(CC) $(LDSAN) -o $@ $(TOOL_OBJS) $(FSMAP_OBJS) $(HANDOFF_GPT_OBJS) $(BUILD)/libvhd.a $(LDLIBS)

$(BUILD)/vhd-nbd: $(NBD_OBJS) $(BUILD)/libvhd.a
	$(CC) $(LDSAN) -o $@ $(NBD_OBJS) $(BUILD)/libvhd.a $(LDLIBS) -lgnutls

# For an initramfs (vhd-nbd --initramfs): no shared libraries, no TLS
# (Debian ships no static p11-kit or libunistring for GnuTLS).
NBD_STATIC_OBJS := $(filter-out $(BUILD)/obj/nbd/tls.o,$(NBD_OBJS)) $(BUILD)/obj/nbd/tls_none.o
.PHONY: vhd-nbd-static
vhd-nbd-static: $(BUILD)/vhd-nbd-static
$(BUILD)/vhd-nbd-static: $(NBD_STATIC_OBJS) $(BUILD)/libvhd.a
	$(CC) -static -o $@ $(NBD_STATIC_OBJS) $(BUILD)/libvhd.a $(LDLIBS)

$(BUILD)/vhd-handoff: $(HANDOFF_SRCS) handoff/*.h libvhd/utf.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASEFLAGS) -iquote libvhd -Ihandoff $(HANDOFF_STATIC) $(LDSAN) -o $@ $(HANDOFF_SRCS)

$(BUILD)/libvhd.pc: libvhd/libvhd.pc.in Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(UNIT_BIN): $(UNIT_SRCS) $(EFI_PURE_SRCS) $(HANDOFF_PURE_SRCS) $(BUILD)/libvhd.a tests/unit/*.h efiboot/*.h handoff/*.h
	$(CC) $(CFLAGS) $(BASEFLAGS) -Wno-missing-prototypes -Ilibvhd -Iefiboot -Ihandoff -o $@ $(UNIT_SRCS) \
		$(EFI_PURE_SRCS) $(HANDOFF_PURE_SRCS) $(BUILD)/libvhd.a -lcriterion $(LDLIBS)

# Reads a file out of a FAT/exFAT image through efiboot's extent map
# (tests/cli/test-fsmap*.sh).
$(BUILD)/tests/fsmap-cat: tests/tools/fsmap-cat.c $(FSMAP_SRCS) efiboot/*.h $(BUILD)/libvhd.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BASEFLAGS) -Ilibvhd -Iefiboot $(LDSAN) -o $@ $< $(FSMAP_SRCS) $(BUILD)/libvhd.a $(LDLIBS)

core-purity:
	@bad=$$(grep -nE '^#include <(stdio|stdlib|unistd|fcntl|pthread|time|sys/[a-z]+)\.h>' \
		$(addprefix libvhd/,$(addsuffix .c,$(CORE_SRCS))) libvhd/internal.h libvhd/libvhd.h \
		libvhd/platform.h libvhd/endian.h); \
	if [ -n "$$bad" ]; then echo "core sources include host headers:"; echo "$$bad"; exit 1; fi

# Compile the core as firmware would: no C library headers but the
# compiler's own and libvhd/freestanding/; the only symbols it may need from
# its host are the string functions and the platform.h hooks.
FREE_ALLOWED := memcpy memmove memset memcmp strlen strcmp strncmp strchr \
	vhd_malloc vhd_calloc vhd_free vhd_mutex_new vhd_mutex_lock vhd_mutex_unlock \
	vhd_mutex_free vhd_time_now vhd_uuid_generate
freestanding: core-purity
	@mkdir -p $(BUILD)/free
	@for s in $(CORE_SRCS); do \
		$(CC) -std=c11 $(WARN) -O2 -ffreestanding -fno-builtin -nostdinc \
			-isystem $$($(CC) -print-file-name=include) -Ilibvhd/freestanding -Ilibvhd \
			-c -o $(BUILD)/free/$$s.o libvhd/$$s.c || exit 1; \
	done
	@$(LD) -r -o $(BUILD)/free/core.o $(addprefix $(BUILD)/free/,$(addsuffix .o,$(CORE_SRCS)))
	@undef=$$(nm -u $(BUILD)/free/core.o | awk '{print $$2}'); \
	for u in $$undef; do \
		case " $(FREE_ALLOWED) " in *" $$u "*) ;; \
		*) echo "freestanding core needs '$$u' from its host"; exit 1 ;; esac; \
	done; echo "freestanding core: builds; needs only: $$(echo $$undef)"

# ---- tests ---------------------------------------------------------------

deps:
	@scripts/deps.sh test

unit: $(UNIT_BIN)
	timeout 300 $(UNIT_BIN) --jobs 2

cli: all $(BUILD)/tests/fsmap-cat
	VHDTOOL=$(abspath $(BUILD)/vhdtool) VHDNBD=$(abspath $(BUILD)/vhd-nbd) timeout 900 tests/run.sh cli

nbd: all
	VHDTOOL=$(abspath $(BUILD)/vhdtool) VHDNBD=$(abspath $(BUILD)/vhd-nbd) timeout 900 tests/run.sh nbd

# vhdboot.efi under QEMU + OVMF: test payloads, Debian's kernel, exFAT.
boot: all efi $(BUILD)/boot-payload.efi
	VHDTOOL=$(abspath $(BUILD)/vhdtool) VHDNBD=$(abspath $(BUILD)/vhd-nbd) \
		VHDBOOT=$(abspath $(BUILD)/vhdboot.efi) PAYLOAD=$(abspath $(BUILD)/boot-payload.efi) \
		TEST_BUDGET=400 timeout 1200 tests/run.sh boot

asan:
	$(MAKE) BUILD=build/asan SAN=1 all build/asan/unit-tests build/asan/tests/fsmap-cat
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		timeout 600 build/asan/unit-tests --jobs 2
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 SANITIZED=1 \
		VHDTOOL=$(abspath build/asan/vhdtool) VHDNBD=$(abspath build/asan/vhd-nbd) timeout 1200 tests/run.sh cli
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 SANITIZED=1 \
		VHDTOOL=$(abspath build/asan/vhdtool) VHDNBD=$(abspath build/asan/vhd-nbd) timeout 1200 tests/run.sh nbd

# The CLI tests that read hostile and foreign images, with vhdtool under valgrind.
VALGRIND_TESTS := test-dfvfs.sh test-broken.sh test-chain.sh test-create.sh test-maint.sh
valgrind: all
	VALGRIND_VHDTOOL=$(abspath $(BUILD)/vhdtool) VHDTOOL=$(abspath tests/valgrind-vhdtool.sh) \
		VHDNBD=$(abspath $(BUILD)/vhd-nbd) TEST_BUDGET=600 timeout 1200 tests/run.sh cli $(VALGRIND_TESTS)

check: deps
	$(MAKE) all freestanding efi
	$(MAKE) unit
	$(MAKE) cli
	$(MAKE) nbd
	$(MAKE) boot
	$(MAKE) asan
	$(MAKE) valgrind
	$(MAKE) fuzz-replay
	@echo "make check: every suite passed"

demo:
	@scripts/deps.sh demo
	$(MAKE) all
	scripts/demo.sh

bench: all
	bench/convert.sh

# ---- install --------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BUILD)/vhdtool $(DESTDIR)$(PREFIX)/bin/vhdtool
	install -m 755 $(BUILD)/vhd-nbd $(DESTDIR)$(PREFIX)/bin/vhd-nbd
	install -m 644 $(BUILD)/libvhd.a $(DESTDIR)$(LIBDIR)/libvhd.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libvhd.so.$(VERSION)
	ln -sf libvhd.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libvhd.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libvhd.so
	install -m 644 libvhd/libvhd.h $(DESTDIR)$(PREFIX)/include/libvhd.h
	install -m 644 $(BUILD)/libvhd.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libvhd.pc
	install -m 644 docs/vhdtool.1 $(DESTDIR)$(PREFIX)/share/man/man1/vhdtool.1
	install -m 644 docs/libvhd.3 $(DESTDIR)$(PREFIX)/share/man/man3/libvhd.3
	install -m 644 docs/vhd-nbd.8 $(DESTDIR)$(PREFIX)/share/man/man8/vhd-nbd.8
	install -D -m 644 docs/vhdboot.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/vhdboot.conf.5
	install -m 755 scripts/vhdboot-install $(DESTDIR)$(PREFIX)/bin/vhdboot-install
	@# The OS handoff (docs/handoff.md): initramfs-tools hooks, dracut module.
	install -D -m 755 $(BUILD)/vhd-handoff $(DESTDIR)$(PREFIX)/sbin/vhd-handoff
	install -D -m 755 handoff/initramfs-tools/hooks/vhdboot $(DESTDIR)$(INITRAMFS_TOOLS_DIR)/hooks/vhdboot
	install -D -m 755 handoff/initramfs-tools/scripts/local-top/vhdboot \
		$(DESTDIR)$(INITRAMFS_TOOLS_DIR)/scripts/local-top/vhdboot
	install -d $(DESTDIR)$(PREFIX)/share/vhdboot/dracut/90vhdboot
	install -m 644 handoff/dracut/README $(DESTDIR)$(PREFIX)/share/vhdboot/dracut/README
	install -m 755 handoff/dracut/90vhdboot/module-setup.sh handoff/dracut/90vhdboot/vhdboot-settled.sh \
		$(DESTDIR)$(PREFIX)/share/vhdboot/dracut/90vhdboot/
	install -m 755 handoff/initramfs-tools/scripts/local-top/vhdboot \
		$(DESTDIR)$(PREFIX)/share/vhdboot/dracut/90vhdboot/vhdboot.sh
	@# The loader too, built when gnu-efi is here (scripts/deps.sh build).
	@if [ -f $(EFI_LIBDIR)/crt0-efi-x86_64.o ]; then $(MAKE) --no-print-directory BUILD=$(BUILD) efi; \
	else echo "install: gnu-efi is missing: vhdboot.efi not built"; fi
	if [ -f $(BUILD)/vhdboot.efi ]; then \
		install -D -m 644 $(BUILD)/vhdboot.efi $(DESTDIR)$(PREFIX)/lib/vhdboot/vhdboot.efi; fi

clean:
	rm -rf build

# Fuzz targets (libFuzzer): `make fuzz` grows the corpora; `make fuzz-replay`
# replays them with fixed seeds and is part of `make check`.
-include tests/fuzz/fuzz.mk
# vhdboot.efi (gnu-efi): `make efi`.
include efiboot/efiboot.mk
