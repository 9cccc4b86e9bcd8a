// The objects a WebApp stands for, exactly as docs/examples.md writes them: a Deployment and a
// Service owned by the WebApp, and a registry ConfigMap in another namespace.

package main

import (
	"strconv"

	"wasm-operator.dev/sdk-go/controllerutil"
	"wasm-operator.dev/sdk-go/types"
)

const (
	nameLabel     = "app.kubernetes.io/name"
	instanceLabel = "app.kubernetes.io/instance"
	portName      = "http"
)

// workloadLabels are the labels of the Deployment, its pods and the Service.
func workloadLabels(app *WebApp) map[string]string {
	return map[string]string{nameLabel: operatorName, instanceLabel: app.Name}
}

// selector picks the WebApp's pods.
func selector(app *WebApp) map[string]string {
	return map[string]string{instanceLabel: app.Name}
}

func desiredDeployment(app *WebApp) (*types.Deployment, error) {
	replicas, port := app.Spec.ReplicasOrDefault(), app.Spec.PortOrDefault()
	deployment := &types.Deployment{
		ObjectMeta: types.ObjectMeta{Name: app.Name, Namespace: app.Namespace, Labels: workloadLabels(app)},
		Spec: types.DeploymentSpec{
			Replicas: &replicas,
			Selector: &types.LabelSelector{MatchLabels: selector(app)},
			Template: types.PodTemplateSpec{
				ObjectMeta: types.ObjectMeta{Labels: workloadLabels(app)},
				Spec: types.PodSpec{Containers: []types.Container{{
					Name:  "app",
					Image: app.Spec.Image,
					Ports: []types.ContainerPort{{Name: portName, ContainerPort: port}},
				}}},
			},
		},
	}
	return deployment, controllerutil.SetControllerReference(app, deployment)
}

func desiredService(app *WebApp) (*types.Service, error) {
	port := app.Spec.PortOrDefault()
	targetPort := types.FromInt(port)
	service := &types.Service{
		ObjectMeta: types.ObjectMeta{Name: app.Name, Namespace: app.Namespace, Labels: workloadLabels(app)},
		Spec: types.ServiceSpec{
			Selector: selector(app),
			Ports:    []types.ServicePort{{Name: portName, Port: port, TargetPort: &targetPort}},
		},
	}
	return service, controllerutil.SetControllerReference(app, service)
}

// registryEntryName is the name of the WebApp's registry ConfigMap: unique across namespaces,
// since all entries share the registry namespace.
func registryEntryName(namespace, name string) string {
	return "webapp-" + namespace + "-" + name
}

// desiredRegistryEntry has no owner reference: owner references cannot cross namespaces, which is
// why the finalizer removes the entry instead of the garbage collector.
func desiredRegistryEntry(app *WebApp, registryNamespace string) *types.ConfigMap {
	return &types.ConfigMap{
		ObjectMeta: types.ObjectMeta{
			Name:      registryEntryName(app.Namespace, app.Name),
			Namespace: registryNamespace,
			Labels:    map[string]string{nameLabel: operatorName},
		},
		Data: map[string]string{
			"namespace": app.Namespace,
			"name":      app.Name,
			"url":       "http://" + app.Name + "." + app.Namespace + ".svc:" + strconv.Itoa(int(app.Spec.PortOrDefault())),
		},
	}
}
