//! Checks an object against its CRD's OpenAPI schema and CEL rules, the way the API server does
//! on create, so the offline `validate` command rejects what `kubectl apply` would. The schemas
//! come from [`crate::crd`]; this module holds no rule of its own.
//!
//! Covered: types (null counts as absent, as the API server prunes it), required fields, enums,
//! minimum/maximum, patterns, list and string lengths, int-or-string, map values, and
//! `x-kubernetes-validations` (evaluated by kube-cel). Unknown fields are warnings, as
//! `kubectl --validate=strict` reports them.

use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::config::Problem;

/// The schema for `apiVersion` + `kind`, if this project defines that kind.
pub fn schema_for(api_version: &str, kind: &str) -> Option<&'static Value> {
    static SCHEMAS: OnceLock<Vec<(String, String, Value)>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        let crds: Vec<CustomResourceDefinition> = crate::crd::all();
        let mut out = Vec::new();
        for crd in &crds {
            for v in &crd.spec.versions {
                if let Some(schema) = crate::crd::schema_of(crd, &v.name) {
                    out.push((
                        format!("{}/{}", crd.spec.group, v.name),
                        crd.spec.names.kind.clone(),
                        schema,
                    ));
                }
            }
        }
        out
    });
    schemas
        .iter()
        .find(|(av, k, _)| av == api_version && k == kind)
        .map(|(_, _, s)| s)
}

/// Checks `object` (a whole object, with apiVersion, kind and metadata) against `schema`.
pub fn check(kind: &str, name: &str, schema: &Value, object: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut walker = Walker {
        kind,
        name,
        problems: &mut problems,
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object)
        && let Some(obj) = object.as_object()
    {
        for (key, value) in obj {
            match props.get(key) {
                Some(sub) => walker.walk(sub, value, key),
                None if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") => {}
                None => walker.warn(key, format!("unknown field {key:?}")),
            }
        }
        walker.required(schema, obj, "");
    }
    // CEL rules, only when the structural checks passed (as the API server does).
    if !problems
        .iter()
        .any(|p| p.severity == crate::config::Severity::Error)
    {
        let validator = kube_cel::Validator::new();
        if let Err(errors) = validator.validate(schema, object, None) {
            for e in errors.into_vec() {
                problems.push(Problem::error(
                    kind,
                    name,
                    e.field_path.clone(),
                    e.message.clone(),
                ));
            }
        }
    }
    problems
}

struct Walker<'a> {
    kind: &'a str,
    name: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Walker<'_> {
    fn err(&mut self, path: &str, msg: String) {
        self.problems
            .push(Problem::error(self.kind, self.name, path, msg));
    }

    fn warn(&mut self, path: &str, msg: String) {
        self.problems
            .push(Problem::warning(self.kind, self.name, path, msg));
    }

    fn required(&mut self, schema: &Value, obj: &serde_json::Map<String, Value>, path: &str) {
        for field in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(field) = field.as_str() else {
                continue;
            };
            if obj.get(field).is_none_or(Value::is_null) {
                let at = join(path, field);
                self.err(&at, "Required value".to_string());
            }
        }
    }

    fn walk(&mut self, schema: &Value, value: &Value, path: &str) {
        if value.is_null() {
            return;
        }
        let int_or_string = schema
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true);
        let ty = schema.get("type").and_then(Value::as_str);
        let type_ok = match (ty, value) {
            _ if int_or_string => {
                value.is_string() || value.as_i64().is_some() || value.as_u64().is_some()
            }
            (None, _) => true,
            (Some("object"), Value::Object(_)) => true,
            (Some("array"), Value::Array(_)) => true,
            (Some("string"), Value::String(_)) => true,
            (Some("boolean"), Value::Bool(_)) => true,
            (Some("number"), Value::Number(_)) => true,
            (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        if !type_ok {
            let want = if int_or_string {
                "integer or string"
            } else {
                ty.unwrap_or("?")
            };
            self.err(
                path,
                format!("Invalid value: {}: must be of type {want}", short(value)),
            );
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
            self.err(
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    short(value),
                    list.join(", ")
                ),
            );
        }
        match value {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                    && x < min
                {
                    self.err(
                        path,
                        format!("Invalid value: {n}: should be greater than or equal to {min}"),
                    );
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                    && x > max
                {
                    self.err(
                        path,
                        format!("Invalid value: {n}: should be less than or equal to {max}"),
                    );
                }
            }
            Value::String(s) => {
                if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                    && regex::Regex::new(p).is_ok_and(|re| !re.is_match(s))
                {
                    self.err(path, format!("Invalid value: {s:?}: should match '{p}'"));
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && s.chars().count() as u64 > max
                {
                    self.err(
                        path,
                        format!("Too long: may not be more than {max} characters"),
                    );
                }
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && (s.chars().count() as u64) < min
                {
                    self.err(
                        path,
                        format!("Invalid value: {s:?}: should be at least {min} chars long"),
                    );
                }
            }
            Value::Array(items) => {
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    self.err(
                        path,
                        format!(
                            "Invalid value: {} items: should have at least {min} items",
                            items.len()
                        ),
                    );
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && items.len() as u64 > max
                {
                    self.err(
                        path,
                        format!("Too many: {}: must have at most {max} items", items.len()),
                    );
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item_schema, item, &format!("{path}[{i}]"));
                    }
                }
            }
            Value::Object(obj) => {
                let preserve = schema
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    == Some(true);
                let props = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                for (key, v) in obj {
                    let at = join(path, key);
                    match (props.and_then(|p| p.get(key)), additional) {
                        (Some(sub), _) => self.walk(sub, v, &at),
                        (None, Some(sub)) => self.walk(sub, v, &at),
                        (None, None) if preserve || props.is_none() && ty.is_none() => {}
                        (None, None) => self.warn(&at, format!("unknown field {at:?}")),
                    }
                }
                self.required(schema, obj, path);
            }
            _ => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..57])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let v: Value = serde_saphyr::from_str(yaml).unwrap();
        let (av, kind, name) = crate::manifest::identity(&v);
        let schema = schema_for(&av, &kind).expect("known kind");
        check("Test", &name, schema, &v)
            .iter()
            .map(|p| format!("{:?} {}: {}", p.severity, p.field, p.message))
            .collect()
    }

    #[test]
    fn a_valid_pool_has_no_problem() {
        let p = problems(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/24]}\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn l2advertisement_without_spec_is_valid() {
        let p = problems(
            "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: a}\n",
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn required_ranges_enums_and_unknown_fields_are_reported() {
        let p = problems(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec:\n  peerASN: 1\n  peerPort: 20000\n  dynamicASN: sideways\n  colour: red\n",
        );
        assert_eq!(
            p,
            vec![
                "Warning spec.colour: unknown field \"spec.colour\"".to_string(),
                "Error spec.dynamicASN: Unsupported value: \"sideways\": supported values: \"internal\", \"external\"".into(),
                "Error spec.peerPort: Invalid value: 20000: should be less than or equal to 16384".into(),
                "Error spec.myASN: Required value".into(),
            ]
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        let p = problems(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: 192.0.2.0/24}\n",
        );
        assert_eq!(
            p,
            vec![
                "Error spec.addresses: Invalid value: \"192.0.2.0/24\": must be of type array"
                    .to_string()
            ]
        );
    }

    #[test]
    fn cel_rules_run() {
        let p = problems(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.1, connectTime: 1500ms}\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("connect time should contain a whole number of seconds"),
            "{p:?}"
        );
        let p = problems(
            "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: a}\nspec: {aggregationLength: 24, serviceSelectors: [{matchLabels: {a: b}}]}\n",
        );
        assert_eq!(
            p,
            [
                "Error spec.aggregationLength: serviceSelectors and aggregationLength are mutually exclusive, can only be used together with default aggregationLength (32) and aggregationLengthV6 (128): aggregationLength is 24"
            ]
        );
    }

    #[test]
    fn always_block_entries_must_be_cidrs() {
        let cr = |cidr: &str| {
            format!(
                "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {{name: metallb}}\nspec: {{frrk8sConfig: {{alwaysBlock: ['{cidr}']}}}}\n"
            )
        };
        assert!(problems(&cr("192.0.2.0/24")).is_empty());
        assert!(problems(&cr("2001:db8::/32")).is_empty());
        for bad in ["192.0.2.0", "192.0.2.0/33", "300.0.0.0/8", "not-a-cidr"] {
            assert_eq!(problems(&cr(bad)).len(), 1, "{bad}");
        }
    }

    #[test]
    fn metallb_cr_rules_hold_without_a_webhook() {
        let p = problems(
            "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\nspec:\n  bgpBackend: frr-k8s\n  logLevel: chatty\n  speakerTolerations: [{key: a, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]\n",
        );
        // A structural error (the enum) stops the CEL rules, as in the API server.
        assert_eq!(
            p,
            [
                "Error spec.logLevel: Unsupported value: \"chatty\": supported values: \"all\", \"debug\", \"info\", \"warn\", \"error\", \"none\""
            ]
        );
        let p = problems(
            "apiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {name: metallb}\nspec:\n  bgpBackend: frr-k8s\n  speakerGratuitousARPInterval: 500ms\n  speakerTolerations: [{key: a, operator: Exists, effect: NoSchedule, tolerationSeconds: 5}]\n  controllerTolerations: [{key: a, operator: Exists, tolerationSeconds: 5}]\n  speakerConfig: {affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 0, podAffinityTerm: {topologyKey: zone}}]}}}\n  controllerConfig: {affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 101, preference: {}}]}}}\n",
        );
        assert_eq!(
            p,
            [
                "Error spec.bgpBackend: invalid BGP Backend, must be one of native (the default), frr: MetalLB's frr-k8s modes are not offered by metallb-rs: bgpBackend is \"frr-k8s\"",
                "Error spec.controllerConfig.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: ControllerConfig NodeAffinity set with invalid weight for preferred scheduling term: weight 101 is not in the range 1-100",
                "Error spec.controllerTolerations[0].effect: ControllerToleration effect must be NoExecute when tolerationSeconds is set: effect is \"\" with tolerationSeconds 5",
                "Error spec.speakerConfig.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: SpeakerConfig PodAntiAffinity set with invalid weight for preferred scheduling term: weight 0 is not in the range 1-100",
                "Error spec.speakerGratuitousARPInterval: speakerGratuitousARPInterval must be 0 or at least 1s: not 500ms",
                "Error spec.speakerTolerations[0].effect: SpeakerToleration effect must be NoExecute when tolerationSeconds is set: effect is \"NoSchedule\" with tolerationSeconds 5",
            ]
        );
    }
}
