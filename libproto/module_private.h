/*
 * The engine modules (mini-p2p/dht.so, mini-p2p/nat.so): shared objects
 * that link what a node uses only when asked (OpenDHT, libnatpmp and
 * miniupnpc), loaded at run time so that no other program maps them.
 * Private to libproto.
 */
#ifndef PROTO_MODULE_PRIVATE_H
#define PROTO_MODULE_PRIVATE_H

/*
 * Loads the module file name ("dht.so") and returns in *ops the table it
 * exports as symbol, whose first member, an unsigned, must equal abi. It
 * is taken from path when not NULL, else from the environment variable
 * env when set and not empty, else beside the program (its bin/../lib/
 * mini-p2p/name), else from PROTO_MODULE_DIR. 0, or PROTO_ERR_SYSTEM with
 * errno ENOENT (no module) or ENOEXEC (not what, of this ABI) and *why a
 * per-thread text saying which. The module stays loaded for the rest of
 * the process.
 */
int proto__module_load(const char *path, const char *env, const char *name,
    const char *symbol, unsigned abi, const char *what, const void **ops,
    const char **why);

#endif
