/*
 * virtio-9p (virtio 9P transport; device type 9): one request queue whose
 * chains hold a 9P message (device-readable) and room for the reply
 * (device-writable). The messages go to the in-process 9P2000.L server
 * (src/p9) on the device's own I/O thread. Config space: the mount tag.
 */
#include "devices/virtio_9p.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/iothread.h"
#include "machine.h"
#include "p9/p9_server.h"
#include "virtio/virtio_pci.h"

#define P9_QUEUE_SIZE 128
#define VIRTIO_9P_MOUNT_TAG 0 /* feature: config space has the tag */
#define P9_TAG_MAX 255

struct virtio_9p {
	struct virtio_dev vdev;
	struct iothread io;
	struct ev_handler kick;
	bool watching;
	struct p9_server server;
	struct vq_elem elem;
	uint8_t config[2 + P9_TAG_MAX]; /* u16 tag_len, tag (no NUL) */
	char name[40];
};

static void p9_serve(struct ev_handler *h, uint32_t events)
{
	struct virtio_9p *p = h->opaque;
	struct virtqueue *vq = &p->vdev.vqs[0];
	int r;

	(void)events;
	virtio_dev_ack_kick(&p->vdev, 0);
	do {
		vq_set_notification(vq, false);
		while ((r = vq_pop(vq, &p->elem)) == 1) {
			size_t n = p9_server_handle(&p->server, p->elem.iov,
						    p->elem.out_num,
						    p->elem.iov + p->elem.out_num,
						    p->elem.in_num);

			vq_push(vq, p->elem.head, n);
			virtio_dev_notify_queue(&p->vdev, 0);
		}
		if (r < 0) {
			virtio_dev_set_needs_reset(&p->vdev, "bad descriptor chain");
			return;
		}
	} while (vq_set_notification(vq, true));
}

static void p9_start(void *arg)
{
	struct virtio_9p *p = arg;

	p->watching = evloop_add(&p->io.loop, &p->kick, p->vdev.kick_fd[0],
				 EPOLLIN, p9_serve, p) == 0;
	if (p->watching)
		p9_serve(&p->kick, EPOLLIN);
}

static void p9_stop(void *arg)
{
	struct virtio_9p *p = arg;

	if (p->watching)
		evloop_del(&p->io.loop, &p->kick);
	p->watching = false;
	/* A new driver starts a new session: no fid survives a reset. */
	p9_server_reset(&p->server);
}

static int p9_activate(struct virtio_dev *dev)
{
	struct virtio_9p *p = dev->opaque;

	iothread_call(&p->io, p9_start, p);
	return p->watching ? 0 : -EIO;
}

static void p9_reset(struct virtio_dev *dev)
{
	struct virtio_9p *p = dev->opaque;

	iothread_call(&p->io, p9_stop, p);
}

static void p9_config_read(struct virtio_dev *dev, uint32_t off, void *buf,
			   uint32_t len)
{
	struct virtio_9p *p = dev->opaque;

	memcpy(buf, p->config + off, len);
}

static const struct virtio_dev_ops p9_ops = {
	.activate = p9_activate,
	.reset = p9_reset,
	.config_read = p9_config_read,
};

int virtio_9p_parse(const char *conf, struct virtio_9p_options *o, char *err,
		    size_t errlen)
{
	char *copy, *opt, *save = NULL;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	copy = strdup(conf ? conf : "");
	if (!copy)
		return -ENOMEM;
	for (opt = strtok_r(copy, ",", &save); opt;
	     opt = strtok_r(NULL, ",", &save)) {
		if (!strncmp(opt, "tag=", 4) && !o->tag) {
			o->tag = strdup(opt + 4);
		} else if (!strncmp(opt, "share=", 6) && !o->share) {
			o->share = strdup(opt + 6);
		} else if (!strcmp(opt, "ro")) {
			o->read_only = true;
		} else {
			snprintf(err, errlen, "virtio-9p: unknown or repeated "
				 "option '%s' (expected tag=T,share=DIR[,ro])",
				 opt);
			ret = -EINVAL;
			goto out;
		}
	}
	if (!o->tag || !*o->tag || strlen(o->tag) > P9_TAG_MAX) {
		snprintf(err, errlen, "virtio-9p: tag= is required, 1 to %d "
			 "characters", P9_TAG_MAX);
		ret = -EINVAL;
	} else if (!o->share || !*o->share) {
		snprintf(err, errlen, "virtio-9p: share=DIR is required");
		ret = -EINVAL;
	}
out:
	free(copy);
	if (ret)
		virtio_9p_options_free(o);
	return ret;
}

void virtio_9p_options_free(struct virtio_9p_options *o)
{
	free(o->tag);
	free(o->share);
	o->tag = o->share = NULL;
}

int virtio_9p_init(struct virtio_9p **out, const char *name,
		   const struct guest_mem *mem,
		   const struct virtio_9p_options *o, char *err, size_t errlen)
{
	struct virtio_9p *p;
	size_t tag_len = o->tag ? strlen(o->tag) : 0;
	uint16_t cfg_len = (uint16_t)tag_len;
	int ret;

	/* Config space holds at most P9_TAG_MAX bytes of tag. */
	if (!tag_len || tag_len > P9_TAG_MAX) {
		snprintf(err, errlen, "virtio-9p: the tag must be 1 to %d "
			 "characters", P9_TAG_MAX);
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	snprintf(p->name, sizeof(p->name), "%s", name);
	ret = p9_server_init(&p->server, o->share, o->read_only, err, errlen);
	if (ret)
		goto err_free;
	memcpy(p->config, &cfg_len, 2);
	memcpy(p->config + 2, o->tag, tag_len);
	ret = virtio_dev_init(&p->vdev, p->name, VIRTIO_ID_9P, &p9_ops, mem,
			      VIRTIO_BIT(VIRTIO_9P_MOUNT_TAG), 1, P9_QUEUE_SIZE,
			      2 + tag_len, p);
	if (ret)
		goto err_server;
	ret = iothread_start(&p->io, "virtio-9p");
	if (ret)
		goto err_dev;
	*out = p;
	return 0;

err_dev:
	virtio_dev_exit(&p->vdev);
err_server:
	p9_server_exit(&p->server);
err_free:
	free(p);
	return ret;
}

struct virtio_dev *virtio_9p_dev(struct virtio_9p *p)
{
	return &p->vdev;
}

static void p9_close(void *opaque)
{
	struct virtio_9p *p = opaque;

	virtio_dev_reset(&p->vdev);
	iothread_stop(&p->io);
}

void virtio_9p_destroy(struct virtio_9p *p)
{
	p9_close(p);
	virtio_dev_exit(&p->vdev);
	p9_server_exit(&p->server);
	free(p);
}

int virtio_9p_create(struct machine *m, const struct slot_config *sc,
		     char *err, size_t errlen)
{
	struct virtio_9p_options o;
	struct virtio_9p *p;
	char name[40], why[200];
	int ret;

	snprintf(name, sizeof(name), "virtio-9p@%u:%u", sc->slot, sc->func);
	ret = virtio_9p_parse(sc->conf, &o, why, sizeof(why));
	if (!ret)
		ret = virtio_9p_init(&p, name, &m->vm.mem, &o, why, sizeof(why));
	virtio_9p_options_free(&o);
	if (ret) {
		snprintf(err, errlen, "-s %u:%u,virtio-9p: %s", sc->slot,
			 sc->func, why);
		return ret;
	}
	ret = virtio_pci_add(m, sc, &p->vdev, err, errlen);
	if (ret) {
		virtio_9p_destroy(p);
		return ret;
	}
	ret = machine_on_close(m, p9_close, p);
	if (ret)
		snprintf(err, errlen, "%s: out of memory", name);
	return ret;
}
