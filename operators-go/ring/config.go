// The operator's configuration: which namespace it reads and which it writes.

package main

import (
	"fmt"
	"strings"
)

// Config is the init configuration: {"inNamespace": "<ns i>", "outNamespace": "<ns i+1>"}.
type Config struct {
	InNamespace  string `json:"inNamespace"`
	OutNamespace string `json:"outNamespace"`
}

// validate names every required key that is missing, so one failed init says all that is wrong.
func (c Config) validate() error {
	var missing []string
	if c.InNamespace == "" {
		missing = append(missing, `"inNamespace"`)
	}
	if c.OutNamespace == "" {
		missing = append(missing, `"outNamespace"`)
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("config key %s is required", missing[0])
	}
	return fmt.Errorf("config keys %s are required", strings.Join(missing, " and "))
}
