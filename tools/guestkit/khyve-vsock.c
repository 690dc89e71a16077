/*
 * khyve-vsock: the guest kit's vsock probe (busybox has none). Static, no
 * dependencies beyond libc.
 *   khyve-vsock cid                 print this guest's CID
 *   khyve-vsock send PORT TEXT      connect to the host (CID 2) port PORT,
 *                                   send TEXT, print what comes back until EOF
 *   khyve-vsock echo PORT           accept one connection on PORT, echo it
 */
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
	perror(what);
	return 1;
}

static void copy_until_eof(int from, int to)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(from, buf, sizeof(buf))) > 0)
		if (write(to, buf, n) != n)
			return;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK };
	unsigned int cid;
	int fd, c;

	if (argc >= 2 && !strcmp(argv[1], "cid")) {
		fd = open("/dev/vsock", 0);
		if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0)
			return fail("/dev/vsock");
		printf("CID=%u\n", cid);
		return 0;
	}
	if (argc >= 3 && (!strcmp(argv[1], "send") || !strcmp(argv[1], "echo"))) {
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0)
			return fail("socket");
		sa.svm_port = strtoul(argv[2], NULL, 0);
		if (!strcmp(argv[1], "send")) {
			sa.svm_cid = VMADDR_CID_HOST;
			if (argc < 4 || connect(fd, (void *)&sa, sizeof(sa)) < 0)
				return fail("connect");
			if (write(fd, argv[3], strlen(argv[3])) < 0)
				return fail("write");
			shutdown(fd, SHUT_WR);
			copy_until_eof(fd, 1);
			return 0;
		}
		sa.svm_cid = VMADDR_CID_ANY;
		if (bind(fd, (void *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
			return fail("listen");
		printf("LISTENING %u\n", sa.svm_port);
		fflush(stdout);
		c = accept(fd, NULL, NULL);
		if (c < 0)
			return fail("accept");
		copy_until_eof(c, c);
		return 0;
	}
	fprintf(stderr, "usage: khyve-vsock cid | send PORT TEXT | echo PORT\n");
	return 2;
}
