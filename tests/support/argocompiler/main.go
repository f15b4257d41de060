// Command argocompiler compiles a KFP v2 IR YAML (pipeline spec, then the platform spec) into the Argo
// Workflow the KFP backend would run, with the backend's own compiler package.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/v2/compiler/argocompiler"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
	goyaml "gopkg.in/yaml.v3"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	check(err)
	decoder := goyaml.NewDecoder(bytes.NewReader(raw))
	var docs [][]byte
	for {
		var doc map[string]interface{}
		if err := decoder.Decode(&doc); err != nil {
			if err == io.EOF {
				break
			}
			check(err)
		}
		out, err := goyaml.Marshal(doc)
		check(err)
		asJSON, err := yaml.YAMLToJSON(out)
		check(err)
		docs = append(docs, asJSON)
	}
	spec := &structpb.Struct{}
	check(protojson.Unmarshal(docs[0], spec))
	job := &pipelinespec.PipelineJob{PipelineSpec: spec}
	var platform *pipelinespec.SinglePlatformSpec
	if len(docs) > 1 {
		specs := &pipelinespec.PlatformSpec{}
		check(protojson.Unmarshal(docs[1], specs))
		platform = specs.Platforms["kubernetes"]
	}
	workflow, err := argocompiler.Compile(job, platform, &argocompiler.Options{})
	check(err)
	out, err := yaml.Marshal(workflow)
	check(err)
	os.Stdout.Write(out)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "argoc:", err)
		os.Exit(1)
	}
}
