// Scalar types with Kubernetes' own JSON forms: Time (RFC 3339, seconds), MicroTime (RFC 3339,
// microseconds) and IntOrString (a port number or a port name).

package types

import (
	"encoding/json"
	"strconv"
	"time"
)

// Time is a timestamp serialised as Kubernetes does: RFC 3339 in UTC with whole seconds, and null
// for the zero time.
type Time struct {
	time.Time
}

// NewTime wraps t, dropping what Kubernetes would drop on the round trip (sub-second precision).
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Second)} }

// Now returns the current time as a Time.
func Now() Time { return NewTime(time.Now()) }

// MarshalJSON writes RFC 3339 or null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(t.UTC().Format(time.RFC3339))), nil
}

// UnmarshalJSON reads RFC 3339 or null.
func (t *Time) UnmarshalJSON(data []byte) error {
	parsed, err := parseTime(data)
	t.Time = parsed
	return err
}

// MicroTime is a timestamp with microsecond precision, as events.k8s.io/v1 eventTime requires.
type MicroTime struct {
	time.Time
}

const microTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// NewMicroTime wraps t with microsecond precision.
func NewMicroTime(t time.Time) MicroTime { return MicroTime{t.UTC().Truncate(time.Microsecond)} }

// MarshalJSON writes RFC 3339 with six fractional digits, or null.
func (t MicroTime) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(t.UTC().Format(microTimeLayout))), nil
}

// UnmarshalJSON reads RFC 3339 (any precision) or null.
func (t *MicroTime) UnmarshalJSON(data []byte) error {
	parsed, err := parseTime(data)
	t.Time = parsed
	return err
}

func parseTime(data []byte) (time.Time, error) {
	if string(data) == "null" {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return time.Time{}, err
	}
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, s)
}

// IntOrString holds either an integer or a string, as a Service's targetPort does.
type IntOrString struct {
	IsString bool
	IntVal   int32
	StrVal   string
}

// FromInt returns an IntOrString holding an integer.
func FromInt(i int32) IntOrString { return IntOrString{IntVal: i} }

// FromString returns an IntOrString holding a string.
func FromString(s string) IntOrString { return IntOrString{IsString: true, StrVal: s} }

func (v IntOrString) String() string {
	if v.IsString {
		return v.StrVal
	}
	return strconv.Itoa(int(v.IntVal))
}

// MarshalJSON writes a JSON number or string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

// UnmarshalJSON reads a JSON number or string.
func (v *IntOrString) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		*v = IntOrString{IsString: true}
		return json.Unmarshal(data, &v.StrVal)
	}
	*v = IntOrString{}
	return json.Unmarshal(data, &v.IntVal)
}
