package validate

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
`

func TestDecodeAcceptsValidObject(t *testing.T) {
	obj, err := Decode([]byte(deployment))
	if err != nil {
		t.Fatalf("Decode(valid Deployment) = %v", err)
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 80 {
		t.Errorf("Decode(valid Deployment) = %#v", obj)
	}
}

func TestDecodeIsStrict(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown field", "image: nginx:1.27", "image: nginx:1.27\n          imagePullPolcy: Always", "imagePullPolcy"},
		{"field in the wrong case", "- containerPort: 80", "- ContainerPort: 80", "ContainerPort"},
		{"wrong type", "replicas: 2", "replicas: two", "replicas"},
		{"duplicate key", "replicas: 2", "replicas: 2\n  replicas: 3", "replicas"},
		{"unknown kind", "kind: Deployment", "kind: CronJob", "unknown kind"},
		{"kind in the wrong group", "apiVersion: apps/v1", "apiVersion: extensions/v1beta1", "unknown kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(deployment, tc.old, tc.new, 1)
			if doc == deployment {
				t.Fatalf("mutation %q not applied", tc.old)
			}
			_, err := Decode([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestDecodeAllSplitsDocuments(t *testing.T) {
	stream := "---\n" + deployment + "---\n\n---\n" + deployment
	objs, err := DecodeAll([]byte(stream))
	if err != nil || len(objs) != 2 {
		t.Fatalf("DecodeAll(2 documents) = %d objects, %v; want 2, nil", len(objs), err)
	}
	bad := deployment + "---\n" + strings.Replace(deployment, "replicas: 2", "replica: 2", 1)
	if _, err := DecodeAll([]byte(bad)); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Errorf("DecodeAll(bad second document) = %v, want an error naming document 1", err)
	}
}
