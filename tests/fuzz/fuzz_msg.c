/* libFuzzer target: one message body, checked then decoded, every type. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_msg m;

	if (proto_frame_check_body(data, size) != 0)
		return 0;
	if (proto_msg_unpack(data, size, &m) == 0) {
		/* Whatever decodes must pack again. */
		uint8_t *frame;
		size_t len;
		if (m.type < PROTO_MSG_TYPE_COUNT &&
		    proto_msg_pack(&m, &frame, &len) == 0)
			free(frame);
		proto_msg_clear(&m);
	}
	return 0;
}
