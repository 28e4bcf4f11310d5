# SPDX-License-Identifier: MIT
# libFuzzer targets for libvhd (included by the top Makefile; see
# tests/fuzz/README.md).
#   make fuzz-build     build $(BUILD)/fuzz/<target> with clang
#   make fuzz           fuzz each target FUZZ_TIME seconds; merge new finds
#                       into tests/fuzz/corpus/<target>; crashes go to
#                       $(BUILD)/fuzz/crashes/
#   make fuzz-replay    replay the committed corpus, then a short fixed-seed
#                       run per target; any crash fails (CI)
#   make fuzz-pending   run the known crashers in tests/fuzz/pending/
# Options: FUZZ_TARGETS="fuzz_image ..." to pick targets, FUZZ_ARGS for
# extra libFuzzer flags (e.g. FUZZ_ARGS=-jobs=2).

FUZZ_CC        ?= clang
FUZZ_TIME      ?= 60
FUZZ_REPLAY_TIME ?= 20
FUZZ_TARGETS   ?= fuzz_footer fuzz_header fuzz_utf fuzz_nbd fuzz_check fuzz_image \
		  fuzz_bootconf fuzz_fsmap fuzz_handoff
FUZZ_ARGS      ?=
FUZZ_DIR       := $(or $(BUILD),build)/fuzz
FUZZ_SRC       := tests/fuzz
FUZZ_CORE      := $(or $(CORE_SRCS),format utf footer header bitmap bat open rw info chain \
			create check io_mem io_fault) platform_posix
FUZZ_OBJS      := $(addprefix $(FUZZ_DIR)/obj/,$(addsuffix .o,$(FUZZ_CORE)))
# vhd-nbd's handshake and request parsers (export.c needs the host layer).
FUZZ_NBD_OBJS  := $(addprefix $(FUZZ_DIR)/obj/nbd/,handshake.o request.o export.o) \
		  $(addprefix $(FUZZ_DIR)/obj/,io_posix.o host.o)
FUZZ_LIB_BINS  := $(addprefix $(FUZZ_DIR)/,fuzz_footer fuzz_header fuzz_utf fuzz_check fuzz_image)
# vhdboot's config parser and FAT/exFAT mapper (pure C, efiboot/).
FUZZ_EFI_BINS  := $(addprefix $(FUZZ_DIR)/,fuzz_bootconf fuzz_fsmap)
# vhd-handoff's pure parsers (handoff/): command line, extents, GPT.
FUZZ_HANDOFF_SRCS := handoff/crc32.c handoff/params.c handoff/extents.c handoff/gpt.c handoff/dmtable.c \
		  libvhd/utf.c
FUZZ_BINS      := $(FUZZ_LIB_BINS) $(FUZZ_DIR)/fuzz_nbd $(FUZZ_EFI_BINS) $(FUZZ_DIR)/fuzz_handoff

FUZZ_SAN       := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS    := -std=c11 -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -g -O1 \
		  -fno-omit-frame-pointer -pthread -Wall -Wextra -Ilibvhd
FUZZ_LIBS      := -luuid -lpthread
# Reported libvhd/vhd-nbd bugs not fixed yet, whose inputs wait in
# tests/fuzz/pending/: the targets relax just that oracle (or steer around
# that input) when its tag is listed, so `make fuzz` and `make fuzz-replay`
# get past it.  When a bug is fixed: drop its tag here and move its inputs
# from tests/fuzz/pending/<target>/ to tests/fuzz/corpus/<target>/.
FUZZ_KNOWN_BUGS ?=
# libFuzzer flags for every run: the limits, and UBSan stack traces.
FUZZ_COMMON    := -rss_limit_mb=2048 -timeout=25
FUZZ_ENV0      := UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
FUZZ_ENV       := $(FUZZ_ENV0) FUZZ_KNOWN_BUGS="$(strip $(FUZZ_KNOWN_BUGS))"
# Largest input: whole (small) VHD files for the image targets.
FUZZ_MAXLEN_fuzz_footer := 2048
FUZZ_MAXLEN_fuzz_header := 2048
FUZZ_MAXLEN_fuzz_utf    := 2048
FUZZ_MAXLEN_fuzz_nbd    := 16384
FUZZ_MAXLEN_fuzz_check  := 2200000
FUZZ_MAXLEN_fuzz_image  := 2200000
# vhdboot.conf text plus LoadOptions: room for 2 KiB cmdline= values.
FUZZ_MAXLEN_fuzz_bootconf := 8192
# Whole partitions: the 64 KiB FAT12/exFAT seeds and room to grow.
FUZZ_MAXLEN_fuzz_fsmap  := 131072
# A command line with long lists, or a small disk with its GPT.
FUZZ_MAXLEN_fuzz_handoff := 65536
# The committed corpus stays small: `make fuzz` merges back only inputs of
# at most FUZZ_KEEP_MAX bytes that add edge coverage (-use_counters=0).
FUZZ_KEEP_MAX  := 65536
# Mutation runs of `make fuzz-replay` after the corpus (a few seconds each
# on one core; FUZZ_REPLAY_TIME caps each run).
FUZZ_RUNS_fuzz_footer   := 100000
FUZZ_RUNS_fuzz_header   := 60000
FUZZ_RUNS_fuzz_utf      := 150000
FUZZ_RUNS_fuzz_nbd      := 200000
FUZZ_RUNS_fuzz_check    := 25000
FUZZ_RUNS_fuzz_image    := 6000
FUZZ_RUNS_fuzz_bootconf := 200000
FUZZ_RUNS_fuzz_fsmap    := 20000
FUZZ_RUNS_fuzz_handoff  := 100000

.PHONY: fuzz fuzz-build fuzz-replay fuzz-pending

fuzz-build: $(FUZZ_BINS)

# Fail loudly, with the fix, when the toolchain cannot build a fuzzer.
$(FUZZ_DIR)/toolchain.ok:
	@mkdir -p $(FUZZ_DIR)
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
		echo "fuzz: '$(FUZZ_CC)' not found: install clang and libclang-rt-14-dev (scripts/deps.sh test)" >&2; \
		exit 1; }
	@printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		> $(FUZZ_DIR)/probe.c
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $(FUZZ_DIR)/probe $(FUZZ_DIR)/probe.c || { \
		echo "fuzz: '$(FUZZ_CC)' cannot link -fsanitize=fuzzer: install libclang-rt-14-dev (scripts/deps.sh test)" >&2; \
		exit 1; }
	@rm -f $(FUZZ_DIR)/probe $(FUZZ_DIR)/probe.c
	@touch $@

$(FUZZ_DIR)/obj/%.o: libvhd/%.c libvhd/*.h | $(FUZZ_DIR)/toolchain.ok
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/nbd/%.o: nbd/%.c nbd/*.h libvhd/*.h | $(FUZZ_DIR)/toolchain.ok
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Inbd $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB_BINS): $(FUZZ_DIR)/%: $(FUZZ_SRC)/%.c $(FUZZ_SRC)/fuzz_common.h $(FUZZ_SRC)/fuzz_check.h $(FUZZ_OBJS) libvhd/*.h \
		| $(FUZZ_DIR)/toolchain.ok
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

$(FUZZ_DIR)/fuzz_nbd: $(FUZZ_SRC)/fuzz_nbd.c $(FUZZ_SRC)/fuzz_check.h $(FUZZ_OBJS) $(FUZZ_NBD_OBJS) nbd/*.h libvhd/*.h \
		| $(FUZZ_DIR)/toolchain.ok
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Inbd $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_NBD_OBJS) \
		$(FUZZ_OBJS) $(FUZZ_LIBS)

$(FUZZ_EFI_BINS): $(FUZZ_DIR)/%: $(FUZZ_SRC)/%.c $(FUZZ_SRC)/fuzz_check.h efiboot/bootconf.c efiboot/fsmap.c efiboot/fat.c efiboot/exfat.c efiboot/fsdir.c efiboot/*.h \
		$(FUZZ_OBJS) | $(FUZZ_DIR)/toolchain.ok
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Iefiboot $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< \
		efiboot/bootconf.c efiboot/fsmap.c efiboot/fat.c efiboot/exfat.c efiboot/fsdir.c $(FUZZ_OBJS) $(FUZZ_LIBS)

$(FUZZ_DIR)/fuzz_handoff: $(FUZZ_SRC)/fuzz_handoff.c $(FUZZ_SRC)/fuzz_check.h $(FUZZ_HANDOFF_SRCS) \
		handoff/handoff.h libvhd/utf.h \
		| $(FUZZ_DIR)/toolchain.ok
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Ihandoff $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_HANDOFF_SRCS)

# Grow the corpus: fuzz a working copy, then merge into the committed
# corpus only the inputs that add coverage.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/crashes; fail=""; \
	for t in $(FUZZ_TARGETS); do \
		case $$t in \
		fuzz_footer) ml=$(FUZZ_MAXLEN_fuzz_footer) ;; fuzz_header) ml=$(FUZZ_MAXLEN_fuzz_header) ;; \
		fuzz_utf) ml=$(FUZZ_MAXLEN_fuzz_utf) ;; fuzz_check) ml=$(FUZZ_MAXLEN_fuzz_check) ;; \
		fuzz_nbd) ml=$(FUZZ_MAXLEN_fuzz_nbd) ;; \
		fuzz_bootconf) ml=$(FUZZ_MAXLEN_fuzz_bootconf) ;; \
		fuzz_fsmap) ml=$(FUZZ_MAXLEN_fuzz_fsmap) ;; \
		fuzz_handoff) ml=$(FUZZ_MAXLEN_fuzz_handoff) ;; \
		*) ml=$(FUZZ_MAXLEN_fuzz_image) ;; esac; \
		work=$(FUZZ_DIR)/corpus-$$t; log=$(FUZZ_DIR)/$$t.log; \
		mkdir -p $$work $(FUZZ_SRC)/corpus/$$t; \
		for f in $(FUZZ_SRC)/corpus/$$t/*; do [ -f "$$f" ] && cp -n "$$f" $$work/; done; \
		echo "fuzz: $$t for $(FUZZ_TIME) s (log: $$log)"; \
		if ! $(FUZZ_ENV) $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_TIME) -max_len=$$ml $(FUZZ_COMMON) \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- $(FUZZ_ARGS) \
			$$work > $$log 2>&1; then \
			fail="$$fail $$t"; grep -E -A30 '^==[0-9]+==ERROR|runtime error|fuzz invariant' $$log | head -40; \
		fi; \
		grep -E '^#[0-9]+.*(DONE|pulse)|^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss' $$log | tail -4; \
		before=$$(ls $(FUZZ_SRC)/corpus/$$t | wc -l); \
		offer=$(FUZZ_DIR)/merge-$$t; rm -rf $$offer; mkdir -p $$offer; \
		find $$work -maxdepth 1 -type f -size -$$(( $(FUZZ_KEEP_MAX) + 1 ))c -exec cp {} $$offer/ \; ; \
		$(FUZZ_ENV) $(FUZZ_DIR)/$$t -merge=1 -use_counters=0 -max_len=$$ml $(FUZZ_COMMON) \
			-artifact_prefix=$(FUZZ_DIR)/crashes/$$t- $(FUZZ_SRC)/corpus/$$t $$offer \
			> $(FUZZ_DIR)/$$t.merge.log 2>&1 || fail="$$fail $$t(merge)"; \
		rm -rf $$offer; \
		echo "fuzz: $$t corpus: $$before -> $$(ls $(FUZZ_SRC)/corpus/$$t | wc -l) inputs, $$(du -sb $(FUZZ_SRC)/corpus/$$t | cut -f1) bytes"; \
	done; \
	if [ -n "$$fail" ]; then \
		echo "fuzz: crashes in:$$fail; inputs in $(FUZZ_DIR)/crashes/ (see tests/fuzz/README.md)" >&2; exit 1; \
	fi

# CI: the committed corpus (regressions included), then a bounded run from
# a fixed seed.  New inputs go to a scratch folder, never into the corpus.
fuzz-replay: fuzz-build
	@mkdir -p $(FUZZ_DIR)/crashes; fail=""; \
	for t in $(FUZZ_TARGETS); do \
		case $$t in \
		fuzz_footer) ml=$(FUZZ_MAXLEN_fuzz_footer); runs=$(FUZZ_RUNS_fuzz_footer) ;; \
		fuzz_header) ml=$(FUZZ_MAXLEN_fuzz_header); runs=$(FUZZ_RUNS_fuzz_header) ;; \
		fuzz_utf) ml=$(FUZZ_MAXLEN_fuzz_utf); runs=$(FUZZ_RUNS_fuzz_utf) ;; \
		fuzz_nbd) ml=$(FUZZ_MAXLEN_fuzz_nbd); runs=$(FUZZ_RUNS_fuzz_nbd) ;; \
		fuzz_check) ml=$(FUZZ_MAXLEN_fuzz_check); runs=$(FUZZ_RUNS_fuzz_check) ;; \
		fuzz_bootconf) ml=$(FUZZ_MAXLEN_fuzz_bootconf); runs=$(FUZZ_RUNS_fuzz_bootconf) ;; \
		fuzz_fsmap) ml=$(FUZZ_MAXLEN_fuzz_fsmap); runs=$(FUZZ_RUNS_fuzz_fsmap) ;; \
		fuzz_handoff) ml=$(FUZZ_MAXLEN_fuzz_handoff); runs=$(FUZZ_RUNS_fuzz_handoff) ;; \
		*) ml=$(FUZZ_MAXLEN_fuzz_image); runs=$(FUZZ_RUNS_fuzz_image) ;; esac; \
		scratch=$(FUZZ_DIR)/replay-$$t; log=$(FUZZ_DIR)/$$t.replay.log; \
		rm -rf $$scratch; mkdir -p $$scratch $(FUZZ_SRC)/corpus/$$t; \
		n=$$(ls $(FUZZ_SRC)/corpus/$$t | wc -l); start=$$(date +%s); \
		if ! $(FUZZ_ENV) $(FUZZ_DIR)/$$t -runs=0 -max_len=$$ml $(FUZZ_COMMON) \
			-artifact_prefix=$(FUZZ_DIR)/crashes/replay-$$t- $$scratch $(FUZZ_SRC)/corpus/$$t \
			> $$log 2>&1; then \
			fail="$$fail $$t"; echo "fuzz-replay: $$t: the corpus crashes:"; tail -40 $$log; continue; \
		fi; \
		if ! $(FUZZ_ENV) $(FUZZ_DIR)/$$t -seed=1 -runs=$$runs -max_total_time=$(FUZZ_REPLAY_TIME) \
			-max_len=$$ml $(FUZZ_COMMON) -artifact_prefix=$(FUZZ_DIR)/crashes/replay-$$t- \
			$$scratch $(FUZZ_SRC)/corpus/$$t >> $$log 2>&1; then \
			fail="$$fail $$t"; echo "fuzz-replay: $$t: the seeded run crashed:"; tail -40 $$log; continue; \
		fi; \
		done_line=$$(grep -E '^#[0-9]+[[:space:]]+DONE' $$log | tail -1 | \
			awk '{sub("#", "", $$1); print $$1 " runs, cov " $$4 ", ft " $$6}'); \
		echo "fuzz-replay: $$t ok: $$n corpus inputs, seeded run: $$done_line, $$(( $$(date +%s) - start )) s"; \
		rm -rf $$scratch; \
	done; \
	if [ -n "$$fail" ]; then \
		echo "fuzz-replay failed:$$fail (crashing inputs in $(FUZZ_DIR)/crashes/)" >&2; exit 1; \
	fi

# Known crashers waiting for a fix in libvhd: each should crash until it is
# fixed; then move it into tests/fuzz/corpus/<target>/.
fuzz-pending: fuzz-build
	@still=0; \
	for d in $(FUZZ_SRC)/pending/*/; do \
		[ -d "$$d" ] || continue; t=$$(basename $$d); \
		for f in $$d*; do \
			[ -f "$$f" ] || continue; \
			if $(FUZZ_ENV0) $(FUZZ_DIR)/$$t $(FUZZ_COMMON) $$f > $(FUZZ_DIR)/pending.log 2>&1; then \
				echo "fuzz-pending: fixed: $$f (move it to $(FUZZ_SRC)/corpus/$$t/)"; \
			else \
				still=1; echo "fuzz-pending: still crashes: $$f"; \
				grep -E -m3 'ERROR|runtime error|fuzz invariant|SUMMARY' $(FUZZ_DIR)/pending.log; \
			fi; \
		done; \
	done; exit $$still
