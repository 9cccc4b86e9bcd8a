// apps/v1 workloads (Deployment, StatefulSet, DaemonSet) and the pod template they carry.

package types

// Deployment runs a replicated set of pods.
type Deployment struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       DeploymentSpec    `json:"spec"`
	Status     *DeploymentStatus `json:"status,omitempty"` // nil when writing: status is the controller's
}

// GroupVersionKind returns apps/v1 Deployment.
func (*Deployment) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
}

// DeploymentSpec is the desired state of a Deployment.
type DeploymentSpec struct {
	Replicas *int32          `json:"replicas,omitempty"`
	Selector *LabelSelector  `json:"selector,omitempty"`
	Template PodTemplateSpec `json:"template"`
	Paused   bool            `json:"paused,omitempty"`
}

// DeploymentStatus is what the deployment controller reports.
type DeploymentStatus struct {
	ObservedGeneration int64                 `json:"observedGeneration,omitempty"`
	Replicas           int32                 `json:"replicas,omitempty"`
	UpdatedReplicas    int32                 `json:"updatedReplicas,omitempty"`
	ReadyReplicas      int32                 `json:"readyReplicas,omitempty"`
	AvailableReplicas  int32                 `json:"availableReplicas,omitempty"`
	Conditions         []DeploymentCondition `json:"conditions,omitempty"`
}

// DeploymentCondition is one entry of a Deployment's status.conditions (which, unlike
// meta/v1 Condition, also has lastUpdateTime).
type DeploymentCondition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	LastUpdateTime     Time            `json:"lastUpdateTime,omitempty"`
	LastTransitionTime Time            `json:"lastTransitionTime,omitempty"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
}

// DeploymentList is a list of Deployments.
type DeploymentList struct {
	TypeMeta
	Metadata ListMeta     `json:"metadata"`
	Items    []Deployment `json:"items"`
}

// ItemGroupVersionKind returns apps/v1 Deployment.
func (*DeploymentList) ItemGroupVersionKind() GroupVersionKind {
	return (*Deployment)(nil).GroupVersionKind()
}

// StatefulSet runs pods with stable names and storage (web-0, web-1, ...).
type StatefulSet struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       StatefulSetSpec    `json:"spec"`
	Status     *StatefulSetStatus `json:"status,omitempty"`
}

// GroupVersionKind returns apps/v1 StatefulSet.
func (*StatefulSet) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
}

// StatefulSetSpec is the desired state of a StatefulSet.
type StatefulSetSpec struct {
	Replicas             *int32                  `json:"replicas,omitempty"`
	Selector             *LabelSelector          `json:"selector,omitempty"`
	Template             PodTemplateSpec         `json:"template"`
	VolumeClaimTemplates []PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`
	ServiceName          string                  `json:"serviceName,omitempty"`
	PodManagementPolicy  string                  `json:"podManagementPolicy,omitempty"` // OrderedReady (default), Parallel
	UpdateStrategy       *UpdateStrategy         `json:"updateStrategy,omitempty"`
	MinReadySeconds      int32                   `json:"minReadySeconds,omitempty"`
}

// UpdateStrategy is how a StatefulSet or DaemonSet replaces its pods: Type RollingUpdate (the
// default) or OnDelete. Its rollingUpdate parameters are not modelled; use Unstructured for them.
type UpdateStrategy struct {
	Type string `json:"type,omitempty"`
}

// StatefulSetStatus is what the StatefulSet controller reports.
type StatefulSetStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Replicas           int32  `json:"replicas"`
	ReadyReplicas      int32  `json:"readyReplicas,omitempty"`
	CurrentReplicas    int32  `json:"currentReplicas,omitempty"`
	UpdatedReplicas    int32  `json:"updatedReplicas,omitempty"`
	AvailableReplicas  int32  `json:"availableReplicas"`
	CurrentRevision    string `json:"currentRevision,omitempty"`
	UpdateRevision     string `json:"updateRevision,omitempty"`
}

// StatefulSetList is a list of StatefulSets.
type StatefulSetList struct {
	TypeMeta
	Metadata ListMeta      `json:"metadata"`
	Items    []StatefulSet `json:"items"`
}

// ItemGroupVersionKind returns apps/v1 StatefulSet.
func (*StatefulSetList) ItemGroupVersionKind() GroupVersionKind {
	return (*StatefulSet)(nil).GroupVersionKind()
}

// DaemonSet runs one pod on every (selected) node.
type DaemonSet struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Spec       DaemonSetSpec    `json:"spec"`
	Status     *DaemonSetStatus `json:"status,omitempty"`
}

// GroupVersionKind returns apps/v1 DaemonSet.
func (*DaemonSet) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}
}

// DaemonSetSpec is the desired state of a DaemonSet.
type DaemonSetSpec struct {
	Selector        *LabelSelector  `json:"selector,omitempty"`
	Template        PodTemplateSpec `json:"template"`
	UpdateStrategy  *UpdateStrategy `json:"updateStrategy,omitempty"`
	MinReadySeconds int32           `json:"minReadySeconds,omitempty"`
}

// DaemonSetStatus is what the DaemonSet controller reports.
type DaemonSetStatus struct {
	ObservedGeneration     int64 `json:"observedGeneration,omitempty"`
	CurrentNumberScheduled int32 `json:"currentNumberScheduled"`
	NumberMisscheduled     int32 `json:"numberMisscheduled"`
	DesiredNumberScheduled int32 `json:"desiredNumberScheduled"`
	NumberReady            int32 `json:"numberReady"`
	UpdatedNumberScheduled int32 `json:"updatedNumberScheduled,omitempty"`
	NumberAvailable        int32 `json:"numberAvailable,omitempty"`
	NumberUnavailable      int32 `json:"numberUnavailable,omitempty"`
}

// DaemonSetList is a list of DaemonSets.
type DaemonSetList struct {
	TypeMeta
	Metadata ListMeta    `json:"metadata"`
	Items    []DaemonSet `json:"items"`
}

// ItemGroupVersionKind returns apps/v1 DaemonSet.
func (*DaemonSetList) ItemGroupVersionKind() GroupVersionKind {
	return (*DaemonSet)(nil).GroupVersionKind()
}

// PodTemplateSpec is the template of the pods a workload creates.
type PodTemplateSpec struct {
	ObjectMeta `json:"metadata"`
	Spec       PodSpec `json:"spec"`
}

// PodSpec is the subset of a pod's spec that operators commonly set.
type PodSpec struct {
	InitContainers                []Container            `json:"initContainers,omitempty"`
	Containers                    []Container            `json:"containers,omitempty"`
	Volumes                       []Volume               `json:"volumes,omitempty"`
	RestartPolicy                 string                 `json:"restartPolicy,omitempty"` // Always, OnFailure, Never
	TerminationGracePeriodSeconds *int64                 `json:"terminationGracePeriodSeconds,omitempty"`
	ServiceAccountName            string                 `json:"serviceAccountName,omitempty"`
	NodeName                      string                 `json:"nodeName,omitempty"`
	NodeSelector                  map[string]string      `json:"nodeSelector,omitempty"`
	ImagePullSecrets              []LocalObjectReference `json:"imagePullSecrets,omitempty"`
	Tolerations                   []Toleration           `json:"tolerations,omitempty"`
}

// Container is one container of a pod.
type Container struct {
	Name            string                `json:"name"`
	Image           string                `json:"image,omitempty"`
	Command         []string              `json:"command,omitempty"`
	Args            []string              `json:"args,omitempty"`
	WorkingDir      string                `json:"workingDir,omitempty"`
	Ports           []ContainerPort       `json:"ports,omitempty"`
	EnvFrom         []EnvFromSource       `json:"envFrom,omitempty"`
	Env             []EnvVar              `json:"env,omitempty"`
	Resources       *ResourceRequirements `json:"resources,omitempty"`
	VolumeMounts    []VolumeMount         `json:"volumeMounts,omitempty"`
	LivenessProbe   *Probe                `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe                `json:"readinessProbe,omitempty"`
	ImagePullPolicy string                `json:"imagePullPolicy,omitempty"` // Always, IfNotPresent, Never
}

// EnvVar is an environment variable: a literal Value, or a value read from elsewhere (ValueFrom).
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource reads a variable's value from a ConfigMap or Secret key, or a field of the pod.
type EnvVarSource struct {
	ConfigMapKeyRef *KeySelector         `json:"configMapKeyRef,omitempty"`
	SecretKeyRef    *KeySelector         `json:"secretKeyRef,omitempty"`
	FieldRef        *ObjectFieldSelector `json:"fieldRef,omitempty"`
}

// KeySelector selects one key of a ConfigMap or Secret (configMapKeyRef, secretKeyRef).
type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// ObjectFieldSelector selects a field of the pod, e.g. "metadata.namespace" or "status.podIP".
type ObjectFieldSelector struct {
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// EnvFromSource makes every key of a ConfigMap or Secret an environment variable.
type EnvFromSource struct {
	Prefix       string                `json:"prefix,omitempty"`
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`
	SecretRef    *LocalObjectReference `json:"secretRef,omitempty"`
}

// ContainerPort is a port a container listens on.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

// ResourceRequirements are a container's resource requests and limits, e.g.
// Requests: ResourceList{"cpu": "100m", "memory": "128Mi"}.
type ResourceRequirements struct {
	Limits   ResourceList `json:"limits,omitempty"`
	Requests ResourceList `json:"requests,omitempty"`
}

// VolumeMount mounts one of the pod's volumes into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Volume is a volume of a pod; exactly one source is set.
type Volume struct {
	Name                  string                             `json:"name"`
	ConfigMap             *ConfigMapVolumeSource             `json:"configMap,omitempty"`
	Secret                *SecretVolumeSource                `json:"secret,omitempty"`
	EmptyDir              *EmptyDirVolumeSource              `json:"emptyDir,omitempty"`
	PersistentVolumeClaim *PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
}

// ConfigMapVolumeSource mounts a ConfigMap's keys as files.
type ConfigMapVolumeSource struct {
	Name        string `json:"name"`
	DefaultMode *int32 `json:"defaultMode,omitempty"`
	Optional    *bool  `json:"optional,omitempty"`
}

// SecretVolumeSource mounts a Secret's keys as files.
type SecretVolumeSource struct {
	SecretName  string `json:"secretName,omitempty"`
	DefaultMode *int32 `json:"defaultMode,omitempty"`
	Optional    *bool  `json:"optional,omitempty"`
}

// EmptyDirVolumeSource is a scratch directory that lives as long as the pod.
type EmptyDirVolumeSource struct {
	Medium    string `json:"medium,omitempty"`    // "" (node's disk) or Memory
	SizeLimit string `json:"sizeLimit,omitempty"` // a quantity, e.g. "1Gi"
}

// PersistentVolumeClaimVolumeSource mounts a PersistentVolumeClaim.
type PersistentVolumeClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Probe checks a container's health: exactly one of HTTPGet, TCPSocket and Exec is set.
type Probe struct {
	HTTPGet             *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket           *TCPSocketAction `json:"tcpSocket,omitempty"`
	Exec                *ExecAction      `json:"exec,omitempty"`
	InitialDelaySeconds int32            `json:"initialDelaySeconds,omitempty"`
	TimeoutSeconds      int32            `json:"timeoutSeconds,omitempty"`
	PeriodSeconds       int32            `json:"periodSeconds,omitempty"`
	SuccessThreshold    int32            `json:"successThreshold,omitempty"`
	FailureThreshold    int32            `json:"failureThreshold,omitempty"`
}

// HTTPGetAction probes with an HTTP GET; 2xx and 3xx are success.
type HTTPGetAction struct {
	Path   string      `json:"path,omitempty"`
	Port   IntOrString `json:"port"`
	Host   string      `json:"host,omitempty"`
	Scheme string      `json:"scheme,omitempty"` // HTTP (default), HTTPS
}

// TCPSocketAction probes by opening a TCP connection.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

// ExecAction probes by running a command in the container; exit status 0 is success.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// Toleration lets a pod run on nodes with a matching taint.
type Toleration struct {
	Key               string `json:"key,omitempty"`
	Operator          string `json:"operator,omitempty"` // Equal (default), Exists
	Value             string `json:"value,omitempty"`
	Effect            string `json:"effect,omitempty"` // NoSchedule, PreferNoSchedule, NoExecute
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}
