// Package log sends structured log records (level, message, key/value fields) to the host, which
// writes them with the operator's name attached. The API follows logr, as controller-runtime's
// log does: Info(msg, "key", value, ...), Error(err, msg, ...), WithValues(...), FromContext(ctx).
//
// Each record is one host call. Values are formatted with fmt ("%v"); errors with Error().
package log

import (
	"context"
	"encoding/json"
	"fmt"

	"wasm-operator.dev/sdk-go/abi"
)

// Logger carries key/value fields added to every record it writes. The zero Logger is ready to use.
type Logger struct {
	fields []field
}

type field struct{ key, value string }

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
		return // a LogRecord of strings always marshals; nothing sensible to do otherwise
	}
	abi.WriteLog(data)
}

// appendPairs turns alternating keys and values into fields. A key without a value gets
// "(MISSING)", and a key that is not a string is formatted, so no pair is silently lost.
func appendPairs(fields []field, keysAndValues []any) []field {
	for i := 0; i < len(keysAndValues); i += 2 {
		key, ok := keysAndValues[i].(string)
		if !ok {
			key = fmt.Sprint(keysAndValues[i])
		}
		value := "(MISSING)"
		if i+1 < len(keysAndValues) {
			value = format(keysAndValues[i+1])
		}
		fields = append(fields, field{key: key, value: value})
	}
	return fields
}

func format(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
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
