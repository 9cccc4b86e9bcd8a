// apps/v1 Deployment and the pod template it carries.

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

// PodTemplateSpec is the template of the pods a workload creates.
type PodTemplateSpec struct {
	ObjectMeta `json:"metadata"`
	Spec       PodSpec `json:"spec"`
}

// PodSpec is the subset of a pod's spec that operators commonly set.
type PodSpec struct {
	Containers         []Container       `json:"containers,omitempty"`
	ServiceAccountName string            `json:"serviceAccountName,omitempty"`
	NodeSelector       map[string]string `json:"nodeSelector,omitempty"`
}

// Container is one container of a pod.
type Container struct {
	Name    string          `json:"name"`
	Image   string          `json:"image,omitempty"`
	Command []string        `json:"command,omitempty"`
	Args    []string        `json:"args,omitempty"`
	Env     []EnvVar        `json:"env,omitempty"`
	Ports   []ContainerPort `json:"ports,omitempty"`
}

// EnvVar is an environment variable with a literal value.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// ContainerPort is a port a container listens on.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}
