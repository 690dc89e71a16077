/*
 * The vCPU thread: KVM_RUN in a loop, each exit dispatched through
 * exit_handlers[] by reason. The thread stops when a handler returns a stop
 * reason or when vm_stop_vcpus() kicks it (SIGUSR1 + immediate_exit, so a
 * kick that lands just before KVM_RUN is not lost).
 */
#include "core/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/cpu_setup.h"
#include "arch/x86/pvm/pvm_fixup.h"

#define VCPU_KICK_SIGNAL SIGUSR1

typedef int (*exit_fn)(struct vcpu *vcpu);

static int exit_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	vcpu->nr_pio_exits++;
	/* String I/O (rep outsb/insb) arrives as count items in one exit. */
	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		if (!iobus_dispatch(&vcpu->vm->pio, run->io.port, data,
				    run->io.size, is_write))
			debug("unhandled port %s 0x%x size %u",
			      is_write ? "write" : "read", run->io.port,
			      run->io.size);
	}
	return VCPU_CONTINUE;
}

static int exit_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (!iobus_dispatch(&vcpu->vm->mmio, run->mmio.phys_addr,
			    run->mmio.data, len, run->mmio.is_write))
		warn_ratelimited("vCPU %u: %s of unassigned address 0x%llx "
				 "(%u bytes) ignored",
				 vcpu->id, run->mmio.is_write ? "write" : "read",
				 (unsigned long long)run->mmio.phys_addr, len);
	return VCPU_CONTINUE;
}

static int exit_shutdown(struct vcpu *vcpu)
{
	info("vCPU %u: triple fault at RIP 0x%llx: the guest reset itself "
	     "by fault",
	     vcpu->id, (unsigned long long)vcpu->run->s.regs.regs.rip);
	return VM_STOP_TRIPLE_FAULT;
}

static int exit_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return VM_STOP_POWEROFF;
	case KVM_SYSTEM_EVENT_RESET:
		return VM_STOP_RESET;
	default:
		warn("vCPU %u: guest crash event %u", vcpu->id,
		     vcpu->run->system_event.type);
		return VM_STOP_ERROR;
	}
}

static int exit_hlt(struct vcpu *vcpu)
{
	(void)vcpu;
	return VM_STOP_POWEROFF;
}

static int exit_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[256];

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		/* Fix-ups exist for software-virtualized hosts only (SPEC §7). */
		if (vcpu->vm->pvm && pvm_fixup(vcpu) == 0) {
			vcpu->nr_fixups++;
			return VCPU_CONTINUE;
		}
		pvm_describe_failure(vcpu, what, sizeof(what));
		warn("vCPU %u: %s: the host's KVM cannot run this instruction "
		     "and khyve cannot emulate it",
		     vcpu->id, what);
		return VM_STOP_ERROR;
	}
	warn("vCPU %u: KVM internal error %u at RIP 0x%llx", vcpu->id,
	     run->internal.suberror,
	     (unsigned long long)run->s.regs.regs.rip);
	return VM_STOP_ERROR;
}

static int exit_fail_entry(struct vcpu *vcpu)
{
	warn("vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)",
	     vcpu->id,
	     (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason);
	return VM_STOP_ERROR;
}

/*
 * An MSR KVM does not know: with -w reads give 0 and writes are dropped;
 * otherwise the guest gets #GP, as on hardware.
 */
static int exit_msr(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	bool is_write = run->exit_reason == KVM_EXIT_X86_WRMSR;

	if (vcpu->vm->ignore_unknown_msrs) {
		run->msr.error = 0;
		if (!is_write)
			run->msr.data = 0;
		return VCPU_CONTINUE;
	}
	debug("vCPU %u: %s of unknown MSR 0x%x: #GP", vcpu->id,
	      is_write ? "wrmsr" : "rdmsr", run->msr.index);
	run->msr.error = 1;
	return VCPU_CONTINUE;
}

static int exit_intr(struct vcpu *vcpu)
{
	(void)vcpu;
	return VCPU_CONTINUE;
}

static int exit_unexpected(struct vcpu *vcpu)
{
	warn("vCPU %u: unexpected KVM exit reason %u at RIP 0x%llx", vcpu->id,
	     vcpu->run->exit_reason,
	     (unsigned long long)vcpu->run->s.regs.regs.rip);
	return VM_STOP_ERROR;
}

static const exit_fn exit_handlers[] = {
	[KVM_EXIT_IO] = exit_io,
	[KVM_EXIT_MMIO] = exit_mmio,
	[KVM_EXIT_HLT] = exit_hlt,
	[KVM_EXIT_SHUTDOWN] = exit_shutdown,
	[KVM_EXIT_SYSTEM_EVENT] = exit_system_event,
	[KVM_EXIT_INTERNAL_ERROR] = exit_internal_error,
	[KVM_EXIT_FAIL_ENTRY] = exit_fail_entry,
	[KVM_EXIT_X86_RDMSR] = exit_msr,
	[KVM_EXIT_X86_WRMSR] = exit_msr,
	[KVM_EXIT_INTR] = exit_intr,
};

int vcpu_handle_exit(struct vcpu *vcpu)
{
	uint32_t reason = vcpu->run->exit_reason;
	exit_fn fn = NULL;

	if (reason < sizeof(exit_handlers) / sizeof(exit_handlers[0]))
		fn = exit_handlers[reason];
	return (fn ? fn : exit_unexpected)(vcpu);
}

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int id)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		die_errno("KVM_CREATE_VCPU %u", id);
	vcpu->run = mmap(NULL, vm->vcpu_mmap_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED)
		die_errno("mmap of vCPU %u's kvm_run", id);
	x86_cpu_setup(vcpu);
	vcpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS |
				    KVM_SYNC_X86_EVENTS;
	/* No SA_RESTART: the kick must make KVM_RUN return EINTR. */
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (vm_stop_reason(vm) == VM_RUNNING) {
		int r;

		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu->run->immediate_exit = 0;
				watchdog_sample(vcpu);
				continue;
			}
			warn("vCPU %u: KVM_RUN: %s", vcpu->id, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		vcpu->nr_exits++;
		watchdog_sample(vcpu);
		r = vcpu_handle_exit(vcpu);
		if (r != VCPU_CONTINUE)
			vm_request_stop(vm, r);
	}
	return NULL;
}

void vcpu_start(struct vcpu *vcpu)
{
	char name[16];
	int err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (err)
		die("cannot start vCPU %u: %s", vcpu->id, strerror(err));
	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(vcpu->thread, name);
	vcpu->started = true;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_kick_once(struct vcpu *vcpu)
{
	if (vcpu->started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run && vcpu->run != MAP_FAILED)
		munmap(vcpu->run, vcpu->vm->vcpu_mmap_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
}
