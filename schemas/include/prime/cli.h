#ifndef PRIME_CLI_H
#define PRIME_CLI_H

/* What every command-line program does last: its answer is what it printed,
 * so a standard output that could not be written (a full disk, a closed
 * pipe) is a failure, never exit 0 with the output lost. Flushes stdout;
 * on failure prints "PROGRAM: cannot write standard output: REASON" to
 * stderr and returns rc, or 1 when rc was 0. Otherwise returns rc. */
int prime_cli_finish(const char *program, int rc);

#endif
