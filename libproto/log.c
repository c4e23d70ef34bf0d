/* The logging hook; see log.h. */
#include <stdarg.h>
#include <stdio.h>

#include "log_private.h"
#include "log.h"
#include "msg.h"

int proto__plog_levels[PROTO_LOG_MODULES] = { -1, -1, -1 };
static proto_log_fn hook;
static void *hook_ctx;

void
proto_log_set(proto_log_fn fn, void *ctx)
{
	hook = fn;
	hook_ctx = ctx;
}

void
proto_log_set_level(int module, int max_level)
{
	if (module >= 0 && module < PROTO_LOG_MODULES)
		proto__plog_levels[module] = max_level;
}

void
proto__plog_emit(int module, int level, const char *fmt, ...)
{
	char line[512], shown[512];
	va_list ap;
	int n;

	if (hook == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Events quote what peers said (names, error texts): one filter
	 * here keeps the promise of one line, whichever event forgot. */
	proto_msg_printable(shown, sizeof(shown), line,
	    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	hook(module, level, shown, hook_ctx);
}
