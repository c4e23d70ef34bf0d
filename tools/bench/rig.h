/*
 * What p2p-bench measures with and on: a work directory of its own for the
 * test files and the nodes' keys, test files of a given size with their
 * manifest and content id, and the p2p-serve servers and p2p-fetch command
 * lines of a figure, the tools taken from beside p2p-bench itself.
 */
#ifndef BENCH_RIG_H
#define BENCH_RIG_H

#include <stddef.h>
#include <stdint.h>

#include "proc.h"

/* Finds p2p-bench's own path and directory, makes a fresh work directory
 * DIR/p2p-bench.XXXXXX (removed at exit, with the key the nodes make in
 * it), and points P2P_IDENTITY there so no key goes into the user's home.
 * Call once, before the rest; exits the program on failure. */
void rig_init(const char *dir);

/* p2p-bench's own path, to run itself (raw_start), and the work
 * directory; both valid until the program ends. */
const char *rig_self(void);
const char *rig_workdir(void);

/* The path of the tool named tool (p2p-chunk, ...) beside p2p-bench, into
 * out (len bytes). */
void rig_tool_path(char *out, size_t len, const char *tool);

/* Writes a test file of size incompressible bytes to WORKDIR/NAME.bin and
 * its manifest (p2p-chunk) to WORKDIR/NAME.mf, their paths into file and
 * mf (PATH_MAX bytes each) and its content id into id (80 bytes). The
 * caller removes both files. Exits the program on failure. */
void rig_prepare(const char *name, uint64_t size, char *file, char *mf,
    char *id);

/* Starts p2p-serve on an ephemeral loopback port in s, serving the
 * manifest mf, not announcing, with --max-peers max_peers, and --no-tls
 * when plain. Exits the program when it does not start; stop it with
 * proc_server_stop. */
void rig_serve(struct server *s, const char *mf, const char *max_peers,
    int plain);

/* Fills argv (room for 2 * npeers + 9 pointers, NULL-terminated) with a
 * p2p-fetch of id from the first npeers of s into out, --no-tls when
 * plain; the program's path goes into fetch_path (PATH_MAX bytes). argv
 * borrows fetch_path, s's addresses, id and out: valid while they are. */
void rig_fetch_argv(char **argv, char *fetch_path, struct server *s,
    int npeers, char *id, char *out, int plain);

#endif
