/*
 * The progress line of p2p-fetch and p2p-chunk: one line on stderr, drawn
 * again in place after a carriage return. On a terminal the rest of a
 * longer earlier line is cleared and the line is cut to the width, since a
 * wrapped line cannot be drawn over; in a file (--progress) there are no
 * escape sequences, only spaces. Log lines go between: they end the
 * progress line first (tool_progress_clear).
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#define REDRAW_SECONDS 0.2 /* a timer of 0.25 s may fire a little early */
#define NSAMPLES 8

/* What is on screen: only one progress line can be. */
static int line_open, line_tty;
static size_t line_width;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
human_bytes(double v, char *out, size_t outlen)
{
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%.0f B", v);
	else
		snprintf(out, outlen, "%.1f %ciB", v, " KMGT"[u]);
}

static void
human_time(double secs, char *out, size_t outlen)
{
	unsigned long s = secs < 0 ? 0 : secs > 359999 ? 359999 :
	    (unsigned long)(secs + 0.5);

	if (s >= 3600)
		snprintf(out, outlen, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60,
		    s % 60);
	else
		snprintf(out, outlen, "%lu:%02lu", s / 60, s % 60);
}

/* Bytes per second over the recent samples (a few seconds), so the rate
 * follows changes; over the whole run when there are too few. */
static double
recent_rate(const struct tool_progress *p, double t, uint64_t done)
{
	unsigned oldest = p->nsamples < NSAMPLES ? 0 : p->nsamples % NSAMPLES;
	double t0 = p->nsamples ? p->t[oldest] : p->start;
	uint64_t b0 = p->nsamples ? p->bytes[oldest] : p->base;

	if (t - t0 < 0.1 || done < b0)
		return 0;
	return (double)(done - b0) / (t - t0);
}

static size_t
terminal_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		return ws.ws_col - 1u;
	return 79;
}

static void
format_line(const struct tool_progress *p, char *out, size_t outlen,
    uint64_t done, uint64_t total, int peers, double rate, const char *end)
{
	char d[32], r[32], label[96] = "";
	size_t n;

	if (p->label != NULL) {
		proto_msg_printable(label, sizeof(label) - 2, p->label,
		    strlen(p->label));
		strcat(label, ": ");
	}
	human_bytes((double)done, d, sizeof(d));
	human_bytes(rate, r, sizeof(r));
	n = (size_t)snprintf(out, outlen, "%s: %s%s", tool_name, label, d);
	if (total > 0 && n < outlen) {
		char tot[32];
		human_bytes((double)total, tot, sizeof(tot));
		n += (size_t)snprintf(out + n, outlen - n, " of %s (%d%%)", tot,
		    (int)(done >= total ? 100 : done * 100 / total));
	}
	if (n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "  %s/s", r);
	if (peers >= 0 && n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "  %d peer%s", peers,
		    peers == 1 ? "" : "s");
	if (n < outlen)
		snprintf(out + n, outlen - n, "  %s", end);
}

static void
draw(const char *text)
{
	char buf[640];
	size_t len = strlen(text), n;

	if (line_tty && len > terminal_width())
		len = terminal_width();
	if (line_tty)
		n = (size_t)snprintf(buf, sizeof(buf), "\r%.*s\033[K", (int)len,
		    text);
	else
		n = (size_t)snprintf(buf, sizeof(buf), "\r%.*s%*s", (int)len,
		    text, line_width > len ? (int)(line_width - len) : 0, "");
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	(void)tool_write_all(STDERR_FILENO, buf, n);
	line_open = 1;
	line_width = len;
}

void
tool_progress_start(struct tool_progress *p, const char *label)
{
	memset(p, 0, sizeof(*p));
	line_tty = isatty(STDERR_FILENO);
	p->on = tool_opt.progress || (line_tty && !tool_opt.quiet);
	p->label = label;
	p->start = p->last = now();
}

void
tool_progress_resumed(struct tool_progress *p, uint64_t bytes,
    const char *note)
{
	p->base = bytes;
	snprintf(p->note, sizeof(p->note), "%s", note != NULL ? note : "");
}

void
tool_progress_update(struct tool_progress *p, uint64_t done, uint64_t total,
    int peers)
{
	char line[512], eta[40] = "ETA -";
	double t, rate;

	if (!p->on || (t = now()) - p->last < REDRAW_SECONDS)
		return;
	rate = recent_rate(p, t, done);
	if (total > 0 && done >= total)
		snprintf(eta, sizeof(eta), "ETA 0:00");
	else if (total > 0 && rate > 0) {
		memcpy(eta, "ETA ", 4);
		human_time((double)(total - done) / rate, eta + 4,
		    sizeof(eta) - 4);
	}
	format_line(p, line, sizeof(line), done, total, peers, rate, eta);
	draw(line);
	p->drawn = 1;
	p->last = t;
	p->t[p->nsamples % NSAMPLES] = t;
	p->bytes[p->nsamples % NSAMPLES] = done;
	p->nsamples++;
}

void
tool_progress_end(struct tool_progress *p, uint64_t done, uint64_t total,
    int peers)
{
	char line[512], took[112] = "in ";
	double elapsed;
	size_t n;

	if (!p->on || (!p->drawn && !tool_opt.progress))
		return;
	elapsed = now() - p->start;
	human_time(elapsed, took + 3, sizeof(took) - 3);
	n = strlen(took);
	if (p->note[0] != '\0')
		snprintf(took + n, sizeof(took) - n, ", %s", p->note);
	/* The rate of this run: what an earlier one left is not in it. */
	format_line(p, line, sizeof(line), done, total, peers,
	    elapsed > 0 && done > p->base ? (double)(done - p->base) / elapsed :
	    0, took);
	draw(line);
	(void)tool_write_all(STDERR_FILENO, "\n", 1);
	line_open = 0;
	line_width = 0;
	p->on = 0;
}

void
tool_progress_clear(void)
{
	if (!line_open)
		return;
	if (line_tty)
		(void)tool_write_all(STDERR_FILENO, "\r\033[K", 4);
	else
		(void)tool_write_all(STDERR_FILENO, "\n", 1);
	line_open = 0;
	line_width = 0;
}
