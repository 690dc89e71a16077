/*
 * khyve: argv → config → VM and platform → boot → run → exit status.
 *
 * Everything that can fail because of the user's input is checked before
 * anything visible is created (pidfile, sockets, pty links, raw terminal),
 * so a bad command line leaves nothing behind. The main thread then runs
 * the event loop: consoles, signals, timers and the VM's stop event; the
 * vCPU threads run the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/pvm/pvm_fixup.h"
#include "boot/boot.h"
#include "boot/boot_params.h"
#include "boot/elf.h"
#include "config/config.h"
#include "core/log.h"
#include "devices/registry.h"
#include "core/watchdog.h"
#include "machine.h"
#include "state_dir.h"

#define KHYVE_VERSION "0.1.0"
#define SHUTDOWN_TIMEOUT_MS 30000

static struct machine machine;
static struct watchdog watchdog;
static const char *pidfile_created;

struct run_state {
	struct machine *m;
	struct ev_handler signal_ev, stop_ev, shutdown_timer;
	bool power_button_pressed;
	uint64_t shutdown_timeout_ms;
};

static void cleanup_at_exit(void)
{
	console_cleanup_at_exit();
	state_dir_cleanup();
	if (pidfile_created)
		unlink(pidfile_created);
	pidfile_created = NULL;
}

static void write_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			die("-F %s: the pidfile exists (is another khyve "
			    "running? remove it if not)",
			    path);
		die_errno("-F %s: cannot create the pidfile", path);
	}
	pidfile_created = path;
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, n) != n)
		die_errno("-F %s: cannot write the pidfile", path);
	close(fd);
}

/*
 * A closed stdin, stdout or stderr would be reused by the next open() (say
 * /dev/kvm), and the stdio console or the log would read or write that.
 */
static void open_std_fds(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free descriptor: @fd itself. */
		if (open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
			_exit(1);
	}
}

static bool looks_like_kernel(const uint8_t *hdr, size_t len)
{
	uint32_t magic;

	if (elf_is_elf(hdr, len))
		return true;
	/* bzImage: the setup header's "HdrS" and the boot sector signature. */
	if (len < BP_HEADER + 4)
		return false;
	memcpy(&magic, hdr + BP_HEADER, sizeof(magic));
	return magic == BP_HDRS_MAGIC && hdr[BP_BOOT_FLAG] == 0x55 &&
	       hdr[BP_BOOT_FLAG + 1] == 0xaa;
}

/*
 * The boot files are checked before /dev/kvm is opened: a wrong path is the
 * user's mistake and must be named as such, KVM or not. O_NONBLOCK: a FIFO
 * must not hang the start-up; it is refused as not a regular file.
 */
static void check_boot_file(const char *what, const char *path, bool kernel)
{
	uint8_t hdr[BP_HEADER + 4];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		die_errno("%s %s", what, path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		die("%s %s: not a regular file", what, path);
	if (!st.st_size && strcmp(what, "initrd"))
		die("%s %s: empty file", what, path);
	if (kernel) {
		n = pread(fd, hdr, sizeof(hdr), 0);
		if (n < 0)
			die_errno("%s %s: read error", what, path);
		if (!looks_like_kernel(hdr, n))
			die("%s %s: neither an ELF vmlinux nor a bzImage", what,
			    path);
	}
	close(fd);
}

/* Checks that need no VM, so bad input never reaches /dev/kvm. */
static void preflight(struct config *cfg)
{
	char err[CONFIG_ERR_LEN];

	if (cfg->api_sock || cfg->config_file || cfg->no_api)
		die("--api-sock/--config-file/--no-api: the control API is not "
		    "supported yet");
	if (registry_check(cfg, err, sizeof(err)))
		die("%s", err);
	if (cfg->boot == BOOT_NONE)
		die("nothing to boot: give -f kexec,KERNEL,INITRD,CMDLINE or "
		    "-f bootrom,FILE");
	if (cfg->boot == BOOT_BOOTROM)
		check_boot_file("bootrom", cfg->bootrom, false);
	if (cfg->boot == BOOT_KEXEC)
		check_boot_file("kernel", cfg->kernel, true);
	if (cfg->boot == BOOT_KEXEC && *cfg->initrd)
		check_boot_file("initrd", cfg->initrd, false);
	if (cfg->pidfile && access(cfg->pidfile, F_OK) == 0)
		die("-F %s: the pidfile exists (is another khyve running? "
		    "remove it if not)",
		    cfg->pidfile);
	/* Last: it creates the folder, which a failed check must not leave. */
	if (cfg->state_dir && state_dir_prepare(cfg, err, sizeof(err)))
		die("%s", err);
}

static void on_stop(struct ev_handler *h, uint32_t events)
{
	struct run_state *rs = h->opaque;

	(void)events;
	evloop_timer_ack(h); /* an eventfd reads like a timerfd */
	evloop_stop(&rs->m->loop);
}

static void on_shutdown_timeout(struct ev_handler *h, uint32_t events)
{
	struct run_state *rs = h->opaque;

	(void)events;
	evloop_timer_ack(h);
	warn("the guest did not power off within %llu ms of the power "
	     "button: stopping it",
	     (unsigned long long)rs->shutdown_timeout_ms);
	vm_request_stop(&rs->m->vm, VM_STOP_ERROR);
}

static void on_signal(struct ev_handler *h, uint32_t events)
{
	struct run_state *rs = h->opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (rs->power_button_pressed) {
		warn("signal %u again: stopping the guest now", si.ssi_signo);
		vm_request_stop(&rs->m->vm, VM_STOP_ERROR);
		return;
	}
	/* SIGTERM, SIGINT, SIGHUP: ask the guest to shut down (ACPI). */
	info("signal %u: pressing the power button", si.ssi_signo);
	rs->power_button_pressed = true;
	pm_power_button(&rs->m->pm);
	evloop_timer_arm(&rs->shutdown_timer, rs->shutdown_timeout_ms, 0);
}

static void setup_run_loop(struct run_state *rs, struct machine *m)
{
	const char *timeout = getenv("KHYVE_SHUTDOWN_TIMEOUT_MS");
	sigset_t set;
	int sfd;

	rs->m = m;
	rs->shutdown_timeout_ms = timeout ? strtoull(timeout, NULL, 10) :
					    SHUTDOWN_TIMEOUT_MS;
	if (!rs->shutdown_timeout_ms)
		rs->shutdown_timeout_ms = SHUTDOWN_TIMEOUT_MS;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die_errno("signalfd");
	if (evloop_add(&m->loop, &rs->signal_ev, sfd, EPOLLIN, on_signal, rs) ||
	    evloop_add(&m->loop, &rs->stop_ev, m->vm.stop_efd, EPOLLIN, on_stop,
		       rs) ||
	    evloop_timer_add(&m->loop, &rs->shutdown_timer, on_shutdown_timeout,
			     rs))
		die("cannot set up the event loop");
}

/* Block the signals the loop handles, and SIGPIPE, in every thread. */
static void block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Only once nothing can fail any more: a failed start prints one line. */
static void announce_consoles(const struct machine *m)
{
	int i;

	for (i = 0; i < 2; i++)
		if (m->com[i].has_console)
			console_announce(&m->com[i].console);
}

/* KHYVE_WATCHDOG_MS shortens the stuck-vCPU watchdog's period for tests. */
static void start_watchdog(struct watchdog *wd, struct machine *m)
{
	const char *env = getenv("KHYVE_WATCHDOG_MS");
	uint64_t period = env ? strtoull(env, NULL, 10) : 0;

	if (watchdog_start(wd, &m->vm, &m->loop,
			   period ? period : WATCHDOG_PERIOD_MS))
		die("cannot start the vCPU watchdog");
}

static void report_pvm(const struct vm *vm)
{
	if (!vm->pvm)
		return;
	/* The minimum measured with the guest kit (tools/guestkit/README.md). */
	info("this host's /dev/kvm is software-virtualized (kvm_pvm): guest "
	     "kernel code is emulated, and khyve fixes up what it cannot run. "
	     "A Linux guest needs: noxsave clearcpuid=popcnt,smap,erms,fsrm "
	     "tsc=reliable, and with several vCPUs no KVM hypercalls "
	     "(kvm_nohypercall in the guest kit); its user space runs only "
	     "with the guest kit's patched kernel");
}

/*
 * Devices hold host descriptors on the guest's behalf (a 9P fid is one or
 * two, a vsock connection one): take the hard limit, not the soft 1024.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			warn("cannot raise the open-file limit: %s",
			     strerror(errno));
	}
}

int main(int argc, char **argv)
{
	struct vm_options vmo = { 0 };
	struct run_state rs = { 0 };
	char err[CONFIG_ERR_LEN];
	struct config cfg;
	int status;

	open_std_fds();
	if (config_parse_args(&cfg, argc, argv, err, sizeof(err)))
		die("%s", err);
	if (cfg.show_help) {
		fputs(config_usage(), stdout);
		return 0;
	}
	if (cfg.show_version) {
		printf("khyve %s\n", KHYVE_VERSION);
		return 0;
	}
	preflight(&cfg);
	raise_fd_limit();
	atexit(cleanup_at_exit);
	block_signals();

	vmo.kvm_path = getenv("KHYVE_KVM_PATH");
	vmo.mem_size = cfg.mem_size;
	vmo.nr_vcpus = cfg.nr_vcpus;
	vmo.ignore_unknown_msrs = cfg.ignore_msrs;
	vmo.x2apic = cfg.x2apic;
	vm_create(&machine.vm, &vmo);
	if (machine_build(&machine, &cfg, err, sizeof(err)))
		die("%s", err);
	if (boot_load(&machine.vm, &cfg, machine.rsdp_gpa, err, sizeof(err)))
		die("%s", err);
	if (evloop_init(&machine.loop))
		die_errno("epoll");
	if (machine_open_consoles(&machine, err, sizeof(err)))
		die("%s", err);
	if (cfg.pidfile)
		write_pidfile(cfg.pidfile);
	if (cfg.state_dir && state_dir_publish(&cfg, &machine, err, sizeof(err)))
		die("%s", err);
	announce_consoles(&machine);
	setup_run_loop(&rs, &machine);
	start_watchdog(&watchdog, &machine);
	report_pvm(&machine.vm);

	vm_start(&machine.vm);
	evloop_run(&machine.loop);
	status = vm_stop_reason(&machine.vm);
	vm_stop_vcpus(&machine.vm);
	machine_close(&machine);
	vm_destroy(&machine.vm);
	config_free(&cfg);
	return status;
}
