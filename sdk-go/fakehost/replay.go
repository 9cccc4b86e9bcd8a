// Replaying a tape: a recording of a real run that `wasm-operator run --record DIR` wrote, played
// against the operator's Go code natively, as `wasm-operator test MODULE --replay TAPE` plays it
// against the compiled module. The format is the host's (abi/src/tape.rs in the repository); the
// rules of the comparison are those of the host's player, so a tape that passes one passes the
// other.

package fakehost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"wasm-operator.dev/sdk-go/abi"
	"wasm-operator.dev/sdk-go/internal/exports"
)

// tapeFormat is the format of the tapes Replay reads: the "format" of their header line.
const tapeFormat = "wasm-operator-tape/v1"

// Replay runs the operator under test against the tape at path, a recording of a real run that
// `wasm-operator run --record DIR` wrote to DIR/NAME.jsonl, and fails t at the first point where
// the operator does something else than it did in the recording.
//
// The operator must be linked into the test, registered as it is in the module (its package's
// init function calls operator.New()...Complete). Replay installs a Host for the replay (and
// restores the previous one when it returns), calls the operator's init with the recorded
// InitInput (operator name and configuration), then every recorded reconcile in order with its
// recorded request. Every Kubernetes and HTTP request the operator makes is answered with the
// recorded answer if it equals the recorded request, compared as JSON (field order does not
// matter) after every RFC 3339 timestamp string is replaced by "<time>". Replay fails, with t.Fatalf
// and a diff of the recorded and the replayed JSON, on the first request that differs, a request
// that was not recorded, a recorded request that was not made, or a reconcile whose outcome
// differs. An outcome is {"result": ReconcileResult} or {"error": {"reason", "message"}} as the
// host records it: an error returned by Reconcile (or a panic in it) is reason "guest" with the
// message "the operator reported an error: " followed by the error's text, which is how the host
// words it. Log records are not recorded, so they are not compared.
//
// It returns the Host it ran on, so a test can look further (Logs, KubeRequests, ...); when t is
// not a *testing.T whose Fatalf stops the test, the Host is returned after the failure as well.
//
// A tape holds the life of one instance, from its init on. Natively, the operator's package
// variables hold whatever earlier tests of the binary left in them; reset what matters in an
// OnInit hook, as a fresh instance would start from nothing. A tape whose operator was recreated
// during the recording (after a trap or a lost swap-in) cannot be replayed past that point, and
// outcomes only Wasm produces (a trap, a call deadline, a memory limit) are not reproduced
// natively: `wasm-operator test MODULE --replay TAPE` replays those against the module.
func Replay(t testing.TB, path string) *Host {
	t.Helper()
	h := New()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fakehost.Replay(%s): %v", path, err)
		return h
	}
	tape, err := parseTape(text)
	if err != nil {
		t.Fatalf("fakehost.Replay(%s): %v", path, err)
		return h
	}
	if err := h.replay(tape); err != nil {
		t.Fatalf("fakehost.Replay(%s): %v", path, err)
	}
	return h
}

// tape is a parsed tape: the InitInput, then one episode per line.
type tape struct {
	init     json.RawMessage
	input    abi.InitInput
	episodes []episode
}

type episode struct {
	line      int             // in the file, for messages
	reconcile json.RawMessage // nil: host calls made outside a reconcile (init's)
	request   abi.ReconcileRequest
	calls     []call
	outcome   json.RawMessage // nil when the recording has none
}

// call is one recorded host call: request is tagged with its import, {"kube": ...} or
// {"http": ...}, as it is compared.
type call struct {
	request  json.RawMessage
	response abi.HostResponse
}

func parseTape(text []byte) (*tape, error) {
	var t tape
	header := true
	for index, line := range bytes.Split(text, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		number := index + 1
		if header {
			header = false
			var h struct {
				Format   string          `json:"format"`
				Operator string          `json:"operator"`
				Init     json.RawMessage `json:"init"`
			}
			if err := json.Unmarshal(line, &h); err != nil {
				return nil, fmt.Errorf("line %d is not a tape header: %v", number, err)
			}
			if h.Format != tapeFormat {
				return nil, fmt.Errorf("the tape's format is %q; this version reads %q", h.Format, tapeFormat)
			}
			if isAbsent(h.Init) {
				return nil, fmt.Errorf("line %d is not a tape header: it has no init", number)
			}
			if err := json.Unmarshal(h.Init, &t.input); err != nil {
				return nil, fmt.Errorf("line %d is not a tape header: init: %v", number, err)
			}
			t.init = h.Init
			continue
		}
		e, err := parseEpisode(line)
		if err != nil {
			return nil, fmt.Errorf("line %d is not a tape episode: %v", number, err)
		}
		e.line = number
		t.episodes = append(t.episodes, e)
	}
	if header {
		return nil, fmt.Errorf("the tape is empty")
	}
	return &t, nil
}

func parseEpisode(line []byte) (episode, error) {
	var wire struct {
		Reconcile json.RawMessage `json:"reconcile"`
		Calls     []struct {
			Kube *exchange `json:"kube"`
			HTTP *exchange `json:"http"`
		} `json:"calls"`
		Outcome json.RawMessage `json:"outcome"`
	}
	if err := json.Unmarshal(line, &wire); err != nil {
		return episode{}, err
	}
	var e episode
	if !isAbsent(wire.Reconcile) {
		if err := json.Unmarshal(wire.Reconcile, &e.request); err != nil {
			return episode{}, fmt.Errorf("reconcile: %v", err)
		}
		e.reconcile = wire.Reconcile
	}
	for i, c := range wire.Calls {
		var tag string
		var x *exchange
		switch {
		case c.Kube != nil && c.HTTP == nil:
			tag, x = "kube", c.Kube
		case c.HTTP != nil && c.Kube == nil:
			tag, x = "http", c.HTTP
		default:
			return episode{}, fmt.Errorf("call %d is not one of {\"kube\": ...} and {\"http\": ...}", i+1)
		}
		if isAbsent(x.Request) || x.Response == nil {
			return episode{}, fmt.Errorf("call %d lacks its request or response", i+1)
		}
		request, err := json.Marshal(map[string]json.RawMessage{tag: x.Request})
		if err != nil {
			return episode{}, fmt.Errorf("call %d: %v", i+1, err)
		}
		e.calls = append(e.calls, call{request: request, response: *x.Response})
	}
	if !isAbsent(wire.Outcome) {
		e.outcome = wire.Outcome
	}
	return e, nil
}

type exchange struct {
	Request  json.RawMessage   `json:"request"`
	Response *abi.HostResponse `json:"response"`
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// mismatch is where a replay first parted ways with the recording.
type mismatch struct {
	call     string // "init" or "reconcile N (namespace/name)"
	what     string
	recorded string // pretty normalised JSON, "" for nothing
	replayed string
}

func (m *mismatch) Error() string {
	text := m.call + ": " + m.what
	if m.recorded != "" || m.replayed != "" {
		text += "\n" + unifiedDiff(m.recorded, m.replayed, "recorded", "replayed", 4)
	}
	return text
}

// player answers host calls from the calls recorded for the current call into the operator.
type player struct {
	call     string
	expected []call
	made     int
	mismatch *mismatch
}

func (p *player) expect(call string, calls []call) {
	*p = player{call: call, expected: calls}
}

// answer returns the recorded answer to request, tagged with its import, or, when it is not the
// recorded one, notes the first mismatch and fails the request with a transport error.
func (p *player) answer(tag string, request any) abi.HostResponse {
	data, err := json.Marshal(map[string]any{tag: request})
	if err != nil {
		// The host would not get this far either: it rejects what it cannot decode.
		return Error(abi.ErrorInvalidRequest, fmt.Sprintf("malformed %s request: %v", tag, err))
	}
	p.made++
	made := normalizedJSON(data)
	var expected *call
	if len(p.expected) > 0 {
		expected = &p.expected[0]
		p.expected = p.expected[1:]
	}
	if expected != nil && normalizedJSON(expected.request) == made {
		return expected.response
	}
	if p.mismatch == nil {
		m := &mismatch{call: p.call, replayed: made}
		if expected != nil {
			m.what = fmt.Sprintf("host call %d differs", p.made)
			m.recorded = normalizedJSON(expected.request)
		} else {
			m.what = fmt.Sprintf("host call %d was not in the recording (it had %d)", p.made, p.made-1)
		}
		p.mismatch = m
	}
	return Error(abi.ErrorTransport, "replay: this request differs from the recording")
}

// finish returns the mismatch of the call that just ended, counting recorded host calls it did
// not make, or nil.
func (p *player) finish() *mismatch {
	if p.mismatch != nil {
		return p.mismatch
	}
	if len(p.expected) == 0 {
		return nil
	}
	return &mismatch{
		call:     p.call,
		what:     fmt.Sprintf("host call %d of the recording was not made (%d more after it)", p.made+1, len(p.expected)-1),
		recorded: normalizedJSON(p.expected[0].request),
	}
}

// replay plays tape on h; the error is a *mismatch or says why the tape cannot be played.
func (h *Host) replay(t *tape) error {
	if exports.Init == nil || exports.Reconcile == nil {
		return fmt.Errorf("package operator is not linked into the test: import the operator's package, whose init function registers it")
	}
	p := &player{}
	h.OperatorName, h.Config = t.input.OperatorName, t.input.Config
	h.OnKube = func(req abi.KubeRequest) abi.HostResponse { return p.answer("kube", req) }
	h.OnHTTP = func(req abi.HTTPRequest) abi.HostResponse { return p.answer("http", req) }
	defer h.Install()()

	// Host calls recorded outside a reconcile before the first one are init's.
	var initCalls []call
	first := 0
	for first < len(t.episodes) && t.episodes[first].reconcile == nil {
		initCalls = append(initCalls, t.episodes[first].calls...)
		first++
	}
	p.expect("init", initCalls)
	code := h.call("init", exports.Init, t.init)
	if m := p.finish(); m != nil {
		return m
	}
	if code != abi.ReturnOK {
		return &mismatch{call: "init", what: "init failed, but it succeeded in the recording: " + outcomeMessage(code, h.Result())}
	}

	for n, e := range t.episodes[first:] {
		if e.reconcile == nil {
			return fmt.Errorf("line %d has host calls outside a reconcile after the first reconcile: the operator's "+
				"instance was recreated during the recording (after a trap or a lost swap-in), which a replay cannot "+
				"follow; record again", e.line)
		}
		name := e.request.Name
		if e.request.Namespace != "" {
			name = e.request.Namespace + "/" + name
		}
		label := fmt.Sprintf("reconcile %d (%s)", n+1, name)
		p.expect(label, e.calls)
		code := h.call("reconcile", exports.Reconcile, e.reconcile)
		if m := p.finish(); m != nil {
			return m
		}
		replayed := normalizedJSON(outcomeJSON(code, h.Result()))
		recorded := ""
		if e.outcome != nil {
			recorded = normalizedJSON(e.outcome)
		}
		if recorded != replayed {
			return &mismatch{call: label, what: "the outcome differs", recorded: recorded, replayed: replayed}
		}
	}
	return nil
}

// outcomeJSON is the outcome the host would record for a call into the guest that returned code
// and wrote result: {"result": ReconcileResult}, or {"error": {"reason", "message"}} worded as
// the host's CallError.
func outcomeJSON(code uint32, result []byte) []byte {
	type failure struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	var outcome any
	var ok abi.ReconcileResult
	switch {
	case code == abi.ReturnOK && json.Unmarshal(result, &ok) == nil:
		outcome = map[string]any{"result": ok}
	case code == abi.ReturnError && decodes(result, &abi.GuestError{}):
		outcome = map[string]any{"error": failure{"guest", outcomeMessage(code, result)}}
	default:
		outcome = map[string]any{"error": failure{"abi", outcomeMessage(code, result)}}
	}
	data, err := json.Marshal(outcome)
	if err != nil {
		panic(fmt.Sprintf("fakehost: encoding an outcome: %v", err))
	}
	return data
}

// outcomeMessage words a failed call as the host does (host/src/runtime/error.rs).
func outcomeMessage(code uint32, result []byte) string {
	var guest abi.GuestError
	if code == abi.ReturnError && json.Unmarshal(result, &guest) == nil {
		return "the operator reported an error: " + guest.Message
	}
	return fmt.Sprintf("the operator broke the wasm-operator ABI: return code %d with result %q; "+
		"rebuild it with a wasm-operator SDK that matches this host", code, result)
}

func decodes(data []byte, into any) bool { return json.Unmarshal(data, into) == nil }

// normalizedJSON is data pretty-printed with two-space indents and sorted keys, every RFC 3339
// timestamp string replaced by "<time>", and a final newline: two values are equal as JSON
// (timestamps aside) exactly when these texts are. Data that is not JSON is returned as it is.
func normalizedJSON(data []byte) string {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return string(data) + "\n"
	}
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(normalized(value)); err != nil {
		return string(data) + "\n"
	}
	return out.String()
}

// normalized is value with every RFC 3339 timestamp string replaced by "<time>".
func normalized(value any) any {
	switch v := value.(type) {
	case string:
		if isTimestamp(v) {
			return "<time>"
		}
	case []any:
		for i := range v {
			v[i] = normalized(v[i])
		}
	case map[string]any:
		for key, item := range v {
			v[key] = normalized(item)
		}
	}
	return value
}

// isTimestamp reports whether text is 2026-01-02T03:04:05 followed by an optional fraction and a
// Z or ±hh:mm offset, as the host's recognises it.
func isTimestamp(text string) bool {
	digits := func(from, to int) bool {
		for i := from; i < to; i++ {
			if text[i] < '0' || text[i] > '9' {
				return false
			}
		}
		return true
	}
	if len(text) < 20 || !digits(0, 4) || text[4] != '-' || !digits(5, 7) || text[7] != '-' ||
		!digits(8, 10) || text[10] != 'T' || !digits(11, 13) || text[13] != ':' ||
		!digits(14, 16) || text[16] != ':' || !digits(17, 19) {
		return false
	}
	rest := text[19:]
	if len(rest) > 0 && rest[0] == '.' {
		end := 1
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		if end == 1 {
			return false
		}
		rest = rest[end:]
	}
	return rest == "Z" || (len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':')
}
