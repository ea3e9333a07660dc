// bundle-validate checks an OLM bundle directory with OLM's own validators: what
// `operator-sdk bundle validate DIR --select-optional suite=operatorframework` runs, without
// operator-sdk.
//
//	bundle-validate [-k8s-version 1.33,1.36] [-known-warnings FILE] [-multiarch docker|podman] BUNDLE_DIR
//
// It runs
//   - operator-registry's bundle checks (metadata/annotations.yaml, the media type, manifests
//     that are Kubernetes objects OLM can apply): what `opm` and OLM's bundle unpacker check;
//   - operator-framework/api's default validators (ClusterServiceVersion, CRDs, the bundle as a
//     whole) and the object validator;
//   - the optional ones: OperatorHub (v2, standard capabilities, standard categories), good
//     practices and deprecated APIs, once per Kubernetes version given (the deprecated-API and
//     good-practices checks depend on it);
//   - with -multiarch, the multiple-architectures validator too. It pulls every image the CSV
//     names with that container tool (`docker pull`, `docker manifest inspect`), so it is left
//     out by default: without an engine or with unpublished images it only reports that it
//     could not inspect them.
//
// One line per finding, `error [validator] manifest: message` or `warning [...] ...`, then a
// summary. With -known-warnings, every warning must match one pattern of FILE (one Go regular
// expression per line, matched against the whole line; `#` starts a comment) and every pattern
// must match a warning: an unexplained warning and an explanation that no longer applies are
// both errors, so the documented list stays the real one.
//
// Exit status: 0 no error, 1 errors, 2 the bundle or the pattern file cannot be read.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	verrors "github.com/operator-framework/api/pkg/validation/errors"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	regbundle "github.com/operator-framework/operator-registry/pkg/lib/bundle"
	"github.com/sirupsen/logrus"
)

// A finding, as printed; the same finding from several Kubernetes versions is printed once.
type finding struct {
	level     string // "error" or "warning"
	validator string
	manifest  string
	message   string
}

func (f finding) String() string {
	manifest := f.manifest
	if manifest == "" {
		manifest = "bundle"
	}
	return fmt.Sprintf("%s [%s] %s: %s", f.level, f.validator, manifest, f.message)
}

// findings collects results, in the order the validators report them, without duplicates.
type findings struct {
	list []finding
	seen map[finding]bool
}

func (fs *findings) add(f finding) {
	if fs.seen == nil {
		fs.seen = map[finding]bool{}
	}
	if !fs.seen[f] {
		fs.seen[f] = true
		fs.list = append(fs.list, f)
	}
}

func (fs *findings) addResults(validator string, results []verrors.ManifestResult) {
	for _, r := range results {
		for _, e := range r.Errors {
			fs.add(finding{"error", validator, r.Name, e.Error()})
		}
		for _, w := range r.Warnings {
			fs.add(finding{"warning", validator, r.Name, w.Error()})
		}
	}
}

// The optional validators of operator-sdk's `operatorframework` suite and the OperatorHub
// ones, by the names operator-sdk gives them. The deprecated OperatorHubValidator and
// CommunityOperatorValidator are left out: the first is the union of the three OperatorHub
// validators below, the second moved out of operator-framework/api.
var optional = []struct {
	name      string
	validator interfaces.Validator
}{
	{"operatorhubv2", validation.OperatorHubV2Validator},
	{"standardcapabilities", validation.StandardCapabilitiesValidator},
	{"standardcategories", validation.StandardCategoriesValidator},
	{"good-practices", validation.GoodPracticesValidator},
	{"alpha-deprecated-apis", validation.AlphaDeprecatedAPIsValidator},
}

func validate(dir string, k8sVersions []string, multiarchTool string) (*findings, error) {
	fs := &findings{}

	// operator-registry's checks. Its logger only says which files it read: silenced.
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(logrus.WarnLevel)
	registry := regbundle.NewImageValidator(nil, logrus.NewEntry(logger))
	if err := registry.ValidateBundleFormat(dir); err != nil {
		fs.add(finding{"error", "registry-format", "", err.Error()})
	}
	if err := registry.ValidateBundleContent(filepath.Join(dir, "manifests")); err != nil {
		fs.add(finding{"error", "registry-content", "", err.Error()})
	}

	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot load the bundle in %s: %w", dir, err)
	}
	fs.addResults("default", validation.DefaultBundleValidators.Validate(bundle.ObjectsToValidate()...))
	fs.addResults("object", validation.ObjectValidator.Validate(bundle.ObjectsToValidate()...))
	for _, version := range k8sVersions {
		options := map[string]string{"k8s-version": version}
		for _, o := range optional {
			objects := append(bundle.ObjectsToValidate(), options)
			fs.addResults(o.name, o.validator.Validate(objects...))
		}
	}
	if multiarchTool != "" {
		options := map[string]string{"container-tools": multiarchTool}
		objects := append(bundle.ObjectsToValidate(), options)
		fs.addResults("multiarch", validation.MultipleArchitecturesValidator.Validate(objects...))
	}
	return fs, nil
}

type pattern struct {
	text string
	re   *regexp.Regexp
}

func readPatterns(path string) ([]pattern, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var patterns []pattern
	scanner := bufio.NewScanner(file)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		re, err := regexp.Compile("^(?:" + text + ")$")
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		patterns = append(patterns, pattern{text, re})
	}
	return patterns, scanner.Err()
}

func main() {
	k8sVersions := flag.String("k8s-version", "",
		"comma-separated Kubernetes versions (major.minor) for the optional validators")
	knownWarnings := flag.String("known-warnings", "",
		"file of patterns: the explained warnings (every warning must match one, every pattern a warning)")
	multiarch := flag.String("multiarch", "",
		"also run the multiple-architectures validator, inspecting images with this tool (docker or podman)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: bundle-validate [-k8s-version 1.33,1.36] [-known-warnings FILE] [-multiarch docker|podman] BUNDLE_DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	var versions []string
	for _, v := range strings.Split(*k8sVersions, ",") {
		if v = strings.TrimSpace(v); v != "" {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		// The validators' own default for the deprecated-API check.
		versions = []string{""}
	}
	var patterns []pattern
	if *knownWarnings != "" {
		var err error
		if patterns, err = readPatterns(*knownWarnings); err != nil {
			fmt.Fprintf(os.Stderr, "bundle-validate: %v\n", err)
			os.Exit(2)
		}
	}

	fs, err := validate(flag.Arg(0), versions, *multiarch)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bundle-validate: %v\n", err)
		os.Exit(2)
	}

	errorCount, warningCount := 0, 0
	used := make([]bool, len(patterns))
	for _, f := range fs.list {
		line := f.String()
		if f.level == "error" {
			errorCount++
			fmt.Println(line)
			continue
		}
		warningCount++
		explained := patterns == nil
		for i, p := range patterns {
			if p.re.MatchString(line) {
				used[i], explained = true, true
			}
		}
		if explained {
			fmt.Println(line)
		} else {
			errorCount++
			fmt.Printf("%s\n  error: this warning is not explained in %s\n", line, *knownWarnings)
		}
	}
	var stale []string
	for i, p := range patterns {
		if !used[i] {
			stale = append(stale, p.text)
		}
	}
	sort.Strings(stale)
	for _, s := range stale {
		errorCount++
		fmt.Printf("error: %s explains a warning that no validator gives any more: %s\n", *knownWarnings, s)
	}
	fmt.Printf("bundle-validate %s: %d error(s), %d warning(s) (validators: registry, default, object, %s; k8s %s)\n",
		flag.Arg(0), errorCount, warningCount, names(*multiarch), strings.Join(versions, ", "))
	if errorCount > 0 {
		os.Exit(1)
	}
}

func names(multiarch string) string {
	n := make([]string, 0, len(optional)+1)
	for _, o := range optional {
		n = append(n, o.name)
	}
	if multiarch != "" {
		n = append(n, "multiarch")
	}
	return strings.Join(n, ", ")
}
