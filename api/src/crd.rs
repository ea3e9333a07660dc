//! The CustomResourceDefinitions, generated from the types in [`crate::v1beta1`] and
//! [`crate::v1beta2`] plus what a Rust type cannot say: required fields, defaults, ranges, enums
//! and CEL rules, written here once. The API server enforces them, and the offline `validate`
//! command checks objects against the same schemas ([`crate::schema`]).
//!
//! `metallb-operator crds` prints them; `hack/generate.sh` writes them to `manifests/crd/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

use crate::constants::DEFAULT_NAMESPACE;
use crate::{v1beta1, v1beta2};

/// The path MetalLB's conversion webhook serves, on the controller's webhook Service.
pub const CONVERSION_PATH: &str = "/convert";
/// The webhook Service, in the MetalLB namespace.
pub const WEBHOOK_SERVICE: &str = "metallb-webhook-service";

/// Every CRD this project installs, in a stable order: the nine MetalLB kinds, then `MetalLB`.
pub fn all() -> Vec<CustomResourceDefinition> {
    all_for_namespace(DEFAULT_NAMESPACE)
}

/// The CRDs, with the BGPPeer conversion webhook pointing at `namespace`.
pub fn all_for_namespace(namespace: &str) -> Vec<CustomResourceDefinition> {
    let mut out = vec![
        finish(v1beta1::BFDProfile::crd(), bfd_profile),
        finish(v1beta1::BGPAdvertisement::crd(), bgp_advertisement),
        bgp_peer(namespace),
        finish(v1beta1::Community::crd(), |_| {}),
        finish(v1beta1::ConfigurationState::crd(), configuration_state),
        finish(v1beta1::IPAddressPool::crd(), ip_address_pool),
        finish(v1beta1::L2Advertisement::crd(), l2_advertisement),
        finish(v1beta1::ServiceBGPStatus::crd(), service_status),
        finish(v1beta1::ServiceL2Status::crd(), service_status),
        finish(v1beta1::MetalLB::crd(), metallb),
    ];
    for crd in &mut out {
        crd.metadata
            .labels
            .get_or_insert_default()
            .insert("app.kubernetes.io/part-of".into(), "metallb".into());
    }
    out
}

/// The file name MetalLB uses for a CRD: `metallb.io_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// The openAPIV3Schema of one served version, as JSON.
pub fn schema_of(crd: &CustomResourceDefinition, version: &str) -> Option<Value> {
    let v = crd.spec.versions.iter().find(|v| v.name == version)?;
    serde_json::to_value(v.schema.as_ref()?.open_api_v3_schema.as_ref()?).ok()
}

/// Applies the per-kind tweaks to the only version of a derived CRD.
fn finish(crd: CustomResourceDefinition, tweak: fn(&mut Value)) -> CustomResourceDefinition {
    let mut json = serde_json::to_value(crd).expect("a CRD serializes");
    for version in json["spec"]["versions"].as_array_mut().expect("versions") {
        let schema = &mut version["schema"]["openAPIV3Schema"];
        tidy(schema);
        // kube's derive makes `spec` required; MetalLB requires it only for IPAddressPool (whose
        // tweak says so), and its documentation writes L2Advertisements without one.
        schema
            .as_object_mut()
            .expect("object schema")
            .remove("required");
        tweak(schema);
    }
    serde_json::from_value(json).expect("a tweaked CRD deserializes")
}

/// Makes the derived schema read like MetalLB's: no `nullable` on optional fields (our types never
/// send null), and descriptions as plain paragraphs.
fn tidy(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("nullable");
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d
                    .split("\n\n")
                    .map(|p| p.replace('\n', " "))
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            for v in map.values_mut() {
                tidy(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// The schema node at a dotted path of property names; `[]` steps into array items and `{}` into
/// map values.
fn at<'a>(schema: &'a mut Value, path: &str) -> &'a mut Value {
    let mut node = schema;
    for step in path.split('.') {
        node = match step {
            "[]" => &mut node["items"],
            "{}" => &mut node["additionalProperties"],
            name => &mut node["properties"][name],
        };
        assert!(
            !node.is_null(),
            "schema path {path} does not exist at {step}"
        );
    }
    node
}

fn set(schema: &mut Value, path: &str, key: &str, value: Value) {
    let node = at(schema, path);
    node[key] = value;
}

fn require(schema: &mut Value, path: &str, fields: &[&str]) {
    let node = if path.is_empty() {
        schema
    } else {
        at(schema, path)
    };
    node["required"] = json!(fields);
}

fn cel(schema: &mut Value, path: &str, rule: &str, message: &str) {
    let node = if path.is_empty() {
        schema
    } else {
        at(schema, path)
    };
    let rules = node
        .as_object_mut()
        .expect("object schema")
        .entry("x-kubernetes-validations")
        .or_insert(json!([]));
    rules
        .as_array_mut()
        .expect("rules")
        .push(json!({ "rule": rule, "message": message }));
}

/// A CEL rule whose message names the field it is about (`fieldPath`, relative to the node at
/// `path`) and shows its value: `messageExpression` is `message`, a colon, then `detail` with its
/// `%s`/`%d` filled from the CEL list `args`. The API server falls back to `message` alone if the
/// expression fails.
///
/// `format` rather than `+`: the API server estimates `'a' + string(self.n)` as unbounded (it
/// does not know how long a number's text is) and refuses the CRD, while `'a %d'.format([n])` is
/// estimated as cheap (checked with the API server's own CRD validation, v1.36).
fn cel_showing(
    schema: &mut Value,
    path: &str,
    rule: &str,
    field_path: Option<&str>,
    message: &str,
    (detail, args): (&str, &str),
) {
    cel(schema, path, rule, message);
    let node = if path.is_empty() {
        schema
    } else {
        at(schema, path)
    };
    let added = node["x-kubernetes-validations"]
        .as_array_mut()
        .and_then(|rules| rules.last_mut())
        .expect("the rule just added");
    let text = format!("{}: {detail}", message.replace('%', "%%"));
    added["messageExpression"] = json!(format!("{}.format([{args}])", cel_string(&text)));
    if let Some(field) = field_path {
        added["fieldPath"] = json!(field);
    }
}

/// `text` as a CEL string literal.
fn cel_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `u32` fields: the derived schema says `format: uint32`, which the API server does not know.
fn uint32(schema: &mut Value, path: &str, min: u64) {
    let node = at(schema, path);
    node["format"] = json!("int64");
    node["minimum"] = json!(min);
    node["maximum"] = json!(u32::MAX);
}

fn ip_address_pool(s: &mut Value) {
    require(s, "", &["spec"]);
    require(s, "spec", &["addresses"]);
    set(s, "spec.autoAssign", "default", json!(true));
    set(s, "spec.avoidBuggyIPs", "default", json!(false));
    for field in [
        "assignedIPv4",
        "assignedIPv6",
        "availableIPv4",
        "availableIPv6",
    ] {
        set(s, &format!("status.{field}"), "format", json!("int64"));
    }
}

fn l2_advertisement(s: &mut Value) {
    let pref = "spec.preferredNodeSelectors.[]";
    require(s, pref, &["weight", "preference"]);
    set(s, &format!("{pref}.weight"), "minimum", json!(1));
    set(s, &format!("{pref}.weight"), "maximum", json!(100));
}

fn bgp_advertisement(s: &mut Value) {
    set(s, "spec.aggregationLength", "minimum", json!(1));
    set(s, "spec.aggregationLength", "default", json!(32));
    set(s, "spec.aggregationLengthV6", "default", json!(128));
    uint32(s, "spec.localPref", 0);
    // MetalLB's CRD has one rule for both lengths, with the message below for either; its parser
    // (which this rule pre-empts) says "serviceSelectors and aggregationLengthV6 are mutually
    // exclusive" for IPv6. One rule per length points at the field that is wrong, and keeps the
    // text users and MetalLB's own tests search for.
    for (field, default) in [("aggregationLength", 32), ("aggregationLengthV6", 128)] {
        cel_showing(
            s,
            "spec",
            &format!(
                "!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || \
                 !has(self.{field}) || self.{field} == {default}"
            ),
            Some(&format!(".{field}")),
            &format!(
                "serviceSelectors and {field} are mutually exclusive, can only be used together \
                 with default aggregationLength (32) and aggregationLengthV6 (128)"
            ),
            (&format!("{field} is %d"), &format!("self.{field}")),
        );
    }
}

fn bfd_profile(s: &mut Value) {
    for (field, min, max) in [
        ("receiveInterval", 10, 60000),
        ("transmitInterval", 10, 60000),
        ("detectMultiplier", 2, 255),
        ("echoInterval", 10, 60000),
        ("minimumTtl", 1, 254),
    ] {
        let node = at(s, &format!("spec.{field}"));
        node["format"] = json!("int32");
        node["minimum"] = json!(min);
        node["maximum"] = json!(max);
    }
}

fn configuration_state(s: &mut Value) {
    set(
        s,
        "status.result",
        "enum",
        json!(["Valid", "Invalid", "Unknown"]),
    );
    set(
        s,
        "status.conditions",
        "x-kubernetes-list-type",
        json!("map"),
    );
    set(
        s,
        "status.conditions",
        "x-kubernetes-list-map-keys",
        json!(["type"]),
    );
}

fn service_status(s: &mut Value) {
    for field in ["node", "serviceName", "serviceNamespace"] {
        cel(
            s,
            &format!("status.{field}"),
            "self == oldSelf",
            "Value is immutable",
        );
    }
}

fn bgp_peer_v1beta1(s: &mut Value) {
    require(s, "spec", &["myASN", "peerASN", "peerAddress"]);
    uint32(s, "spec.myASN", 0);
    uint32(s, "spec.peerASN", 0);
    let port = at(s, "spec.peerPort");
    port["format"] = json!("int32");
    port["minimum"] = json!(0);
    port["maximum"] = json!(16384);
    set(
        s,
        "spec.nodeSelectors.[].matchExpressions.[].values",
        "minItems",
        json!(1),
    );
}

fn bgp_peer_v1beta2(s: &mut Value) {
    require(s, "spec", &["myASN"]);
    uint32(s, "spec.myASN", 0);
    uint32(s, "spec.peerASN", 0);
    uint32(s, "spec.localASN", 1);
    let port = at(s, "spec.peerPort");
    port["format"] = json!("int32");
    port["minimum"] = json!(1);
    port["maximum"] = json!(16384);
    port["default"] = json!(179);
    set(
        s,
        "spec.dynamicASN",
        "enum",
        json!(["internal", "external"]),
    );
    set(s, "spec.disableMP", "default", json!(false));
    set(s, "spec.dualStackAddressFamily", "default", json!(false));
    cel(
        s,
        "spec.connectTime",
        "duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535",
        "connect time should be between 1 seconds to 65535",
    );
    cel(
        s,
        "spec.connectTime",
        "duration(self).getMilliseconds() % 1000 == 0",
        "connect time should contain a whole number of seconds",
    );
    cel(
        s,
        "spec.enableGracefulRestart",
        "self == oldSelf",
        "EnableGracefulRestart cannot be changed after creation",
    );
}

/// BGPPeer: v1beta1 (served, deprecated) and v1beta2 (stored), converted by the controller's
/// webhook.
fn bgp_peer(namespace: &str) -> CustomResourceDefinition {
    let old = finish(v1beta1::BGPPeer::crd(), bgp_peer_v1beta1);
    let new = finish(v1beta2::BGPPeer::crd(), bgp_peer_v1beta2);
    let mut merged =
        kube::core::crd::merge_crds(vec![old, new], "v1beta2").expect("BGPPeer versions merge");
    let mut json = serde_json::to_value(&merged).expect("a CRD serializes");
    json["spec"]["conversion"] = json!({
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {
                "service": { "name": WEBHOOK_SERVICE, "namespace": namespace, "path": CONVERSION_PATH }
            }
        }
    });
    merged = serde_json::from_value(json).expect("a CRD deserializes");
    merged
}

fn metallb(s: &mut Value) {
    set(
        s,
        "spec.logLevel",
        "enum",
        json!(["all", "debug", "info", "warn", "error", "none"]),
    );
    set(
        s,
        "spec.loadBalancerClass",
        "pattern",
        json!(r"^([a-z0-9A-Z]([\w.\-]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([\w.\-]*[a-z0-9A-Z])?$"),
    );
    // MetalLB's operator says "invalid BGP Backend, must be one of native, frr, frr-k8s,
    // frr-k8s-external"; we keep its beginning and say why the list is shorter.
    cel_showing(
        s,
        "spec.bgpBackend",
        "self in ['', 'native', 'frr']",
        None,
        "invalid BGP Backend, must be one of native (the default), frr: MetalLB's frr-k8s modes are not offered by metallb-rs",
        ("bgpBackend is \"%s\"", "self"),
    );
    // The API server estimates a CEL rule on a list item as if the list and its strings were as
    // long as a request allows: bounded lists and strings keep the estimate within the budget.
    // The messages are those of MetalLB's operator webhook, which these rules replace.
    for (list, what) in [
        ("spec.speakerTolerations", "SpeakerToleration"),
        ("spec.controllerTolerations", "ControllerToleration"),
    ] {
        set(s, list, "maxItems", json!(64));
        for field in ["key", "operator", "effect", "value"] {
            set(s, &format!("{list}.[].{field}"), "maxLength", json!(316));
        }
        cel_showing(
            s,
            &format!("{list}.[]"),
            "!has(self.tolerationSeconds) || self.tolerationSeconds <= 0 || (has(self.effect) && self.effect == 'NoExecute')",
            Some(".effect"),
            &format!("{what} effect must be NoExecute when tolerationSeconds is set"),
            (
                "effect is \"%s\" with tolerationSeconds %d",
                "has(self.effect) ? self.effect : '', self.tolerationSeconds",
            ),
        );
    }
    // Decision: MetalLB's operator checks the weights of nodeAffinity and podAffinity only; a bad
    // podAntiAffinity weight then fails when the Deployment is applied. We check all three here.
    for (config, what) in [
        ("spec.speakerConfig", "SpeakerConfig"),
        ("spec.controllerConfig", "ControllerConfig"),
    ] {
        for (kind, name) in [
            ("nodeAffinity", "NodeAffinity"),
            ("podAffinity", "PodAffinity"),
            ("podAntiAffinity", "PodAntiAffinity"),
        ] {
            let list =
                format!("{config}.affinity.{kind}.preferredDuringSchedulingIgnoredDuringExecution");
            set(s, &list, "maxItems", json!(64));
            cel_showing(
                s,
                &format!("{list}.[]"),
                "self.weight >= 1 && self.weight <= 100",
                Some(".weight"),
                &format!("{what} {name} set with invalid weight for preferred scheduling term"),
                ("weight %d is not in the range 1-100", "self.weight"),
            );
        }
    }
    // A pattern rather than CEL's isCIDR(): the API server's cost estimate for isCIDR on list
    // items exceeds the CRD's budget even with bounded lists.
    set(s, "spec.frrk8sConfig.alwaysBlock", "maxItems", json!(128));
    set(
        s,
        "spec.frrk8sConfig.alwaysBlock.[]",
        "pattern",
        json!(
            r"^(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])|[0-9a-fA-F:]*:[0-9a-fA-F:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$"
        ),
    );
    set(
        s,
        "spec.speakerGratuitousARPInterval",
        "maxLength",
        json!(32),
    );
    cel_showing(
        s,
        "spec.speakerGratuitousARPInterval",
        "duration(self) == duration('0s') || duration(self) >= duration('1s')",
        None,
        "speakerGratuitousARPInterval must be 0 or at least 1s",
        ("not %s", "self"),
    );
}

/// Renders CRDs as YAML, one document each, with the generated-file header.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let mut value = serde_json::to_value(crd).expect("a CRD serializes");
    integral_numbers(&mut value);
    let mut out =
        String::from("# Generated by `metallb-operator crds` (hack/generate.sh): do not edit.\n");
    out.push_str(&serde_saphyr::to_string(&value).expect("a CRD serializes to YAML"));
    out
}

/// The CRD type keeps minimum and maximum as floats; write `16384`, not `16384.0`.
fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && n.is_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = json!(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}
