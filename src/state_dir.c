/* The state directory; see state_dir.h. JSON comes from json-c. */
#include "state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"

static char pid_path[4096];
static char tty_path[4096];

static int fail(char *err, size_t errlen, int e, const char *what,
		const char *path)
{
	snprintf(err, errlen, "--state-dir: %s %s: %s", what, path, strerror(e));
	return -e;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
	char path[4096];
	size_t i, len = strlen(dir);

	if (!len || len >= sizeof(path))
		return -ENAMETOOLONG;
	strcpy(path, dir);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		path[i] = i < len ? '/' : '\0';
	}
	return 0;
}

int state_dir_prepare(struct config *cfg, char *err, size_t errlen)
{
	const char *dir = cfg->state_dir;
	const char *com1 = cfg->com[0];
	struct stat st;
	char *spec;
	int r = make_dirs(dir);

	if (r)
		return fail(err, errlen, -r, "cannot create", dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(err, errlen, ENOTDIR, "not a directory:", dir);
	if (com1 && strstr(com1, ",log="))
		return 0;
	if (asprintf(&spec, "%s,log=%s/console.log", com1 ? com1 : "null",
		     dir) < 0)
		return fail(err, errlen, ENOMEM, "out of memory for", dir);
	if (cfg->nr_owned == CONFIG_MAX_OWNED) {
		free(spec);
		return fail(err, errlen, ENOMEM, "too many arguments for", dir);
	}
	cfg->owned[cfg->nr_owned++] = spec;
	cfg->com[0] = spec;
	return 0;
}

static void add_str(json_object *o, const char *key, const char *value)
{
	if (value)
		json_object_object_add(o, key, json_object_new_string(value));
}

static json_object *boot_json(const struct config *cfg)
{
	json_object *b = json_object_new_object();

	if (cfg->boot == BOOT_KEXEC) {
		add_str(b, "kind", "kexec");
		add_str(b, "kernel", cfg->kernel);
		add_str(b, "initrd", cfg->initrd);
		add_str(b, "cmdline", cfg->cmdline);
	} else {
		add_str(b, "kind", "bootrom");
		add_str(b, "file", cfg->bootrom);
	}
	return b;
}

static json_object *devices_json(const struct config *cfg)
{
	json_object *a = json_object_new_array();
	unsigned int i;

	for (i = 0; i < cfg->nr_slots; i++) {
		json_object *d = json_object_new_object();

		json_object_object_add(d, "slot",
				       json_object_new_int(cfg->slots[i].slot));
		json_object_object_add(d, "function",
				       json_object_new_int(cfg->slots[i].func));
		add_str(d, "emulation", cfg->slots[i].emulation);
		add_str(d, "conf", cfg->slots[i].conf);
		json_object_array_add(a, d);
	}
	return a;
}

static json_object *consoles_json(const struct machine *m)
{
	json_object *o = json_object_new_object();
	int i;

	for (i = 0; i < 2; i++) {
		const struct console *c = &m->com[i].console;
		json_object *j;

		if (!m->com[i].has_console)
			continue;
		j = json_object_new_object();
		add_str(j, "spec", m->cfg->com[i]);
		add_str(j, "backend", c->backend->name);
		if (c->pty[0])
			add_str(j, "pty", c->pty);
		if (c->listen_fd >= 0)
			add_str(j, "socket", c->path);
		json_object_object_add(o, i ? "com2" : "com1", j);
	}
	return o;
}

char *state_dir_json(const struct config *cfg, const struct machine *m)
{
	json_object *o = json_object_new_object();
	char uuid[37];
	char *text;

	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "vcpus", json_object_new_int(cfg->nr_vcpus));
	json_object_object_add(o, "memory_bytes",
			       json_object_new_int64((int64_t)cfg->mem_size));
	json_object_object_add(o, "acpi", json_object_new_boolean(cfg->acpi));
	json_object_object_add(o, "rtc_utc", json_object_new_boolean(cfg->utc));
	if (cfg->have_uuid) {
		const uint8_t *u = cfg->uuid;

		snprintf(uuid, sizeof(uuid),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			 "%02x%02x%02x%02x%02x%02x",
			 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
			 u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
		add_str(o, "uuid", uuid);
	}
	json_object_object_add(o, "boot", boot_json(cfg));
	json_object_object_add(o, "devices", devices_json(cfg));
	json_object_object_add(o, "consoles", consoles_json(m));
	text = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

static int write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -errno : 0;
}

int state_dir_publish(const struct config *cfg, const struct machine *m,
		      char *err, size_t errlen)
{
	const struct console *com1 = &m->com[0].console;
	char path[4096], pid[32];
	char *json;
	int r;

	snprintf(pid_path, sizeof(pid_path), "%s/khyve.pid", cfg->state_dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	r = write_file(pid_path, pid);
	if (r) {
		pid_path[0] = '\0';
		return fail(err, errlen, -r, "cannot write", "khyve.pid");
	}
	json = state_dir_json(cfg, m);
	snprintf(path, sizeof(path), "%s/khyve.json", cfg->state_dir);
	r = json ? write_file(path, json) : -ENOMEM;
	free(json);
	if (r)
		return fail(err, errlen, -r, "cannot write", path);
	if (m->com[0].has_console && com1->pty[0]) {
		snprintf(tty_path, sizeof(tty_path), "%s/tty", cfg->state_dir);
		unlink(tty_path);
		if (symlink(com1->pty, tty_path) < 0) {
			r = errno;
			tty_path[0] = '\0';
			return fail(err, errlen, r, "cannot link", "tty");
		}
	}
	return 0;
}

void state_dir_cleanup(void)
{
	if (pid_path[0])
		unlink(pid_path);
	if (tty_path[0])
		unlink(tty_path);
	pid_path[0] = tty_path[0] = '\0';
}
