/* A small JSON reader and writer: just enough for the messages of the wasm-operator ABI.
 *
 * Reading works in place on the bytes the host handed over: a value is a pointer to its first
 * byte, and the reader skips over values instead of building a tree. That keeps it short and
 * allocation-free, at the price of looking a key up by scanning its object.
 *
 * Limits, on purpose:
 * - It checks structure (brackets, strings, separators) only as far as it needs to never read
 *   past the end of the input, and returns "not found" on anything it cannot follow. It does
 *   not validate numbers or literals (the host only ever sends valid JSON; what matters here is
 *   that bad input cannot make it read out of bounds).
 * - Nesting deeper than JSON_MAX_DEPTH is treated as malformed (bounded recursion).
 * - Numbers are not parsed: this operator needs none.
 * - Object keys are compared after decoding escapes, so "\u0061" finds "a"; duplicate keys
 *   return the first.
 *
 * Writing appends to a growable buffer, escaping strings as JSON requires (quotes, backslashes,
 * control characters); other UTF-8 bytes are copied as they are, which JSON allows. */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

/* A JSON value inside a buffer: `p` is its first byte, `end` the end of the whole input. A NULL
 * `p` means "absent". */
typedef struct {
  const char *p;
  const char *end;
} json_value;

json_value json_parse(const char *bytes, size_t len);
int json_is_absent(json_value v);
/* True for an absent value and for a JSON null: both mean "not there" in the ABI. */
int json_is_absent_or_null(json_value v);
int json_is_object(json_value v);
int json_is_string(json_value v);
/* The member `key` of an object; absent when `v` is not an object or has no such member. */
json_value json_get(json_value v, const char *key);

/* Iterates an object's members: json_members_begin, then json_members_next until it returns 0
 * (the end, or input it cannot follow). `key` is the member's name (a string value). */
typedef struct {
  const char *p;
  const char *end;
} json_members;
int json_members_begin(json_members *it, json_value object);
int json_members_next(json_members *it, json_value *key, json_value *value);

/* A growable byte buffer. On allocation failure it sets `failed` and ignores further writes, so
 * callers check once at the end instead of after every append. */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
  int failed;
} buffer;

void buf_free(buffer *b);
void buf_bytes(buffer *b, const char *bytes, size_t len);
void buf_str(buffer *b, const char *text);
void buf_uint(buffer *b, uint64_t n);
/* Appends `bytes` as a JSON string, quotes included. */
void buf_json_string(buffer *b, const char *bytes, size_t len);
/* Appends the decoded text of a JSON string value (no quotes). Returns 0 if `v` is not a string
 * it can decode. */
int buf_decoded(buffer *b, json_value v);
/* Appends a string value as a JSON string (decoded, then escaped again: the result is canonical
 * whatever escapes the input used). Returns 0 if `v` is not a string. */
int buf_json_string_value(buffer *b, json_value v);

#endif
