package main

import (
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes DIR/kubeconfig/NAME.kubeconfig for one client
// certificate. Certificates are embedded rather than referenced by path so a
// kubeconfig stays valid when copied elsewhere (the harness copies the admin
// one to .local/kubeconfig) and is self-contained for kube-rs.
func writeKubeconfig(dir, name, server string, ca, client *keyPair) (string, error) {
	const cluster, context = "testcluster", "testcluster"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: ca.certPEM,
	}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: client.certPEM,
		ClientKeyData:         client.keyPEM,
	}
	cfg.Contexts[context] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = context
	path := filepath.Join(dir, name+".kubeconfig")
	// WriteToFile creates the file 0600: it holds a private key.
	return path, clientcmd.WriteToFile(*cfg, path)
}
