// Every typed kind reads and writes its JSON exactly as the API server does: a document that
// sets every modelled field survives decoding and encoding unchanged (so no json tag is wrong or
// missing), and the kind and its list name the right apiVersion and kind.

package types_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"wasm-operator.dev/sdk-go/types"
)

// kindCases holds, for each kind, a fresh object, a fresh list, and a document as the API server
// would send it with every field the struct models set (and nothing else).
var kindCases = []struct {
	object types.Object
	list   types.ObjectList
	doc    string
}{
	{&types.Namespace{}, &types.NamespaceList{}, `{"apiVersion":"v1","kind":"Namespace",
		"metadata":{"name":"team-a","labels":{"kubernetes.io/metadata.name":"team-a"}},
		"spec":{"finalizers":["kubernetes"]},
		"status":{"phase":"Terminating","conditions":[{"type":"NamespaceContentRemaining","status":"True",
			"lastTransitionTime":"2025-01-02T03:04:05Z","reason":"SomeResourcesRemain","message":"pods remain"}]}}`},
	{&types.Pod{}, &types.PodList{}, `{"apiVersion":"v1","kind":"Pod",
		"metadata":{"name":"web-0","namespace":"ns","uid":"u1","creationTimestamp":"2025-01-02T03:04:05Z"},
		"spec":{
			"initContainers":[{"name":"init","image":"busybox","command":["sh","-c"],"args":["true"]}],
			"containers":[{"name":"web","image":"nginx:1.27","workingDir":"/srv",
				"ports":[{"name":"http","containerPort":80,"protocol":"TCP"}],
				"envFrom":[{"prefix":"CFG_","configMapRef":{"name":"cfg"}},{"secretRef":{"name":"creds"}}],
				"env":[{"name":"MODE","value":"prod"},
					{"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"creds","key":"password","optional":false}}},
					{"name":"LEVEL","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"level"}}},
					{"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}}],
				"resources":{"limits":{"memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},
				"volumeMounts":[{"name":"data","mountPath":"/data","subPath":"web","readOnly":true}],
				"livenessProbe":{"httpGet":{"path":"/healthz","port":"http","host":"localhost","scheme":"HTTP"},
					"initialDelaySeconds":5,"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},
				"readinessProbe":{"tcpSocket":{"port":80,"host":"localhost"}},
				"imagePullPolicy":"IfNotPresent"},
				{"name":"sidecar","image":"busybox","readinessProbe":{"exec":{"command":["cat","/tmp/ready"]}}}],
			"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data-web-0","readOnly":true}},
				{"name":"cfg","configMap":{"name":"cfg","defaultMode":420,"optional":true}},
				{"name":"creds","secret":{"secretName":"creds","defaultMode":256,"optional":false}},
				{"name":"tmp","emptyDir":{"medium":"Memory","sizeLimit":"64Mi"}}],
			"restartPolicy":"Always","terminationGracePeriodSeconds":30,"serviceAccountName":"web",
			"nodeName":"node-1","nodeSelector":{"disk":"ssd"},"imagePullSecrets":[{"name":"registry"}],
			"tolerations":[{"key":"dedicated","operator":"Equal","value":"web","effect":"NoExecute","tolerationSeconds":60}]},
		"status":{"phase":"Running",
			"conditions":[{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-01-02T03:04:06Z"},
				{"type":"PodScheduled","status":"False","lastProbeTime":null,"lastTransitionTime":"2025-01-02T03:04:05Z",
				 "reason":"Unschedulable","message":"0/1 nodes are available"}],
			"message":"m","reason":"r","hostIP":"10.0.0.1","podIP":"10.1.0.5","podIPs":[{"ip":"10.1.0.5"}],
			"startTime":"2025-01-02T03:04:05Z",
			"containerStatuses":[{"name":"web","state":{"running":{"startedAt":"2025-01-02T03:04:06Z"}},
				"lastState":{"terminated":{"exitCode":137,"signal":9,"reason":"OOMKilled","message":"killed",
					"startedAt":"2025-01-02T03:00:00Z","finishedAt":"2025-01-02T03:04:00Z","containerID":"containerd://a"}},
				"ready":true,"restartCount":1,"image":"docker.io/library/nginx:1.27","imageID":"docker.io/library/nginx@sha256:0",
				"containerID":"containerd://b","started":true},
				{"name":"sidecar","state":{"waiting":{"reason":"ImagePullBackOff","message":"back-off"}},"lastState":{},
				"ready":false,"restartCount":0,"image":"busybox","imageID":""}],
			"initContainerStatuses":[{"name":"init","state":{"terminated":{"exitCode":0,"reason":"Completed",
				"startedAt":"2025-01-02T03:04:05Z","finishedAt":"2025-01-02T03:04:05Z"}},"lastState":{},
				"ready":true,"restartCount":0,"image":"busybox","imageID":"x"}],
			"qosClass":"Burstable"}}`},
	{&types.ServiceAccount{}, &types.ServiceAccountList{}, `{"apiVersion":"v1","kind":"ServiceAccount",
		"metadata":{"name":"web","namespace":"ns"},
		"secrets":[{"name":"web-token"}],"imagePullSecrets":[{"name":"registry"}],"automountServiceAccountToken":false}`},
	{&types.PersistentVolumeClaim{}, &types.PersistentVolumeClaimList{}, `{"apiVersion":"v1","kind":"PersistentVolumeClaim",
		"metadata":{"name":"data","namespace":"ns"},
		"spec":{"accessModes":["ReadWriteOnce"],"selector":{"matchLabels":{"tier":"fast"}},
			"resources":{"limits":{"storage":"20Gi"},"requests":{"storage":"10Gi"}},
			"volumeName":"pv-1","storageClassName":"standard","volumeMode":"Filesystem"},
		"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"10Gi"}}}`},
	{&types.StatefulSet{}, &types.StatefulSetList{}, `{"apiVersion":"apps/v1","kind":"StatefulSet",
		"metadata":{"name":"db","namespace":"ns","generation":2},
		"spec":{"replicas":3,"selector":{"matchLabels":{"app":"db"}},
			"template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"db","image":"postgres:17",
				"volumeMounts":[{"name":"data","mountPath":"/var/lib/postgresql"}]}]}},
			"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],
				"resources":{"requests":{"storage":"1Gi"}}}}],
			"serviceName":"db","podManagementPolicy":"Parallel","updateStrategy":{"type":"OnDelete"},"minReadySeconds":10},
		"status":{"observedGeneration":2,"replicas":3,"readyReplicas":2,"currentReplicas":3,"updatedReplicas":1,
			"availableReplicas":2,"currentRevision":"db-1","updateRevision":"db-2"}}`},
	{&types.DaemonSet{}, &types.DaemonSetList{}, `{"apiVersion":"apps/v1","kind":"DaemonSet",
		"metadata":{"name":"agent","namespace":"ns"},
		"spec":{"selector":{"matchLabels":{"app":"agent"}},
			"template":{"metadata":{"labels":{"app":"agent"}},"spec":{"containers":[{"name":"agent","image":"agent:1"}]}},
			"updateStrategy":{"type":"RollingUpdate"},"minReadySeconds":5},
		"status":{"observedGeneration":1,"currentNumberScheduled":2,"numberMisscheduled":0,"desiredNumberScheduled":2,
			"numberReady":1,"updatedNumberScheduled":2,"numberAvailable":1,"numberUnavailable":1}}`},
	{&types.Job{}, &types.JobList{}, `{"apiVersion":"batch/v1","kind":"Job",
		"metadata":{"name":"migrate","namespace":"ns"},
		"spec":{"parallelism":1,"completions":1,"activeDeadlineSeconds":600,"backoffLimit":4,
			"selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u2"}},
			"template":{"metadata":{},"spec":{"containers":[{"name":"migrate","image":"migrate:1"}],"restartPolicy":"Never"}},
			"ttlSecondsAfterFinished":3600,"suspend":false},
		"status":{"conditions":[{"type":"Complete","status":"True","lastProbeTime":"2025-01-02T03:05:00Z",
			"lastTransitionTime":"2025-01-02T03:05:00Z","reason":"CompletionsReached","message":"Reached expected number of succeeded pods"}],
			"startTime":"2025-01-02T03:04:05Z","completionTime":"2025-01-02T03:05:00Z",
			"active":1,"succeeded":1,"failed":2,"ready":0}}`},
	{&types.CronJob{}, &types.CronJobList{}, `{"apiVersion":"batch/v1","kind":"CronJob",
		"metadata":{"name":"backup","namespace":"ns"},
		"spec":{"schedule":"0 3 * * *","timeZone":"Etc/UTC","startingDeadlineSeconds":300,"concurrencyPolicy":"Forbid",
			"suspend":true,
			"jobTemplate":{"metadata":{"labels":{"app":"backup"}},"spec":{"backoffLimit":1,
				"template":{"metadata":{},"spec":{"containers":[{"name":"backup","image":"backup:1"}],"restartPolicy":"OnFailure"}}}},
			"successfulJobsHistoryLimit":3,"failedJobsHistoryLimit":1},
		"status":{"active":[{"apiVersion":"batch/v1","kind":"Job","namespace":"ns","name":"backup-1","uid":"u3","resourceVersion":"9"}],
			"lastScheduleTime":"2025-01-02T03:00:00Z","lastSuccessfulTime":"2025-01-01T03:00:00Z"}}`},
	{&types.Role{}, &types.RoleList{}, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role",
		"metadata":{"name":"reader","namespace":"ns"},
		"rules":[{"verbs":["get","list","watch"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["cfg"]}]}`},
	{&types.ClusterRole{}, &types.ClusterRoleList{}, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
		"metadata":{"name":"metrics-reader"},
		"rules":[{"verbs":["get"],"nonResourceURLs":["/metrics"]}]}`},
	{&types.RoleBinding{}, &types.RoleBindingList{}, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
		"metadata":{"name":"web-reader","namespace":"ns"},
		"subjects":[{"kind":"ServiceAccount","name":"web","namespace":"ns"},
			{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"}],
		"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"}}`},
	{&types.ClusterRoleBinding{}, &types.ClusterRoleBindingList{}, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
		"metadata":{"name":"metrics"},
		"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"prometheus"}],
		"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"metrics-reader"}}`},
}

// decodeAny is the document as plain JSON values, for comparisons that ignore formatting and key order.
func decodeAny(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return v
}

func TestKindsRoundTripExactly(t *testing.T) {
	for _, c := range kindCases {
		want := decodeAny(t, []byte(c.doc)).(map[string]any)
		kind := want["kind"].(string)
		t.Run(kind, func(t *testing.T) {
			if err := json.Unmarshal([]byte(c.doc), c.object); err != nil {
				t.Fatal(err)
			}
			gvk := c.object.GroupVersionKind()
			if gvk.APIVersion() != want["apiVersion"] || gvk.Kind != kind {
				t.Fatalf("GroupVersionKind %v for a %v %s", gvk, want["apiVersion"], kind)
			}
			if item := c.list.ItemGroupVersionKind(); item != gvk {
				t.Fatalf("list items are %v, not %v", item, gvk)
			}
			out, err := json.Marshal(c.object)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeAny(t, out); !reflect.DeepEqual(got, any(want)) {
				t.Fatalf("round trip changed the object\n got  %s\n want %s", out, compact(t, c.doc))
			}

			listDoc := `{"apiVersion":"` + gvk.APIVersion() + `","kind":"` + kind + `List","metadata":{"resourceVersion":"7","continue":"c"},"items":[` + c.doc + `]}`
			if err := json.Unmarshal([]byte(listDoc), c.list); err != nil {
				t.Fatal(err)
			}
			out, err = json.Marshal(c.list)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeAny(t, out); !reflect.DeepEqual(got, decodeAny(t, []byte(listDoc))) {
				t.Fatalf("list round trip changed it\n got  %s", out)
			}
		})
	}
}

func compact(t *testing.T, doc string) string {
	out, err := json.Marshal(decodeAny(t, []byte(doc)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Objects built in Go for a server-side apply carry only what was set: no status, no empty
// structs that would claim fields.
func TestNewKindsForApplyCarryOnlyWhatIsSet(t *testing.T) {
	replicas := int32(1)
	cases := map[string]struct {
		object any
		want   string
	}{
		"Namespace": {types.Namespace{ObjectMeta: types.ObjectMeta{Name: "team-a"}}, `{"metadata":{"name":"team-a"}}`},
		"StatefulSet": {types.StatefulSet{ObjectMeta: types.ObjectMeta{Name: "db"}, Spec: types.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "db",
			Template: types.PodTemplateSpec{Spec: types.PodSpec{Containers: []types.Container{{Name: "db", Image: "postgres:17",
				Resources: &types.ResourceRequirements{Requests: types.ResourceList{"cpu": "1"}}}}}}}},
			`{"metadata":{"name":"db"},"spec":{"replicas":1,"template":{"metadata":{},"spec":{"containers":[{"name":"db","image":"postgres:17",` +
				`"resources":{"requests":{"cpu":"1"}}}]}},"serviceName":"db"}}`},
		"RoleBinding": {types.RoleBinding{ObjectMeta: types.ObjectMeta{Name: "b", Namespace: "ns"},
			Subjects: []types.Subject{{Kind: "ServiceAccount", Name: "web", Namespace: "ns"}},
			RoleRef:  types.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"}},
			`{"metadata":{"name":"b","namespace":"ns"},"subjects":[{"kind":"ServiceAccount","name":"web","namespace":"ns"}],` +
				`"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"reader"}}`},
	}
	for name, c := range cases {
		out, err := json.Marshal(c.object)
		if err != nil || string(out) != c.want {
			t.Errorf("%s: %v\n got  %s\n want %s", name, err, out, c.want)
		}
	}
}

func TestPodStatusIsReady(t *testing.T) {
	var nilStatus *types.PodStatus
	ready := &types.PodStatus{Conditions: []types.PodCondition{{Type: "PodScheduled", Status: types.ConditionTrue}, {Type: "Ready", Status: types.ConditionTrue}}}
	notReady := &types.PodStatus{Conditions: []types.PodCondition{{Type: "Ready", Status: types.ConditionFalse}}}
	if nilStatus.IsReady() || !ready.IsReady() || notReady.IsReady() || (&types.PodStatus{}).IsReady() {
		t.Fatal("IsReady")
	}
}
