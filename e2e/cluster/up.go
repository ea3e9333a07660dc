package main

// `testcluster up`: the supervisor. It generates the PKI and kubeconfigs,
// starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
// child processes of this same binary, waits until each one is really usable,
// prints one READY line, and tears everything down in reverse order on
// SIGTERM/SIGINT.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The issuer is the in-cluster name of the API server, as kubeadm and kwok
// use; it is also the default audience of service-account tokens.
const saIssuer = "https://kubernetes.default.svc.cluster.local"

type upOptions struct {
	dir         string
	bind        string
	port        int
	serviceCIDR string
	extraSANs   []string
	nodes       []string
	extraArgs   []string // "component=--flag=value"
	timeout     time.Duration
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runUp(args []string) int {
	var o upOptions
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", "", "work directory (required); created 0700; pki/, etcd/, logs/, kubeconfig/ in it are recreated on every start")
	fs.StringVar(&o.bind, "bind-address", "127.0.0.1", "address the API server listens on and advertises")
	fs.IntVar(&o.port, "port", 6443, "API server port")
	fs.StringVar(&o.serviceCIDR, "service-cidr", "198.18.0.0/16,2001:db8:0:ff::/108", "Service ClusterIP range(s), comma-separated (two for dual-stack, primary first)")
	fs.Var((*stringList)(&o.extraSANs), "extra-san", "extra IP or DNS name for the API server certificate (repeatable)")
	fs.Var((*stringList)(&o.nodes), "node", "also write kubeconfig/nodes/NAME.kubeconfig with the kubelet identity system:node:NAME, group system:nodes (repeatable)")
	fs.Var((*stringList)(&o.extraArgs), "extra-arg", "extra flag for one component, as COMPONENT=--flag=value, e.g. kube-apiserver=--v=4 (repeatable)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "how long to wait for the whole control plane to become ready")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.dir == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: testcluster up --dir DIR [flags]")
		fs.PrintDefaults()
		return 2
	}
	s, err := newSupervisor(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcluster up: %v\n", err)
		fmt.Printf("FAILED %v\n", err)
		return 1
	}
	return s.run()
}

// A component process. cmd and exited are replaced when it is restarted.
type child struct {
	name     string
	args     []string
	logFile  string
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd has exited
	restarts int
}

type supervisor struct {
	o        upOptions
	dir      string // absolute
	self     string // this executable, re-executed for every component
	log      *log.Logger
	server   string // https://bind:port
	client   *http.Client
	children []*child // in start order; stopped in reverse
	sigs     chan os.Signal

	mu       sync.Mutex
	ready    bool
	stopping bool
	died     chan *child // a component exited when it should not have
}

func newSupervisor(o upOptions) (*supervisor, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	bindIP := net.ParseIP(o.bind)
	if bindIP == nil || bindIP.IsUnspecified() {
		return nil, fmt.Errorf("--bind-address %q: need one concrete IP address (it is also advertised and written into kubeconfigs)", o.bind)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if pid, alive := runningSupervisor(dir); alive {
		return nil, fmt.Errorf("another testcluster (pid %d) is running with --dir %s", pid, dir)
	}
	// Every start is a fresh cluster: an old etcd holds objects and tokens
	// signed by keys that are about to be replaced.
	for _, sub := range []string{"pki", "etcd", "logs", "kubeconfig"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	lf, err := os.OpenFile(filepath.Join(dir, "logs", "testcluster.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &supervisor{
		o:      o,
		dir:    dir,
		self:   self,
		log:    log.New(io.MultiWriter(lf, os.Stderr), "testcluster: ", log.LstdFlags|log.Lmicroseconds),
		server: "https://" + net.JoinHostPort(o.bind, strconv.Itoa(o.port)),
		died:   make(chan *child, 8),
		sigs:   make(chan os.Signal, 2),
	}, nil
}

// runningSupervisor reports whether DIR/testcluster.pid names a live
// testcluster process.
func runningSupervisor(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "testcluster.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return pid, err == nil && strings.Contains(string(cmdline), "testcluster")
}

func (s *supervisor) run() int {
	// Catch signals before the first child exists, so an early SIGTERM still
	// tears down whatever was started.
	signal.Notify(s.sigs, syscall.SIGTERM, syscall.SIGINT)
	pidFile := filepath.Join(s.dir, "testcluster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		s.log.Printf("write pid file: %v", err)
		return 1
	}
	defer os.Remove(pidFile)

	ctx, cancel := context.WithTimeout(context.Background(), s.o.timeout)
	defer cancel()
	start := time.Now()
	kubeconfig, err := s.start(ctx)
	if err != nil {
		s.log.Printf("start failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		s.stopAll()
		// One line on stdout, like READY; the log tails went to stderr and
		// logs/testcluster.log above.
		first, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Printf("FAILED %s (see %s)\n", first, filepath.Join(s.dir, "logs"))
		return 1
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.log.Printf("ready after %s", time.Since(start).Round(time.Millisecond))
	fmt.Printf("READY kubeconfig=%s\n", kubeconfig)

	select {
	case sig := <-s.sigs:
		s.log.Printf("got %v, stopping", sig)
		s.stopAll()
		return 0
	case c := <-s.died:
		s.log.Printf("%s died again after its restart; stopping the cluster (see %s)", c.name, c.logFile)
		s.stopAll()
		return 1
	}
}

func (s *supervisor) start(ctx context.Context) (string, error) {
	o := s.o
	pki, kcdir := filepath.Join(s.dir, "pki"), filepath.Join(s.dir, "kubeconfig")

	// --- PKI and kubeconfigs ---
	ca, err := newCA(pki)
	if err != nil {
		return "", err
	}
	firstIPs, err := firstServiceIPs(o.serviceCIDR)
	if err != nil {
		return "", err
	}
	sans := append([]string{"127.0.0.1", "localhost", o.bind,
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		firstIPs...)
	sans = append(sans, o.extraSANs...)
	serving, err := newServingCert(pki, "apiserver", ca, sans)
	if err != nil {
		return "", err
	}
	saKey, saPub, err := writeServiceAccountKey(pki)
	if err != nil {
		return "", err
	}
	// Identities as kubeadm sets them up: the bootstrap RBAC policy already
	// binds system:kube-controller-manager and system:kube-scheduler to their
	// roles. With --use-service-account-credentials the controller manager
	// only uses its own identity to mint tokens for one ServiceAccount per
	// controller, so each controller runs with the RBAC a real cluster gives it.
	// Node identities (--node) are what a kubelet has: the Node authorizer and
	// NodeRestriction limit them to their own Node, Lease and bound pods.
	// They live in nodes/ subdirectories so no node name can collide with a
	// component's file.
	type identity struct {
		sub, name, user string
		groups          []string
	}
	// kube-proxy runs as system:kube-proxy, which the bootstrap policy binds to
	// system:node-proxier (kubeadm gives it a ServiceAccount with that role
	// instead). The API server's client certificate for the kubelets
	// (logs, exec, port-forward) is in system:masters, as kubeadm's
	// apiserver-kubelet-client is bound to the kubelet-API-admin role.
	ids := []identity{
		{"", "admin", "testcluster-admin", []string{"system:masters"}},
		{"", "kube-controller-manager", "system:kube-controller-manager", nil},
		{"", "kube-scheduler", "system:kube-scheduler", nil},
		{"", "kube-proxy", "system:kube-proxy", nil},
		{"", "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}},
	}
	for _, n := range o.nodes {
		ids = append(ids, identity{"nodes", n, "system:node:" + n, []string{"system:nodes"}})
	}
	kubeconfigs := map[string]string{}
	var admin *keyPair
	for _, id := range ids {
		pkiDir, kcDir := filepath.Join(pki, id.sub), filepath.Join(kcdir, id.sub)
		for _, d := range []string{pkiDir, kcDir} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return "", err
			}
		}
		kp, err := newClientCert(pkiDir, id.name, ca, id.user, id.groups...)
		if err != nil {
			return "", err
		}
		if id.name == "admin" && id.sub == "" {
			admin = kp
		}
		if kubeconfigs[filepath.Join(id.sub, id.name)], err = writeKubeconfig(kcDir, id.name, s.server, ca, kp); err != nil {
			return "", err
		}
	}
	if s.client, err = httpClient(ca, admin); err != nil {
		return "", err
	}

	// Fail early and clearly when the API server's address is unusable (in
	// use, or the harness's bridge is missing) rather than via its log.
	if l, err := net.Listen("tcp", net.JoinHostPort(o.bind, strconv.Itoa(o.port))); err != nil {
		return "", fmt.Errorf("cannot listen on %s:%d: %w", o.bind, o.port, err)
	} else {
		l.Close()
	}
	ports, err := freePorts(2)
	if err != nil {
		return "", err
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])

	// --- etcd ---
	// Loopback only; fsync off because the data is thrown away with the
	// cluster and fsync dominates write latency on a busy CI disk.
	// Progress notifications every 5s, as kubeadm clusters configure, keep
	// the API server's watch cache fresh.
	if err := s.spawn("etcd",
		"--name=testcluster",
		"--data-dir="+filepath.Join(s.dir, "etcd"),
		"--listen-client-urls="+etcdClient,
		"--advertise-client-urls="+etcdClient,
		"--listen-peer-urls="+etcdPeer,
		"--initial-advertise-peer-urls="+etcdPeer,
		"--initial-cluster=testcluster="+etcdPeer,
		"--unsafe-no-fsync=true",
		"--watch-progress-notify-interval=5s",
	); err != nil {
		return "", err
	}
	if err := s.waitFor(ctx, "etcd /health", func() error {
		return s.get(http.DefaultClient, etcdClient+"/health")
	}); err != nil {
		return "", err
	}

	// --- kube-apiserver ---
	// The endpoint reconciler publishes <bind>:<port> as the endpoints of
	// the `kubernetes` Service, so pods (through the node agent's Service
	// data path) reach the API server like in a real cluster. Endpoints may
	// not be loopback addresses, so with a loopback bind there is nothing
	// valid to publish and the reconciler is off (as upstream's test server
	// does); the Service itself exists either way.
	reconciler := "lease"
	if net.ParseIP(o.bind).IsLoopback() {
		reconciler = "none"
	}
	if err := s.spawn("kube-apiserver",
		"--etcd-servers="+etcdClient,
		"--bind-address="+o.bind,
		"--secure-port="+strconv.Itoa(o.port),
		"--advertise-address="+o.bind,
		"--endpoint-reconciler-type="+reconciler,
		"--tls-cert-file="+serving.certFile,
		"--tls-private-key-file="+serving.keyFile,
		"--client-ca-file="+ca.certFile,
		"--service-account-issuer="+saIssuer,
		"--api-audiences="+saIssuer,
		"--service-account-signing-key-file="+saKey,
		"--service-account-key-file="+saPub,
		"--service-cluster-ip-range="+o.serviceCIDR,
		// The kubelets check this client certificate against the cluster
		// CA; the kubelets' own serving certificates are self-signed, so
		// the API server does not verify them (no
		// --kubelet-certificate-authority), as in a kubeadm cluster
		// without serverTLSBootstrap.
		"--kubelet-client-certificate="+filepath.Join(pki, "apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+filepath.Join(pki, "apiserver-kubelet-client.key"),
		// Nodes have no DNS names: reach each kubelet at its InternalIP.
		"--kubelet-preferred-address-types=InternalIP",
		"--authorization-mode=Node,RBAC",
		// The default plugins (PodSecurity among them) stay on; NodeRestriction
		// is added as kubeadm does, so node identities are limited to their
		// own Node and pods.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// Webhook and aggregated-API calls go to endpoint (pod) IPs, which
		// the machine routes to, not to ClusterIPs, which only exist in the
		// nodes' nftables rules.
		"--enable-aggregator-routing=true",
	); err != nil {
		return "", err
	}
	if err := s.waitFor(ctx, "kube-apiserver /readyz", func() error {
		return s.get(s.client, s.server+"/readyz")
	}); err != nil {
		return "", err
	}
	if err := s.waitFor(ctx, "namespace default", func() error {
		return s.get(s.client, s.server+"/api/v1/namespaces/default")
	}); err != nil {
		return "", err
	}

	// --- kube-controller-manager and kube-scheduler ---
	// Leader election is off (one replica; it would only add a lease write
	// every few seconds). --secure-port=0 turns their HTTPS endpoints off:
	// nothing scrapes them, and readiness is observed through the API.
	if err := s.spawn("kube-controller-manager",
		"--kubeconfig="+kubeconfigs["kube-controller-manager"],
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--root-ca-file="+ca.certFile,
		"--service-account-private-key-file="+saKey,
		// CSRs for the built-in signers are signed with the cluster CA.
		"--cluster-signing-cert-file="+ca.certFile,
		"--cluster-signing-key-file="+ca.keyFile,
		"--leader-elect=false",
		// Tests stop node agents on purpose; 40s (upstream default 50s)
		// makes the NotReady transition come sooner.
		"--node-monitor-grace-period=40s",
		"--secure-port=0",
	); err != nil {
		return "", err
	}
	if err := s.spawn("kube-scheduler",
		"--kubeconfig="+kubeconfigs["kube-scheduler"],
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return "", err
	}
	// The `default` ServiceAccount and the kube-root-ca.crt ConfigMap come
	// from two different KCM controllers; with both present pods can be
	// admitted and mount their service-account volume.
	if err := s.waitFor(ctx, "kube-controller-manager (default ServiceAccount, kube-root-ca.crt)", func() error {
		if err := s.get(s.client, s.server+"/api/v1/namespaces/default/serviceaccounts/default"); err != nil {
			return err
		}
		return s.get(s.client, s.server+"/api/v1/namespaces/default/configmaps/kube-root-ca.crt")
	}); err != nil {
		return "", err
	}
	return kubeconfigs["admin"], nil
}

// componentArgs adds the --extra-arg flags meant for one component.
func (s *supervisor) componentArgs(name string, args []string) []string {
	for _, ea := range s.o.extraArgs {
		if c, flag, ok := strings.Cut(ea, "="); ok && c == name {
			args = append(args, flag)
		}
	}
	return args
}

func (s *supervisor) spawn(name string, args ...string) error {
	c := &child{name: name, args: s.componentArgs(name, args), logFile: filepath.Join(s.dir, "logs", name+".log")}
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	return s.startChild(c)
}

func (s *supervisor) startChild(c *child) error {
	f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== %s testcluster %s %s\n", time.Now().Format(time.RFC3339), c.name, strings.Join(c.args, " "))
	cmd := exec.Command(s.self, append([]string{c.name}, c.args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C in a terminal reaches only the
		// supervisor, which then stops the components in order.
		Setpgid: true,
		// If the supervisor is SIGKILLed, the kernel kills the components
		// too instead of leaving them orphaned.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	c.cmd, c.exited = cmd, exited
	s.mu.Unlock()
	s.log.Printf("started %s (pid %d), log %s", c.name, cmd.Process.Pid, c.logFile)
	go func() {
		err := cmd.Wait()
		f.Close()
		close(exited)
		s.onExit(c, err)
	}()
	return nil
}

// onExit handles a component that exited on its own. Before READY any exit
// fails the start. After READY a component is restarted once (etcd keeps
// the state, so that is harmless); a second death stops the cluster, so a
// broken cluster shows up as a dead supervisor rather than as timeouts.
func (s *supervisor) onExit(c *child, err error) {
	s.mu.Lock()
	stopping, ready := s.stopping, s.ready
	restart := ready && !stopping && c.restarts == 0
	if restart {
		c.restarts++
	}
	s.mu.Unlock()
	if stopping {
		return
	}
	s.log.Printf("%s exited unexpectedly (%v); last lines of %s:\n%s", c.name, err, c.logFile, tail(c.logFile, 20))
	if restart {
		time.Sleep(time.Second)
		if err := s.startChild(c); err == nil {
			return
		}
	}
	s.died <- c
}

// waitFor polls check until it succeeds, the deadline passes, a component
// dies, or a signal arrives.
func (s *supervisor) waitFor(ctx context.Context, what string, check func() error) error {
	t0 := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(); last == nil {
			s.log.Printf("%s: ok after %s", what, time.Since(t0).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s (last error: %v)%s", what, last, s.tailsOfAll())
		case c := <-s.died:
			return fmt.Errorf("%s exited while waiting for %s; last lines of %s:\n%s", c.name, what, c.logFile, tail(c.logFile, 40))
		case sig := <-s.sigs:
			return fmt.Errorf("interrupted by %v while waiting for %s", sig, what)
		case <-tick.C:
		}
	}
}

func (s *supervisor) tailsOfAll() string {
	var b strings.Builder
	for _, c := range s.children {
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", c.logFile, tail(c.logFile, 15))
	}
	return b.String()
}

// stopAll stops the components in reverse start order (scheduler, KCM,
// API server, etcd), so no client outlives its server and the API server
// can finish its requests against etcd.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	s.stopping = true
	children := append([]*child(nil), s.children...)
	s.mu.Unlock()
	for i := len(children) - 1; i >= 0; i-- {
		s.stopChild(children[i], 15*time.Second)
	}
}

func (s *supervisor) stopChild(c *child, grace time.Duration) {
	s.mu.Lock()
	cmd, exited := c.cmd, c.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	t0 := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		s.log.Printf("stopped %s in %s", c.name, time.Since(t0).Round(time.Millisecond))
	case <-time.After(grace):
		s.log.Printf("%s did not stop within %s, killing it", c.name, grace)
		_ = cmd.Process.Kill()
		<-exited
	}
}

func httpClient(ca, admin *keyPair) (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cert, err := tls.X509KeyPair(admin.certPEM, admin.keyPEM)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
		}},
	}, nil
}

// get succeeds on a 200 response.
func (s *supervisor) get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// freePorts returns n distinct free loopback ports. All listeners are held
// open until every port is chosen so the n ports differ; another process can
// still take one before the component binds it, in which case the start
// fails with that component's log and the harness retries.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// firstServiceIPs returns the first address of each Service CIDR: the
// API server gives the first one of the primary range to the `kubernetes`
// Service, and in-cluster clients connect to it by that IP.
func firstServiceIPs(cidrs string) ([]string, error) {
	var ips []string
	for _, c := range strings.Split(cidrs, ",") {
		_, n, err := net.ParseCIDR(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("--service-cidr: %w", err)
		}
		ip := make(net.IP, len(n.IP))
		copy(ip, n.IP)
		for i := len(ip) - 1; i >= 0; i-- {
			if ip[i]++; ip[i] != 0 {
				break
			}
		}
		ips = append(ips, ip.String())
	}
	return ips, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		lines = append(lines, fmt.Sprintf("(reading %s: %v)", path, err))
	}
	return strings.Join(lines, "\n")
}
