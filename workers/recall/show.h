#ifndef PRIME_RECALL_SHOW_H
#define PRIME_RECALL_SHOW_H

/* prime-recall show USER [--category C] [--json] [--db CONNINFO]: a user's
 * recall, highest confidence first, and the defaults the studio would
 * pre-fill for a new project. argv[0] is "show". Returns the exit status
 * (0, 1 on a database error, 2 on bad usage). */
int recall_show(int argc, char **argv);

#endif
