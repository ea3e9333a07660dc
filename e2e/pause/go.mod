// The pod sandbox ("pause") program of the local cluster's nodes: the process
// that holds a pod's namespaces. Standard library only.
module pause

go 1.26.0
