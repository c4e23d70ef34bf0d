/*
 * Chunk bitfields. A chunk is a power-of-two run of 16 KiB blocks, so a
 * chunk of one size lies inside one chunk of a larger size, or spans a
 * whole number of chunks of a smaller one.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "have.h"

size_t
proto_have_bytes(uint64_t n)
{
	return (size_t)((n + 7) / 8);
}

int
proto_have_init(proto_have *h, uint64_t n)
{
	memset(h, 0, sizeof(*h));
	if ((h->bits = calloc(proto_have_bytes(n) ? proto_have_bytes(n) : 1,
	    1)) == NULL)
		return PROTO_ERR_NOMEM;
	h->n = n;
	return 0;
}

void
proto_have_free(proto_have *h)
{
	free(h->bits);
	memset(h, 0, sizeof(*h));
}

int
proto_have_test(const proto_have *h, uint64_t i)
{
	return i < h->n && (h->bits[i / 8] & (0x80u >> (i % 8))) != 0;
}

int
proto_have_set(proto_have *h, uint64_t i)
{
	if (i >= h->n || proto_have_test(h, i))
		return 0;
	h->bits[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	h->count++;
	return 1;
}

void
proto_have_fill(proto_have *h)
{
	size_t len = proto_have_bytes(h->n);

	if (len == 0)
		return;
	memset(h->bits, 0xff, len);
	if (h->n % 8)
		h->bits[len - 1] = (uint8_t)(0xffu << (8 - h->n % 8));
	h->count = h->n;
}

static unsigned
popcount8(uint8_t b)
{
	unsigned c = 0;

	for (; b; b &= (uint8_t)(b - 1))
		c++;
	return c;
}

int
proto_have_load(proto_have *h, const uint8_t *bits, size_t len)
{
	uint64_t count = 0;

	if (len != proto_have_bytes(h->n))
		return PROTO_ERR_MALFORMED;
	/* Bits past the last chunk must be clear: a peer claiming chunks
	 * that do not exist is not believed about the others either. */
	if (h->n % 8 && (bits[len - 1] & (0xffu >> (h->n % 8))) != 0)
		return PROTO_ERR_MALFORMED;
	for (size_t i = 0; i < len; i++)
		count += popcount8(bits[i]);
	if (len > 0)
		memcpy(h->bits, bits, len);
	h->count = count;
	return 0;
}

int
proto_have_covers(const proto_have *h, uint32_t h_chunk_size,
    uint64_t size, uint32_t chunk_size, uint64_t index)
{
	uint64_t start = index * (uint64_t)chunk_size, end, first, last;

	if (h_chunk_size == 0 || chunk_size == 0)
		return 0;
	/* An empty file has one chunk, of no byte, at every chunk size. */
	if (size == 0)
		return index == 0 && h->n > 0 && proto_have_test(h, 0);
	if (start >= size)
		return 0;
	if (h->count == h->n)
		return 1;
	end = start + chunk_size < size ? start + chunk_size : size;
	first = start / h_chunk_size;
	last = (end - 1) / h_chunk_size;
	for (uint64_t i = first; i <= last; i++)
		if (!proto_have_test(h, i))
			return 0;
	return 1;
}
