// A reader for the few sections of a core Wasm binary the module test needs (types, imports,
// functions, exports), so the test depends on nothing outside the standard library.

package moduletest

import (
	"errors"
	"fmt"
	"strings"
)

type wasmImport struct {
	module, name, kind string
	signature          string // functions only
}

type module struct {
	imports       []wasmImport
	funcExports   map[string]string // name -> signature
	exportsMemory bool
}

type reader struct {
	data []byte
	pos  int
}

var errTruncated = errors.New("wasm: truncated module")

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.data) {
		return 0, errTruncated
	}
	b := r.data[r.pos]
	r.pos++
	return b, nil
}

func (r *reader) u32() (uint32, error) {
	var result uint32
	for shift := uint(0); shift < 35; shift += 7 {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		result |= uint32(b&0x7f) << shift
		if b&0x80 == 0 {
			return result, nil
		}
	}
	return 0, errors.New("wasm: LEB128 too long")
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if r.pos+int(n) > len(r.data) {
		return "", errTruncated
	}
	s := string(r.data[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

var valueTypes = map[byte]string{0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref"}

func (r *reader) valueTypes() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	names := make([]string, 0, n)
	for i := uint32(0); i < n; i++ {
		b, err := r.byte()
		if err != nil {
			return "", err
		}
		name, ok := valueTypes[b]
		if !ok {
			return "", fmt.Errorf("wasm: unknown value type 0x%x", b)
		}
		names = append(names, name)
	}
	return "(" + strings.Join(names, ", ") + ")", nil
}

// limits skips a table or memory limits entry.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func parseModule(data []byte) (*module, error) {
	if len(data) < 8 || string(data[:4]) != "\x00asm" {
		return nil, errors.New("wasm: not a Wasm module")
	}
	r := &reader{data: data, pos: 8}
	m := &module{funcExports: map[string]string{}}
	var signatures []string // by type index
	var funcTypes []uint32  // by function index, imports first
	type export struct {
		name  string
		index uint32
	}
	var funcExports []export

	for r.pos < len(r.data) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		end := r.pos + int(size)
		if end > len(r.data) {
			return nil, errTruncated
		}
		section := &reader{data: r.data[:end], pos: r.pos}
		switch id {
		case 1: // types
			count, err := section.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < count; i++ {
				if form, err := section.byte(); err != nil || form != 0x60 {
					return nil, fmt.Errorf("wasm: unexpected type form (%v)", err)
				}
				params, err := section.valueTypes()
				if err != nil {
					return nil, err
				}
				results, err := section.valueTypes()
				if err != nil {
					return nil, err
				}
				signatures = append(signatures, params+" -> "+results)
			}
		case 2: // imports
			count, err := section.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < count; i++ {
				var imp wasmImport
				if imp.module, err = section.name(); err != nil {
					return nil, err
				}
				if imp.name, err = section.name(); err != nil {
					return nil, err
				}
				kind, err := section.byte()
				if err != nil {
					return nil, err
				}
				switch kind {
				case 0:
					imp.kind = "func"
					typeIndex, err := section.u32()
					if err != nil {
						return nil, err
					}
					if int(typeIndex) >= len(signatures) {
						return nil, errors.New("wasm: import type index out of range")
					}
					imp.signature = signatures[typeIndex]
					funcTypes = append(funcTypes, typeIndex)
				case 1:
					imp.kind = "table"
					if _, err := section.byte(); err != nil {
						return nil, err
					}
					if err := section.limits(); err != nil {
						return nil, err
					}
				case 2:
					imp.kind = "memory"
					if err := section.limits(); err != nil {
						return nil, err
					}
				case 3:
					imp.kind = "global"
					section.pos += 2 // value type, mutability
				default:
					return nil, fmt.Errorf("wasm: unknown import kind %d", kind)
				}
				m.imports = append(m.imports, imp)
			}
		case 3: // functions
			count, err := section.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < count; i++ {
				typeIndex, err := section.u32()
				if err != nil {
					return nil, err
				}
				funcTypes = append(funcTypes, typeIndex)
			}
		case 7: // exports
			count, err := section.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < count; i++ {
				name, err := section.name()
				if err != nil {
					return nil, err
				}
				kind, err := section.byte()
				if err != nil {
					return nil, err
				}
				index, err := section.u32()
				if err != nil {
					return nil, err
				}
				switch kind {
				case 0:
					funcExports = append(funcExports, export{name, index})
				case 2:
					if name == "memory" {
						m.exportsMemory = true
					}
				}
			}
		}
		r.pos = end
	}
	for _, e := range funcExports {
		if int(e.index) >= len(funcTypes) || int(funcTypes[e.index]) >= len(signatures) {
			return nil, fmt.Errorf("wasm: export %s refers to an unknown function", e.name)
		}
		m.funcExports[e.name] = signatures[funcTypes[e.index]]
	}
	return m, nil
}
