// Package identity holds what the host told the operator about itself at init (its name and its
// configuration), so the client, events and operator packages can share it without importing one
// another. The values live in linear memory and survive swap-out like any other state.
package identity

import "encoding/json"

var (
	name   string
	config json.RawMessage
)

// Set records the operator's name and configuration (called by the init export).
func Set(operatorName string, operatorConfig json.RawMessage) {
	name = operatorName
	config = operatorConfig
}

// Name is the operator's name as the host knows it ("" before init).
func Name() string { return name }

// Config is the operator's configuration object as JSON (nil before init).
func Config() json.RawMessage { return config }
