//! The identity a client certificate proves.
//!
//! The certificate has already been verified against the client CA by the TLS handshake; this
//! only reads the name in it. The rule, most specific first: a SPIFFE ID (a URI SAN starting
//! with `spiffe://`, what a service mesh or SPIRE issues per workload), else the first DNS SAN,
//! else the subject's CN. A certificate with none of them proves no identity, and the access
//! layer refuses its calls.

use std::sync::Arc;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use super::PeerIdentity;

/// The identity `der`, a verified client certificate, proves; `None` when it names nobody (or
/// cannot be parsed, which a certificate that passed verification should never be).
pub fn of_certificate(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    spiffe_id(&cert)
        .or_else(|| dns_name(&cert))
        .or_else(|| common_name(&cert))
        .map(|name| PeerIdentity(Arc::from(name)))
}

/// The certificate's SANs; none when the extension is missing or malformed.
fn alternative_names<'a>(cert: &'a X509Certificate<'_>) -> Vec<&'a GeneralName<'a>> {
    match cert.subject_alternative_name() {
        Ok(Some(extension)) => extension.value.general_names.iter().collect(),
        _ => Vec::new(),
    }
}

fn spiffe_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    alternative_names(cert)
        .into_iter()
        .find_map(|name| match name {
            // Other URI SANs (a homepage, a URN) are not identities.
            GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
            _ => None,
        })
}

fn dns_name<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    alternative_names(cert)
        .into_iter()
        .find_map(|name| match name {
            GeneralName::DNSName(dns) if !dns.is_empty() => Some(*dns),
            _ => None,
        })
}

fn common_name<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    cert.subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    /// A self-signed certificate with these SANs and CN (signature and issuer do not matter
    /// here: the handshake verified them).
    fn certificate(sans: &[SanType], cn: Option<&str>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans.to_vec();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params
            .distinguished_name
            .push(DnType::OrganizationName, "corp");
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(value: &str) -> SanType {
        SanType::URI(value.try_into().unwrap())
    }

    fn dns(value: &str) -> SanType {
        SanType::DnsName(value.try_into().unwrap())
    }

    fn identity(der: &[u8]) -> Option<String> {
        of_certificate(der).map(|id| id.0.to_string())
    }

    #[test]
    fn a_spiffe_id_beats_dns_names_and_the_cn() {
        let der = certificate(
            &[
                dns("checkout.shop.svc"),
                uri("https://corp.example/checkout"),
                uri("spiffe://corp/ns/shop/sa/checkout"),
            ],
            Some("checkout-cn"),
        );
        assert_eq!(
            identity(&der).as_deref(),
            Some("spiffe://corp/ns/shop/sa/checkout")
        );
    }

    #[test]
    fn without_a_spiffe_id_the_first_dns_name_beats_the_cn() {
        let der = certificate(
            &[
                uri("https://corp.example/checkout"),
                dns("checkout.shop.svc"),
                dns("checkout"),
            ],
            Some("checkout-cn"),
        );
        assert_eq!(identity(&der).as_deref(), Some("checkout.shop.svc"));
    }

    #[test]
    fn without_sans_the_cn_names_the_caller() {
        let der = certificate(&[], Some("checkout-cn"));
        assert_eq!(identity(&der).as_deref(), Some("checkout-cn"));
        let der = certificate(&[uri("urn:corp:checkout")], Some("checkout-cn"));
        assert_eq!(identity(&der).as_deref(), Some("checkout-cn"));
    }

    #[test]
    fn a_certificate_naming_nobody_proves_no_identity() {
        assert_eq!(identity(&certificate(&[], None)), None);
        assert_eq!(identity(&certificate(&[uri("urn:corp:x")], Some(""))), None);
        assert_eq!(identity(b"not a certificate"), None);
    }
}
