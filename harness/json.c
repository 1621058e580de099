/*
 * json.c: the harness's JSON writer (json.h): jansson objects, typed
 * setters that turn NaN into null and keep each field's number format,
 * and one dump with fixed flags so that every command writes alike.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sorted keys would lose the schema's column order; 15 significant
 * digits give back any decimal text of up to 15 digits exactly. */
#define DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

int pb_json_set(json_t *obj, const char *key, json_t *value)
{
    if (!value)
        return -1;
    return json_object_set_new(obj, key, value) == 0 ? 0 : -1;
}

/* s with every byte outside ASCII replaced, for text that jansson refused
 * as UTF-8 (a hostname or a parameter from a foreign locale). */
static json_t *ascii_string(const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    json_t *v = json_string(copy);
    free(copy);
    return v;
}

int pb_json_str(json_t *obj, const char *key, const char *s)
{
    if (!s)
        return pb_json_null(obj, key);
    json_t *v = json_string(s);
    return pb_json_set(obj, key, v ? v : ascii_string(s));
}

int pb_json_int(json_t *obj, const char *key, long long v)
{
    return pb_json_set(obj, key, json_integer(v));
}

int pb_json_bool(json_t *obj, const char *key, bool v)
{
    return pb_json_set(obj, key, json_boolean(v));
}

int pb_json_null(json_t *obj, const char *key)
{
    return pb_json_set(obj, key, json_null());
}

int pb_json_num_text(json_t *obj, const char *key, const char *text)
{
    if (!text[0])
        return pb_json_null(obj, key);
    const char *p = text + (text[0] == '-');
    if (*p && strspn(p, "0123456789") == strlen(p)) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0)
            return pb_json_int(obj, key, v);
    }
    double d = strtod(text, NULL);
    return isfinite(d) ? pb_json_set(obj, key, json_real(d)) : pb_json_null(obj, key);
}

int pb_json_num(json_t *obj, const char *key, double v, const char *fmt)
{
    if (!isfinite(v))
        return pb_json_null(obj, key);
    char text[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(text, sizeof text, fmt, v);
#pragma GCC diagnostic pop
    return pb_json_num_text(obj, key, text);
}

char *pb_json_line(const json_t *doc, size_t *len)
{
    char *s = json_dumps(doc, DUMP_FLAGS | JSON_COMPACT);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    *len = n + 1;
    return line;
}

int pb_json_dump(FILE *f, const json_t *doc, int indent)
{
    size_t flags = DUMP_FLAGS | (indent > 0 ? JSON_INDENT(indent) : JSON_COMPACT);
    if (json_dumpf(doc, f, flags) != 0 || fputc('\n', f) == EOF)
        return -1;
    return 0;
}

int pb_json_finish(FILE *f, json_t *doc, int rc, int indent)
{
    if (rc == 0)
        rc = doc ? pb_json_dump(f, doc, indent) : -1;
    json_decref(doc);
    return rc;
}
