/*
 * The JSON lines of --json: an object built in memory and written as one
 * line once complete, so a reader never sees half a record, and the string
 * escaper that keeps any bytes a peer chose valid JSON and harmless on a
 * terminal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

/* The length of the valid UTF-8 sequence at s (n bytes there), or 0 for
 * an invalid one: overlong, a surrogate, past U+10FFFF, or cut short. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
tool_json_escape(FILE *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	putc('"', out);
	while (i < len) {
		unsigned char c = p[i];
		size_t n = utf8_len(p + i, len - i);
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else if (n == 0)
			fputs("\\ufffd", out);
		/* C1 controls: valid JSON raw, but a terminal may take
		 * U+009B for an escape sequence's start. */
		else if (n == 2 && c == 0xc2 && p[i + 1] <= 0x9f)
			fprintf(out, "\\u%04x", p[i + 1]);
		/* Valid JSON raw, but they end lines in JavaScript. */
		else if (n == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
			fprintf(out, "\\u%04x", p[i + 2] == 0xa8 ? 0x2028 : 0x2029);
		else
			fwrite(p + i, 1, n, out);
		i += n ? n : 1;
	}
	putc('"', out);
}

/* The comma before a member, and its key. */
static void
json_member(struct tool_json *j, const char *key)
{
	if (j->need_comma[j->depth])
		putc(',', j->mem);
	j->need_comma[j->depth] = 1;
	if (key != NULL) {
		tool_json_escape(j->mem, key, strlen(key));
		putc(':', j->mem);
	}
}

void
tool_json_start(struct tool_json *j)
{
	memset(j, 0, sizeof(*j));
	if ((j->mem = open_memstream(&j->buf, &j->len)) == NULL)
		tool_die(1, "out of memory");
	putc('{', j->mem);
}

void
tool_json_str(struct tool_json *j, const char *key, const char *s,
    size_t len)
{
	json_member(j, key);
	tool_json_escape(j->mem, s, len);
}

void
tool_json_uint(struct tool_json *j, const char *key, uint64_t v)
{
	json_member(j, key);
	fprintf(j->mem, "%llu", (unsigned long long)v);
}

void
tool_json_bool(struct tool_json *j, const char *key, int v)
{
	json_member(j, key);
	fputs(v ? "true" : "false", j->mem);
}

void
tool_json_null(struct tool_json *j, const char *key)
{
	json_member(j, key);
	fputs("null", j->mem);
}

void
tool_json_open(struct tool_json *j, const char *key, char brace)
{
	json_member(j, key);
	putc(brace, j->mem);
	if (j->depth + 1 < (int)(sizeof(j->need_comma) /
	    sizeof(j->need_comma[0])))
		j->need_comma[++j->depth] = 0;
}

void
tool_json_close(struct tool_json *j, char brace)
{
	putc(brace, j->mem);
	if (j->depth > 0)
		j->depth--;
}

int
tool_json_finish(struct tool_json *j, int fd)
{
	int rc;

	fputs("}\n", j->mem);
	if (fclose(j->mem) != 0)
		tool_die(1, "out of memory");
	rc = tool_write_all(fd, j->buf, j->len);
	free(j->buf);
	j->buf = NULL;
	j->mem = NULL;
	return rc;
}
