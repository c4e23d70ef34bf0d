/* libFuzzer target: a discovery datagram. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_disco_msg m;
	uint8_t out[PROTO_DISCO_DATAGRAM_MAX];
	size_t len;

	if (proto_disco_unpack(data, size, &m) != 0)
		return 0;
	/* What parses must pack within the limits again. */
	if (proto_disco_pack(&m, out, sizeof(out), &len) == 0 &&
	    m.type == PROTO_DISCO_ANNOUNCE && len > PROTO_DISCO_ANSWER_MAX)
		__builtin_trap();
	return 0;
}
