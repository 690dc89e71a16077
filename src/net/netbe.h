/*
 * Network backends: what a network device (virtio-net, virtio-vpnkit) sees
 * of the host's side of a NIC, knowing nothing of virtio. A backend moves
 * whole ethernet frames: tap (a kernel tap interface), user (user-mode
 * networking on libslirp) and vpnkit (VPNKit's ethernet-over-Unix-socket
 * protocol, SPEC.md §4).
 *
 * Life of a backend:
 *   netbe_open()      parse the -s conf, open the host side (main thread,
 *                     before the guest runs: errors are one line in @err);
 *   device sets be->rx, be->rx_ready, be->link, be->tx_resume and
 *                     be->dev_opaque;
 *   netbe_attach()    register the backend's fds and timers with the event
 *                     loop of the device's I/O thread;
 *   netbe_send()...   from then on every call (send, rx_resume,
 *                     set_offloads) and every callback (rx, rx_ready, link,
 *                     tx_resume) happens on the thread that runs that loop;
 *   netbe_close()     on that thread, or after it has stopped.
 *
 * Re-entry: a backend calls rx() from its own event handlers and from
 * netbe_rx_resume(), never from inside netbe_send(); rx() must not call
 * netbe_send() (queue the reply and send it after rx() returns).
 *
 * Frames carry a struct netbe_vnet_hdr in front when be->vnet_hdr_len is
 * 12 (tap with IFF_VNET_HDR): the device passes the guest's header through
 * on transmit and gives the guest the backend's on receive. With
 * vnet_hdr_len 0 frames are bare ethernet and the device adds an all-zero
 * header of its own. be->offloads says whether the device may offer
 * the guest checksum and segmentation offloads (VIRTIO_NET_F_CSUM,
 * HOST_TSO*, GUEST_CSUM, GUEST_TSO*...): only tap has them.
 */
#ifndef KHYVE_NET_NETBE_H
#define KHYVE_NET_NETBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/log.h"

struct evloop;
struct netbe;

#define NETBE_ETH_HLEN 14 /* shortest frame accepted either way */
#define NETBE_MAX_GSO_FRAME 65550 /* 64 KiB of IP + ethernet and VLAN headers */
#define NETBE_MAX_HOSTFWD 32

/*
 * The 12-byte header in front of each frame when vnet_hdr_len is 12: the
 * layout of the virtio 1.x net header (virtio spec §5.1.6), which the tap
 * driver reads and writes with TUNSETVNETHDRSZ 12. Little-endian fields.
 */
struct netbe_vnet_hdr {
	uint8_t flags; /* NETBE_VNET_F_* */
	uint8_t gso_type; /* NETBE_VNET_GSO_* */
	uint16_t hdr_len; /* ethernet + IP + TCP/UDP headers of a GSO frame */
	uint16_t gso_size; /* payload bytes per segment */
	uint16_t csum_start; /* NEEDS_CSUM: checksum from here... */
	uint16_t csum_offset; /* ...stored at csum_start + csum_offset */
	uint16_t num_buffers; /* set by the device (mergeable rx buffers) */
} __attribute__((packed));

#define NETBE_VNET_HDR_LEN 12
#define NETBE_VNET_F_NEEDS_CSUM 1
#define NETBE_VNET_F_DATA_VALID 2
#define NETBE_VNET_GSO_NONE 0
#define NETBE_VNET_GSO_TCPV4 1
#define NETBE_VNET_GSO_UDP 3
#define NETBE_VNET_GSO_TCPV6 4
#define NETBE_VNET_GSO_ECN 0x80

/* Offloads, as a mask: what a header may ask for / what set_offloads enables. */
#define NETBE_OFF_CSUM 1u
#define NETBE_OFF_TSO4 2u
#define NETBE_OFF_TSO6 4u
#define NETBE_OFF_ECN 8u
#define NETBE_OFF_UFO 16u

enum netbe_kind { NETBE_TAP, NETBE_USER, NETBE_VPNKIT };

/* One hostfwd= rule of user-mode networking (src/net/hostfwd.c). */
struct hostfwd {
	bool udp;
	uint32_t host_addr; /* network byte order; 0 = any */
	uint16_t host_port;
	uint32_t guest_addr; /* network byte order; 0 = the DHCP address */
	uint16_t guest_port;
};

/* The -s conf of virtio-net or virtio-vpnkit, parsed. */
struct netbe_options {
	enum netbe_kind kind;
	bool has_mac;
	uint8_t mac[6];
	char tap_name[16]; /* tap: IFNAMSIZ */
	struct hostfwd hostfwd[NETBE_MAX_HOSTFWD]; /* user */
	unsigned int nr_hostfwd;
	char *path; /* vpnkit: the socket */
	bool has_uuid;
	char uuid[37]; /* vpnkit: RFC 4122 text, as given */
	bool has_preferred_ipv4;
	uint32_t preferred_ipv4; /* network byte order */
	char *macfile; /* vpnkit: receives the assigned MAC */
};

struct netbe_stats {
	uint64_t rx_frames, rx_bytes; /* delivered to the device */
	uint64_t tx_frames, tx_bytes; /* taken from the device */
	uint64_t rx_malformed; /* bad frames from the host side, dropped */
	uint64_t tx_malformed; /* bad frames from the device, dropped */
	uint64_t rx_dropped; /* good frames dropped: no room anywhere */
	uint64_t tx_dropped; /* good frames dropped: link down, host error */
};

struct netbe_ops {
	const char *name;
	/* Open the host side from @o; 0 or -errno with one line in @err. */
	int (*open)(struct netbe *be, const struct netbe_options *o, char *err,
		    size_t errlen) __must_check;
	int (*attach)(struct netbe *be, struct evloop *loop) __must_check;
	int (*send)(struct netbe *be, const struct iovec *iov,
		    unsigned int cnt) __must_check;
	void (*rx_resume)(struct netbe *be);
	int (*set_offloads)(struct netbe *be,
			    unsigned int offloads) __must_check;
	void (*close)(struct netbe *be);
};

struct netbe {
	const struct netbe_ops *ops;
	void *priv;
	enum netbe_kind kind;
	/* MAC: from mac=, or assigned by VPNKit (mac_assigned): else unset. */
	uint8_t mac[6];
	bool has_mac;
	bool mac_assigned;
	uint16_t mtu; /* for the device's config space */
	uint32_t max_frame; /* longest frame send() takes, no vnet header */
	unsigned int vnet_hdr_len; /* 0 or NETBE_VNET_HDR_LEN */
	bool offloads; /* checksum and segmentation offloads usable */
	bool link_up;

	/* Set by the device before netbe_attach(). */
	/* One received frame (with vnet header if vnet_hdr_len); called only
	 * after rx_ready() said yes. The iovecs are valid during the call. */
	void (*rx)(struct netbe *be, const struct iovec *iov, unsigned int cnt,
		   void *opaque);
	/* Whether the device can take a frame now; when it says no the
	 * backend stops reading until netbe_rx_resume(). */
	bool (*rx_ready)(void *opaque);
	/* The link went up or down (VPNKit: connection lost). May be NULL. */
	void (*link)(void *opaque, bool up);
	/* netbe_send() said -EAGAIN earlier and may now be retried. May be
	 * NULL: then a frame the backend cannot take is dropped and counted. */
	void (*tx_resume)(void *opaque);
	void *dev_opaque;

	struct netbe_stats stats;
};

/*
 * Parse the conf of @emulation ("virtio-net" or "virtio-vpnkit") into @o:
 * virtio-net: tap=NAME | tapN | user[,hostfwd=RULE]... (empty conf: user),
 * each with [,mac=xx:xx:xx:xx:xx:xx]; virtio-vpnkit: path=SOCK[,uuid=U]
 * [,preferred_ipv4=A][,macfile=F] (VPNKit assigns the MAC: no mac=).
 * 0 or -EINVAL with @err naming
 * the option; free with netbe_options_free().
 */
int netbe_parse(const char *emulation, const char *conf,
		struct netbe_options *o, char *err, size_t errlen) __must_check;
void netbe_options_free(struct netbe_options *o);

/*
 * Parse @conf (see netbe_parse) and open that backend into @be (zeroed
 * here). 0 or -errno with one line in @err ("tap0: /dev/net/tun: ...").
 */
int netbe_open(struct netbe *be, const char *emulation, const char *conf,
	       char *err, size_t errlen) __must_check;
/* Register the backend's fds and timers with @loop; 0 or -errno. */
int netbe_attach(struct netbe *be, struct evloop *loop) __must_check;
/*
 * Send one frame (vnet header first when be->vnet_hdr_len). 0 when sent,
 * or dropped and counted (malformed, link down); -EAGAIN when the backend
 * cannot take it now: keep it and retry after be->tx_resume().
 */
int netbe_send(struct netbe *be, const struct iovec *iov,
	       unsigned int cnt) __must_check;
/* The device has receive buffers again: resume delivering frames. */
void netbe_rx_resume(struct netbe *be);
/*
 * Offloads the guest can take on receive, as NETBE_OFF_* (the negotiated
 * VIRTIO_NET_F_GUEST_CSUM → CSUM, GUEST_TSO4 → TSO4, GUEST_TSO6 → TSO6,
 * GUEST_ECN → ECN, GUEST_UFO → UFO): tap's TUNSETOFFLOAD, so the host
 * sends partial checksums and 64 KiB frames only to a guest that takes
 * them. 0 at open. -EOPNOTSUPP when !be->offloads and @offloads != 0.
 */
int netbe_set_offloads(struct netbe *be, unsigned int offloads) __must_check;
/* Unregister and close everything; @be may be zeroed again. */
void netbe_close(struct netbe *be);

/* "xx:xx:xx:xx:xx:xx" (either case, also '-' separated); 0 or -EINVAL. */
int netbe_parse_mac(const char *s, uint8_t mac[6]) __must_check;

/*
 * Check a guest's vnet header against the frame length after it and the
 * offloads negotiated for transmit (NETBE_OFF_* for VIRTIO_NET_F_CSUM,
 * HOST_TSO4, HOST_TSO6, HOST_ECN, HOST_UFO): unknown flags, a GSO type
 * not negotiated, or a checksum or header range beyond the frame is
 * -EINVAL. tap's send() runs it with every offload allowed; the device
 * runs it with what it negotiated.
 */
int netbe_vnet_hdr_check(const struct netbe_vnet_hdr *h, size_t frame_len,
			 unsigned int offloads) __must_check;

/* The total length of @cnt iovecs. */
size_t netbe_iov_len(const struct iovec *iov, unsigned int cnt);
/* Copy up to @len bytes from @iov at @off into @buf; returns bytes copied. */
size_t netbe_iov_copy(const struct iovec *iov, unsigned int cnt, size_t off,
		      void *buf, size_t len);

/*
 * "tcp:[HOSTIP]:HPORT-[GUESTIP]:GPORT" or "udp:..." (QEMU's hostfwd form;
 * an empty protocol is tcp). 0 or -EINVAL with @err saying what is wrong.
 */
int hostfwd_parse(const char *s, struct hostfwd *fw, char *err,
		  size_t errlen) __must_check;

extern const struct netbe_ops netbe_tap_ops;
extern const struct netbe_ops netbe_user_ops;
extern const struct netbe_ops netbe_vpnkit_ops;

#endif
