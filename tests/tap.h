/*
 * A tiny header-only TAP harness for the libproto unit tests.
 *
 *   ok(cond, fmt, ...)            one case; passes when cond is true
 *   is_int(got, want, name)       integers compared as long long
 *   is_str(got, want, name)       NUL-terminated strings (NULL allowed)
 *   is_mem(got, want, len, name)  len bytes compared
 *   diag(fmt, ...)                a "# " comment line
 *   done_testing()                prints "1..N" and, as the very last line,
 *                                 "P passed, F failed"; returns the exit
 *                                 status (0 when every case passed)
 *
 * Every case prints "ok N - name" or "not ok N - name" followed by "#" lines
 * saying where and what differed. Everything goes to stdout, flushed, so the
 * order holds even when a case crashes the binary.
 */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_run_;
static int tap_failed_;

__attribute__((format(printf, 2, 0)))
static inline void
tap_vline_(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
}

__attribute__((format(printf, 4, 5)))
static inline int
tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char prefix[32];

	tap_run_++;
	if (!pass)
		tap_failed_++;
	snprintf(prefix, sizeof(prefix), "%sok %d - ", pass ? "" : "not ",
	    tap_run_);
	va_start(ap, fmt);
	tap_vline_(prefix, fmt, ap);
	va_end(ap);
	if (!pass)
		printf("#   Failed test at %s line %d.\n", file, line);
	fflush(stdout);
	return pass;
}

__attribute__((format(printf, 1, 2)))
static inline void
diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vline_("# ", fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static inline int
tap_is_int_(long long got, long long want, const char *name,
    const char *file, int line)
{
	int pass = tap_ok_(got == want, file, line, "%s", name);

	if (!pass) {
		printf("#          got: %lld\n", got);
		printf("#     expected: %lld\n", want);
		fflush(stdout);
	}
	return pass;
}

static inline int
tap_is_str_(const char *got, const char *want, const char *name,
    const char *file, int line)
{
	int same = (got == NULL || want == NULL) ? got == want :
	    strcmp(got, want) == 0;
	int pass = tap_ok_(same, file, line, "%s", name);

	if (!pass) {
		printf("#          got: %s%s%s\n", got ? "'" : "", got ? got : "NULL",
		    got ? "'" : "");
		printf("#     expected: %s%s%s\n", want ? "'" : "",
		    want ? want : "NULL", want ? "'" : "");
		fflush(stdout);
	}
	return pass;
}

static inline void
tap_hexdump_(const char *label, const unsigned char *p, size_t off,
    size_t len)
{
	size_t end = off + len;

	printf("#   %s @%zu:", label, off);
	for (size_t i = off; i < end; i++)
		printf(" %02x", p[i]);
	printf("\n");
}

static inline int
tap_is_mem_(const void *got, const void *want, size_t len, const char *name,
    const char *file, int line)
{
	const unsigned char *g = got, *w = want;
	int pass;

	if (g == NULL || w == NULL)
		pass = tap_ok_(len == 0 || g == w, file, line, "%s", name);
	else
		pass = tap_ok_(memcmp(g, w, len) == 0, file, line, "%s", name);
	if (!pass && g != NULL && w != NULL) {
		size_t first = 0, show;
		while (first < len && g[first] == w[first])
			first++;
		first -= first % 16;
		show = len - first < 32 ? len - first : 32;
		printf("#   %zu bytes differ from offset %zu\n", len, first);
		tap_hexdump_("     got", g, first, show);
		tap_hexdump_("expected", w, first, show);
	} else if (!pass)
		printf("#   NULL pointer with length %zu\n", len);
	fflush(stdout);
	return pass;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, name) \
	tap_is_int_((long long)(got), (long long)(want), (name), __FILE__, \
	    __LINE__)
#define is_str(got, want, name) \
	tap_is_str_((got), (want), (name), __FILE__, __LINE__)
#define is_mem(got, want, len, name) \
	tap_is_mem_((got), (want), (len), (name), __FILE__, __LINE__)

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_run_);
	printf("%d passed, %d failed\n", tap_run_ - tap_failed_, tap_failed_);
	fflush(stdout);
	return tap_failed_ == 0 ? 0 : 1;
}

#endif
