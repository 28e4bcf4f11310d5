/* SPDX-License-Identifier: MIT */
/*
 * The consistency checker over the input as a whole file: first on the
 * memory backend without the parent, then (differencing images) on a view
 * that can open built-in parents, with the parent check on.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * FUZZ_KNOWN_BUGS (environment; fuzz.mk sets it): tags of reported, unfixed
 * libvhd bugs whose oracle is relaxed, so that fuzzing gets past them.
 * Without it (make fuzz-pending) every oracle is strict.
 *   fixed-footer-copy: the checker judges a fixed image's first sector (guest
 *                 data) as a footer copy when it starts with "conectix".
 */
static int known_fixed_footer_copy = -1;

static unsigned count(const struct vhd_check_report *rep, enum vhd_finding_kind kind,
		      const char *structure)
{
	unsigned n = 0;
	for (size_t i = 0; i < rep->count; i++)
		n += rep->findings[i].kind == kind &&
		     (!structure || strcmp(rep->findings[i].structure, structure) == 0);
	return n;
}

static void check_report(const struct vhd_check_report *rep)
{
	FZ_CHECK(rep->count <= VHD_CHECK_MAX_FINDINGS);
	FZ_CHECK(rep->count + rep->dropped ==
		 (size_t)rep->corruptions + rep->leaks + rep->warnings);
	FZ_CHECK(rep->findings != NULL);
	for (size_t i = 0; i < rep->count; i++) {
		const struct vhd_finding *f = &rep->findings[i];
		FZ_CHECK(f->kind == VHD_FINDING_CORRUPTION || f->kind == VHD_FINDING_LEAK ||
			 f->kind == VHD_FINDING_WARNING);
		FZ_CHECK(fz_terminated(f->structure, sizeof(f->structure)));
		FZ_CHECK(fz_terminated(f->field, sizeof(f->field)));
		FZ_CHECK(fz_terminated(f->message, sizeof(f->message)));
	}
	FZ_CHECK(rep->leaks <= 1);
	FZ_CHECK((rep->leaks != 0) == (rep->leaked_bytes != 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhd_io *io;
	struct vhd_check_report rep;

	if (vhd_io_mem_open(data, size, &io) < 0)
		abort();
	int r = vhd_check_io(io, false, &rep);
	FZ_CHECK(r == 0 || r == -ENOMEM);
	if (r == 0) {
		check_report(&rep);
		enum vhd_type type = rep.type;
		unsigned corruptions = rep.corruptions;

		/*
		 * A fixed image whose end footer is sound: its first sector is
		 * guest data, so changing it changes no corruption finding.
		 */
		if (known_fixed_footer_copy < 0) {
			const char *k = getenv("FUZZ_KNOWN_BUGS");
			known_fixed_footer_copy = k && strstr(k, "fixed-footer-copy");
		}
		if (type == VHD_TYPE_FIXED && size >= 2048 && rep.dropped == 0 &&
		    count(&rep, VHD_FINDING_CORRUPTION, "footer") == 0 &&
		    count(&rep, VHD_FINDING_CORRUPTION, "file") == 0) {
			uint8_t *copy = fz_dup(data, size);
			for (size_t i = 0; i < 512; i++)
				copy[i] ^= (uint8_t)(0x5a + i);
			struct vhd_io *cio;
			struct vhd_check_report crep;
			if (vhd_io_mem_open(copy, size, &cio) < 0)
				abort();
			FZ_CHECK(vhd_check_io(cio, false, &crep) == 0);
			FZ_CHECK(crep.type == VHD_TYPE_FIXED);
			if (known_fixed_footer_copy)
				FZ_CHECK(crep.corruptions - count(&crep, VHD_FINDING_CORRUPTION, "footer-copy") ==
					 corruptions - count(&rep, VHD_FINDING_CORRUPTION, "footer-copy"));
			else
				FZ_CHECK(crep.corruptions == corruptions);
			vhd_check_report_free(&crep);
			vhd_io_close(cio);
			free(copy);
		}
		vhd_check_report_free(&rep);
		FZ_CHECK(rep.findings == NULL);

		/* The same bytes through a backend with holes and parents. */
		struct vhd_io *view = fz_view_open(data, size, FZ_SIB_BUILTIN, data, size);
		struct vhd_check_report rep2;
		r = vhd_check_io(view, type == VHD_TYPE_DIFFERENCING, &rep2);
		FZ_CHECK(r == 0);
		check_report(&rep2);
		FZ_CHECK(rep2.type == type);
		/* The parent check only adds findings. */
		FZ_CHECK(rep2.corruptions >= corruptions);
		vhd_check_report_free(&rep2);
		vhd_io_close(view);
	}
	vhd_io_close(io);
	return 0;
}
