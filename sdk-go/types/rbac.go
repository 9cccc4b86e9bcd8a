// rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding: what an
// operator creates to give the workloads it manages their permissions.

package types

// Role grants permissions within its namespace.
type Role struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Rules      []PolicyRule `json:"rules"`
}

// GroupVersionKind returns rbac.authorization.k8s.io/v1 Role.
func (*Role) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}
}

// RoleList is a list of Roles.
type RoleList struct {
	TypeMeta
	Metadata ListMeta `json:"metadata"`
	Items    []Role   `json:"items"`
}

// ItemGroupVersionKind returns rbac.authorization.k8s.io/v1 Role.
func (*RoleList) ItemGroupVersionKind() GroupVersionKind { return (*Role)(nil).GroupVersionKind() }

// ClusterRole grants permissions in every namespace, or on cluster-scoped kinds.
type ClusterRole struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Rules      []PolicyRule `json:"rules"`
}

// GroupVersionKind returns rbac.authorization.k8s.io/v1 ClusterRole.
func (*ClusterRole) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}
}

// ClusterRoleList is a list of ClusterRoles.
type ClusterRoleList struct {
	TypeMeta
	Metadata ListMeta      `json:"metadata"`
	Items    []ClusterRole `json:"items"`
}

// ItemGroupVersionKind returns rbac.authorization.k8s.io/v1 ClusterRole.
func (*ClusterRoleList) ItemGroupVersionKind() GroupVersionKind {
	return (*ClusterRole)(nil).GroupVersionKind()
}

// PolicyRule allows verbs on resources (or, in a ClusterRole, on non-resource URLs).
type PolicyRule struct {
	Verbs           []string `json:"verbs"`
	APIGroups       []string `json:"apiGroups,omitempty"` // "" is the core group
	Resources       []string `json:"resources,omitempty"`
	ResourceNames   []string `json:"resourceNames,omitempty"`
	NonResourceURLs []string `json:"nonResourceURLs,omitempty"`
}

// RoleBinding grants a Role's (or a ClusterRole's) permissions to subjects, within its namespace.
type RoleBinding struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Subjects   []Subject `json:"subjects,omitempty"`
	RoleRef    RoleRef   `json:"roleRef"`
}

// GroupVersionKind returns rbac.authorization.k8s.io/v1 RoleBinding.
func (*RoleBinding) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}
}

// RoleBindingList is a list of RoleBindings.
type RoleBindingList struct {
	TypeMeta
	Metadata ListMeta      `json:"metadata"`
	Items    []RoleBinding `json:"items"`
}

// ItemGroupVersionKind returns rbac.authorization.k8s.io/v1 RoleBinding.
func (*RoleBindingList) ItemGroupVersionKind() GroupVersionKind {
	return (*RoleBinding)(nil).GroupVersionKind()
}

// ClusterRoleBinding grants a ClusterRole's permissions to subjects, cluster-wide.
type ClusterRoleBinding struct {
	TypeMeta
	ObjectMeta `json:"metadata"`
	Subjects   []Subject `json:"subjects,omitempty"`
	RoleRef    RoleRef   `json:"roleRef"`
}

// GroupVersionKind returns rbac.authorization.k8s.io/v1 ClusterRoleBinding.
func (*ClusterRoleBinding) GroupVersionKind() GroupVersionKind {
	return GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}
}

// ClusterRoleBindingList is a list of ClusterRoleBindings.
type ClusterRoleBindingList struct {
	TypeMeta
	Metadata ListMeta             `json:"metadata"`
	Items    []ClusterRoleBinding `json:"items"`
}

// ItemGroupVersionKind returns rbac.authorization.k8s.io/v1 ClusterRoleBinding.
func (*ClusterRoleBindingList) ItemGroupVersionKind() GroupVersionKind {
	return (*ClusterRoleBinding)(nil).GroupVersionKind()
}

// Subject is who a binding grants to: Kind ServiceAccount (with Namespace), User or Group (with
// APIGroup "rbac.authorization.k8s.io").
type Subject struct {
	Kind      string `json:"kind"`
	APIGroup  string `json:"apiGroup,omitempty"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RoleRef names the Role or ClusterRole a binding grants. It cannot change after creation.
type RoleRef struct {
	APIGroup string `json:"apiGroup"` // "rbac.authorization.k8s.io"
	Kind     string `json:"kind"`     // Role or ClusterRole
	Name     string `json:"name"`
}
