/*
 * User-space fix-ups for the emulation failures of software-virtualized
 * KVM (PVM, SPEC.md §7, PVM.md "Emulation failures").
 *
 * On a PVM host the guest kernel runs in KVM's instruction emulator, which
 * stops with KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION on a few
 * instructions. khyve completes the ones that matter here: int3 (advance RIP,
 * inject #BP), cmpxchg8b/cmpxchg16b and xsave/xsaveopt/xrstor (emulated over
 * the guest's page tables, with the #UD/#NM/#GP/#SS/#PF the CPU would raise).
 *
 * Requirements on the VM (vm.c / vcpu.c):
 *   - KVM_CAP_SYNC_REGS with run->kvm_valid_regs = REGS | SREGS | EVENTS;
 *   - KVM_CAP_EXIT_ON_EMULATION_FAILURE enabled (bytes in every exit);
 *   - KVM_CAP_EXCEPTION_PAYLOAD enabled, so a #PF carries CR2 in the
 *     events (exception_payload) and SREGS are never written; without it a
 *     #PF costs one KVM_SET_SREGS to set CR2. Which one applies is read
 *     from KVM_VCPUEVENT_VALID_PAYLOAD in the synced events.
 * The caller counts vcpu->nr_fixups; pvm_fixup() does not.
 *
 * Measured on the project's PVM host (tests/unit/pvm/test_kvm.c): KVM's
 * emulator raises the #GP/#PF of cmpxchg16b itself and runs cmpxchg8b, so
 * only a cmpxchg16b whose access is allowed reaches user space; the xsave
 * family always does.
 */
#ifndef KHYVE_PVM_FIXUP_H
#define KHYVE_PVM_FIXUP_H

#include <stdbool.h>
#include <stddef.h>

struct vcpu;

/*
 * True when /dev/kvm is PVM: /sys/module/kvm_pvm exists or, failing that,
 * the host CPU shows neither VMX nor SVM.
 */
bool pvm_host_detect(void);

/*
 * Handle the KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION exit in
 * vcpu->run. 0 when handled: the instruction was completed (registers
 * updated, RIP advanced) or the guest was given the exception the CPU
 * would raise, with run->s.regs changed and KVM_SYNC_X86_REGS/EVENTS set in
 * run->kvm_dirty_regs (never SREGS). A negative errno when not handled, and
 * then the vCPU state is unchanged: -ENOSYS for an instruction, CPU mode or
 * operand (not RAM) that is not emulated, -EINVAL for an exit that is not
 * such a failure, carries no usable state or already has an exception
 * queued, another -errno when a vCPU ioctl failed (xsave family, #PF
 * without the payload capability; the single-step #DB without it, after an
 * instruction run with RFLAGS.TF, when the instruction has completed). The
 * caller then reports with pvm_describe_failure() and stops the VM.
 */
int pvm_fixup(struct vcpu *vcpu);

/*
 * Format the failure in vcpu->run into @buf (always NUL-terminated):
 *   "emulation failure at RIP 0xffffffff81001234 (CPL 0): bytes 0f 01 d0 ...
 *    (xgetbv; guest kernel needs noxsave)"
 * with the decoded mnemonic and a command-line hint when known.
 */
void pvm_describe_failure(struct vcpu *vcpu, char *buf, size_t len);

#endif
