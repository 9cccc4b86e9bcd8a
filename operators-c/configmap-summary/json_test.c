/* Tests of the JSON reader and writer (json.c), built for the machine running them, not for Wasm:
 *
 *   zig cc -O1 -o json_test json_test.c json.c && ./json_test
 *
 * (`make test` here does that; operators-tests/tests/c_operator.rs runs it too.) Besides the
 * expected answers, every truncation and many single-byte corruptions of a sample message are
 * read with the input placed right before an unreadable page: a read past the end of the input
 * crashes the test instead of going unnoticed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "json.h"

static int failures;

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                     \
    }                                                                 \
  } while (0)

/* The decoded string at `v`, in a static buffer ("<absent>" if it is not a string). */
static const char *text(json_value v) {
  static char out[256];
  buffer b = {0};
  if (!buf_decoded(&b, v) || b.failed || b.len >= sizeof out) {
    buf_free(&b);
    return "<absent>";
  }
  memcpy(out, b.data ? b.data : "", b.len);
  out[b.len] = 0;
  buf_free(&b);
  return out;
}

static json_value parse(const char *s) { return json_parse(s, strlen(s)); }

static void lookups(void) {
  json_value doc = parse(" {\"a\": {\"b\": [1, {\"c\": \"x\"}], \"d\": \"deep\"}, \"e\" : null,"
                         " \"\\u0066\": \"escaped key\", \"g\": \"tab\\tquote\\\"slash\\/\"} ");
  CHECK(strcmp(text(json_get(json_get(doc, "a"), "d")), "deep") == 0);
  CHECK(json_is_absent_or_null(json_get(doc, "e")));
  CHECK(!json_is_absent(json_get(doc, "e")));
  CHECK(json_is_absent(json_get(doc, "missing")));
  CHECK(strcmp(text(json_get(doc, "f")), "escaped key") == 0);
  CHECK(strcmp(text(json_get(doc, "g")), "tab\tquote\"slash/") == 0);
  CHECK(json_is_absent(json_get(json_get(doc, "g"), "x"))); /* not an object */
  /* A key inside a nested value is not a member of the outer object. */
  CHECK(json_is_absent(json_get(doc, "c")));
}

static void unicode(void) {
  /* U+00FC, U+20AC, U+1F600 (a surrogate pair), a lone surrogate (U+FFFD), raw UTF-8. */
  json_value v = parse("\"\\u00fc\\u20AC\\ud83d\\ude00\\ud800x\xc3\xa9\"");
  CHECK(strcmp(text(v), "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbdx\xc3\xa9") == 0);
  CHECK(strcmp(text(parse("\"\\u00zz\"")), "<absent>") == 0); /* bad hex */
}

static void members(void) {
  json_value data = parse("{\"b\":\"two\",\"a\":\"1\",\"q\\\"\":\"\\u00fc\"}");
  json_members it;
  json_value key, value;
  char keys[64] = "";
  int count = 0;
  CHECK(json_members_begin(&it, data));
  while (json_members_next(&it, &key, &value)) {
    strcat(keys, text(key));
    strcat(keys, "=");
    strcat(keys, text(value));
    strcat(keys, ";");
    count++;
  }
  CHECK(count == 3);
  CHECK(strcmp(keys, "b=two;a=1;q\"=\xc3\xbc;") == 0);
  CHECK(json_members_begin(&it, parse("{}")) && !json_members_next(&it, &key, &value));
  CHECK(!json_members_begin(&it, parse("[1]")));
}

static void writing(void) {
  buffer b = {0};
  buf_json_string(&b, "a\"b\\c\n\x01\xc3\xbc", 9);
  buf_str(&b, " ");
  buf_uint(&b, 0);
  buf_str(&b, " ");
  buf_uint(&b, 18446744073709551615ull);
  buf_str(&b, " ");
  buf_json_string_value(&b, parse("\"\\u0041\\n\""));
  CHECK(!b.failed);
  CHECK(b.len == strlen("\"a\\\"b\\\\c\\u000a\\u0001\xc3\xbc\" 0 18446744073709551615 \"A\\u000a\""));
  CHECK(memcmp(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xbc\" 0 18446744073709551615 \"A\\u000a\"",
               b.len) == 0);
  buf_free(&b);
}

static void depth(void) {
  /* Nesting within the bound is skipped; beyond it the member is not found (not a crash). */
  char deep[2 * JSON_MAX_DEPTH + 64];
  for (int n = JSON_MAX_DEPTH - 2; n <= JSON_MAX_DEPTH + 2; n++) {
    int at = sprintf(deep, "{\"x\":");
    for (int i = 0; i < n; i++) deep[at++] = '[';
    for (int i = 0; i < n; i++) deep[at++] = ']';
    at += sprintf(deep + at, ",\"y\":\"found\"}");
    deep[at] = 0;
    const char *y = text(json_get(parse(deep), "y"));
    CHECK(strcmp(y, n < JSON_MAX_DEPTH ? "found" : "<absent>") == 0);
  }
}

/* Copies `len` bytes so that they end exactly where an unreadable page begins. */
static const char *before_guard(const char *bytes, size_t len, char *region, size_t page) {
  char *at = region + page - len;
  memcpy(at, bytes, len);
  return at;
}

/* Reads everything it can out of `doc`: every lookup the operator makes, every member. */
static void read_all(json_value doc) {
  json_value object = json_get(doc, "object");
  json_value metadata = json_get(object, "metadata");
  (void)text(json_get(metadata, "name"));
  (void)text(json_get(metadata, "uid"));
  (void)json_is_absent_or_null(object);
  json_members it;
  json_value key, value;
  if (json_members_begin(&it, json_get(object, "data")))
    while (json_members_next(&it, &key, &value)) {
      (void)text(key);
      (void)text(value);
    }
}

static void out_of_bounds(void) {
  static const char sample[] =
      "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"namespace\":\"ns\",\"name\":\"n\","
      "\"object\":{\"metadata\":{\"name\":\"n\",\"uid\":\"u-1\",\"labels\":{\"a\":\"b\"}},"
      "\"data\":{\"k\\u00fc\":\"v\\ud83d\\ude00\",\"e\":\"\",\"n\":[1,2.5e3,true,null,{}]}},"
      "\"attempt\":0}";
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *region = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(region != MAP_FAILED);
  if (region == MAP_FAILED) return;
  CHECK(mprotect(region + page, page, PROT_NONE) == 0);
  size_t n = sizeof sample - 1;

  read_all(json_parse(before_guard(sample, n, region, page), n));
  CHECK(strcmp(text(json_get(json_get(json_get(json_parse(before_guard(sample, n, region, page), n),
                                                "object"),
                                       "metadata"),
                              "uid")),
               "u-1") == 0);
  for (size_t len = 0; len <= n; len++) read_all(json_parse(before_guard(sample, len, region, page), len));
  /* Single bytes replaced with the ones that change structure. */
  static const char replacements[] = "\"\\{}[],: u0";
  char copy[sizeof sample];
  for (size_t i = 0; i < n; i++)
    for (const char *r = replacements; *r; r++) {
      memcpy(copy, sample, n);
      copy[i] = *r;
      for (size_t len = i; len <= n; len += (n - i) / 3 + 1)
        read_all(json_parse(before_guard(copy, len, region, page), len));
    }
  munmap(region, 2 * page);
}

int main(void) {
  lookups();
  unicode();
  members();
  writing();
  depth();
  out_of_bounds();
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("json_test: all checks passed\n");
  return 0;
}
