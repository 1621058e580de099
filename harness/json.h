/*
 * json.h: the one way the harness writes JSON.  A document is a jansson
 * object (Debian's libjansson: it validates UTF-8 and escapes correctly)
 * filled with the setters below and written by pb_json_dump or
 * pb_json_line; no command prints JSON by hand.
 *
 * Numbers: integers exactly; a double as the printf format its field has
 * always used writes it ("%.9g", "%.1f", ...), read back as a JSON reader
 * reads that text: an integer when the format writes no fraction (e.g.
 * "%.0f"), else a real with those digits (dumped with 15 significant
 * digits, which reproduces any text of up to 15).  A double that is not
 * finite becomes null: JSON has no NaN.  Keys stay in the order they were
 * set (JSON_PRESERVE_ORDER).
 */
#ifndef POOLBENCH_JSON_H
#define POOLBENCH_JSON_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The setters add key to obj (replacing an earlier value) and return 0,
 * or -1 when memory ran out or obj is NULL (obj is then unchanged), so
 * that a document is built as rc |= setter(...) and checked once.  None
 * blocks. */

/* A string; NULL becomes null.  Bytes that are not UTF-8 become '?'. */
int pb_json_str(json_t *obj, const char *key, const char *s);
int pb_json_int(json_t *obj, const char *key, long long v);
int pb_json_bool(json_t *obj, const char *key, bool v);
int pb_json_null(json_t *obj, const char *key);
/* v as fmt (one double conversion) writes it; null when v is not finite. */
int pb_json_num(json_t *obj, const char *key, double v, const char *fmt);
/* A number given as its text: "" becomes null, digits alone an integer
 * (a real beyond the 64-bit range), anything else a real (strtod). */
int pb_json_num_text(json_t *obj, const char *key, const char *text);
/* Adds value (a new reference, stolen even on failure) under key. */
int pb_json_set(json_t *obj, const char *key, json_t *value);

/* doc as one line ending in '\n', in a malloc'd string (free() it) with
 * its length in *len: what a single write() appends.  NULL when memory
 * ran out. */
char *pb_json_line(const json_t *doc, size_t *len);
/* Writes doc to f followed by '\n': on one line (indent 0) or indented
 * by indent spaces per level.  0, or -1 when the write failed.  Blocks
 * on f. */
int pb_json_dump(FILE *f, const json_t *doc, int indent);

/* Ends a document: writes doc to f as pb_json_dump does when rc is 0,
 * then releases doc.  rc, or -1 when doc is NULL or the write failed. */
int pb_json_finish(FILE *f, json_t *doc, int rc, int indent);

#endif
