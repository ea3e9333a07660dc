//! Names every component agrees on: the API group, annotations, labels, field managers and the
//! default images. Strings that appear in more than one crate live here and nowhere else.

/// The API group of every MetalLB custom resource.
pub const GROUP: &str = "metallb.io";
/// The namespace MetalLB runs in unless told otherwise (`--namespace`, `METALLB_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// Service annotations, in their current `metallb.io/` spelling.
pub mod annotations {
    /// Allocate from the named pool.
    pub const ADDRESS_POOL: &str = "metallb.io/address-pool";
    /// One or two comma-separated IPs (of different families) the Service asks for.
    pub const LOAD_BALANCER_IPS: &str = "metallb.io/loadBalancerIPs";
    /// Sharing key: Services with the same key may share an IP.
    pub const ALLOW_SHARED_IP: &str = "metallb.io/allow-shared-ip";
    /// Written by the controller: the pool the Service's IPs came from.
    pub const IP_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";
    /// The deprecated spelling of the same annotations (`metallb.universe.tf/<name>`), still honoured.
    pub const DEPRECATED_PREFIX: &str = "metallb.universe.tf/";
    /// The current prefix.
    pub const PREFIX: &str = "metallb.io/";
}

/// Labels MetalLB puts on the objects it writes, and labels it reads on Nodes.
pub mod labels {
    /// Node that a ServiceL2Status / ServiceBGPStatus belongs to.
    pub const NODE: &str = "metallb.io/node";
    /// Service name of a ServiceL2Status / ServiceBGPStatus.
    pub const SERVICE_NAME: &str = "metallb.io/service-name";
    /// Service namespace of a ServiceL2Status / ServiceBGPStatus.
    pub const SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";
    /// `controller` or `speaker`, on ConfigurationState objects.
    pub const COMPONENT_TYPE: &str = "metallb.io/component-type";
    /// Node name, on a speaker's ConfigurationState.
    pub const NODE_NAME: &str = "metallb.io/node-name";
    /// Nodes carrying this label are not candidates to announce (unless `--ignore-exclude-lb`).
    pub const EXCLUDE_FROM_EXTERNAL_LB: &str =
        "node.kubernetes.io/exclude-from-external-load-balancers";
}

/// Values of `metallb.io/component-type`.
pub mod component {
    pub const CONTROLLER: &str = "controller";
    pub const SPEAKER: &str = "speaker";
}

/// Names of the objects the operator deploys and the components refer to.
pub mod names {
    pub const CONTROLLER_DEPLOYMENT: &str = "controller";
    pub const SPEAKER_DAEMONSET: &str = "speaker";
    pub const CONTROLLER_SERVICE_ACCOUNT: &str = "controller";
    pub const SPEAKER_SERVICE_ACCOUNT: &str = "speaker";
    /// The Service in front of the controller's webhook server.
    pub const WEBHOOK_SERVICE: &str = "metallb-webhook-service";
    /// The ValidatingWebhookConfiguration for the metallb.io kinds.
    pub const WEBHOOK_CONFIGURATION: &str = "metallb-webhook-configuration";
    /// The Secret holding the webhook CA and serving certificate, managed by the controller.
    pub const WEBHOOK_SECRET: &str = "metallb-webhook-cert";
    /// The Secret holding the speakers' shared gossip key (key `secretkey`).
    pub const MEMBERLIST_SECRET: &str = "memberlist";
    pub const MEMBERLIST_SECRET_KEY: &str = "secretkey";
    /// The ConfigMap listing interfaces never used for L2 announcements.
    pub const EXCLUDE_L2_CONFIGMAP: &str = "metallb-excludel2";
    /// Raw FRR configuration appended by the speakers (frr backend), key `extras`.
    pub const BGP_EXTRAS_CONFIGMAP: &str = "bgpextras";
    /// The Lease the controller replicas elect a leader with.
    pub const CONTROLLER_LEASE: &str = "metallb-controller";
    /// The one MetalLB resource the operator acts on.
    pub const METALLB_CR: &str = "metallb";
    /// The legacy (MetalLB ≤ 0.12) configuration ConfigMap and its key.
    pub const LEGACY_CONFIGMAP: &str = "config";
    pub const LEGACY_CONFIGMAP_KEY: &str = "config";
}

/// Ports, as MetalLB uses them.
pub mod ports {
    /// The controller's admission and conversion webhook server (HTTPS).
    pub const WEBHOOK: u16 = 9443;
    /// `/metrics` of the controller and the speakers.
    pub const METRICS: u16 = 9120;
    /// `/healthz` and `/readyz`.
    pub const HEALTH: u16 = 17472;
    /// Speaker-to-speaker liveness gossip (UDP).
    pub const MEMBERLIST: u16 = 7946;
}

/// Server-side apply field managers, one per component.
pub mod field_managers {
    pub const OPERATOR: &str = "metallb-operator";
    /// The operator's manager for the namespace's PodSecurity labels only.
    pub const OPERATOR_POD_SECURITY: &str = "metallb-operator-podsecurity";
    pub const CONTROLLER: &str = "metallb-controller";
    pub const SPEAKER: &str = "metallb-speaker";
}

/// Paths of the controller's webhook server, as in MetalLB.
pub mod webhook_paths {
    pub const IPADDRESSPOOL: &str = "/validate-metallb-io-v1beta1-ipaddresspool";
    pub const L2ADVERTISEMENT: &str = "/validate-metallb-io-v1beta1-l2advertisement";
    pub const BGPADVERTISEMENT: &str = "/validate-metallb-io-v1beta1-bgpadvertisement";
    pub const COMMUNITY: &str = "/validate-metallb-io-v1beta1-community";
    pub const BFDPROFILE: &str = "/validate-metallb-io-v1beta1-bfdprofile";
    pub const BGPPEER: &str = "/validate-metallb-io-v1beta2-bgppeer";
    pub const CONVERT: &str = "/convert";
}

/// Container images. The operator's environment (`CONTROLLER_IMAGE`, `SPEAKER_IMAGE`,
/// `FRR_IMAGE`) overrides them; by default each component runs the operator's own release.
pub mod images {
    pub const REPOSITORY: &str = "quay.io/metallb-rs";
    /// The release every component of this build belongs to.
    pub const VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));
    pub const FRR: &str = "quay.io/frrouting/frr:10.5.3";

    pub fn controller() -> String {
        format!("{REPOSITORY}/metallb-controller:{VERSION}")
    }
    pub fn speaker() -> String {
        format!("{REPOSITORY}/metallb-speaker:{VERSION}")
    }
    pub fn operator() -> String {
        format!("{REPOSITORY}/metallb-operator:{VERSION}")
    }
}

/// The legacy ConfigMap migration (`docs/migrating-from-configmap.md`): what marks the objects it
/// creates and the ConfigMap it migrated, and the condition on the `MetalLB` resource.
pub mod migration {
    /// Label on every object the migration creates, with the value [`MIGRATED_FROM_VALUE`].
    ///
    /// Decision: the value names the mechanism, not the ConfigMap, because a ConfigMap name may
    /// not fit in a label value; the source is in [`SOURCE_ANNOTATION`].
    pub const MIGRATED_FROM_LABEL: &str = "metallb.io/migrated-from";
    pub const MIGRATED_FROM_VALUE: &str = "legacy-configmap";
    /// Annotation on every converted object: `<namespace>/<name>` of the source ConfigMap.
    pub const SOURCE_ANNOTATION: &str = "metallb.io/migration-source";
    /// Annotation on every converted object: the entry of the legacy configuration it comes
    /// from, such as `address-pools[2]` or `peers[0].password`.
    pub const ENTRY_ANNOTATION: &str = "metallb.io/migration-entry";
    /// `sha256:<hex>` of the `config` text that was converted: on every converted object, and on
    /// the ConfigMap once migrated, so that a later edit of the ConfigMap is noticed.
    pub const CONFIG_HASH_ANNOTATION: &str = "metallb.io/migrated-config-hash";
    /// On the ConfigMap once migrated: when (RFC 3339).
    pub const MIGRATED_AT_ANNOTATION: &str = "metallb.io/migrated-at";
    /// On the ConfigMap once migrated: `Kind/name` of every object of the migration, joined
    /// with commas.
    pub const MIGRATED_OBJECTS_ANNOTATION: &str = "metallb.io/migrated-objects";
    /// The condition type on the `MetalLB` resource that reports the migration.
    pub const CONDITION_TYPE: &str = "ConfigMigrated";

    /// Reasons of the `ConfigMigrated` condition and of the Events on the ConfigMap.
    pub mod reasons {
        pub const MIGRATED: &str = "Migrated";
        pub const NOTHING_TO_MIGRATE: &str = "NothingToMigrate";
        pub const INVALID_CONFIG: &str = "InvalidConfig";
        pub const CONFLICT: &str = "Conflict";
        pub const CHANGED_AFTER_MIGRATION: &str = "ChangedAfterMigration";
        /// Creating a converted object failed (typically the webhook not answering yet); the
        /// operator retries.
        pub const MIGRATION_PENDING: &str = "MigrationPending";
    }
}
