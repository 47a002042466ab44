// nova-chart-check validates the Helm chart in deploy/helm offline, without a cluster:
//
//   - helm's own lint (helm.sh/helm/v3/pkg/lint), as `helm lint --strict` runs it;
//   - every manifest the chart renders, for each values file given, decoded strictly into the
//     official Kubernetes API types of the pinned k8s.io/api version (unknown or duplicate
//     fields, wrong types and unknown kinds fail), plus the prometheus-operator ServiceMonitor;
//   - with -out, the rendered manifests are written as one YAML stream per values file, for
//     the test suite's checks of the topology.
//
// Usage: nova-chart-check -chart deploy/helm/nova-collab [-values FILE]... [-out DIR]
//
//	nova-chart-check -manifest FILE   (strictly decode one YAML stream)
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// The Kubernetes version the chart is checked against (the k8s.io/api module in go.mod).
const kubeVersion = "v1.31.0"

type valuesFiles []string

func (v *valuesFiles) String() string     { return strings.Join(*v, ",") }
func (v *valuesFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	chartDir := flag.String("chart", "", "chart directory")
	outDir := flag.String("out", "", "write the rendered manifests here (one file per values file)")
	manifest := flag.String("manifest", "", "strictly decode this YAML file instead of a chart")
	var values valuesFiles
	flag.Var(&values, "values", "values file to render with (repeatable; none: the chart's defaults)")
	flag.Parse()

	decoder, err := strictDecoder()
	if err != nil {
		fail("scheme: %v", err)
	}
	if *manifest != "" {
		data, err := os.ReadFile(*manifest)
		if err != nil {
			fail("%v", err)
		}
		kinds, err := decodeAll(decoder, *manifest, data)
		if err != nil {
			fail("%v", err)
		}
		fmt.Printf("%s: %d objects valid against Kubernetes %s\n", *manifest, kinds, kubeVersion)
		return
	}
	if *chartDir == "" {
		fail("give -chart DIR or -manifest FILE")
	}
	if len(values) == 0 {
		values = valuesFiles{""}
	}
	for _, file := range values {
		if err := check(decoder, *chartDir, file, *outDir); err != nil {
			fail("%v", err)
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nova-chart-check: "+format+"\n", args...)
	os.Exit(1)
}

func strictDecoder() (runtime.Decoder, error) {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		return nil, err
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer(), nil
}

func readValues(file string) (map[string]any, error) {
	if file == "" {
		return map[string]any{}, nil
	}
	values, err := chartutil.ReadValuesFile(file)
	if err != nil {
		return nil, err
	}
	return values.AsMap(), nil
}

func check(decoder runtime.Decoder, chartDir, valuesFile string, outDir string) error {
	label := valuesFile
	if label == "" {
		label = "default values"
	}
	overrides, err := readValues(valuesFile)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}

	// helm lint --strict: chart metadata, templates, values schema.
	linter := lint.AllWithKubeVersion(chartDir, overrides, "nova", &chartutil.KubeVersion{Version: kubeVersion, Major: "1", Minor: "31"})
	problems := 0
	for _, message := range linter.Messages {
		if message.Severity >= support.InfoSev {
			fmt.Fprintf(os.Stderr, "lint (%s): %s\n", label, message)
		}
		if message.Severity >= support.WarningSev {
			problems++
		}
	}
	if problems > 0 {
		return fmt.Errorf("%s: helm lint found %d problems", label, problems)
	}

	chart, err := loader.Load(chartDir)
	if err != nil {
		return err
	}
	capabilities := chartutil.DefaultCapabilities.Copy()
	capabilities.KubeVersion = chartutil.KubeVersion{Version: kubeVersion, Major: "1", Minor: "31"}
	capabilities.APIVersions = append(capabilities.APIVersions, "monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor")
	options := chartutil.ReleaseOptions{Name: "nova", Namespace: "nova", Revision: 1, IsInstall: true}
	renderValues, err := chartutil.ToRenderValues(chart, overrides, options, capabilities)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	rendered, err := engine.Render(chart, renderValues)
	if err != nil {
		return fmt.Errorf("%s: render: %w", label, err)
	}
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var stream bytes.Buffer
	objects := 0
	for _, name := range names {
		count, err := decodeAll(decoder, name, []byte(rendered[name]))
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		objects += count
		if count > 0 {
			fmt.Fprintf(&stream, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(rendered[name]))
		}
	}
	if objects == 0 {
		return fmt.Errorf("%s: the chart rendered no objects", label)
	}
	fmt.Printf("%s: lint clean; %d objects valid against Kubernetes %s\n", label, objects, kubeVersion)
	if outDir != "" {
		base := "default"
		if valuesFile != "" {
			base = strings.TrimSuffix(filepath.Base(valuesFile), filepath.Ext(valuesFile))
		}
		return os.WriteFile(filepath.Join(outDir, base+".yaml"), stream.Bytes(), 0o644)
	}
	return nil
}

// decodeAll strictly decodes every document of a YAML stream; returns how many objects it held.
func decodeAll(decoder runtime.Decoder, name string, data []byte) (int, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	count := 0
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return count, nil
		}
		if err != nil {
			return count, fmt.Errorf("%s: %w", name, err)
		}
		if len(bytes.TrimSpace(stripComments(document))) == 0 {
			continue
		}
		json, err := utilyaml.ToJSON(document)
		if err != nil {
			return count, fmt.Errorf("%s: not YAML: %w", name, err)
		}
		_, kind, err := decoder.Decode(json, nil, nil)
		if err != nil {
			return count, fmt.Errorf("%s: %w", name, err)
		}
		if kind == nil || kind.Kind == "" {
			return count, fmt.Errorf("%s: an object without a kind", name)
		}
		count++
	}
}

func stripComments(document []byte) []byte {
	var kept bytes.Buffer
	for _, line := range bytes.Split(document, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			kept.Write(line)
			kept.WriteByte('\n')
		}
	}
	return kept.Bytes()
}
