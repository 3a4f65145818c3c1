#include "prime/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int prime_cli_finish(const char *program, int rc)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return rc;
    fprintf(stderr, "%s: cannot write standard output: %s\n", program, errno ? strerror(errno) : "write error");
    return rc ? rc : 1;
}
