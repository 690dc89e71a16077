/*
 * A guest that gets stuck on purpose, for the watchdog: how=spin loops on
 * one instruction forever (khyve warns and keeps running); how=vmcall makes
 * a KVM hypercall, which a software-virtualized host never completes
 * (khyve reports it and exits 1), while hardware KVM returns from it;
 * how=halt halts with interrupts disabled, which ends the run (exit 0).
 */
#include "guest.h"

const char test_name[] = "stuck";

void guest_main(const void *bp)
{
	char how[16] = "spin";
	uint64_t ret = 12; /* KVM_HC_... nothing: an unknown hypercall */

	serial_init();
	cmdline_get(cmdline(bp), "how", how, sizeof(how));
	printf_serial("STUCK via %s\n", how);
	if (!str_cmp(how, "vmcall")) {
		__asm__ volatile("vmcall" : "+a"(ret) : : "memory");
		printf_serial("vmcall returned %lx\n", ret);
		guest_pass();
	}
	if (!str_cmp(how, "halt"))
		for (;;)
			__asm__ volatile("cli; hlt");
	for (;;)
		__asm__ volatile("" ::: "memory");
}
