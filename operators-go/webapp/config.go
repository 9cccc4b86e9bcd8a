// The operator's configuration, given by whoever deploys it.

package main

// Config is the init configuration: {"registryNamespace": "<ns>"}.
type Config struct {
	// RegistryNamespace holds the registry ConfigMaps, one per WebApp.
	RegistryNamespace string `json:"registryNamespace"`
}

const defaultRegistryNamespace = "default"

// withDefaults fills in what the configuration left out.
func (c Config) withDefaults() Config {
	if c.RegistryNamespace == "" {
		c.RegistryNamespace = defaultRegistryNamespace
	}
	return c
}
