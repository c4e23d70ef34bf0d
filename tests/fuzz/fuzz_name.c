/* libFuzzer target: the name check that keeps peers' names single path
 * components. Whatever it accepts must be safe to join to a directory. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *name = (const char *)data;

	if (!proto_name_valid(name, size))
		return 0;
	if (size == 0 || size > PROTO_NAME_MAX || memchr(name, '/', size) ||
	    memchr(name, '\0', size) || (size == 1 && name[0] == '.') ||
	    (size == 2 && name[0] == '.' && name[1] == '.'))
		__builtin_trap();
	return 0;
}
