/* i8042 keyboard controller; see i8042.h. */
#include "hw/i8042.h"

#include <string.h>

#include "core/vm.h"

#define PORT_DATA 0x60
#define PORT_CMD 0x64

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the keylock */
#define STS_CMD 0x08

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_TEST_AUX 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE_RESET 0xfe

#define OUTPORT_RESET_HIGH 0x01

static void vm_reset(struct vm *vm)
{
	vm_request_stop(vm, VM_STOP_RESET);
}

void i8042_init(struct i8042 *kbc, struct vm *vm)
{
	memset(kbc, 0, sizeof(*kbc));
	pthread_mutex_init(&kbc->lock, NULL);
	kbc->vm = vm;
	kbc->ctr = 0x30; /* both ports disabled, no interrupts */
	kbc->reset = vm_reset;
}

static void reply(struct i8042 *kbc, uint8_t value)
{
	kbc->out = value;
	kbc->out_full = true;
}

static void command(struct i8042 *kbc, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		reply(kbc, kbc->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPORT:
	case CMD_WRITE_AUX:
		kbc->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		reply(kbc, 0x55);
		break;
	case CMD_TEST_KBD:
		reply(kbc, 0x00);
		break;
	case CMD_TEST_AUX:
		reply(kbc, 0xff); /* no mouse port */
		break;
	case CMD_READ_OUTPORT:
		reply(kbc, OUTPORT_RESET_HIGH | 0x02);
		break;
	case CMD_DISABLE_KBD:
		kbc->ctr |= 0x10;
		break;
	case CMD_ENABLE_KBD:
		kbc->ctr &= ~0x10;
		break;
	case CMD_DISABLE_AUX:
		kbc->ctr |= 0x20;
		break;
	case CMD_ENABLE_AUX:
		kbc->ctr &= ~0x20;
		break;
	case CMD_PULSE_RESET:
		kbc->reset(kbc->vm);
		break;
	default:
		/* 0xF0-0xFF pulse output lines; bit 0 clear pulses reset. */
		if (cmd >= 0xf0 && !(cmd & 1))
			kbc->reset(kbc->vm);
		break;
	}
}

static void data(struct i8042 *kbc, uint8_t value)
{
	uint8_t cmd = kbc->pending_cmd;

	kbc->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		kbc->ctr = value;
		break;
	case CMD_WRITE_OUTPORT:
		if (!(value & OUTPORT_RESET_HIGH))
			kbc->reset(kbc->vm);
		break;
	default:
		/* A byte for a keyboard or mouse that is not there. */
		break;
	}
}

uint8_t i8042_read(struct i8042 *kbc, unsigned int port)
{
	uint8_t v;

	pthread_mutex_lock(&kbc->lock);
	if (port == PORT_DATA) {
		v = kbc->out;
		kbc->out_full = false;
	} else {
		v = STS_SYS | STS_UNLOCKED | (kbc->out_full ? STS_OBF : 0) |
		    (kbc->pending_cmd ? STS_CMD : 0);
	}
	pthread_mutex_unlock(&kbc->lock);
	return v;
}

void i8042_write(struct i8042 *kbc, unsigned int port, uint8_t value)
{
	pthread_mutex_lock(&kbc->lock);
	if (port == PORT_CMD)
		command(kbc, value);
	else
		data(kbc, value);
	pthread_mutex_unlock(&kbc->lock);
}

/*
 * One region covers 0x60-0x64; only the data (0x60) and command/status
 * (0x64) ports are the controller's. Port 0x61 never gets here: the
 * in-kernel PIT owns it (KVM_PIT_SPEAKER_DUMMY).
 */
static void i8042_io(void *opaque, uint64_t offset, void *buf, uint32_t len,
		     bool is_write)
{
	unsigned int port = PORT_DATA + offset;
	uint8_t *b = buf;

	if (len != 1 || (port != PORT_DATA && port != PORT_CMD))
		return;
	if (is_write)
		i8042_write(opaque, port, *b);
	else
		*b = i8042_read(opaque, port);
}

int i8042_attach(struct i8042 *kbc, struct vm *vm)
{
	return iobus_register(&vm->pio, PORT_DATA, PORT_CMD - PORT_DATA + 1,
			      i8042_io, kbc, "i8042");
}
