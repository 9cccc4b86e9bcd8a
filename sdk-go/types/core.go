// Core (apiVersion v1) kinds: ConfigMap, Secret, Service, Namespace, Pod, ServiceAccount,
// PersistentVolumeClaim.

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

// Namespace is a cluster-scoped kind that scopes the names of other objects.
type Namespace struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       *NamespaceSpec   `json:"spec,omitempty"`
	Status     *NamespaceStatus `json:"status,omitempty"`
}

// GroupVersionKind returns v1 Namespace.
func (*Namespace) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Version: "v1", Kind: "Namespace"}
}

// NamespaceSpec holds the namespace's finalizers (not metadata.finalizers: these keep the
// namespace until its content is gone).
type NamespaceSpec struct {
	Finalizers []string `json:"finalizers,omitempty"`
}

// NamespaceStatus says whether the namespace is in use or being deleted.
type NamespaceStatus struct {
	Phase      string               `json:"phase,omitempty"` // Active, Terminating
	Conditions []NamespaceCondition `json:"conditions,omitempty"`
}

// NamespaceCondition is one entry of a Namespace's status.conditions.
type NamespaceCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastTransitionTime Time            `json:"lastTransitionTime,omitempty"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// NamespaceList is a list of Namespaces.
type NamespaceList struct {
	TypeMeta
	Metadata ListMeta    `json:"metadata"`
	Items    []Namespace `json:"items"`
}

// ItemGroupVersionKind returns v1 Namespace.
func (*NamespaceList) ItemGroupVersionKind() GroupVersionKind {
	return (*Namespace)(nil).GroupVersionKind()
}

// Pod is a group of containers scheduled together. Operators usually create pods through a
// workload (Deployment, StatefulSet, Job) and read them to see how that workload is doing.
type Pod struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       PodSpec    `json:"spec"`
	Status     *PodStatus `json:"status,omitempty"` // nil when writing: status is the kubelet's
}

// GroupVersionKind returns v1 Pod.
func (*Pod) GroupVersionKind() GroupVersionKind { return GroupVersionKind{Version: "v1", Kind: "Pod"} }

// Pod phases.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
	PodUnknown   = "Unknown"
)

// PodStatus is what the kubelet reports about a pod.
type PodStatus struct {
	Phase                 string            `json:"phase,omitempty"` // PodPending, PodRunning, ...
	Conditions            []PodCondition    `json:"conditions,omitempty"`
	Message               string            `json:"message,omitempty"`
	Reason                string            `json:"reason,omitempty"`
	HostIP                string            `json:"hostIP,omitempty"`
	PodIP                 string            `json:"podIP,omitempty"`
	PodIPs                []PodIP           `json:"podIPs,omitempty"`
	StartTime             *Time             `json:"startTime,omitempty"`
	ContainerStatuses     []ContainerStatus `json:"containerStatuses,omitempty"`
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses,omitempty"`
	QOSClass              string            `json:"qosClass,omitempty"`
}

// IsReady reports whether the pod's Ready condition is True.
func (s *PodStatus) IsReady() bool {
	if s == nil {
		return false
	}
	for _, c := range s.Conditions {
		if c.Type == "Ready" {
			return c.Status == ConditionTrue
		}
	}
	return false
}

// PodCondition is one entry of a Pod's status.conditions (Ready, ContainersReady, Initialized,
// PodScheduled, ...).
type PodCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastProbeTime      Time            `json:"lastProbeTime,omitempty"`
	LastTransitionTime Time            `json:"lastTransitionTime,omitempty"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// PodIP is one of a pod's addresses.
type PodIP struct {
	IP string `json:"ip"`
}

// ContainerStatus is the state of one container of a pod.
type ContainerStatus struct {
	Name                 string         `json:"name"`
	State                ContainerState `json:"state,omitempty"`
	LastTerminationState ContainerState `json:"lastState,omitempty"`
	Ready                bool           `json:"ready"`
	RestartCount         int32          `json:"restartCount"`
	Image                string         `json:"image"`
	ImageID              string         `json:"imageID"`
	ContainerID          string         `json:"containerID,omitempty"`
	Started              *bool          `json:"started,omitempty"`
}

// ContainerState is exactly one of waiting, running or terminated (none before the first report).
type ContainerState struct {
	Waiting    *ContainerStateWaiting    `json:"waiting,omitempty"`
	Running    *ContainerStateRunning    `json:"running,omitempty"`
	Terminated *ContainerStateTerminated `json:"terminated,omitempty"`
}

// ContainerStateWaiting: the container has not started (e.g. reason ImagePullBackOff).
type ContainerStateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ContainerStateRunning: the container is running.
type ContainerStateRunning struct {
	StartedAt Time `json:"startedAt,omitempty"`
}

// ContainerStateTerminated: the container ran and exited.
type ContainerStateTerminated struct {
	ExitCode    int32  `json:"exitCode"`
	Signal      int32  `json:"signal,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
	StartedAt   Time   `json:"startedAt,omitempty"`
	FinishedAt  Time   `json:"finishedAt,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
}

// PodList is a list of Pods.
type PodList struct {
	TypeMeta
	Metadata ListMeta `json:"metadata"`
	Items    []Pod    `json:"items"`
}

// ItemGroupVersionKind returns v1 Pod.
func (*PodList) ItemGroupVersionKind() GroupVersionKind { return (*Pod)(nil).GroupVersionKind() }

// ServiceAccount is an identity for pods (and for operators running in a cluster).
type ServiceAccount struct {
	TypeMeta
	ObjectMeta                   `json:"metadata"`
	Secrets                      []ObjectReference      `json:"secrets,omitempty"`
	ImagePullSecrets             []LocalObjectReference `json:"imagePullSecrets,omitempty"`
	AutomountServiceAccountToken *bool                  `json:"automountServiceAccountToken,omitempty"`
}

// GroupVersionKind returns v1 ServiceAccount.
func (*ServiceAccount) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}
}

// ServiceAccountList is a list of ServiceAccounts.
type ServiceAccountList struct {
	TypeMeta
	Metadata ListMeta         `json:"metadata"`
	Items    []ServiceAccount `json:"items"`
}

// ItemGroupVersionKind returns v1 ServiceAccount.
func (*ServiceAccountList) ItemGroupVersionKind() GroupVersionKind {
	return (*ServiceAccount)(nil).GroupVersionKind()
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

// PersistentVolumeClaim asks for storage that pods mount.
type PersistentVolumeClaim struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       PersistentVolumeClaimSpec    `json:"spec"`
	Status     *PersistentVolumeClaimStatus `json:"status,omitempty"`
}

// GroupVersionKind returns v1 PersistentVolumeClaim.
func (*PersistentVolumeClaim) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}
}

// PersistentVolumeClaimSpec is the storage asked for. Most of it cannot change after creation.
type PersistentVolumeClaimSpec struct {
	AccessModes      []string                   `json:"accessModes,omitempty"` // ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod
	Selector         *LabelSelector             `json:"selector,omitempty"`
	Resources        VolumeResourceRequirements `json:"resources,omitempty"`
	VolumeName       string                     `json:"volumeName,omitempty"`
	StorageClassName *string                    `json:"storageClassName,omitempty"` // nil: the default class; "": no class
	VolumeMode       *string                    `json:"volumeMode,omitempty"`       // Filesystem (default), Block
}

// VolumeResourceRequirements is how much storage a claim asks for: requests["storage"] = "10Gi".
type VolumeResourceRequirements struct {
	Limits   ResourceList `json:"limits,omitempty"`
	Requests ResourceList `json:"requests,omitempty"`
}

// PersistentVolumeClaimStatus is what the volume controller reports.
type PersistentVolumeClaimStatus struct {
	Phase       string       `json:"phase,omitempty"` // Pending, Bound, Lost
	AccessModes []string     `json:"accessModes,omitempty"`
	Capacity    ResourceList `json:"capacity,omitempty"`
}

// PersistentVolumeClaimList is a list of PersistentVolumeClaims.
type PersistentVolumeClaimList struct {
	TypeMeta
	Metadata ListMeta                `json:"metadata"`
	Items    []PersistentVolumeClaim `json:"items"`
}

// ItemGroupVersionKind returns v1 PersistentVolumeClaim.
func (*PersistentVolumeClaimList) ItemGroupVersionKind() GroupVersionKind {
	return (*PersistentVolumeClaim)(nil).GroupVersionKind()
}

// ResourceList maps a resource name ("cpu", "memory", "storage") to a quantity in Kubernetes'
// notation ("500m", "1Gi"). Quantities stay strings: the API server always writes them as strings,
// and comparing or doing arithmetic on them is left to the operator.
type ResourceList map[string]string
