/* SPDX-License-Identifier: MIT */
/*
 * vhdboot.efi: boot the program inside a VHD file.
 *
 * Read vhdboot.conf beside the loader and the LoadOptions, pick an entry,
 * map the VHD file on its partition, open it (and its parents) with libvhd,
 * install it as a BlockIo disk, connect the firmware's partition and FAT
 * drivers to it, and start the program from the file system inside.
 * Every failure is one line on the console, then back to the firmware.
 */
#include "bootconf.h"
#include "efi_glue.h"

#define CONF_NAME  "vhdboot.conf"
#define CONF_MAX   (256u << 10)
#define PATH16_MAX VB_PATH_MAX
/* cmdline= plus the handoff's parameters. */
#define KERNEL_CMDLINE_MAX (VB_CMDLINE_MAX + 2048)

static struct vb_config config;     /* large: keep it off the stack */
static struct vb_volume volume;     /* outlives every io mapped on it */
static char options[VB_CMDLINE_MAX + VB_PATH_MAX * 2];

/* UTF-8 to NUL-terminated UCS-2 (no surrogates needed for paths and
 * command lines; anything past U+FFFF becomes '?'). */
static bool utf8_to_ucs2(const char *in, CHAR16 *out, size_t outlen)
{
	size_t o = 0;
	const unsigned char *s = (const unsigned char *)in;
	while (*s) {
		uint32_t c = *s++;
		int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (more) {
			c &= 0x3fu >> more;
			for (; more && (*s & 0xc0) == 0x80; more--)
				c = (c << 6) | (*s++ & 0x3fu);
		}
		if (o + 1 >= outlen)
			return false;
		out[o++] = (CHAR16)(c > 0xffff ? '?' : c);
	}
	out[o] = 0;
	return true;
}

/* The text of the path nodes of a device path ("\EFI\vhdboot\vhdboot.efi"). */
static void file_path_text(EFI_DEVICE_PATH *dp, char *out, size_t outlen)
{
	size_t o = 0;
	for (EFI_DEVICE_PATH *n = dp; n && !IsDevicePathEnd(n) && DevicePathNodeLength(n) >= 4;
	     n = NextDevicePathNode(n)) {
		if (DevicePathType(n) != MEDIA_DEVICE_PATH || DevicePathSubType(n) != MEDIA_FILEPATH_DP)
			continue;
		const CHAR16 *p = ((FILEPATH_DEVICE_PATH *)n)->PathName;
		size_t max = (DevicePathNodeLength(n) - 4) / 2;
		if (o && out[o - 1] != '\\' && p[0] != '\\' && o + 1 < outlen)
			out[o++] = '\\';
		for (size_t i = 0; i < max && p[i] && o + 1 < outlen; i++)
			out[o++] = p[i] < 0x80 ? (char)p[i] : '?';
	}
	out[o] = '\0';
}

/* Read a whole (small) file through a SimpleFileSystem. */
static EFI_STATUS read_small_file(EFI_FILE_HANDLE root, const char *path, char *buf, size_t max,
				  size_t *len)
{
	CHAR16 path16[PATH16_MAX];
	EFI_FILE_HANDLE f;
	if (!utf8_to_ucs2(path, path16, PATH16_MAX))
		return EFI_BAD_BUFFER_SIZE;
	EFI_STATUS st = root->Open(root, &f, path16, EFI_FILE_MODE_READ, 0);
	if (st != EFI_SUCCESS)
		return st;
	UINTN n = max;
	st = f->Read(f, &n, buf);
	if (st == EFI_SUCCESS && n == max) {
		char extra;
		UINTN one = 1;
		if (f->Read(f, &one, &extra) == EFI_SUCCESS && one)
			st = EFI_BAD_BUFFER_SIZE;
	}
	f->Close(f);
	*len = n;
	return st;
}

static int load_config(EFI_LOADED_IMAGE *li)
{
	char self[VB_PATH_MAX], conf_path[VB_PATH_MAX];
	file_path_text(li->FilePath, self, sizeof(self));
	size_t dir = 0;
	for (size_t i = 0; self[i]; i++)
		if (self[i] == '\\')
			dir = i + 1;
	self[dir] = '\0';
	vhd_format(conf_path, sizeof(conf_path), "%s%s%s", self[0] == '\\' ? "" : "\\", self,
		   CONF_NAME);

	vb_config_init(&config);
	EFI_FILE_HANDLE root = LibOpenRoot(li->DeviceHandle);
	if (root) {
		char *text = vhd_malloc(CONF_MAX);
		size_t len = 0;
		if (!text)
			return -ENOMEM;
		EFI_STATUS st = read_small_file(root, conf_path, text, CONF_MAX, &len);
		root->Close(root);
		if (st == EFI_SUCCESS) {
			int r = vb_config_parse(&config, text, len);
			vhd_free(text);
			if (r < 0) {
				vb_error("%s: %s", conf_path, config.error);
				return r;
			}
		} else {
			vhd_free(text);
			if (st != EFI_NOT_FOUND) {
				vb_error("%s: cannot read it (status %llx)", conf_path,
					 (unsigned long long)st);
				return -EIO;
			}
		}
	}
	if (li->LoadOptionsSize && li->LoadOptions) {
		if (vb_load_options_decode(li->LoadOptions, li->LoadOptionsSize, options,
					   sizeof(options)) < 0) {
			vb_error("the boot entry's options cannot be read (too long or not text)");
			return -EINVAL;
		}
		if (vb_config_apply_options(&config, options) < 0) {
			vb_error("boot entry options: %s", config.error);
			return -EINVAL;
		}
	}
	if (vb_config_finish(&config) < 0) {
		vb_error("%s: %s", conf_path, config.error);
		return -EINVAL;
	}
	return 0;
}

/* The console menu: a digit picks an entry, Enter or the timeout the default. */
static size_t choose_entry(void)
{
	if (config.n_entries < 2 || config.timeout == 0)
		return config.default_entry;
	for (size_t i = 0; i < config.n_entries; i++)
		vb_say("%c %u) %s", i == config.default_entry ? '*' : ' ', (unsigned)(i + 1),
		       config.entries[i].name);
	if (config.timeout > 0)
		vb_say("press 1-%u, or wait %d s for the default",
		       (unsigned)(config.n_entries < 9 ? config.n_entries : 9), config.timeout);
	EFI_EVENT timer = NULL, events[2];
	UINTN n = 0, which;
	events[n++] = ST->ConIn->WaitForKey;
	if (config.timeout > 0 &&
	    BS->CreateEvent(EVT_TIMER, 0, NULL, NULL, &timer) == EFI_SUCCESS &&
	    BS->SetTimer(timer, TimerRelative, (UINT64)config.timeout * 10000000u) == EFI_SUCCESS)
		events[n++] = timer;
	size_t pick = config.default_entry;
	for (;;) {
		if (BS->WaitForEvent(n, events, &which) != EFI_SUCCESS || which == 1)
			break;
		EFI_INPUT_KEY key;
		if (ST->ConIn->ReadKeyStroke(ST->ConIn, &key) != EFI_SUCCESS)
			continue;
		if (key.UnicodeChar == '\r')
			break;
		if (key.UnicodeChar >= '1' && key.UnicodeChar <= '9' &&
		    key.UnicodeChar < '1' + config.n_entries) {
			pick = (size_t)(key.UnicodeChar - '1');
			break;
		}
	}
	if (timer)
		BS->CloseEvent(timer);
	return pick;
}

/* Does dp lie under (start with) the device path prefix? */
static bool path_under(EFI_DEVICE_PATH *dp, EFI_DEVICE_PATH *prefix)
{
	UINTN plen = DevicePathSize(prefix) - END_DEVICE_PATH_LENGTH;
	return dp && DevicePathSize(dp) > plen + END_DEVICE_PATH_LENGTH &&
	       memcmp(dp, prefix, plen) == 0;
}

static bool file_exists(EFI_FILE_HANDLE root, const CHAR16 *path)
{
	EFI_FILE_HANDLE f;
	if (root->Open(root, &f, (CHAR16 *)path, EFI_FILE_MODE_READ, 0) != EFI_SUCCESS)
		return false;
	f->Close(f);
	return true;
}

/* \EFI\<dir>\name for the first folder of \EFI that holds name. */
static bool find_in_efi_dirs(EFI_FILE_HANDLE root, const CHAR16 *name, CHAR16 *out, size_t outlen)
{
	EFI_FILE_HANDLE dir;
	bool found = false;
	if (root->Open(root, &dir, L"\\EFI", EFI_FILE_MODE_READ, 0) != EFI_SUCCESS)
		return false;
	UINT64 buf[(SIZE_OF_EFI_FILE_INFO + 512) / 8 + 1];
	for (;;) {
		UINTN n = sizeof(buf);
		if (dir->Read(dir, &n, buf) != EFI_SUCCESS || n == 0)
			break;
		EFI_FILE_INFO *fi = (EFI_FILE_INFO *)buf;
		if (!(fi->Attribute & EFI_FILE_DIRECTORY) || fi->FileName[0] == '.')
			continue;
		if (StrLen(fi->FileName) + StrLen(name) + 8 > outlen)
			continue;
		SPrint(out, outlen * sizeof(CHAR16), L"\\EFI\\%s\\%s", fi->FileName, name);
		if (file_exists(root, out)) {
			found = true;
			break;
		}
	}
	dir->Close(dir);
	return found;
}

/* The program to start, on a file system inside the disk. */
static bool find_program(EFI_HANDLE fs, const struct vb_entry *e, CHAR16 *out, size_t outlen)
{
	EFI_FILE_HANDLE root = LibOpenRoot(fs);
	bool found = false;
	if (!root)
		return false;
	if (e->program[0]) {
		found = utf8_to_ucs2(e->program, out, outlen) && file_exists(root, out);
	} else {
		StrCpy(out, L"\\EFI\\BOOT\\BOOTX64.EFI");
		found = file_exists(root, out) || find_in_efi_dirs(root, L"shimx64.efi", out, outlen) ||
			find_in_efi_dirs(root, L"grubx64.efi", out, outlen);
	}
	root->Close(root);
	return found;
}

/* For messages: the ASCII view of a UCS-2 path. */
static const char *ascii_of(const CHAR16 *s, char *buf, size_t len)
{
	size_t o = 0;
	for (; *s && o + 1 < len; s++)
		buf[o++] = *s < 0x80 ? (char)*s : '?';
	buf[o] = '\0';
	return buf;
}

static EFI_STATUS start_program(EFI_HANDLE image, EFI_HANDLE fs, const CHAR16 *program,
				const char *options)
{
	char name[VB_PATH_MAX];
	ascii_of(program, name, sizeof(name));
	EFI_DEVICE_PATH *path = FileDevicePath(fs, (CHAR16 *)program);
	EFI_HANDLE child = NULL;
	if (!path)
		return EFI_OUT_OF_RESOURCES;
	EFI_STATUS st = BS->LoadImage(FALSE, image, path, NULL, 0, &child);
	FreePool(path);
	if (st != EFI_SUCCESS) {
		vb_error("cannot load %s from the VHD (status %llx)", name, (unsigned long long)st);
		return st;
	}
	static CHAR16 cmdline[KERNEL_CMDLINE_MAX];
	EFI_LOADED_IMAGE *li = NULL;
	if (options[0] && utf8_to_ucs2(options, cmdline, KERNEL_CMDLINE_MAX) &&
	    BS->HandleProtocol(child, &gEfiLoadedImageProtocolGuid, (void **)&li) == EFI_SUCCESS) {
		li->LoadOptions = cmdline;
		li->LoadOptionsSize = (UINT32)((StrLen(cmdline) + 1) * sizeof(CHAR16));
	}
	st = BS->StartImage(child, NULL, NULL);
	if (st != EFI_SUCCESS)
		vb_error("%s returned status %llx", name, (unsigned long long)st);
	return st;
}

static const char *human_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= (1ull << 30))
		vhd_format(buf, len, "%llu GiB", (unsigned long long)(bytes >> 30));
	else
		vhd_format(buf, len, "%llu MiB", (unsigned long long)(bytes >> 20));
	return buf;
}

/*
 * libvhd, like qemu, reads an image whose checksums mismatch when its
 * structure holds; a boot loader refuses it instead: booting a machine
 * from a damaged disk is how data gets lost.  One line, naming the layer.
 */
static bool checksums_bad(struct vhd_image *img, const char *top)
{
	const char *name = top;
	for (struct vhd_image *l = img; l; name = vhd_parent_path(l), l = vhd_parent(l)) {
		struct vhd_info info;
		if (vhd_get_info(l, &info) < 0 || (info.footer_checksum_ok && info.header_checksum_ok))
			continue;
		char why[200];
		vhd_format(why, sizeof(why), "%s", vhd_warnings(l));
		char *nl = strchr(why, '\n');
		if (nl)
			*nl = '\0';
		vb_error("bad checksum in %s: %s (vhdtool check --repair can fix it)", name, why);
		return true;
	}
	return false;
}

static EFI_STATUS boot_entry(EFI_HANDLE image, EFI_LOADED_IMAGE *li, const struct vb_entry *e)
{
	char err[VHD_LOCATOR_MAX_PATH + 200];
	struct vhd_error verr;
	struct vhd_io *io;
	struct vhd_image *img;
	int r;

	r = e->vhd_on_partuuid ? vb_volume_find_partuuid(e->partuuid, &volume, err, sizeof(err))
			       : vb_volume_open(li->DeviceHandle, &volume, err, sizeof(err));
	if (r < 0) {
		vb_error("VHD %s: %s", e->vhd, err);
		return EFI_NOT_FOUND;
	}
	/* Open read-only first: writable= applies to fixed images only, and a
	 * dynamic image must not be opened for writing even for a moment. */
	r = vb_file_io_open(&volume, e->vhd, false, &io, err, sizeof(err));
	if (r < 0) {
		vb_error("VHD not found or unreadable: %s", err);
		return EFI_NOT_FOUND;
	}
	if (vhd_open_io(io, 0, &img, &verr) < 0) {
		vb_error("cannot open %s: %s", e->vhd, verr.message);
		return EFI_LOAD_ERROR;
	}
	if (checksums_bad(img, e->vhd)) {
		vhd_close(img);
		return EFI_CRC_ERROR;
	}
	struct vhd_info info;
	vhd_get_info(img, &info);
	if (e->writable) {
		if (info.type != VHD_TYPE_FIXED) {
			vb_error("writable=yes needs a fixed VHD; %s is %s", e->vhd,
				 vhd_type_name(info.type));
			vhd_close(img);
			return EFI_UNSUPPORTED;
		}
		vhd_close(img);
		if (vb_file_io_open(&volume, e->vhd, true, &io, err, sizeof(err)) < 0) {
			vb_error("cannot open %s for writing: %s", e->vhd, err);
			return EFI_LOAD_ERROR;
		}
		if (vhd_open_io(io, VHD_OPEN_RDWR, &img, &verr) < 0) {
			vb_error("cannot open %s for writing: %s", e->vhd, verr.message);
			return EFI_LOAD_ERROR;
		}
	}
	char size[32];
	vb_say("%s: %s VHD, %s%s", e->vhd, vhd_type_name(info.type),
	       human_size(info.virtual_size, size, sizeof(size)), e->writable ? ", writable" : "");

	static char options_out[KERNEL_CMDLINE_MAX];
	char extra[2048];
	if (vb_handoff_params(e, &volume, img, io, extra, sizeof(extra), err, sizeof(err)) < 0) {
		vb_error("handoff=%s: %s", vb_handoff_name(e->handoff), err);
		vhd_close(img);
		return EFI_UNSUPPORTED;
	}
	/* extra starts with a space: drop it when there is no cmdline=. */
	const char *params = e->cmdline[0] || extra[0] != ' ' ? extra : extra + 1;
	if (vhd_format(options_out, sizeof(options_out), "%s%s", e->cmdline, params) >=
	    (int)sizeof(options_out)) {
		vb_error("the program's command line is too long");
		vhd_close(img);
		return EFI_BAD_BUFFER_SIZE;
	}

	/* The disk the program starts from: ours, or the RAM disk's copy. */
	struct vb_blockdev *dev = NULL;
	struct vb_ramdisk ramdisk = { 0 };
	EFI_DEVICE_PATH *disk_path = NULL;
	EFI_STATUS st;
	if (e->handoff == VB_HANDOFF_RAMDISK) {
		st = vb_ramdisk_register(img, &ramdisk, err, sizeof(err));
		vhd_close(img);
		img = NULL;
		if (st != EFI_SUCCESS) {
			vb_error("handoff=ramdisk: %s", err);
			return st;
		}
		disk_path = ramdisk.path;
	} else {
		st = vb_blockdev_install(img, e->writable, &dev);
		if (st != EFI_SUCCESS) {
			vb_error("cannot install the virtual disk (status %llx)", (unsigned long long)st);
			vhd_close(img);
			return st;
		}
		disk_path = vb_blockdev_path(dev);
		BS->ConnectController(vb_blockdev_handle(dev), NULL, NULL, TRUE);
	}

	UINTN count = 0;
	EFI_HANDLE *handles = NULL;
	if (BS->LocateHandleBuffer(ByProtocol, &gEfiSimpleFileSystemProtocolGuid, NULL, &count,
				   &handles) != EFI_SUCCESS)
		count = 0;
	EFI_HANDLE fs = NULL;
	bool any_fs = false;
	static CHAR16 program[PATH16_MAX];
	for (UINTN i = 0; i < count && !fs; i++) {
		if (!path_under(DevicePathFromHandle(handles[i]), disk_path))
			continue;
		any_fs = true;
		if (find_program(handles[i], e, program, PATH16_MAX))
			fs = handles[i];
	}
	if (handles)
		BS->FreePool(handles);
	if (!fs) {
		if (!any_fs)
			vb_error("no ESP inside %s: the disk has no partition with a FAT file system",
				 e->vhd);
		else if (e->program[0])
			vb_error("program not found: %s is not in any file system inside %s", e->program,
				 e->vhd);
		else
			vb_error("program not found: no \\EFI\\BOOT\\BOOTX64.EFI, shimx64.efi or grubx64.efi inside %s",
				 e->vhd);
		st = EFI_NOT_FOUND;
	} else {
		char name[VB_PATH_MAX];
		vb_say("starting %s%s%s", ascii_of(program, name, sizeof(name)),
		       options_out[0] ? " " : "", options_out);
		st = start_program(image, fs, program, options_out);
	}
	if (dev && vb_blockdev_uninstall(dev) != EFI_SUCCESS) {
		vb_error("the virtual disk is still in use; leaving it installed");
		img = NULL; /* its BlockIo still reads through the image */
	}
	if (ramdisk.path && vb_ramdisk_unregister(&ramdisk) != EFI_SUCCESS)
		vb_error("the RAM disk is still in use; leaving it registered");
	if (img)
		vhd_close(img);
	return st;
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab);

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	EFI_LOADED_IMAGE *li = NULL;
	InitializeLib(image, systab);
	if (BS->HandleProtocol(image, &gEfiLoadedImageProtocolGuid, (void **)&li) != EFI_SUCCESS) {
		vb_error("the firmware gives no LoadedImage for the loader");
		return EFI_LOAD_ERROR;
	}
	if (load_config(li) < 0)
		return EFI_INVALID_PARAMETER;
	return boot_entry(image, li, &config.entries[choose_entry()]);
}
