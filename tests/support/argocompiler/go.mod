module stablepipe.local/argocompiler

go 1.26

// The KFP backend at 2.14.3 (the newest release whose module the Go proxy serves here), and its
// api module at the same commit: the backend's own go.mod names an older api and builds with
// `replace => ./api`, which a dependency cannot use.
require (
	github.com/kubeflow/pipelines v0.0.0-20250902140602-fc3214d4b4d3
	github.com/kubeflow/pipelines/api v0.0.0-20250902140602-fc3214d4b4d3
	github.com/kubeflow/pipelines/kubernetes_platform v0.0.0-20250902140602-fc3214d4b4d3
)
