/* configmap-summary: a wasm-operator operator in plain C, using the ABI directly (docs/abi.md)
 * with no SDK.
 *
 * For every ConfigMap carrying the label `demo.wasm-operator.dev/summarize` (any value) in the
 * configured namespace, it keeps a ConfigMap `<name>-summary` beside it, owned by it (so it is
 * garbage-collected with it), whose data describes the source's data:
 *
 *   source: <name>   keys: <comma-separated keys, in the API server's (sorted) order>
 *   count:  <number of keys>   bytes: <total bytes of the values, decoded>
 *
 * written with one server-side apply per reconcile. Init config: {"namespace": "<ns>"} (required:
 * init fails with a GuestError without it). The summary does not carry the label, so it is not
 * summarised itself.
 *
 * The ABI's pull model means the module exports no allocator: it mallocs a buffer of the length
 * the host announces and asks the host to fill it (input_read, response_read). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define IMPORT(name) __attribute__((import_module("wasm_operator"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

/* Pointers and lengths are i32 in Wasm and unsigned here, as the ABI says. */
IMPORT("input_read") uint32_t input_read(void *ptr, uint32_t len);
IMPORT("result_write") void result_write(const void *ptr, uint32_t len);
IMPORT("response_read") uint32_t response_read(void *ptr, uint32_t len);
IMPORT("kube_request") uint32_t kube_request(const void *ptr, uint32_t len);
IMPORT("log") void host_log(const void *ptr, uint32_t len);

#define RETURN_OK 0
#define RETURN_ERROR 1

#define OPERATOR "configmap-summary"
#define LABEL "demo.wasm-operator.dev/summarize"

/* The namespace from init's config, as a JSON string (quotes included), kept for every reconcile
 * of this instance. */
static buffer namespace_json;

/* The version marker: its name is what matters; the host never calls it. */
EXPORT("wasm_operator_abi_v1") void abi_v1(void) {}

/* Reads the current call's input (len bytes, announced by the host) into a new buffer. */
static int read_input(buffer *in, uint32_t len) {
  in->data = malloc(len ? len : 1);
  if (in->data == NULL) return 0;
  in->cap = len;
  in->len = input_read(in->data, len);
  return in->len == len;
}

/* Sends a request and reads the host's response into `response` (always one: ok or error). */
static int host_call(uint32_t (*call)(const void *, uint32_t), const buffer *request,
                     buffer *response) {
  uint32_t len = call(request->data, (uint32_t)request->len);
  response->data = malloc(len ? len : 1);
  if (response->data == NULL) return 0;
  response->cap = len;
  response->len = response_read(response->data, len);
  return response->len == len;
}

/* Writes a GuestError {"message": prefix + detail} and returns RETURN_ERROR. */
static int32_t fail(const char *prefix, const char *detail, size_t detail_len) {
  buffer message = {0}, result = {0};
  buf_str(&message, prefix);
  buf_bytes(&message, detail, detail_len);
  buf_str(&result, "{\"message\":");
  buf_json_string(&result, message.data ? message.data : "", message.len);
  buf_str(&result, "}");
  /* Without memory for the message, returning 1 with no result still reports a failure. */
  if (!result.failed) result_write(result.data, (uint32_t)result.len);
  buf_free(&message);
  buf_free(&result);
  return RETURN_ERROR;
}

static void log_record(const char *level, const buffer *message_json, const buffer *fields_json) {
  buffer record = {0};
  buf_str(&record, "{\"level\":\"");
  buf_str(&record, level);
  buf_str(&record, "\",\"message\":");
  buf_bytes(&record, message_json->data, message_json->len);
  buf_str(&record, ",\"fields\":");
  buf_bytes(&record, fields_json->data, fields_json->len);
  buf_str(&record, "}");
  if (!record.failed) host_log(record.data, (uint32_t)record.len);
  buf_free(&record);
}

static int32_t write_result(const char *json) {
  result_write(json, (uint32_t)strlen(json));
  return RETURN_OK;
}

EXPORT("wasm_operator_init") int32_t operator_init(int32_t len) {
  buffer in = {0}, registration = {0};
  int32_t code;
  if (!read_input(&in, (uint32_t)len)) {
    code = fail("reading the init input", "", 0);
    goto done;
  }
  json_value config = json_get(json_parse(in.data, in.len), "config");
  json_value namespace = json_get(config, "namespace");
  buf_free(&namespace_json);
  if (!json_is_string(namespace) || !buf_json_string_value(&namespace_json, namespace)) {
    code = fail("config.namespace is required: the namespace whose labelled ConfigMaps to "
                "summarise, e.g. {\"namespace\": \"default\"}", "", 0);
    goto done;
  }
  buf_str(&registration, "{\"for\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"namespace\":");
  buf_bytes(&registration, namespace_json.data, namespace_json.len);
  buf_str(&registration, ",\"labelSelector\":\"" LABEL "\"}}");
  if (registration.failed || namespace_json.failed) {
    code = fail("out of memory writing the registration", "", 0);
    goto done;
  }
  result_write(registration.data, (uint32_t)registration.len);
  code = RETURN_OK;
done:
  buf_free(&in);
  buf_free(&registration);
  return code;
}

EXPORT("wasm_operator_reconcile") int32_t operator_reconcile(int32_t len) {
  buffer in = {0}, name = {0}, summary = {0}, keys = {0}, request = {0}, response = {0}, text = {0},
         fields = {0};
  int32_t code;
  if (!read_input(&in, (uint32_t)len)) {
    code = fail("reading the reconcile request", "", 0);
    goto done;
  }
  json_value req = json_parse(in.data, in.len);
  json_value object = json_get(req, "object");
  if (json_is_absent_or_null(object)) {
    /* Deleted (or not cached yet): its summary is owned by it, so the garbage collector
     * removes the summary; there is nothing to do. */
    buf_str(&text, "\"source is gone; its summary is garbage-collected\"");
    buf_str(&fields, "{\"name\":");
    if (!buf_json_string_value(&fields, json_get(req, "name"))) buf_str(&fields, "null");
    buf_str(&fields, "}");
    log_record("debug", &text, &fields);
    code = write_result("{}");
    goto done;
  }
  json_value metadata = json_get(object, "metadata");
  json_value uid = json_get(metadata, "uid");
  if (!buf_decoded(&name, json_get(metadata, "name")) || !json_is_string(uid)) {
    code = fail("the request's object has no metadata.name or metadata.uid", "", 0);
    goto done;
  }

  /* The summary of .data: keys in the order the API server sent them (sorted), value sizes. */
  uint64_t count = 0, bytes = 0;
  json_members it;
  json_value key, value;
  if (json_members_begin(&it, json_get(object, "data"))) {
    while (json_members_next(&it, &key, &value)) {
      if (count++) buf_str(&keys, ",");
      buf_decoded(&keys, key);
      size_t before = text.len;
      buf_decoded(&text, value);
      bytes += text.len - before;
    }
  }
  buf_free(&text);

  /* One server-side apply of the whole summary: idempotent, so a repeated reconcile changes
   * nothing, and fields the operator no longer sets are removed. */
  buf_bytes(&summary, name.data, name.len);
  buf_str(&summary, "-summary");
  buf_str(&request, "{\"verb\":\"patch\",\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"namespace\":");
  buf_bytes(&request, namespace_json.data, namespace_json.len);
  buf_str(&request, ",\"name\":");
  buf_json_string(&request, summary.data, summary.len);
  buf_str(&request, ",\"patchType\":\"apply\",\"fieldManager\":\"" OPERATOR
                    "\",\"force\":true,\"body\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                    "\"metadata\":{\"name\":");
  buf_json_string(&request, summary.data, summary.len);
  buf_str(&request, ",\"namespace\":");
  buf_bytes(&request, namespace_json.data, namespace_json.len);
  buf_str(&request, ",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":");
  buf_json_string(&request, name.data, name.len);
  buf_str(&request, ",\"uid\":");
  buf_json_string_value(&request, uid);
  buf_str(&request, "}]},\"data\":{\"source\":");
  buf_json_string(&request, name.data, name.len);
  buf_str(&request, ",\"keys\":");
  buf_json_string(&request, keys.data ? keys.data : "", keys.len);
  buf_str(&request, ",\"count\":\"");
  buf_uint(&request, count);
  buf_str(&request, "\",\"bytes\":\"");
  buf_uint(&request, bytes);
  buf_str(&request, "\"}}}");
  if (name.failed || summary.failed || keys.failed || request.failed) {
    code = fail("out of memory building the summary", "", 0);
    goto done;
  }
  if (!host_call(kube_request, &request, &response)) {
    code = fail("reading the host's response", "", 0);
    goto done;
  }

  json_value answer = json_parse(response.data, response.len);
  json_value error = json_get(answer, "error");
  if (!json_is_absent(error)) {
    buffer message = {0};
    buf_decoded(&message, json_get(error, "message"));
    code = fail("applying the summary ConfigMap: ", message.data ? message.data : "",
                message.failed ? 0 : message.len);
    buf_free(&message);
    goto done;
  }

  buf_str(&text, "\"summarised\"");
  buf_str(&fields, "{\"name\":");
  buf_json_string(&fields, name.data, name.len);
  buf_str(&fields, ",\"keys\":");
  buf_uint(&fields, count);
  buf_str(&fields, "}");
  log_record("info", &text, &fields);
  code = write_result("{}");
done:
  buf_free(&in);
  buf_free(&name);
  buf_free(&summary);
  buf_free(&keys);
  buf_free(&request);
  buf_free(&response);
  buf_free(&text);
  buf_free(&fields);
  return code;
}
