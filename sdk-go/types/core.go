// Core (apiVersion v1) kinds: ConfigMap, Secret, Service.

package types

// ConfigMap holds configuration data.
type ConfigMap struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

// GroupVersionKind returns v1 ConfigMap.
func (*ConfigMap) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
}

// ConfigMapList is a list of ConfigMaps.
type ConfigMapList struct {
	TypeMeta
	Metadata ListMeta    `json:"metadata"`
	Items    []ConfigMap `json:"items"`
}

// ItemGroupVersionKind returns v1 ConfigMap.
func (*ConfigMapList) ItemGroupVersionKind() GroupVersionKind {
	return (*ConfigMap)(nil).GroupVersionKind()
}

// Secret holds confidential data; Data values are base64 on the wire and raw bytes here.
type Secret struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Type       string            `json:"type,omitempty"`
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

// GroupVersionKind returns v1 Secret.
func (*Secret) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Version: "v1", Kind: "Secret"}
}

// SecretList is a list of Secrets.
type SecretList struct {
	TypeMeta
	Metadata ListMeta `json:"metadata"`
	Items    []Secret `json:"items"`
}

// ItemGroupVersionKind returns v1 Secret.
func (*SecretList) ItemGroupVersionKind() GroupVersionKind { return (*Secret)(nil).GroupVersionKind() }

// Service exposes a set of pods under one address.
type Service struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       ServiceSpec `json:"spec"`
}

// GroupVersionKind returns v1 Service.
func (*Service) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Version: "v1", Kind: "Service"}
}

// ServiceSpec is the part of a Service its owner writes.
type ServiceSpec struct {
	Type      string            `json:"type,omitempty"` // ClusterIP (default), NodePort, LoadBalancer, ExternalName
	Selector  map[string]string `json:"selector,omitempty"`
	Ports     []ServicePort     `json:"ports,omitempty"`
	ClusterIP string            `json:"clusterIP,omitempty"`
}

// ServicePort is one port a Service exposes.
type ServicePort struct {
	Name       string       `json:"name,omitempty"`
	Protocol   string       `json:"protocol,omitempty"` // TCP (default), UDP, SCTP
	Port       int32        `json:"port"`
	TargetPort *IntOrString `json:"targetPort,omitempty"`
	NodePort   int32        `json:"nodePort,omitempty"`
}

// ServiceList is a list of Services.
type ServiceList struct {
	TypeMeta
	Metadata ListMeta  `json:"metadata"`
	Items    []Service `json:"items"`
}

// ItemGroupVersionKind returns v1 Service.
func (*ServiceList) ItemGroupVersionKind() GroupVersionKind {
	return (*Service)(nil).GroupVersionKind()
}
