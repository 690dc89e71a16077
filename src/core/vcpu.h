/*
 * A vCPU: its KVM file descriptor, the shared kvm_run page and the thread
 * that loops on KVM_RUN. Each exit reason is handled by one function looked
 * up in a table (vcpu.c); a handler returns VCPU_CONTINUE or a stop reason.
 *
 * KVM_CAP_SYNC_REGS is on: after every exit run->s.regs holds the general
 * registers, the segment/control registers and the pending events, so a
 * handler that needs them makes no ioctl. A handler that changes them sets
 * the matching KVM_SYNC_X86_* bit in run->kvm_dirty_regs (never SREGS on a
 * hot path: writing SREGS makes KVM reload the MMU).
 */
#ifndef KHYVE_CORE_VCPU_H
#define KHYVE_CORE_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/vm.h"
#include "core/watchdog.h"

#define VCPU_CONTINUE (-1)

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	uint64_t nr_exits;
	uint64_t nr_pio_exits;
	uint64_t nr_fixups;   /* PVM emulation-failure fix-ups done */
	struct watchdog_state watchdog;
};

/* Create vCPU @id of @vm: fd, kvm_run mapping, CPUID, MSRs; dies on error. */
void vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int id);
/* Start the vCPU's thread. */
void vcpu_start(struct vcpu *vcpu);
/* Interrupt KVM_RUN for good: the VM is stopping. */
void vcpu_kick(struct vcpu *vcpu);
/* Interrupt the current KVM_RUN once (the thread then runs on). */
void vcpu_kick_once(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);
/* Run the exit handler for the exit in vcpu->run (used by tests too). */
int vcpu_handle_exit(struct vcpu *vcpu);
/* Push run->s.regs changes back before the next KVM_RUN. */
static inline void vcpu_mark_dirty(struct vcpu *vcpu, uint64_t sync_bits)
{
	vcpu->run->kvm_dirty_regs |= sync_bits;
}

#endif
