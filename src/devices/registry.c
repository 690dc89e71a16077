/* The emulation table; see registry.h. */
#include "devices/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/virtio_9p.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rnd.h"
#include "devices/virtio_vsock.h"
#include "machine.h"

static const struct emulation emulations[] = {
	{ "hostbridge", machine_add_hostbridge },
	{ "amd_hostbridge", machine_add_hostbridge },
	{ "lpc", machine_add_lpc },
	{ "virtio-blk", virtio_blk_create },
	{ "ahci-hd", NULL },
	{ "ahci-cd", NULL },
	{ "virtio-net", virtio_net_create },
	{ "virtio-tap", virtio_net_create },
	{ "virtio-vpnkit", virtio_net_create },
	{ "virtio-sock", virtio_vsock_create },
	{ "virtio-vsock", virtio_vsock_create },
	{ "virtio-rnd", virtio_rnd_create },
	{ "virtio-9p", virtio_9p_create },
	{ "virtio-balloon", NULL },
};

const struct emulation *registry_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(emulations) / sizeof(emulations[0]); i++)
		if (!strcmp(emulations[i].name, name))
			return &emulations[i];
	return NULL;
}

int registry_check(const struct config *cfg, char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < cfg->nr_slots; i++) {
		const struct slot_config *sc = &cfg->slots[i];
		const struct emulation *e = registry_find(sc->emulation);

		if (!e) {
			snprintf(err, errlen, "-s %u:%u,%s: unknown emulation "
				 "(khyve -h lists them)", sc->slot, sc->func,
				 sc->emulation);
			return -EINVAL;
		}
		if (!e->create) {
			snprintf(err, errlen, "-s %u:%u,%s: %s is not supported "
				 "yet", sc->slot, sc->func, sc->emulation,
				 sc->emulation);
			return -ENOTSUP;
		}
	}
	return 0;
}
