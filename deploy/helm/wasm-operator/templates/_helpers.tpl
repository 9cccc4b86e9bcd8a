{{/* Labels of every object: the one deploy/default uses, then Helm's. */}}
{{- define "wasm-operator.labels" -}}
app.kubernetes.io/name: wasm-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels of the pods and the Deployment's selector (immutable): as in deploy/default. */}}
{{- define "wasm-operator.selectorLabels" -}}
app.kubernetes.io/name: wasm-operator
{{- end }}
