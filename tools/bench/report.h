/*
 * p2p-bench's two outputs: benchmark_report.json, for programs, and
 * benchmark_summary.txt, the table people read. Both list every figure in
 * the order it was measured, beside the machine it ran on.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

/* Writes the report to json_path and the table to summary_path (each
 * created or truncated), every figure figure_new made, with mode ("quick",
 * "default", "full") in both headers. Exits the program when either file
 * cannot be opened or written. */
void report_write(const char *json_path, const char *summary_path,
    const char *mode);

#endif
