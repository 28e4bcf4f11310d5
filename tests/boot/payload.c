/* SPDX-License-Identifier: MIT */
/*
 * The boot suite's test program, started by vhdboot.efi from inside a VHD.
 * It proves what a real OS loader needs: it runs at TPL_APPLICATION, the
 * timer services work (WaitForEvent fails if a loader left the TPL
 * raised), and it got the command line.  Then it powers the machine off.
 */
#include <efi.h>
#include <efilib.h>

/* Called by gnu-efi's crt0, which converts the ABI: not EFIAPI. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab);

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
	InitializeLib(image, systab);

	EFI_TPL tpl = BS->RaiseTPL(TPL_HIGH_LEVEL);
	BS->RestoreTPL(tpl);

	EFI_EVENT timer;
	UINTN index;
	EFI_STATUS st = BS->CreateEvent(EVT_TIMER, 0, NULL, NULL, &timer);
	if (st == EFI_SUCCESS)
		st = BS->SetTimer(timer, TimerRelative, 100000); /* 10 ms */
	if (st == EFI_SUCCESS)
		st = BS->WaitForEvent(1, &timer, &index);

	EFI_LOADED_IMAGE *li = NULL;
	CHAR16 *options = L"";
	if (BS->HandleProtocol(image, &gEfiLoadedImageProtocolGuid, (void **)&li) == EFI_SUCCESS &&
	    li->LoadOptions && li->LoadOptionsSize >= 2)
		options = li->LoadOptions;

	Print(L"VHDBOOT-PAYLOAD tpl=%d timer=%a options=[%s]\r\n", (int)tpl,
	      st == EFI_SUCCESS ? "ok" : "FAILED", options);
	if (tpl == TPL_APPLICATION && st == EFI_SUCCESS)
		Print(L"VHDBOOT-PAYLOAD-OK\r\n");
	RT->ResetSystem(EfiResetShutdown, EFI_SUCCESS, 0, NULL);
	return EFI_SUCCESS;
}
