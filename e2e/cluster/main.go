// Command testcluster is a busybox-style binary holding a real Kubernetes
// cluster for the end-to-end tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubectl, the node components
// kubelet and kube-proxy, and `up`, a supervisor that wires the control plane
// together (up.go). The node components are started by the Rust testbed, one
// set per node namespace (e2e/src/node.rs).
//
// The component subcommands hand their flags, unchanged, to the upstream
// commands: flags are the stable contract between Kubernetes releases, the Go
// APIs behind them are not. Every component runs in its own process (`up`
// re-executes this binary), never as goroutines of one process: several
// upstream globals (signal context, feature gates, component registry,
// logging) may only be set up once per process.
//
// The subcommand is taken from the program name first (so symlinks named
// kubectl, etcd, ... work) and otherwise from the first argument.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	// The same side-effect imports as the upstream main packages.
	_ "k8s.io/client-go/plugin/pkg/client/auth"           // kubectl: client auth plugins
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	_ "time/tzdata"                                       // CronJob time zones
)

// Each entry runs one subcommand with os.Args already rewritten to
// [name, args...], which is what the upstream mains expect: cobra reads
// os.Args[1:], kubectl inspects os.Args for plugins and -v, and
// etcdmain.Main wants the program name first.
var commands = map[string]func() int{
	"etcd": func() int {
		etcdmain.Main(os.Args)
		return 0
	},
	"kube-apiserver": func() int {
		// Construct the command only for the component that runs: building
		// it sets up process-wide state (the signal handler among others).
		return cli.Run(apiserver.NewAPIServerCommand())
	},
	"kube-controller-manager": func() int {
		return cli.Run(kcm.NewControllerManagerCommand())
	},
	"kube-scheduler": func() int {
		return cli.Run(scheduler.NewSchedulerCommand())
	},
	"kubelet": func() int {
		return cli.Run(kubelet.NewKubeletCommand(context.Background()))
	},
	"kube-proxy": func() int {
		return cli.Run(proxy.NewProxyCommand())
	},
	"kubectl": func() int {
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err) // prints the error and exits non-zero
		}
		return 0
	},
	"up": func() int { return runUp(os.Args[1:]) },
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := commands[name]; ok {
		os.Args[0] = name
	} else {
		if len(os.Args) < 2 || commands[os.Args[1]] == nil {
			usage()
			os.Exit(2)
		}
		name = os.Args[1]
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	os.Exit(commands[name]())
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: testcluster SUBCOMMAND [flags]\n  (or call it through a symlink named like the subcommand)\nsubcommands: %v\n", names)
}
