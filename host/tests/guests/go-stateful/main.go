// Command test-guest-go-stateful is the Go twin of the host's test-guest-stateful Rust guest: an
// operator holding a configurable amount of live state that can prove, on request, that the state
// is intact. It talks to the ABI directly (no SDK), so the swap tests depend only on the ABI, and
// it uses what makes Go's runtime state interesting to restore: a garbage-collected heap, a map
// and the monotonic clock.
//
// Init config (all optional): stateBytes (default 1 MiB) of pseudo-random bytes from seed
// (default 1); touchPerReconcile (default 16) bytes changed by an ordinary reconcile. Requests,
// by object name: "verify" recomputes the checksum over everything held and fails on a mismatch;
// "grow-<KiB>" allocates and keeps that many more KiB; anything else changes touchPerReconcile
// bytes. Every reconcile fails if the monotonic clock reads earlier than at the previous call,
// and a successful one logs "state reconciles=<n> inits=<i> sum=<checksum> bytes=<held>".
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o stateful.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

//go:wasmimport wasm_operator input_read
func inputRead(ptr unsafe.Pointer, length uint32) uint32

//go:wasmimport wasm_operator result_write
func resultWrite(ptr unsafe.Pointer, length uint32)

//go:wasmimport wasm_operator log
func hostLog(ptr unsafe.Pointer, length uint32)

type state struct {
	blocks            [][]byte
	held              uint64
	checksum          uint64
	reconciles        uint64
	touchPerReconcile uint64
	random            uint64
	lastClock         time.Time
	// Names reconciled so far: a map the garbage collector manages, restored with the heap.
	seen map[string]int
}

var (
	current *state
	inits   uint64
)

//go:wasmexport wasm_operator_abi_v1
func abiVersionMarker() {}

//go:wasmexport wasm_operator_init
func exportInit(inputLen uint32) uint32 {
	var input struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(readInput(inputLen), &input); err != nil {
		return fail(fmt.Sprintf("parsing the init input: %v", err))
	}
	number := func(key string, fallback uint64) uint64 {
		if value, ok := input.Config[key].(float64); ok && value >= 0 {
			return uint64(value)
		}
		return fallback
	}
	s := &state{
		touchPerReconcile: number("touchPerReconcile", 16),
		random:            max(number("seed", 1), 1),
		lastClock:         time.Now(),
		seen:              map[string]int{},
	}
	s.addBlock(number("stateBytes", 1<<20))
	current = s
	inits++
	return succeed(map[string]any{"for": map[string]string{"apiVersion": "v1", "kind": "ConfigMap"}})
}

//go:wasmexport wasm_operator_reconcile
func exportReconcile(inputLen uint32) uint32 {
	var request struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(readInput(inputLen), &request); err != nil {
		return fail(fmt.Sprintf("parsing the reconcile request: %v", err))
	}
	s := current
	if s == nil {
		return fail("reconcile before init: the guest's state is missing")
	}
	now := time.Now()
	if now.Before(s.lastClock) {
		return fail("the monotonic clock went backwards")
	}
	s.lastClock = now
	s.reconciles++
	s.seen[request.Name]++

	switch {
	case request.Name == "verify":
		if actual := s.recompute(); actual != s.checksum {
			return fail(fmt.Sprintf("state corrupted: running checksum %d but the held bytes sum to %d", s.checksum, actual))
		}
	case strings.HasPrefix(request.Name, "grow-"):
		kib, err := strconv.ParseUint(strings.TrimPrefix(request.Name, "grow-"), 10, 32)
		if err != nil {
			return fail(fmt.Sprintf("bad grow request %q", request.Name))
		}
		s.addBlock(kib * 1024)
	default:
		for i := uint64(0); i < s.touchPerReconcile; i++ {
			s.touch()
		}
	}
	logInfo(fmt.Sprintf("state reconciles=%d inits=%d sum=%d bytes=%d names=%d",
		s.reconciles, inits, s.checksum, s.held, len(s.seen)))
	return succeed(map[string]any{})
}

func (s *state) nextRandom() uint64 {
	s.random ^= s.random << 13
	s.random ^= s.random >> 7
	s.random ^= s.random << 17
	return s.random
}

func (s *state) addBlock(length uint64) {
	block := make([]byte, length)
	for offset := range block {
		block[offset] = byte(s.nextRandom() >> 24)
		s.checksum += weighted(block[offset], s.held+uint64(offset))
	}
	s.held += length
	s.blocks = append(s.blocks, block)
}

func (s *state) touch() {
	if s.held == 0 {
		return
	}
	position := s.nextRandom() % s.held
	base := uint64(0)
	for _, block := range s.blocks {
		if position < uint64(len(block)) {
			old := block[position]
			updated := old*31 + 7
			block[position] = updated
			s.checksum = s.checksum - weighted(old, base+position) + weighted(updated, base+position)
			return
		}
		position -= uint64(len(block))
		base += uint64(len(block))
	}
}

func (s *state) recompute() uint64 {
	sum, position := uint64(0), uint64(0)
	for _, block := range s.blocks {
		for _, b := range block {
			sum += weighted(b, position)
			position++
		}
	}
	return sum
}

func weighted(b byte, position uint64) uint64 { return uint64(b) * (position + 1) }

func readInput(length uint32) []byte {
	buffer := make([]byte, length)
	if length == 0 {
		return buffer
	}
	copied := inputRead(unsafe.Pointer(&buffer[0]), length)
	return buffer[:copied]
}

func write(payload any, code uint32) uint32 {
	bytes, _ := json.Marshal(payload)
	resultWrite(unsafe.Pointer(&bytes[0]), uint32(len(bytes)))
	return code
}

func succeed(result any) uint32 { return write(result, 0) }

func fail(message string) uint32 { return write(map[string]string{"message": message}, 1) }

func logInfo(message string) {
	bytes, _ := json.Marshal(map[string]string{"level": "info", "message": message})
	hostLog(unsafe.Pointer(&bytes[0]), uint32(len(bytes)))
}

// main never runs in a reactor module (-buildmode=c-shared); the host calls the exports.
func main() {}
