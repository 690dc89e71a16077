/* The test guests' IDT and exception dispatch; see idt.h. */
#include "guest.h"
#include "idt.h"

#define NR_VECTORS 32
#define GUEST_CS 0x10
#define GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define RFLAGS_TF (1ULL << 8)
#define DR6_RESET 0xffff0ff0ULL /* DR6 with no condition recorded */

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

static struct idt_gate idt[NR_VECTORS] __attribute__((aligned(16)));
extern const uint64_t isr_stubs[NR_VECTORS]; /* isr.S */

volatile unsigned int exc_count;
volatile struct exc_record exc_log[EXC_LOG_LEN];
volatile uint64_t exc_resume_rip;

void idt_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint64_t)idt };
	unsigned int i;

	for (i = 0; i < NR_VECTORS; i++) {
		uint64_t a = isr_stubs[i];

		idt[i] = (struct idt_gate){
			.offset_lo = (uint16_t)a,
			.selector = GUEST_CS,
			.type = GATE_INTERRUPT,
			.offset_mid = (uint16_t)(a >> 16),
			.offset_hi = (uint32_t)(a >> 32),
		};
	}
	exc_reset();
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

void exc_reset(void)
{
	exc_count = 0;
	exc_resume_rip = 0;
	mem_set((void *)exc_log, 0, sizeof(exc_log));
}

/* Called by isr.S with interrupts off; may redirect frame->rip. */
void exc_dispatch(struct exc_frame *f);
void exc_dispatch(struct exc_frame *f)
{
	volatile struct exc_record *r = &exc_log[exc_count % EXC_LOG_LEN];
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	r->vector = f->vector;
	r->error_code = f->error_code;
	r->cr2 = cr2;
	r->rip = f->rip;
	r->cs = f->cs;
	r->rflags = f->rflags;
	r->rsp = f->rsp;
	r->dr6 = 0;
	if (f->vector == VEC_DB) {
		__asm__ volatile("mov %%dr6, %0" : "=r"(r->dr6));
		__asm__ volatile("mov %0, %%dr6" : : "r"(DR6_RESET));
		f->rflags &= ~RFLAGS_TF;
	}
	exc_count++;

	if (exc_resume_rip) {
		f->rip = exc_resume_rip;
		exc_resume_rip = 0;
	} else if (f->vector != VEC_DB && f->vector != VEC_BP &&
		   f->vector != 4 /* #OF */) {
		guest_fail(
			"unexpected exception %lu (error code %lx) at RIP %lx, "
			"CR2 %lx",
			f->vector, f->error_code, f->rip, cr2);
	}
}
