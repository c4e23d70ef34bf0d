/*
 * Finding and loading an engine module (module_private.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "module_private.h"

#ifndef PROTO_MODULE_DIR
#define PROTO_MODULE_DIR "/usr/local/lib/mini-p2p"
#endif

static int
try_load(const char *path, const char *symbol, unsigned abi,
    const char *what, const void **ops, const char **why)
{
	static __thread char text[PATH_MAX + 80];
	const unsigned *o;
	void *h;

	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(text, sizeof(text), "%s", dlerror());
		*why = text;
		errno = access(path, F_OK) == 0 ? ENOEXEC : ENOENT;
		return PROTO_ERR_SYSTEM;
	}
	o = dlsym(h, symbol);
	if (o == NULL || *o != abi) {
		snprintf(text, sizeof(text), "%s: not %s of ABI %u", path, what,
		    abi);
		*why = text;
		dlclose(h);
		errno = ENOEXEC;
		return PROTO_ERR_SYSTEM;
	}
	*ops = o;
	return 0;
}

int
proto__module_load(const char *path, const char *env, const char *name,
    const char *symbol, unsigned abi, const char *what, const void **ops,
    const char **why)
{
	char exe[PATH_MAX], mod[PATH_MAX + 64];
	const char *from_env = getenv(env);
	ssize_t n;

	if (path == NULL && from_env != NULL && *from_env != '\0')
		path = from_env;
	if (path != NULL)
		return try_load(path, symbol, abi, what, ops, why);
	/* Beside the program: build/bin/X finds build/lib/mini-p2p/NAME,
	 * PREFIX/bin/X finds PREFIX/lib/mini-p2p/NAME. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			snprintf(mod, sizeof(mod), "%s/../lib/mini-p2p/%s", exe,
			    name);
			if (access(mod, F_OK) == 0)
				return try_load(mod, symbol, abi, what, ops,
				    why);
		}
	}
	snprintf(mod, sizeof(mod), "%s/%s", PROTO_MODULE_DIR, name);
	return try_load(mod, symbol, abi, what, ops, why);
}
