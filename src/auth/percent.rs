//! Parameter decoding and the "POP" percent-encoding used by the canonical strings.
//!
//! Requests arrive form-encoded (`+` or `%20` for a space, `%XX` for other bytes), in the
//! query string and, for RPC, in the body. Signatures are computed over the *decoded*
//! values re-encoded in one canonical way, the Alibaba "POP" rule: RFC 3986 unreserved
//! characters `A-Z a-z 0-9 - _ . ~` stay, every other UTF-8 byte becomes `%XX` with
//! upper-case hex (so a space is `%20`, `*` is `%2A`, `/` is `%2F`).
//!
//! Decoding is strict about UTF-8: a lossy decode could make two different requests
//! produce the same canonical string, so invalid UTF-8 is refused as malformed. A
//! malformed escape such as `%zz` is kept literally, as every form decoder does.
//!
//! The SDKs build their parameters from maps, so a name never appears twice. A repeated
//! name with the same value is collapsed (as the SDK's own map merge of query and body
//! does); a repeated name with different values is refused, because the signature could
//! then cover one value while the handler reads the other.

use std::collections::BTreeMap;

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::error::AuthError;

/// Everything except the RFC 3986 unreserved characters.
const POP_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` by the POP rule.
pub(crate) fn pop_encode(s: &str) -> String {
    utf8_percent_encode(s, POP_ENCODE_SET).to_string()
}

/// One decoded parameter; `value` is `None` when the pair had no `=` at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
}

/// Decodes an `application/x-www-form-urlencoded` string (a query or a form body).
/// Empty segments (`a=1&&b=2`) are skipped, as form decoders do.
pub(crate) fn decode_form(input: &[u8]) -> Result<Vec<Param>, AuthError> {
    let mut out = Vec::new();
    for segment in input.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(at) => {
                let (name, rest) = segment.split_at(at);
                // `rest` starts with the `=` just found.
                (name, Some(rest.get(1..).unwrap_or_default()))
            }
            None => (segment, None),
        };
        out.push(Param {
            name: decode_component(name)?,
            value: value.map(decode_component).transpose()?,
        });
    }
    Ok(out)
}

/// `+` → space, then `%XX` → byte, then strict UTF-8.
fn decode_component(raw: &[u8]) -> Result<String, AuthError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&spaced).collect();
    String::from_utf8(bytes)
        .map_err(|_| AuthError::malformed("a parameter is not valid UTF-8 after percent-decoding"))
}

/// True if the form-encoded `input` has a parameter named exactly `name`, without
/// decoding anything (used to detect RPC signing in a large body cheaply).
pub(crate) fn has_param(input: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    input.split(|&b| b == b'&').any(|segment| {
        segment == name || (segment.starts_with(name) && segment.get(name.len()) == Some(&b'='))
    })
}

/// Merges parameter lists into one map sorted by name (byte order, as the SDKs sort),
/// leaving out `skip` and refusing a name repeated with different values.
pub(crate) fn canonical_params<'a>(
    lists: impl IntoIterator<Item = &'a [Param]>,
    skip: Option<&str>,
) -> Result<BTreeMap<&'a str, Option<&'a str>>, AuthError> {
    let mut map: BTreeMap<&'a str, Option<&'a str>> = BTreeMap::new();
    for param in lists.into_iter().flatten() {
        if Some(param.name.as_str()) == skip {
            continue;
        }
        let value = param.value.as_deref();
        match map.get(param.name.as_str()) {
            Some(previous) if *previous != value => {
                return Err(AuthError::Malformed(format!(
                    "the parameter `{}` is given twice with different values",
                    param.name
                )));
            }
            Some(_) => {}
            None => {
                map.insert(param.name.as_str(), value);
            }
        }
    }
    Ok(map)
}

/// Joins a parameter map as `enc(name)=enc(value)&...` with POP encoding; a parameter
/// without a value is written `name=` (the SDKs never send one, and an empty value is the
/// closest match).
pub(crate) fn pop_join(params: &BTreeMap<&str, Option<&str>>) -> String {
    let mut out = String::new();
    for (name, value) in params {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&pop_encode(name));
        out.push('=');
        out.push_str(&pop_encode(value.unwrap_or_default()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_encoding_follows_rfc3986() {
        assert_eq!(pop_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(pop_encode("a b*c/d+e=f&g"), "a%20b%2Ac%2Fd%2Be%3Df%26g");
        assert_eq!(pop_encode("é中"), "%C3%A9%E4%B8%AD");
        assert_eq!(pop_encode(":"), "%3A");
    }

    #[test]
    fn decode_handles_plus_escapes_and_bare_names() {
        let params = decode_form(b"a=x+y%2A&&b&c=&d=%zz%3D").unwrap();
        let got: Vec<(&str, Option<&str>)> = params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Some("x y*")),
                ("b", None),
                ("c", Some("")),
                ("d", Some("%zz="))
            ]
        );
        assert!(matches!(
            decode_form(b"a=%FF"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn detects_a_parameter_without_decoding() {
        assert!(has_param(b"x=1&Signature=abc", "Signature"));
        assert!(has_param(b"Signature", "Signature"));
        assert!(!has_param(b"SignatureNonce=1&x=Signature", "Signature"));
    }

    #[test]
    fn canonical_params_sort_skip_and_refuse_conflicts() {
        let query = decode_form(b"b=2&Signature=s&a=1").unwrap();
        let body = decode_form(b"c=3&a=1").unwrap();
        let map = canonical_params([query.as_slice(), body.as_slice()], Some("Signature")).unwrap();
        assert_eq!(pop_join(&map), "a=1&b=2&c=3");
        let conflict = decode_form(b"a=2").unwrap();
        assert!(canonical_params([query.as_slice(), conflict.as_slice()], None).is_err());
    }
}
