//! The workload every data-path suite puts behind a LoadBalancer Service: a Deployment of the
//! echo server (`localhost/echo:latest`, docs/testing.md) and the Service in front of it, and the
//! Service's ingress IPs once the controller assigned them.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use metallb_e2e::harness::{Cluster, netns_exec, wait_for};

/// How long the controller may take to assign a Service its IPs.
const ASSIGN: Duration = Duration::from_secs(60);

pub const V4: &str = "ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4]";
pub const V6: &str = "ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv6]";
pub const DUAL: &str = "ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]";

/// A Deployment of `replicas` echo pods, spread over the nodes when the scheduler can (or all on
/// `node`), and the LoadBalancer Service `name` on port 80 in front of it: `families` is one of
/// [`V4`], [`V6`], [`DUAL`]; `extra_spec` more lines of the Service's spec (two spaces deep);
/// `annotations` the Service's annotations in YAML flow style, without braces.
pub fn echo(
    name: &str,
    replicas: u32,
    families: &str,
    extra_spec: &str,
    annotations: &str,
    node: Option<&str>,
) -> String {
    let node_selector = node
        .map(|n| format!("nodeSelector: {{kubernetes.io/hostname: {n}}}"))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 2
      {node_selector}
      topologySpreadConstraints:
        - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {{matchLabels: {{app: {name}}}}}}}
      containers:
        - name: echo
          image: localhost/echo:latest
          ports: [{{name: http, containerPort: 8080}}]
          env:
            - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
            - {{name: NODE_NAME, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  type: LoadBalancer
  {families}
  {extra_spec}
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"#
    )
}

/// The Service's ingress IPs, once the controller assigned `count` of them.
pub async fn ips(cluster: &Cluster, ns: &str, name: &str, count: usize) -> Vec<IpAddr> {
    let api: Api<Service> = Api::namespaced(cluster.client(), ns);
    wait_for(&format!("{count} IPs on {ns}/{name}"), ASSIGN, || async {
        let svc = api.get(name).await.map_err(|e| e.to_string())?;
        let ips: Vec<IpAddr> = svc
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.ip.as_deref()?.parse().ok())
            .collect();
        if ips.len() == count {
            Ok(ips)
        } else {
            Err(format!("{ips:?}"))
        }
    })
    .await
    .unwrap()
}

/// Waits up to `within` until HTTP from the namespace `from` (`client`, `client2`) to `target`
/// answers, and checks that the answer contains `expect` (it names the pod that served it);
/// returns the answer.
pub async fn http_reaches(from: &str, target: &str, expect: &str, within: Duration) -> String {
    let body = wait_for(&format!("HTTP from {from} to {target}"), within, || async {
        let out = netns_exec(from, &["curl", "-sS", "--max-time", "2", target])
            .map_err(|e| e.to_string())?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.stderr)
        }
    })
    .await
    .unwrap();
    assert!(
        body.contains(expect),
        "the answer from {target} comes from a pod of the Service ({expect}): {body}"
    );
    body
}
