/* libFuzzer target: a manifest stream, as p2p-serve reads it on stdin. */
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size > 0) {
		proto_manifest *mf;
		long n = proto_manifest_unpack(data, size, &mf);
		if (n <= 0)
			break;
		/* An accepted manifest checks its own chunks. */
		if (mf->nchunks > 0)
			(void)proto_manifest_check_chunk(mf, 0, data,
			    (size_t)n < mf->chunk_size ? (size_t)n : 0);
		proto_manifest_free(mf);
		data += n;
		size -= (size_t)n;
	}
	return 0;
}
