/*
 * The exception a fix-up makes the guest take instead of completing the
 * instruction. Every emulation step returns -EFAULT after filling a struct
 * pvm_exc; any other negative errno means "not handled, stop the VM".
 */
#ifndef KHYVE_PVM_EXC_H
#define KHYVE_PVM_EXC_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#define PVM_VEC_DB 1
#define PVM_VEC_BP 3
#define PVM_VEC_UD 6
#define PVM_VEC_NM 7
#define PVM_VEC_SS 12
#define PVM_VEC_GP 13
#define PVM_VEC_PF 14

struct pvm_exc {
	uint8_t vector;
	bool has_error_code;
	uint32_t error_code;
	uint64_t cr2; /* the faulting linear address, #PF only */
};

/* Fill @exc and return -EFAULT, so callers can write "return pvm_exc_raise(...)". */
static inline int pvm_exc_raise(struct pvm_exc *exc, uint8_t vector,
				bool has_error_code, uint32_t error_code)
{
	exc->vector = vector;
	exc->has_error_code = has_error_code;
	exc->error_code = error_code;
	exc->cr2 = 0;
	return -EFAULT;
}

#endif
