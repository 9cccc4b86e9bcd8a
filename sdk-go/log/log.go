// Package log sends structured log records (level, message, key/value fields) to the host, which
// writes them with the operator's name attached. The API follows logr, as controller-runtime's
// log does: Info(msg, "key", value, ...), Error(err, msg, ...), WithValues(...), FromContext(ctx).
//
// Each record is one host call. Field values keep their JSON types, so the host's log (and
// whatever reads it as JSON) sees numbers as numbers: strings, numbers, bools and nil as
// themselves; an error as its message; a value with its own JSON form (json.Marshaler, such as
// types.Time) in that form; another fmt.Stringer (time.Duration, an enum) as its String(); slices,
// maps and structs as JSON; anything JSON cannot encode (a func, a channel, NaN) formatted with
// fmt ("%v").
package log

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"wasm-operator.dev/sdk-go/abi"
)

// Logger carries key/value fields added to every record it writes. The zero Logger is ready to use.
type Logger struct {
	fields []field
}

// field is one key/value pair; value is already in the form the LogRecord carries (see value).
type field struct {
	key   string
	value any
}

// WithValues returns a Logger that adds these key/value pairs to every record.
func (l Logger) WithValues(keysAndValues ...any) Logger {
	fields := make([]field, 0, len(l.fields)+len(keysAndValues)/2)
	fields = append(fields, l.fields...)
	return Logger{fields: appendPairs(fields, keysAndValues)}
}

// Error logs err at error level.
func (l Logger) Error(err error, msg string, keysAndValues ...any) {
	if err != nil {
		keysAndValues = append([]any{"error", err}, keysAndValues...)
	}
	l.write(abi.LevelError, msg, keysAndValues)
}

// Warn logs at warn level.
func (l Logger) Warn(msg string, keysAndValues ...any) { l.write(abi.LevelWarn, msg, keysAndValues) }

// Info logs at info level.
func (l Logger) Info(msg string, keysAndValues ...any) { l.write(abi.LevelInfo, msg, keysAndValues) }

// Debug logs at debug level.
func (l Logger) Debug(msg string, keysAndValues ...any) { l.write(abi.LevelDebug, msg, keysAndValues) }

// Trace logs at trace level.
func (l Logger) Trace(msg string, keysAndValues ...any) { l.write(abi.LevelTrace, msg, keysAndValues) }

func (l Logger) write(level, msg string, keysAndValues []any) {
	record := abi.LogRecord{Level: level, Message: msg}
	fields := appendPairs(append([]field(nil), l.fields...), keysAndValues)
	if len(fields) > 0 {
		record.Fields = make(map[string]any, len(fields))
		for _, f := range fields {
			record.Fields[f.key] = f.value
		}
	}
	data, err := json.Marshal(record)
	if err != nil {
		return // every field value is a string or marshalled JSON, so this does not happen
	}
	if len(data) > maxRecordBytes {
		data = shrink(record)
	}
	abi.WriteLog(data)
}

// maxRecordBytes is the ABI's limit for one LogRecord. A longer one is an ABI violation: the
// host would discard the instance, so a log line must never be that long.
const maxRecordBytes = 64 << 10

// maxPartBytes is how much of the message and of each field an over-long record keeps. The host
// cuts a line's message and its serialised fields to 4 KiB each anyway, so nothing readable is
// lost by cutting an over-long record here first.
const maxPartBytes = 4 << 10

// shrink encodes a record that was over the ABI's limit: the message and every field, as its
// JSON text, cut to maxPartBytes; and if that is still too long (thousands of fields), without
// fields at all.
func shrink(record abi.LogRecord) []byte {
	record.Message = cut(record.Message, maxPartBytes)
	for key, v := range record.Fields {
		text, ok := v.(string)
		if !ok {
			encoded, _ := json.Marshal(v)
			text = string(encoded)
		}
		record.Fields[key] = cut(text, maxPartBytes)
	}
	if data, err := json.Marshal(record); err == nil && len(data) <= maxRecordBytes {
		return data
	}
	record.Fields = map[string]any{"fieldsDropped": "the record's fields were longer than the ABI allows"}
	data, _ := json.Marshal(record)
	return data
}

// cut shortens s to at most n bytes on a UTF-8 character boundary, marking the cut with "…".
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD") // encoding/json would expand each invalid byte to 3
	if len(s) <= n {
		return s
	}
	end := n - len("…")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "…"
}

// appendPairs turns alternating keys and values into fields. A key without a value gets
// "(MISSING)", and a key that is not a string is formatted, so no pair is silently lost.
func appendPairs(fields []field, keysAndValues []any) []field {
	for i := 0; i < len(keysAndValues); i += 2 {
		key, ok := keysAndValues[i].(string)
		if !ok {
			key = fmt.Sprint(keysAndValues[i])
		}
		var v any = "(MISSING)"
		if i+1 < len(keysAndValues) {
			v = value(keysAndValues[i+1])
		}
		fields = append(fields, field{key: key, value: v})
	}
	return fields
}

// value turns a field's value into what the LogRecord carries: a string, or JSON text
// (json.RawMessage) that keeps the value's JSON type. It is called when the field is added, so a
// logger's fields are fixed when WithValues is called, as with logr.
func value(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return x // always valid JSON as they are
	case float32, float64:
		return marshalOrFormat(x) // NaN and infinities are not JSON: formatted instead
	case error:
		return errorMessage(x)
	case json.Marshaler:
		return marshalOrFormat(x)
	case fmt.Stringer:
		return stringOf(x)
	}
	return marshalOrFormat(v)
}

// marshalOrFormat returns v as JSON text, or formatted with fmt when JSON cannot encode it.
func marshalOrFormat(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return json.RawMessage(data)
}

// errorMessage returns err.Error(), or what fmt makes of err when Error panics (a nil pointer of
// an error type): a log call must not fail the reconcile that makes it.
func errorMessage(err error) (message string) {
	defer func() {
		if recover() != nil {
			message = fmt.Sprint(err)
		}
	}()
	return err.Error()
}

// stringOf returns s.String(), with the same protection as errorMessage.
func stringOf(s fmt.Stringer) (text string) {
	defer func() {
		if recover() != nil {
			text = fmt.Sprint(s)
		}
	}()
	return s.String()
}

// The package-level logger, without fields.
var root Logger

// Error logs err at error level.
func Error(err error, msg string, keysAndValues ...any) { root.Error(err, msg, keysAndValues...) }

// Warn logs at warn level.
func Warn(msg string, keysAndValues ...any) { root.Warn(msg, keysAndValues...) }

// Info logs at info level.
func Info(msg string, keysAndValues ...any) { root.Info(msg, keysAndValues...) }

// Debug logs at debug level.
func Debug(msg string, keysAndValues ...any) { root.Debug(msg, keysAndValues...) }

// Trace logs at trace level.
func Trace(msg string, keysAndValues ...any) { root.Trace(msg, keysAndValues...) }

// WithValues returns a Logger with these fields.
func WithValues(keysAndValues ...any) Logger { return root.WithValues(keysAndValues...) }

type contextKey struct{}

// IntoContext returns a context carrying l.
func IntoContext(ctx context.Context, l Logger) context.Context {
	return context.WithValue(ctx, contextKey{}, l)
}

// FromContext returns the Logger in ctx, or one without fields. The ctx of Reconcile carries a
// Logger with the request's kind, namespace and name.
func FromContext(ctx context.Context) Logger {
	if l, ok := ctx.Value(contextKey{}).(Logger); ok {
		return l
	}
	return root
}
