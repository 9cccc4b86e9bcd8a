/* The JSON reader and writer declared in json.h; its limits are described there. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* skip_ws after a step that may have failed (NULL), for chaining. */
#define SKIP_WS(p, end) ((p) == NULL ? NULL : skip_ws((p), (end)))

/* p is at a '"'; returns the byte after the closing quote, or NULL if the string never ends. */
static const char *skip_string(const char *p, const char *end) {
  for (p++; p < end; p++) {
    if (*p == '\\') {
      p++; /* the escaped byte cannot end the string; \uXXXX's digits cannot either */
      if (p >= end) return NULL;
    } else if (*p == '"') {
      return p + 1;
    }
  }
  return NULL;
}

/* Returns the byte after the value at p, or NULL if it cannot follow it. */
static const char *skip_value(const char *p, const char *end, int depth) {
  p = skip_ws(p, end);
  if (p >= end) return NULL;
  if (*p == '"') return skip_string(p, end);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH) return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return NULL;
        p = SKIP_WS(skip_string(p, end), end);
        if (p == NULL || p >= end || *p != ':') return NULL;
        p++;
      }
      p = skip_value(p, end, depth + 1);
      if (p == NULL) return NULL;
      p = skip_ws(p, end);
      if (p >= end) return NULL;
      if (*p == close) return p + 1;
      if (*p != ',') return NULL;
      p++;
    }
  }
  /* A number or a literal: up to the next delimiter. */
  const char *start = p;
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
         *p != '\n' && *p != '\r')
    p++;
  return p > start ? p : NULL;
}

json_value json_parse(const char *bytes, size_t len) {
  json_value v = {skip_ws(bytes, bytes + len), bytes + len};
  if (v.p >= v.end) v.p = NULL;
  return v;
}

int json_is_absent(json_value v) { return v.p == NULL; }

int json_is_absent_or_null(json_value v) {
  return v.p == NULL || (v.end - v.p >= 4 && memcmp(v.p, "null", 4) == 0);
}

int json_is_object(json_value v) { return v.p != NULL && *v.p == '{'; }

int json_is_string(json_value v) { return v.p != NULL && *v.p == '"'; }

int json_members_begin(json_members *it, json_value object) {
  if (!json_is_object(object)) return 0;
  it->p = object.p + 1;
  it->end = object.end;
  return 1;
}

int json_members_next(json_members *it, json_value *key, json_value *value) {
  const char *p = skip_ws(it->p, it->end);
  if (p < it->end && *p == ',') p = skip_ws(p + 1, it->end);
  if (p >= it->end || *p != '"') return 0; /* '}' ends the object; anything else is malformed */
  key->p = p;
  key->end = it->end;
  p = SKIP_WS(skip_string(p, it->end), it->end);
  if (p == NULL || p >= it->end || *p != ':') return 0;
  p = skip_ws(p + 1, it->end);
  value->p = p;
  value->end = it->end;
  p = skip_value(p, it->end, 1);
  if (p == NULL) return 0;
  it->p = p;
  return 1;
}

/* Reads 4 hex digits at p (p + 4 <= end checked by the caller); -1 if they are not hex. */
static long hex4(const char *p) {
  long n = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

static void buf_utf8(buffer *b, unsigned long c) {
  char out[4];
  size_t n;
  if (c < 0x80) {
    out[0] = (char)c;
    n = 1;
  } else if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    n = 2;
  } else if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    n = 3;
  } else {
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    n = 4;
  }
  buf_bytes(b, out, n);
}

int buf_decoded(buffer *b, json_value v) {
  if (!json_is_string(v)) return 0;
  const char *p = v.p + 1, *end = v.end;
  while (p < end && *p != '"') {
    const char *run = p;
    while (p < end && *p != '"' && *p != '\\') p++;
    buf_bytes(b, run, (size_t)(p - run));
    if (p >= end || *p == '"') break;
    if (++p >= end) return 0; /* the escaped character */
    char c = *p++;
    switch (c) {
      case 'b': buf_bytes(b, "\b", 1); break;
      case 'f': buf_bytes(b, "\f", 1); break;
      case 'n': buf_bytes(b, "\n", 1); break;
      case 'r': buf_bytes(b, "\r", 1); break;
      case 't': buf_bytes(b, "\t", 1); break;
      case 'u': {
        if (end - p < 4) return 0;
        long unit = hex4(p);
        if (unit < 0) return 0;
        p += 4;
        unsigned long code = (unsigned long)unit;
        if (unit >= 0xD800 && unit <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
          long low = hex4(p + 2);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            code = 0x10000 + (((unsigned long)unit - 0xD800) << 10) + ((unsigned long)low - 0xDC00);
            p += 6;
          }
        }
        /* A surrogate without its partner has no UTF-8 form: U+FFFD, as serde_json and Go do. */
        if (code >= 0xD800 && code <= 0xDFFF) code = 0xFFFD;
        buf_utf8(b, code);
        break;
      }
      default: buf_bytes(b, &c, 1); break; /* \" \\ \/ (and, leniently, anything else) */
    }
  }
  return p < end; /* reached the closing quote */
}

/* Whether the string value at `key` decodes to `expected`. Keys are short: the common case,
 * without escapes, compares in place. */
static int key_equals(json_value key, const char *expected) {
  size_t n = strlen(expected);
  const char *p = key.p + 1;
  if ((size_t)(key.end - p) > n && memcmp(p, expected, n) == 0 && p[n] == '"') return 1;
  const char *close = skip_string(key.p, key.end);
  if (close == NULL || memchr(p, '\\', (size_t)(close - p)) == NULL) return 0;
  buffer decoded = {0};
  int equal = buf_decoded(&decoded, key) && !decoded.failed && decoded.len == n &&
              memcmp(decoded.data, expected, n) == 0;
  buf_free(&decoded);
  return equal;
}

json_value json_get(json_value v, const char *key) {
  json_members it;
  json_value k, value, absent = {NULL, v.end};
  if (!json_members_begin(&it, v)) return absent;
  while (json_members_next(&it, &k, &value))
    if (key_equals(k, key)) return value;
  return absent;
}

void buf_free(buffer *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void buf_bytes(buffer *b, const char *bytes, size_t len) {
  if (b->failed || len == 0) return;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len) cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) { /* the host refused to grow memory: see operator.c */
      b->failed = 1;
      return;
    }
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, bytes, len);
  b->len += len;
}

void buf_str(buffer *b, const char *text) { buf_bytes(b, text, strlen(text)); }

void buf_uint(buffer *b, uint64_t n) {
  char digits[20];
  size_t i = sizeof digits;
  do {
    digits[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  buf_bytes(b, digits + i, sizeof digits - i);
}

void buf_json_string(buffer *b, const char *bytes, size_t len) {
  static const char hex[] = "0123456789abcdef";
  buf_bytes(b, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)bytes[i];
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    buf_bytes(b, bytes + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      char escaped[2] = {'\\', (char)c};
      buf_bytes(b, escaped, 2);
    } else {
      char escaped[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_bytes(b, escaped, 6);
    }
  }
  buf_bytes(b, bytes + run, len - run);
  buf_bytes(b, "\"", 1);
}

int buf_json_string_value(buffer *b, json_value v) {
  buffer decoded = {0};
  int ok = buf_decoded(&decoded, v) && !decoded.failed;
  if (ok) buf_json_string(b, decoded.data ? decoded.data : "", decoded.len);
  buf_free(&decoded);
  return ok;
}
