// What the counter remembers: deliberately kept in linear memory only, so that losing it (a swap
// that failed to restore it) shows at once in the status.

package main

import (
	"fmt"
	"strconv"
)

// FNV-1a, 64 bits.
const (
	fnvOffsetBasis uint64 = 0xcbf29ce484222325
	fnvPrime       uint64 = 0x100000001b3
)

// memory is the counter's state for the life of the instance.
type memory struct {
	generations map[string][]int64 // "<ns>/<name>" to the generations seen, in order
	totalSeen   int64              // (object, generation) pairs seen
	checksum    uint64             // FNV-1a state over "<ns>/<name>@<generation>;" per pair seen
}

func newMemory() *memory {
	return &memory{generations: map[string][]int64{}, checksum: fnvOffsetBasis}
}

// hasSeen reports whether generation of key was seen already.
func (m *memory) hasSeen(key string, generation int64) bool {
	for _, g := range m.generations[key] {
		if g == generation {
			return true
		}
	}
	return false
}

// sighting is what seeing one new (object, generation) pair changes in the memory.
type sighting struct {
	key         string
	generations []int64
	totalSeen   int64
	checksum    uint64
}

// see works out what seeing generation of key changes, without changing m: the reconcile records
// the sighting only once the status showing it has been written, so a failed write is retried
// rather than forgotten.
func (m *memory) see(key string, generation int64) sighting {
	return sighting{
		key:         key,
		generations: append(append([]int64(nil), m.generations[key]...), generation),
		totalSeen:   m.totalSeen + 1,
		checksum:    continueFNV1a(m.checksum, key+"@"+strconv.FormatInt(generation, 10)+";"),
	}
}

// record makes s part of the memory.
func (m *memory) record(s sighting) {
	m.generations[s.key] = s.generations
	m.totalSeen, m.checksum = s.totalSeen, s.checksum
}

// forget drops key's generations; totalSeen and the checksum keep counting what was seen.
func (m *memory) forget(key string) { delete(m.generations, key) }

// status is the status an object shows after the sighting s.
func (s sighting) status() CounterStatus {
	return CounterStatus{
		ObservedGenerations: s.generations,
		TotalSeen:           s.totalSeen,
		Checksum:            fmt.Sprintf("%016x", s.checksum),
	}
}

func continueFNV1a(state uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		state ^= uint64(s[i])
		state *= fnvPrime
	}
	return state
}
