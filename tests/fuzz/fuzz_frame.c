/* libFuzzer target: a stream of frames, as a connection would read it. */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size > 0) {
		long n = proto_frame_parse(data, size, PROTO_FRAME_MAX);
		proto_msg m;
		if (n <= 0)
			break;
		if (proto_msg_unpack(data + PROTO_FRAME_HEADER,
		    (size_t)n - PROTO_FRAME_HEADER, &m) == 0)
			proto_msg_clear(&m);
		data += n;
		size -= (size_t)n;
	}
	return 0;
}
