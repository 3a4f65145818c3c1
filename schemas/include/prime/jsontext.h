#ifndef PRIME_JSONTEXT_H
#define PRIME_JSONTEXT_H

/* JSON documents as clients wrote them, for programs that edit one and
 * store it again (the materializer's merges and lists). */
struct cJSON;

/* text (NUL-terminated) parsed by cJSON, except that each number is a raw
 * item (cJSON_Raw) holding the number as written: printing the tree again
 * gives the same numbers, where cJSON's doubles would round them to 15-17
 * digits and print 1e400 as null. NULL when text is NULL, is not one JSON
 * value, is JSON that PostgreSQL's jsonb refuses (\u0000, ...), or memory
 * runs out. Free with cJSON_Delete(). */
struct cJSON *prime_json_parse(const char *text);

#endif
