//! The webhook's certificates: a CA and a serving certificate for
//! `<service>.<namespace>.svc`, kept in a Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`, the
//! keys MetalLB's cert-controller uses). Pure: what a Secret holds, whether it needs renewal,
//! and new certificates.
//!
//! Renewal: a serving certificate is renewed when less than a third of its validity is left,
//! signed by the same CA, so the CA bundle the API server trusts does not change. The CA lives
//! ten times longer and is renewed the same way; the old CA then stays in `ca.crt` beside the
//! new one until the next renewal, so replicas still serving a certificate of the old CA are
//! trusted while they reload.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Secret keys.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

/// The CA's subject: fixed, so a CA key read back from the Secret can sign again.
const CA_COMMON_NAME: &str = "metallb-rs webhook CA";
const ORGANIZATION: &str = "metallb";
/// The CA lives this many times longer than a serving certificate.
const CA_FACTOR: u32 = 10;

/// What the Secret holds, as PEM text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Material {
    /// The current CA first, possibly followed by the previous one.
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

/// Why certificates could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("failed to read the {0} certificate: not PEM or not X.509")]
    Unreadable(&'static str),
    #[error("failed to read the {0} private key")]
    UnreadableKey(&'static str),
    #[error("failed to generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("failed to load the serving certificate into TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// What matters about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    der: Vec<u8>,
}

impl CertInfo {
    /// Whether the certificate names `dns` (a dNSName is stored as plain ASCII in DER).
    pub fn names(&self, dns: &str) -> bool {
        self.der.windows(dns.len()).any(|w| w == dns.as_bytes())
    }

    /// Whether less than a third of the validity is left at `now`.
    pub fn due(&self, now: Timestamp) -> bool {
        let lifetime = self.not_after.duration_since(self.not_before);
        let left = self.not_after.duration_since(now);
        left * 3 < lifetime
    }
}

/// One DER element: (tag, content, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The whole encoding (tag, length, content) of the first element of `input`.
fn whole(input: &[u8]) -> Option<&[u8]> {
    let (_, _, rest) = element(input)?;
    Some(&input[..input.len() - rest.len()])
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, content: &[u8]) -> Option<Timestamp> {
    let text = std::str::from_utf8(content).ok()?;
    let full = match tag {
        0x17 => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy < 50 { "20" } else { "19" })
        }
        0x18 => text.to_string(),
        _ => return None,
    };
    let d = full.strip_suffix('Z')?;
    if d.len() != 14 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[..4],
        &d[4..6],
        &d[6..8],
        &d[8..10],
        &d[10..12],
        &d[12..14]
    )
    .parse()
    .ok()
}

/// Reads validity, subject and issuer from a DER certificate.
pub fn inspect_der(der: &[u8]) -> Option<CertInfo> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    rest = element(rest)?.2; // serialNumber
    rest = element(rest)?.2; // signature AlgorithmIdentifier
    let issuer = whole(rest)?.to_vec();
    rest = element(rest)?.2;
    let (0x30, validity, after) = element(rest)? else {
        return None;
    };
    let (t1, nb, v) = element(validity)?;
    let (t2, na, _) = element(v)?;
    let subject = whole(after)?.to_vec();
    Some(CertInfo {
        not_before: time(t1, nb)?,
        not_after: time(t2, na)?,
        subject,
        issuer,
        der: der.to_vec(),
    })
}

/// Every certificate of a PEM bundle.
pub fn inspect_pem(pem: &str, what: &'static str) -> Result<Vec<CertInfo>, CertError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| CertError::Unreadable(what))?;
    if certs.is_empty() {
        return Err(CertError::Unreadable(what));
    }
    certs
        .iter()
        .map(|c| inspect_der(c).ok_or(CertError::Unreadable(what)))
        .collect()
}

/// What the Secret needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Keep,
    /// A new serving certificate from the same CA.
    NewServing,
    /// A new CA and serving certificate (nothing usable, or the CA is due).
    NewCa,
}

fn ca_params(now: Timestamp, validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, now, validity * CA_FACTOR);
    params
}

fn set_validity(params: &mut CertificateParams, now: Timestamp, validity: Duration) {
    // A minute of slack before now, for clocks slightly behind ours.
    let start = now.as_second() - 60;
    let end = now.as_second() + validity.as_secs() as i64;
    params.not_before =
        time::OffsetDateTime::from_unix_timestamp(start).expect("a time after 1970");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(end).expect("a sane validity");
}

/// The subject our CA certificates have (DER), to tell our CA from another one.
fn our_ca_subject() -> Option<Vec<u8>> {
    let key = KeyPair::generate().ok()?;
    let cert = ca_params(Timestamp::now(), Duration::from_secs(60))
        .self_signed(&key)
        .ok()?;
    inspect_der(cert.der()).map(|i| i.subject)
}

/// Decides what to do with what the Secret holds at `now`.
pub fn plan(material: Option<&Material>, dns: &str, now: Timestamp) -> Plan {
    let Some(m) = material else {
        return Plan::NewCa;
    };
    let Ok(cas) = inspect_pem(&m.ca_cert, "CA") else {
        return Plan::NewCa;
    };
    let ca = &cas[0];
    if KeyPair::from_pem(&m.ca_key).is_err()
        || ca.due(now)
        || our_ca_subject().is_none_or(|s| s != ca.subject)
    {
        return Plan::NewCa;
    }
    let serving = inspect_pem(&m.cert, "serving").ok();
    let usable = serving.as_ref().is_some_and(|s| {
        let s = &s[0];
        s.issuer == ca.subject && s.names(dns) && !s.due(now) && s.not_after <= ca.not_after
    });
    if usable && certified_key(m).is_ok() {
        Plan::Keep
    } else {
        Plan::NewServing
    }
}

/// New certificates as planned. `previous` is what the Secret holds (its CA key signs a new
/// serving certificate; its CA stays in the bundle after a CA renewal while still valid).
pub fn issue(
    plan: Plan,
    previous: Option<&Material>,
    dns: &str,
    now: Timestamp,
    validity: Duration,
) -> Result<Material, CertError> {
    let (ca_cert, ca_key) = match (plan, previous) {
        (Plan::Keep, Some(m)) => return Ok(m.clone()),
        (Plan::NewServing, Some(m)) => {
            let key = KeyPair::from_pem(&m.ca_key).map_err(|_| CertError::UnreadableKey("CA"))?;
            (m.ca_cert.clone(), key)
        }
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params(now, validity).self_signed(&key)?;
            let mut bundle = cert.pem();
            // Keep the previous CA trusted until it expires, for replicas not reloaded yet.
            if let Some(old) = previous
                .and_then(|m| inspect_pem(&m.ca_cert, "CA").ok().map(|c| (m, c)))
                .filter(|(_, c)| c[0].not_after > now)
                .and_then(|(m, _)| {
                    CertificateDer::pem_slice_iter(m.ca_cert.as_bytes())
                        .next()
                        .and_then(Result::ok)
                })
            {
                bundle.push_str(&pem_of(&old));
            }
            (bundle, key)
        }
    };
    let issuer = Issuer::new(ca_params(now, validity), &ca_key);
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, dns);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::DnsName(dns.try_into()?)];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, validity);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Material {
        ca_cert,
        ca_key: ca_key.serialize_pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The serving certificate and key, ready for rustls.
pub fn certified_key(m: &Material) -> Result<Arc<rustls::sign::CertifiedKey>, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(m.cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| CertError::Unreadable("serving"))?;
    if chain.is_empty() {
        return Err(CertError::Unreadable("serving"));
    }
    let key = PrivateKeyDer::from_pem_slice(m.key.as_bytes())
        .map_err(|_| CertError::UnreadableKey("serving"))?;
    let provider = rustls::crypto::ring::default_provider();
    Ok(Arc::new(rustls::sign::CertifiedKey::from_der(
        chain, key, &provider,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DNS: &str = "metallb-webhook-service.metallb-system.svc";
    const DAY: Duration = Duration::from_secs(86_400);

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_missing_secret_gets_a_ca_and_a_serving_certificate_for_the_service() {
        let now = at("2026-03-01T00:00:00Z");
        assert_eq!(plan(None, DNS, now), Plan::NewCa);
        let m = issue(Plan::NewCa, None, DNS, now, 30 * DAY).unwrap();
        let ca = &inspect_pem(&m.ca_cert, "CA").unwrap()[0];
        let serving = &inspect_pem(&m.cert, "serving").unwrap()[0];
        assert_eq!(serving.issuer, ca.subject);
        assert!(serving.names(DNS));
        assert_eq!(serving.not_after, at("2026-03-31T00:00:00Z"));
        assert_eq!(ca.not_after, at("2026-12-26T00:00:00Z"), "ten times longer");
        assert_eq!(plan(Some(&m), DNS, now), Plan::Keep);
        certified_key(&m).expect("rustls accepts it");
    }

    #[test]
    fn the_serving_certificate_is_renewed_from_the_same_ca_with_a_third_left() {
        let now = at("2026-03-01T00:00:00Z");
        let m = issue(Plan::NewCa, None, DNS, now, 30 * DAY).unwrap();
        assert_eq!(plan(Some(&m), DNS, at("2026-03-20T23:00:00Z")), Plan::Keep);
        let later = at("2026-03-21T01:00:00Z");
        assert_eq!(plan(Some(&m), DNS, later), Plan::NewServing);
        let renewed = issue(Plan::NewServing, Some(&m), DNS, later, 30 * DAY).unwrap();
        assert_eq!(renewed.ca_cert, m.ca_cert, "the CA bundle does not change");
        assert_ne!(renewed.cert, m.cert);
        let ca = &inspect_pem(&renewed.ca_cert, "CA").unwrap()[0];
        let serving = &inspect_pem(&renewed.cert, "serving").unwrap()[0];
        assert_eq!(serving.issuer, ca.subject);
        assert_eq!(plan(Some(&renewed), DNS, later), Plan::Keep);
    }

    #[test]
    fn a_certificate_for_another_service_name_is_replaced() {
        let now = at("2026-03-01T00:00:00Z");
        let m = issue(Plan::NewCa, None, "other.metallb-system.svc", now, DAY).unwrap();
        assert_eq!(plan(Some(&m), DNS, now), Plan::NewServing);
    }

    #[test]
    fn a_due_ca_is_replaced_and_the_old_one_stays_trusted() {
        let now = at("2026-03-01T00:00:00Z");
        let m = issue(Plan::NewCa, None, DNS, now, DAY).unwrap();
        let late = at("2026-03-08T00:00:00Z");
        assert_eq!(plan(Some(&m), DNS, late), Plan::NewCa);
        let renewed = issue(Plan::NewCa, Some(&m), DNS, late, DAY).unwrap();
        let cas = inspect_pem(&renewed.ca_cert, "CA").unwrap();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[1], inspect_pem(&m.ca_cert, "CA").unwrap()[0]);
        assert_eq!(plan(Some(&renewed), DNS, late), Plan::Keep);
    }

    #[test]
    fn garbage_or_a_foreign_ca_starts_over() {
        let now = at("2026-03-01T00:00:00Z");
        let junk = Material {
            ca_cert: "not a cert".into(),
            ..Default::default()
        };
        assert_eq!(plan(Some(&junk), DNS, now), Plan::NewCa);
        // A CA with another subject (say, MetalLB's cert-controller's) cannot be re-signed from.
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        set_validity(&mut params, now, DAY);
        let foreign = Material {
            ca_cert: params.self_signed(&key).unwrap().pem(),
            ca_key: key.serialize_pem(),
            ..Default::default()
        };
        assert_eq!(plan(Some(&foreign), DNS, now), Plan::NewCa);
    }

    #[test]
    fn der_times_read_both_encodings() {
        assert_eq!(
            time(0x17, b"491231235959Z"),
            Some(at("2049-12-31T23:59:59Z"))
        );
        assert_eq!(
            time(0x17, b"500101000000Z"),
            Some(at("1950-01-01T00:00:00Z"))
        );
        assert_eq!(
            time(0x18, b"20990101000000Z"),
            Some(at("2099-01-01T00:00:00Z"))
        );
        assert_eq!(time(0x18, b"2099010100000Z"), None);
        assert_eq!(inspect_der(&[0x30, 0x03, 0x02, 0x01]), None, "truncated");
    }
}
