# SPDX-License-Identifier: MIT
# vhdboot.efi: the libvhd core and efiboot/ built freestanding with gnu-efi
# (included by the top Makefile).  The flags are those verified on Debian 12
# with gnu-efi 3.0.15 (docs/vhdboot.md).
EFI_DIR      := $(BUILD)/efi
EFI_INC      := /usr/include/efi
EFI_LIBDIR   := /usr/lib
EFI_CFLAGS   := -std=c11 $(WARN) -O2 -g -ffreestanding -fno-builtin -nostdinc \
		-isystem $(shell $(CC) -print-file-name=include) -isystem $(EFI_INC) \
		-isystem $(EFI_INC)/x86_64 -Ilibvhd/freestanding -Ilibvhd -Iefiboot \
		-fpic -fshort-wchar -mno-red-zone -fno-stack-protector -fno-strict-aliasing \
		-maccumulate-outgoing-args -DEFI_FUNCTION_WRAPPER -DGNU_EFI_USE_MS_ABI
# gnu-efi's headers are not -Wstrict-prototypes/-Wshadow clean.
EFI_CFLAGS   += -Wno-strict-prototypes -Wno-shadow -Wno-unused-parameter
EFI_LDFLAGS  := -nostdlib -znocombreloc -shared -Bsymbolic --no-undefined \
		-T $(EFI_LIBDIR)/elf_x86_64_efi.lds -L$(EFI_LIBDIR)
EFI_OBJCOPY  := -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel -j .rela \
		-j '.rel.*' -j '.rela.*' -j .reloc --target efi-app-x86_64 --subsystem=10

EFI_LOADER_SRCS := $(addprefix libvhd/,$(addsuffix .c,$(CORE_SRCS))) \
		$(EFI_PURE_SRCS) $(wildcard efiboot/efi_*.c)
EFI_LOADER_OBJS := $(patsubst %.c,$(EFI_DIR)/%.o,$(EFI_LOADER_SRCS))

.PHONY: efi
efi: $(BUILD)/vhdboot.efi

$(EFI_DIR)/%.o: %.c libvhd/*.h efiboot/*.h
	@mkdir -p $(@D)
	$(CC) $(EFI_CFLAGS) -c -o $@ $<

# ld -shared would link undefined symbols silently: --no-undefined, and
# nm -u must list nothing.
$(BUILD)/vhdboot.efi: $(EFI_LOADER_OBJS)
	@test -f $(EFI_LIBDIR)/crt0-efi-x86_64.o || { \
		echo "efi: gnu-efi is missing (scripts/deps.sh build installs it)" >&2; exit 1; }
	$(LD) $(EFI_LDFLAGS) $(EFI_LIBDIR)/crt0-efi-x86_64.o $(EFI_LOADER_OBJS) \
		-o $(EFI_DIR)/vhdboot.so -lefi -lgnuefi
	@undef=$$(nm -u $(EFI_DIR)/vhdboot.so); if [ -n "$$undef" ]; then \
		echo "vhdboot.so has undefined symbols:"; echo "$$undef"; exit 1; fi
	objcopy $(EFI_OBJCOPY) $(EFI_DIR)/vhdboot.so $@

# The test payload the boot suite puts inside VHDs (tests/boot/payload.c).
$(BUILD)/boot-payload.efi: tests/boot/payload.c
	@mkdir -p $(EFI_DIR)/tests
	$(CC) $(EFI_CFLAGS) -c -o $(EFI_DIR)/tests/payload.o $<
	$(LD) $(EFI_LDFLAGS) $(EFI_LIBDIR)/crt0-efi-x86_64.o $(EFI_DIR)/tests/payload.o \
		-o $(EFI_DIR)/tests/payload.so -lefi -lgnuefi
	@undef=$$(nm -u $(EFI_DIR)/tests/payload.so); if [ -n "$$undef" ]; then \
		echo "payload.so has undefined symbols:"; echo "$$undef"; exit 1; fi
	objcopy $(EFI_OBJCOPY) $(EFI_DIR)/tests/payload.so $@
